"""Find and load a causal LM's weights and tokenizer, offline first.

`interp.load(spec)` accepts, in this order:
1. a path to a ``.gguf`` file (llama.cpp format; F32/F16 and the quantisations transformers reads),
2. a local Hugging Face folder (config.json + weights + tokenizer files),
3. a zoo name (`interp.zoo.names()`),
4. a Hugging Face hub id (``"gpt2"``, ``"EleutherAI/pythia-160m"``), from the local cache first;
   downloaded only when the network allows, else a `ModelNotAvailableError` that says where
   to put the files.

GGUF files in the wild carry malformed metadata: stories260K sets its pad and separator token
ids to 0xFFFFFFFF (-1 as uint32), which makes transformers' tokenizer loader fail. Such ids
are dropped in memory with a warning; the user's file is never rewritten.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Optional

import torch

__all__ = ["load_hf", "ModelNotAvailableError", "GGUFMetadataError", "resolve_dtype"]


class ModelNotAvailableError(FileNotFoundError):
    """The model is neither on disk nor downloadable. The message says where to put it."""


class GGUFMetadataError(ValueError):
    """A GGUF file whose metadata cannot be read as a causal LM."""


_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16,
           "fp16": torch.float16, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}


def resolve_dtype(dtype) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str) and dtype.lower() in _DTYPES:
        return _DTYPES[dtype.lower()]
    raise ValueError(f"unknown dtype {dtype!r}; use one of {sorted(_DTYPES)} or a torch.dtype")


def load_hf(spec: str, *, dtype=None, device="cpu", revision: Optional[str] = None):
    """Return (hf_model in eval mode, tokenizer, display name) for a spec (see module docstring)."""
    from transformers.utils import logging as hf_logging

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
    if str(spec).endswith(".gguf") or path.is_file():
        if not path.exists():
            raise FileNotFoundError(f"no GGUF file at {path}; check the path")
        model, tokenizer = _load_gguf(path, dtype)
        name = path.stem
    elif path.is_dir():
        model, tokenizer = _load_folder(str(path), dtype, revision=None)
        name = path.name
    elif _is_zoo_name(spec):
        from . import zoo

        model, tokenizer = _load_folder(str(zoo.path(spec)), dtype, revision=None)
        name = str(spec)
    elif _looks_like_path(str(spec)):
        raise FileNotFoundError(f"no model folder or file at {path}; check the path")
    else:
        model, tokenizer = _load_hub(str(spec), dtype, revision)
        name = str(spec) if revision is None else f"{spec}@{revision}"
    return model, tokenizer, name


def _is_zoo_name(spec) -> bool:
    try:
        from . import zoo
    except ImportError:
        return False
    return str(spec) in zoo.names()


def _looks_like_path(spec: str) -> bool:
    return spec.startswith((".", "/", "~")) or os.sep in spec and spec.count("/") > 1


def _load_folder(folder: str, dtype, revision):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    files = os.listdir(folder)
    if "config.json" not in files:
        raise ModelNotAvailableError(
            f"{folder} has no config.json; a model folder needs config.json, the weights "
            "(model.safetensors) and tokenizer files (tokenizer.json)"
        )
    try:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, local_files_only=True,
                                                     revision=revision)
    except (OSError, ValueError, RuntimeError) as err:
        raise ModelNotAvailableError(f"could not load the weights in {folder}: {err}") from err
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    return model, tokenizer


def _load_hub(model_id: str, dtype, revision):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    attempts = [True] if os.environ.get("HF_HUB_OFFLINE") == "1" else [True, False]
    last_error: Optional[Exception] = None
    for local_only in attempts:
        try:
            model = AutoModelForCausalLM.from_pretrained(
                model_id, dtype=dtype, revision=revision, local_files_only=local_only)
            tokenizer = AutoTokenizer.from_pretrained(model_id, revision=revision,
                                                      local_files_only=local_only)
            return model, tokenizer
        except Exception as err:  # hub errors come in many types; all mean "not available"
            last_error = err
    from .zoo import names as zoo_names

    raise ModelNotAvailableError(
        f"model {model_id!r}{'' if revision is None else f' (revision {revision})'} is not on this "
        f"machine and could not be downloaded ({type(last_error).__name__}). Put its files "
        "(config.json, model.safetensors, tokenizer.json) in a folder and pass the folder's path "
        f"to interp.load, or place them in the Hugging Face cache ({_hf_cache()}). Offline "
        f"models: a .gguf path, a local folder, or a zoo name ({', '.join(zoo_names())})."
    ) from None


def _hf_cache() -> str:
    return os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME", os.path.expanduser("~/.cache/huggingface")), "hub")


# --- GGUF ---

def _load_gguf(path: Path, dtype):
    from transformers import AutoModelForCausalLM

    from transformers import AutoConfig

    tokenizer = gguf_tokenizer(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            config = AutoConfig.from_pretrained(str(path.parent), gguf_file=path.name,
                                                local_files_only=True)
            _drop_out_of_range_ids(config, path)
            model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                         config=config, dtype=dtype,
                                                         local_files_only=True)
    except Exception as err:
        raise GGUFMetadataError(f"cannot read {path} as a causal LM: {type(err).__name__}: {err}") from err
    return model, tokenizer


def _drop_out_of_range_ids(config, path: Path) -> None:
    """Unset special-token ids in a config that point outside the vocabulary (in memory only)."""
    for key in ("pad_token_id", "sep_token_id", "bos_token_id", "eos_token_id"):
        value = getattr(config, key, None)
        if isinstance(value, int) and not 0 <= value < config.vocab_size:
            setattr(config, key, None)


def gguf_tokenizer(path: Path):
    """The tokenizer a GGUF file describes, with out-of-range special-token ids dropped."""
    from transformers import PreTrainedTokenizerFast
    from transformers.integrations.gguf import convert_gguf_tokenizer
    from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_TOKENIZER_MAPPING
    from transformers.integrations.gguf.reader import read_gguf_metadata

    try:
        metadata, _ = read_gguf_metadata(str(path), ("tokenizer.ggml.tokens", "tokenizer.ggml.merges"))
    except Exception as err:
        raise GGUFMetadataError(f"{path} is not a readable GGUF file: {type(err).__name__}: {err}") from err
    if "tokenizer.ggml.tokens" not in metadata or "general.architecture" not in metadata:
        raise GGUFMetadataError(f"{path} has no tokenizer vocabulary (tokenizer.ggml.tokens) or "
                                "no general.architecture; it cannot be used as a language model")
    tokens = metadata["tokenizer.ggml.tokens"]
    special = {}
    for name, key in (("bos_token", "bos_token_id"), ("eos_token", "eos_token_id"),
                      ("unk_token", "unknown_token_id"), ("pad_token", "padding_token_id")):
        token_id = metadata.get(f"tokenizer.ggml.{key}")
        if token_id is None:
            continue
        if not 0 <= int(token_id) < len(tokens):
            warnings.warn(f"{path.name}: tokenizer.ggml.{key} = {token_id} is outside the vocabulary "
                          f"of {len(tokens)} tokens; ignoring it (the file is not modified)",
                          stacklevel=3)
            metadata.pop(f"tokenizer.ggml.{key}")
            continue
        special[name] = tokens[int(token_id)]
    tokenizer_dict = {name: metadata[f"tokenizer.{key}"]
                      for key, name in GGUF_TOKENIZER_MAPPING["tokenizer"].items()
                      if f"tokenizer.{key}" in metadata}
    for key in ("bos_token_id", "eos_token_id", "unk_token_id", "padding_token_id", "separator_token_id"):
        value = tokenizer_dict.get(key)
        if value is not None and not 0 <= int(value) < len(tokens):
            tokenizer_dict.pop(key)
    backend, extra = convert_gguf_tokenizer(metadata["general.architecture"], tokenizer_dict)
    return PreTrainedTokenizerFast(tokenizer_object=backend, **special, **extra)
