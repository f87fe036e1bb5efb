"""Analyzers: one module per method, each with a Config dataclass, pure scoring functions and
``run(model, cfg) -> Result``; each also registers its ``interp`` subcommand via ``register(app)``.

- `circuits.retrieval`: retrieval heads (Wu et al. 2024)
- `circuits.knowledge_conflict`: memory vs context heads, PH3 pruning (Jin et al. 2024)
- `circuits.factual_recall`: head attribution and value scaling (Yu, Merullo, Pavlick 2023)
- `circuits.entity_tracking`: entity-tracking circuit, DCM, CMAP (Prakash et al. 2024)
- `circuits.induction`: induction heads and repeated-data damage (Hernandez et al. 2022)
"""

ANALYZERS = ("retrieval", "knowledge_conflict", "factual_recall", "entity_tracking", "induction")
