"""Analyzers: one package per method, each a frozen ``Config`` dataclass, pure scoring functions
and ``run(model, cfg) -> Result`` following `interp.analysis.AnalysisResult`. Each registers
itself below with one line; the CLI (`interp.cli`), the demo and the atlas loop over
`circuits.registry`.

- `circuits.retrieval`: retrieval heads (Wu et al. 2024)
- `circuits.knowledge_conflict`: memory vs context heads, PH3 pruning (Jin et al. 2024)
- `circuits.factual_recall`: head attribution and value scaling (Yu, Merullo, Pavlick 2023)
- `circuits.entity_tracking`: entity-tracking circuit, DCM, CMAP (Prakash et al. 2024)
- `circuits.induction`: induction heads (Olsson et al. 2022)
- `circuits.induction_damage`: repeated-data damage to induction (Hernandez et al. 2022); not run
  by the demo (it needs a trained family, not one model)
"""

from . import registry

ANALYZERS = (
    "retrieval",
    "knowledge_conflict",
    "factual_recall",
    "entity_tracking",
    "induction",
    "induction_damage",
)

# --- registrations: one line per analyzer ---------------------------------------------------
from .entity_tracking import ENTRY as ENTITY_TRACKING  # noqa: E402
from .factual_recall import ENTRY as FACTUAL_RECALL  # noqa: E402
from .induction import ENTRY as INDUCTION  # noqa: E402
from .induction_damage import ENTRY as INDUCTION_DAMAGE  # noqa: E402
from .knowledge_conflict import ENTRY as KNOWLEDGE_CONFLICT  # noqa: E402
from .retrieval import ENTRY as RETRIEVAL  # noqa: E402

registry.register(ENTITY_TRACKING)
registry.register(INDUCTION)
registry.register(INDUCTION_DAMAGE)
registry.register(KNOWLEDGE_CONFLICT)
registry.register(FACTUAL_RECALL)
registry.register(RETRIEVAL)
