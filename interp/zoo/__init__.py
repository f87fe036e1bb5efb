"""interp.zoo: small causal LMs trained by the project on a synthetic "world" language.

Each organism is an ordinary HF model folder under ``interp/zoo/checkpoints/<name>``
with a card (``card.md`` + ``metrics.json``) recording its recipe and measured
behaviours (fact recall, knowledge conflicts, needle retrieval, entity tracking,
induction).
"""

from __future__ import annotations

import json
from pathlib import Path

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"


class UnknownZooModel(KeyError):
    """Raised for a name that is not a zoo organism; lists the valid names."""

    def __init__(self, name: str, valid: list[str] | None = None):
        self.name = name
        self.valid = list(valid) if valid is not None else names()
        super().__init__(name)

    def __str__(self) -> str:
        return f"unknown zoo model {self.name!r}; valid names: {', '.join(self.valid)}"


from .evaluate import BEHAVIOURS, evaluate, induction_scores  # noqa: E402
from .recipes import RECIPES, Recipe, get_recipe  # noqa: E402
from .train import CorruptCheckpointError, train  # noqa: E402
from .world import World  # noqa: E402


def names() -> list[str]:
    """Names of the shipped organisms (those with a checkpoint folder)."""
    return sorted(n for n, r in RECIPES.items() if r.shipped and (CHECKPOINT_DIR / n / "config.json").exists())


def path(name: str) -> Path:
    """The HF model folder of organism ``name`` (raises :class:`UnknownZooModel`)."""
    p = CHECKPOINT_DIR / name
    if name not in names():
        raise UnknownZooModel(name, names())
    return p


def card(name: str) -> dict:
    """The organism's ``metrics.json`` (recipe, wall time, measured behaviour metrics)."""
    f = path(name) / "metrics.json"
    try:
        return json.loads(f.read_text())
    except (OSError, ValueError) as e:
        raise CorruptCheckpointError(f"card {f} is missing or corrupted: {e}") from e


def verify(name: str) -> None:
    """Check the shipped weights against the sha256 recorded in the card."""
    from .train import sha256
    p = path(name)
    c = card(name)
    w = p / "model.safetensors"
    if not w.exists():
        raise CorruptCheckpointError(f"{w} is missing")
    if c.get("weights_sha256") and sha256(w) != c["weights_sha256"]:
        raise CorruptCheckpointError(
            f"{w} does not match the sha256 in its card (corrupted or modified); "
            f"re-fetch it from git or retrain with `interp zoo train {name}`")


def load(name: str, dtype=None, check: bool = True):
    """``(model, tokenizer)`` of a shipped organism (weights verified against the card)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if check:
        verify(name)
    p = path(name)
    try:
        model = AutoModelForCausalLM.from_pretrained(p, dtype=dtype or torch.float32)
        tok = AutoTokenizer.from_pretrained(p)
    except Exception as e:  # noqa: BLE001
        raise CorruptCheckpointError(f"cannot load zoo model {name!r} from {p}: {e}") from e
    model.eval()
    return model, tok


def world(seed: int = 0) -> World:
    return World(seed)


# data builders for analyzers (held-out prompts with answers)
def fact_prompts(countries=None, world_seed: int = 0):
    return World(world_seed).fact_prompts(countries)


def conflict_prompts(n: int = 200, seed: int = 0, world_seed: int = 0):
    return World(world_seed).conflict_prompts(n, seed=seed)


def needle_prompts(n_per_depth: int = 40, context_len: int = 256, depths=(0.0, 0.25, 0.5, 0.75, 1.0),
                   seed: int = 0, n_distractors=None, world_seed: int = 0):
    return World(world_seed).needle_prompts(n_per_depth, context_len, depths, seed, n_distractors)


def box_prompts(n_per_size: int = 100, sizes=(3, 4, 5), seed: int = 0, world_seed: int = 0):
    return World(world_seed).box_prompts(n_per_size, sizes, seed)


def repeated_span_sequences(lengths=(10, 20, 40), offsets=(0, 30, 80), n: int = 16, seed: int = 0,
                            world_seed: int = 0):
    return World(world_seed).repeated_span_sequences(lengths, offsets, n, seed)


__all__ = [
    "BEHAVIOURS", "CHECKPOINT_DIR", "CorruptCheckpointError", "RECIPES", "Recipe", "UnknownZooModel",
    "World", "box_prompts", "card", "conflict_prompts", "evaluate", "fact_prompts", "get_recipe",
    "induction_scores", "load", "names", "needle_prompts", "path", "repeated_span_sequences", "train",
    "verify", "world",
]
