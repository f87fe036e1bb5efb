"""Prompts to token batches, with the checks a user needs at the boundary.

Batches of unequal length are left-padded, so the last position of every row is the prompt's
last token; the attention mask marks padding, and position ids count real tokens only, so a
padded prompt gives the same numbers as the same prompt alone.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import torch

from .errors import InterpError

__all__ = ["Tokens", "PromptError", "to_tokens", "Prompts", "UnknownTokenWarning", "unknown_words"]

Prompts = Union[str, Sequence[str], torch.Tensor, "Tokens"]


class PromptError(InterpError, ValueError):
    """A prompt the model cannot take: empty, too long, or of the wrong type (an `InterpError`,
    and a `ValueError` for callers that catch that)."""


@dataclass
class Tokens:
    """A left-padded batch: input_ids and attention_mask, both [batch, pos]."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor

    @property
    def has_padding(self) -> bool:
        return bool((self.attention_mask == 0).any())

    @property
    def position_ids(self) -> torch.Tensor:
        return (self.attention_mask.long().cumsum(-1) - 1).clamp(min=0)

    @property
    def lengths(self) -> torch.Tensor:
        return self.attention_mask.sum(-1)

    def __len__(self) -> int:
        return self.input_ids.shape[0]


def to_tokens(
    tokenizer,
    prompts: Prompts,
    *,
    prepend_bos: bool,
    pad_id: int,
    max_len: Optional[int],
    device="cpu",
) -> Tokens:
    """Tokenize `prompts` (text, list of texts, token ids [pos] or [batch, pos], or Tokens)."""
    if isinstance(prompts, Tokens):
        tokens = prompts
    elif isinstance(prompts, torch.Tensor):
        tokens = _from_ids(prompts)
    else:
        if isinstance(prompts, (bytes, dict)) or not isinstance(prompts, (str, Iterable)):
            raise PromptError(
                f"prompts must be a string, a non-empty list of strings, or token ids; "
                f"got {type(prompts).__name__} {prompts!r}"
            )
        texts = [prompts] if isinstance(prompts, str) else list(prompts)
        if not texts or not all(isinstance(t, str) for t in texts):
            raise PromptError(
                f"prompts must be a string, a non-empty list of strings, or token ids; "
                f"got {type(prompts).__name__}"
            )
        rows, unknown = [], []
        for text in texts:
            ids = tokenizer(text, add_special_tokens=False)["input_ids"] if text else []
            unknown += [w for w in unknown_words(tokenizer, text, ids) if w not in unknown]
            if prepend_bos:
                ids = [tokenizer.bos_token_id] + ids
            if not ids:
                raise PromptError("empty prompt: give at least one token of text (or prepend BOS)")
            rows.append(ids)
        tokens = _pad_left(rows, pad_id)
        if unknown:
            _warn_unknown(tokenizer, unknown)
    if tokens.input_ids.numel() == 0 or tokens.input_ids.shape[-1] == 0:
        raise PromptError("empty prompt: give at least one token")
    if max_len is not None and tokens.input_ids.shape[1] > max_len:
        raise PromptError(
            f"prompt of {tokens.input_ids.shape[1]} tokens is longer than the model's "
            f"context window of {max_len} tokens; shorten it or split it"
        )
    return Tokens(tokens.input_ids.to(device), tokens.attention_mask.to(device))


class UnknownTokenWarning(UserWarning):
    """Text the tokenizer could only encode as its unknown token: the model never sees those
    words."""


MAX_NAMED = 8
"""At most this many unknown words are named in one warning."""


def unknown_words(tokenizer, text: str, ids: list) -> list[str]:
    """The words of `text` that `tokenizer` could only encode as its unknown token.

    Cheap on the usual path: nothing is done unless `ids` holds the unk id, which a tokenizer
    without an unk token (or a byte-level BPE, whose bytes cover any text) never produces for
    normal text. A text that itself spells the unk token (GPT-2's ``<|endoftext|>``) is not
    counted. Only then is each word tokenized alone to name the culprits.

        >>> from interp.testing import tiny_model
        >>> tok = tiny_model("llama").tokenizer
        >>> unknown_words(tok, "once upon zzqxj", tok("once upon zzqxj")["input_ids"])
        ['zzqxj']
    """
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is None or unk not in ids:
        return []
    literal = getattr(tokenizer, "unk_token", None)
    if literal and ids.count(unk) <= text.count(literal):
        return []  # the text itself spells the unknown token
    words = []
    for word in dict.fromkeys(text.split()):
        if word != literal and unk in tokenizer(word, add_special_tokens=False)["input_ids"]:
            words.append(word)
    return words or [text.strip()]


def _warn_unknown(tokenizer, words: list[str]) -> None:
    """One `UnknownTokenWarning` per `to_tokens` call, naming the words (the first few)."""
    shown = ", ".join(repr(w) for w in words[:MAX_NAMED])
    more = f" and {len(words) - MAX_NAMED} more" if len(words) > MAX_NAMED else ""
    literal = getattr(tokenizer, "unk_token", None) or "the unknown token"
    warnings.warn(
        f"{shown}{more} not in the tokenizer's vocabulary: encoded as {literal}, so the model "
        "sees no trace of those words; rephrase them with known words (look with "
        "model.to_str(model.to_tokens(prompt).input_ids[0]))",
        UnknownTokenWarning,
        stacklevel=4,
    )


def _from_ids(ids: torch.Tensor) -> Tokens:
    if ids.dtype not in (torch.int64, torch.int32):
        raise PromptError(
            f"token ids must be an integer tensor, got dtype {ids.dtype}; convert them with "
            "ids.long()"
        )
    if ids.dim() == 1:
        ids = ids[None]
    if ids.dim() != 2:
        raise PromptError(f"token ids must be [pos] or [batch, pos], got shape {tuple(ids.shape)}")
    return Tokens(ids.long(), torch.ones_like(ids, dtype=torch.long))


def _pad_left(rows: list[list[int]], pad_id: int) -> Tokens:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
        mask[i, width - len(row) :] = 1
    return Tokens(ids, mask)
