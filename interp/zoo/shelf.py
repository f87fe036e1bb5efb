"""The shelf of shipped organisms: ``interp/zoo/checkpoints/<name>`` HF model folders.

``names()`` lists the organisms whose recipe is shipped and whose folder exists; ``path``,
``card`` and ``load`` serve one of them (``load`` verifies the weights against the sha256 in its
card first); ``install_model`` puts a finished folder on the shelf.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from .errors import CorruptCheckpointError, UnknownZooModel
from .recipes import RECIPES

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"


def sha256(path: Path) -> str:
    """The hex sha256 of the file at ``path`` (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def names() -> list[str]:
    """Names of the shipped organisms (those with a checkpoint folder)."""
    return sorted(
        n for n, r in RECIPES.items() if r.shipped and (CHECKPOINT_DIR / n / "config.json").exists()
    )


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
    p = path(name)
    c = card(name)
    w = p / "model.safetensors"
    if not w.exists():
        raise CorruptCheckpointError(f"{w} is missing")
    if c.get("weights_sha256") and sha256(w) != c["weights_sha256"]:
        raise CorruptCheckpointError(
            f"{w} does not match the sha256 in its card (corrupted or modified); "
            f"re-fetch it from git or retrain with `interp zoo train {name}`"
        )


def load(name: str, dtype=None, check: bool = True):
    """``(model, tokenizer)`` of a shipped organism (weights verified against the card)."""
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


def install_model(model_dir: Path, name: str) -> Path:
    """Copy ``model_dir`` to the shelf as ``name`` (atomically: a failed copy leaves the old
    one)."""
    dst = CHECKPOINT_DIR / name
    tmp = dst.with_name(name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(model_dir, tmp)
    if dst.exists():
        shutil.rmtree(dst)
    os.replace(tmp, dst)
    return dst
