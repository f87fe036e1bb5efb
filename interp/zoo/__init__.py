"""interp.zoo: small causal LMs trained by the project on a synthetic "world" language.

Each organism is an ordinary HF model folder under ``interp/zoo/checkpoints/<name>``
with a card (``card.md`` + ``metrics.json``) recording its recipe and measured
behaviours (fact recall, knowledge conflicts, needle retrieval, entity tracking,
induction).

The modules, in the order data flows through them: ``lexicon`` and ``world`` (the language),
``documents`` and ``prompts`` (training rows, held-out prompts), ``recipes``, ``batches`` and
``train`` (training), ``evaluate`` and ``cards`` (measured behaviours), ``shelf`` (the shipped
folders).  Everything public is re-exported here.
"""

from __future__ import annotations

from .errors import CorruptCheckpointError as CorruptCheckpointError
from .errors import UnknownZooModel as UnknownZooModel
from .evaluate import BEHAVIOURS as BEHAVIOURS
from .evaluate import evaluate as evaluate
from .evaluate import induction_scores as induction_scores
from .recipes import RECIPES as RECIPES
from .recipes import Recipe as Recipe
from .recipes import get_recipe as get_recipe
from .shelf import CHECKPOINT_DIR as CHECKPOINT_DIR
from .shelf import card as card
from .shelf import load as load
from .shelf import names as names
from .shelf import path as path
from .shelf import verify as verify
from .train import train as train
from .world import World as World


def world(seed: int = 0) -> World:
    return World(seed)


# data builders for analyzers (held-out prompts with answers)
def fact_prompts(countries=None, world_seed: int = 0):
    return World(world_seed).fact_prompts(countries)


def conflict_prompts(n: int = 200, seed: int = 0, world_seed: int = 0):
    return World(world_seed).conflict_prompts(n, seed=seed)


def needle_prompts(
    n_per_depth: int = 40,
    context_len: int = 256,
    depths=(0.0, 0.25, 0.5, 0.75, 1.0),
    seed: int = 0,
    n_distractors=None,
    world_seed: int = 0,
):
    return World(world_seed).needle_prompts(n_per_depth, context_len, depths, seed, n_distractors)


def box_prompts(n_per_size: int = 100, sizes=(3, 4, 5), seed: int = 0, world_seed: int = 0):
    return World(world_seed).box_prompts(n_per_size, sizes, seed)


def repeated_span_sequences(
    lengths=(10, 20, 40), offsets=(0, 30, 80), n: int = 16, seed: int = 0, world_seed: int = 0
):
    return World(world_seed).repeated_span_sequences(lengths, offsets, n, seed)


__all__ = [
    "BEHAVIOURS",
    "CHECKPOINT_DIR",
    "CorruptCheckpointError",
    "RECIPES",
    "Recipe",
    "UnknownZooModel",
    "World",
    "box_prompts",
    "card",
    "conflict_prompts",
    "evaluate",
    "fact_prompts",
    "get_recipe",
    "induction_scores",
    "load",
    "names",
    "needle_prompts",
    "path",
    "repeated_span_sequences",
    "train",
    "verify",
    "world",
]
