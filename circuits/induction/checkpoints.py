"""Checkpoints: load a model at a training step, and check that a trajectory keeps one shape.

A checkpoint spec is an `interp.Model`; a zoo training state or weight snapshot (``*.pt``
holding recipe, step and weights); ``ID@REVISION`` (an HF revision such as
``EleutherAI/pythia-70m@step1000``); or anything `interp.load` takes (zoo name, HF folder,
.gguf file, HF id).

    >>> model, label, step = load_checkpoint("runs/x/ckpts/step00250.pt")   # doctest: +SKIP
    >>> label, step                                                         # doctest: +SKIP
    ('world-mini@step250', 250)
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any, Optional

import torch

import interp
from interp import zoo
from interp.errors import ArgumentTypeError, InvalidArgumentError, MissingFileError
from interp.zoo.recipes import Recipe
from interp.zoo.train import build_model
from interp.zoo.world import World

__all__ = [
    "load_checkpoint",
    "world_content_tokens",
    "architecture_of",
    "check_same_architecture",
    "CheckpointMismatchError",
    "ARCH_KEYS",
]

ARCH_KEYS = ("architecture", "n_layers", "n_heads", "n_kv_heads", "d_head", "d_model", "vocab_size")
"""What a trajectory must keep from checkpoint to checkpoint."""


class CheckpointMismatchError(InvalidArgumentError):
    """Checkpoints of one trajectory do not share one architecture."""


def load_checkpoint(spec) -> tuple[Any, str, Optional[int]]:
    """(Model, label, training step or None) for a checkpoint spec (see the module docstring)."""
    if isinstance(spec, interp.Model):
        return spec, spec.name, None
    if not isinstance(spec, (str, os.PathLike)):
        raise ArgumentTypeError(
            f"a checkpoint is a Model, a path or a model id, got {type(spec).__name__}"
        )
    spec = str(spec)
    if spec.endswith(".pt"):
        return _load_training_state(spec)
    if "@" in spec and not os.path.exists(spec):
        ident, rev = spec.rsplit("@", 1)
        step = int(rev[4:]) if rev.startswith("step") and rev[4:].isdigit() else None
        return interp.load(ident, revision=rev), spec, step
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = interp.load(spec)
    return (model, *_folder_label_and_step(model, spec))


def _folder_label_and_step(model, spec: str) -> tuple[str, Optional[int]]:
    """A model folder's label (its zoo run name) and the step its metrics.json records."""
    if not os.path.isdir(spec):
        return spec, None
    folder = Path(spec).resolve()
    label = (
        folder.parent.name if folder.name == "model" else folder.name
    )  # zoo run layout <name>/model
    model.name = label
    metrics = folder / "metrics.json"
    step = json.loads(metrics.read_text()).get("steps") if metrics.is_file() else None
    return label, step


def _load_training_state(path: str):
    if not os.path.isfile(path):
        raise MissingFileError(f"checkpoint {path} does not exist")
    state = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(state, dict) or not {"recipe", "model", "step"} <= set(state):
        raise InvalidArgumentError(
            f"{path} is not a zoo training state (needs 'recipe', 'model' and 'step')"
        )
    recipe = Recipe(**state["recipe"])
    world = World(recipe.world_seed)
    tok = world.build_tokenizer()
    hf = build_model(recipe, len(world.vocab), tok)
    hf.load_state_dict({k: v.float() for k, v in state["model"].items()})
    label = f"{recipe.name}@step{state['step']}"
    return interp.Model(hf.eval(), tok, name=label), label, int(state["step"])


def _world_seed(spec) -> Optional[int]:
    if str(spec).endswith(".pt") and os.path.isfile(spec):
        return torch.load(spec, map_location="cpu", weights_only=False)["recipe"]["world_seed"]
    folder = Path(spec)
    if not folder.is_dir():
        folder = zoo.path(str(spec)) if str(spec) in zoo.names() else None
    if folder is not None and (folder / "world.json").is_file():
        return json.loads((folder / "world.json").read_text())["seed"]
    return None


def world_content_tokens(spec) -> Optional[tuple]:
    """Content-token ids of the zoo world a checkpoint was trained on, or None for other models.

    Random spans of zoo models are drawn from these (the tokens of their random-span training
    documents), not from function words and special tokens.
    """
    if not isinstance(spec, (str, os.PathLike)):
        return None
    try:
        seed = _world_seed(spec)
    except (OSError, KeyError, ValueError):
        return None
    return None if seed is None else tuple(int(i) for i in World(int(seed)).random_token_ids)


def architecture_of(model) -> dict:
    """The shape a trajectory must keep: architecture, layers, heads, kv heads, widths,
    vocabulary."""
    return {k: getattr(model, k) for k in ARCH_KEYS}


def check_same_architecture(ref: dict, ref_label: str, model, label: str) -> None:
    """Raise CheckpointMismatchError if `model` differs in shape from the reference checkpoint."""
    got = architecture_of(model)
    diff = {k: (ref[k], got[k]) for k in ARCH_KEYS if ref[k] != got[k]}
    if diff:
        detail = ", ".join(f"{k} {a} vs {b}" for k, (a, b) in diff.items())
        raise CheckpointMismatchError(
            f"checkpoint {label!r} does not match {ref_label!r} ({detail}); "
            f"a trajectory follows the "
            f"same heads through training, so pass checkpoints of one architecture only"
        )
