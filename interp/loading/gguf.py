"""GGUF files (llama.cpp's format) read as Hugging Face causal LMs, in memory only.

transformers dequantizes a GGUF's tensors into an ordinary module, but marks that module as
quantized, so it cannot be saved. `plain_copy` moves its weights into a fresh, unmarked module of
the same class, which saves as an ordinary safetensors folder (what `interp.loading.real` caches).

GGUF files in the wild carry malformed metadata: stories260K sets its pad and separator token
ids to 0xFFFFFFFF (-1 as uint32), which makes transformers' tokenizer loader fail. Such ids
are dropped in memory with a warning; the user's file is never rewritten.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast
from transformers.initialization import no_init_weights
from transformers.integrations.gguf import convert_gguf_tokenizer
from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_TOKENIZER_MAPPING
from transformers.integrations.gguf.reader import GGML_NAME, read_gguf_metadata

from .errors import GGUFMetadataError

__all__ = ["load_gguf", "gguf_tokenizer", "plain_copy", "check_tensor_types"]

_SPECIAL_IDS = (
    ("bos_token", "bos_token_id"),
    ("eos_token", "eos_token_id"),
    ("unk_token", "unknown_token_id"),
    ("pad_token", "padding_token_id"),
)


_FLOAT_TYPES = {"F32", "F16", "BF16"}


def check_tensor_types(path: Path) -> None:
    """Refuse a GGUF whose tensors transformers cannot dequantize, naming the first such
    tensor, its type and the fix (transformers' own message names a ggml type number and no
    tensor). `load_gguf` runs it only once transformers has failed: it reads the whole
    metadata (seconds on a real model), which a good file need not pay for. A tensor table
    the reader cannot parse (rows that are not whole blocks of their type, a cut-off file) is
    refused the same way."""
    from gguf import GGUFReader  # lazy: only a GGUF load needs it

    try:
        tensors = GGUFReader(str(path)).tensors
    except Exception as err:  # the reader raises many types on a damaged file
        raise GGUFMetadataError(
            f"{path} is not a readable GGUF file ({type(err).__name__}: {err}); it is damaged "
            "or mislabelled: download or export it again"
        ) from err
    supported = sorted(_FLOAT_TYPES | set(GGML_NAME.values()))
    for tensor in tensors:
        kind = tensor.tensor_type.name
        if kind not in _FLOAT_TYPES and kind not in GGML_NAME.values():
            raise GGUFMetadataError(
                f"{path.name}: tensor {tensor.name} is stored as {kind}, which transformers "
                f"cannot dequantize (it reads {', '.join(supported)}); re-quantize the file to "
                "one of those (llama.cpp's llama-quantize, e.g. Q4_K_M or Q8_0) or load the "
                "model's original HF folder"
            )


def load_gguf(path: Path, dtype: torch.dtype):
    """(dequantized HF causal LM, tokenizer) from the GGUF file at `path`; the file is only read."""
    tokenizer = gguf_tokenizer(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            config = AutoConfig.from_pretrained(
                str(path.parent), gguf_file=path.name, local_files_only=True
            )
            _drop_out_of_range_ids(config)
            model = AutoModelForCausalLM.from_pretrained(
                str(path.parent),
                gguf_file=path.name,
                config=config,
                dtype=dtype,
                local_files_only=True,
            )
    except Exception as err:  # transformers raises many types for an unreadable file
        check_tensor_types(path)  # the clearer message, when a tensor type is the cause
        raise GGUFMetadataError(
            f"cannot read {path} as a causal LM: {type(err).__name__}: {err}"
        ) from err
    return model, tokenizer


def plain_copy(model: torch.nn.Module) -> torch.nn.Module:
    """The same weights in a fresh module of the same class, not marked as GGUF-quantized.

    >>> plain = plain_copy(load_gguf(path, torch.float32)[0])  # doctest: +SKIP
    >>> plain.save_pretrained(folder)                           # doctest: +SKIP
    """
    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with no_init_weights():  # every weight is overwritten just below
        plain = type(model)(config)
    plain.load_state_dict(model.state_dict())
    return plain.to(model.dtype).eval()


def _drop_out_of_range_ids(config) -> None:
    """Unset special-token ids in a config that point outside the vocabulary (in memory only)."""
    for key in ("pad_token_id", "sep_token_id", "bos_token_id", "eos_token_id"):
        value = getattr(config, key, None)
        if isinstance(value, int) and not 0 <= value < config.vocab_size:
            setattr(config, key, None)


def gguf_tokenizer(path: Path):
    """The tokenizer a GGUF file describes, with out-of-range special-token ids dropped."""
    try:
        metadata, _ = read_gguf_metadata(
            str(path), ("tokenizer.ggml.tokens", "tokenizer.ggml.merges")
        )
    except Exception as err:  # the reader raises many types on a damaged file
        raise GGUFMetadataError(
            f"{path} is not a readable GGUF file: {type(err).__name__}: {err}"
        ) from err
    if "tokenizer.ggml.tokens" not in metadata or "general.architecture" not in metadata:
        raise GGUFMetadataError(
            f"{path} has no tokenizer vocabulary (tokenizer.ggml.tokens) or "
            "no general.architecture; it cannot be used as a language model"
        )
    tokens = metadata["tokenizer.ggml.tokens"]
    special = _special_tokens(metadata, tokens, path.name)
    tokenizer_dict = {
        name: metadata[f"tokenizer.{key}"]
        for key, name in GGUF_TOKENIZER_MAPPING["tokenizer"].items()
        if f"tokenizer.{key}" in metadata
    }
    for key in (
        "bos_token_id",
        "eos_token_id",
        "unk_token_id",
        "padding_token_id",
        "separator_token_id",
    ):
        value = tokenizer_dict.get(key)
        if value is not None and not 0 <= int(value) < len(tokens):
            tokenizer_dict.pop(key)
    backend, extra = convert_gguf_tokenizer(metadata["general.architecture"], tokenizer_dict)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, **special, **extra)
    chat_template = metadata.get("tokenizer.chat_template")
    if isinstance(chat_template, str) and chat_template.strip():
        tokenizer.chat_template = chat_template  # instruction-tuned models carry one
    return tokenizer


def _special_tokens(metadata: dict, tokens: list, file_name: str) -> dict:
    """bos/eos/unk/pad token strings; ids outside the vocabulary are dropped with a warning."""
    special = {}
    for name, key in _SPECIAL_IDS:
        token_id = metadata.get(f"tokenizer.ggml.{key}")
        if token_id is None:
            continue
        if not 0 <= int(token_id) < len(tokens):
            warnings.warn(
                f"{file_name}: tokenizer.ggml.{key} = {token_id} is outside the "
                f"vocabulary of {len(tokens)} tokens; ignoring it (the file is not "
                "modified)",
                stacklevel=4,
            )
            metadata.pop(f"tokenizer.ggml.{key}")
            continue
        special[name] = tokens[int(token_id)]
    return special
