"""Checks on what `interp.load` is given, run before anything is read or downloaded.

Each turns a confusing failure into a typed error that names what was expected:

- `check_spec`: a model spec must be a string or a path (``load(None)`` / ``load(123)`` used to
  spend 23 s in hub retries before saying the model was not found);
- `check_device`: a device torch can parse and this machine has (``device="gpu"`` used to end in
  torch's list of 20 device types, ``device="cuda"`` without a GPU in an AssertionError after
  the weights were read);
- `check_folder_architecture`: a folder of a model interp has no site table for (BERT, T5, a
  vision model) is refused from its config.json, before the weights are read, with the
  supported architectures (it used to load, then fail on the tokenizer or the head sites);
- `near_miss`: a bare name one typo away from a zoo or real model name (``"world-bsae"``) is
  answered at once with "did you mean", instead of 23 s of hub retries.

    >>> check_device("cpu")
    device(type='cpu')
    >>> near_miss("world-bsae", ["world-base", "world-wide"])
    ['world-base']
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Sequence

import torch
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

from ..arch import ARCHITECTURES, UnsupportedArchitectureError
from ..errors import ArgumentTypeError, InvalidArgumentError
from .errors import ModelNotAvailableError

__all__ = [
    "check_spec",
    "check_device",
    "check_folder_architecture",
    "near_miss",
    "refuse_near_miss",
    "DeviceUnavailableError",
]


class DeviceUnavailableError(InvalidArgumentError):
    """A device this machine does not have, or a name torch does not know."""


def check_spec(spec) -> str:
    """The spec as a string; anything that is not a string or a path is refused."""
    if isinstance(spec, (str, os.PathLike)) and str(spec).strip():
        return str(spec)
    raise ArgumentTypeError(
        f"interp.load takes a model as text: a zoo name ('world-base'), a real model name "
        f"('smollm2-135m'), a HF folder or .gguf path, or a hub id; got "
        f"{type(spec).__name__} {spec!r}"
    )


def check_device(device) -> torch.device:
    """`device` as a torch.device this machine has (cpu always; cuda / mps only when present)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise DeviceUnavailableError(
            f"unknown device {device!r}: use 'cpu', 'cuda' (or 'cuda:0', 'cuda:1', ...) or 'mps'"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError(
            f"device {device!r} asks for a CUDA GPU, but torch {torch.__version__} sees none "
            "(a CPU build, or no GPU on this machine): use device='cpu'"
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DeviceUnavailableError(
            f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
            f"numbered from 0"
        )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceUnavailableError(f"device {device!r}: MPS is not available here; use 'cpu'")
    return dev


def check_folder_architecture(folder) -> None:
    """Refuse a model folder whose config.json names no architecture interp supports: the
    config's ``architectures`` and the causal-LM class transformers would build for its
    ``model_type`` are the candidates, as `interp.arch.arch_spec` reads them after loading."""
    path = Path(folder) / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ModelNotAvailableError(
            f"{path} cannot be read as JSON ({type(err).__name__}: {err}); a model folder's "
            "config.json is the JSON that save_pretrained writes: copy it again"
        ) from None
    if not isinstance(config, dict):
        raise ModelNotAvailableError(
            f"{path} holds a JSON {type(config).__name__}, not the object save_pretrained writes"
        )
    model_type = config.get("model_type")
    names = list(config.get("architectures") or [])
    causal = MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.get(model_type)
    if causal:
        names.append(causal)
    if any(name in ARCHITECTURES for name in names):
        return
    what = ", ".join(names) if names else f"model_type {model_type!r}"
    kind = "" if causal else f" ({model_type!r} is not a causal language model)"
    raise UnsupportedArchitectureError(
        f"{folder}: architecture {what} is not supported{kind}; interp reads causal LMs of "
        f"these architectures: {', '.join(sorted(ARCHITECTURES))}"
    )


def near_miss(spec: str, names: Sequence[str]) -> list[str]:
    """Names within a typo or two of `spec` (difflib ratio >= 0.8), closest first."""
    return difflib.get_close_matches(spec, list(names), n=3, cutoff=0.8)


def refuse_near_miss(spec: str, names: Sequence[str]) -> None:
    """Refuse a bare name (no '/') that is not a known name but is close to one: a typo, not a
    hub id. A bare name close to none (e.g. "gpt2") is left to the hub."""
    if "/" in spec or spec in names:
        return
    close = near_miss(spec, names)
    if close:
        raise ModelNotAvailableError(
            f"no model named {spec!r}; did you mean {' or '.join(map(repr, close))}? "
            "(`interp zoo` lists the zoo's names; a hub id is 'org/name')"
        )
