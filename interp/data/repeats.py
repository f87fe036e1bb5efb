"""Repeated random spans: ``BOS + prefix + r + r + suffix``, the probe of induction heads.

A span ``r`` of distinct random tokens is written twice. On the second copy a model that
does in-context copying (induction) predicts every next token, while on the first copy it
cannot; the attention of an induction head from a token in the second copy goes to the
token right *after* that token's earlier occurrence. Span lengths and the position of the
first copy (``offset`` = length of the random prefix) vary across the set, so a head that
attends at one fixed distance (a positional head) only looks like an induction head at one
span length. Every row has the same length (random filler after the second copy), so a set
is one ``[n, seq_len]`` batch; filler tokens never occur in the row's span.

    >>> seqs = repeat_sequences(100, n=4, span_lengths=(5, 8), offsets=(0, 3), bos_id=0,
    ...                         exclude=(0,), n_ctx=64, seed=0)
    >>> seqs.input_ids.shape, seqs.seq_len
    (torch.Size([16, 20]), 20)
    >>> row = seqs.input_ids[5]
    >>> a, b, L = int(seqs.first[5]), int(seqs.second[5]), int(seqs.span_len[5])
    >>> bool((row[a:a + L] == row[b:b + L]).all())
    True
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence, Union

import numpy as np
import torch

from ..errors import ArgumentTypeError, InvalidArgumentError

__all__ = [
    "RepeatSet",
    "repeat_sequences",
    "repeat_sequences_for",
    "RepeatDataError",
    "VocabularyTooSmallError",
    "SequenceTooLongError",
]


class RepeatDataError(InvalidArgumentError):
    """Bad request for repeated-span sequences."""


class VocabularyTooSmallError(RepeatDataError):
    """Fewer usable (non-special) tokens than the span needs."""


class SequenceTooLongError(RepeatDataError):
    """The requested sequences do not fit the model's context window."""


@dataclass(frozen=True)
class RepeatSet:
    """A batch of ``BOS + prefix + r + r + suffix`` rows with where each copy starts.

    input_ids: [n, seq_len] token ids; span_len, first, second: [n] (second = first + span_len);
    offset: [n] prefix length (first = 1 + offset). `config` holds the request (seed included).
    """

    input_ids: torch.Tensor
    span_len: torch.Tensor
    first: torch.Tensor
    second: torch.Tensor
    config: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def seq_len(self) -> int:
        return int(self.input_ids.shape[1])

    @property
    def offset(self) -> torch.Tensor:
        return self.first - 1

    @property
    def lengths(self) -> list[int]:
        """The distinct span lengths, ascending."""
        return sorted(set(self.span_len.tolist()))

    def hash(self) -> str:
        """Short fingerprint of the token ids and layout (provenance)."""
        h = hashlib.sha256()
        for t in (self.input_ids, self.span_len, self.first):
            h.update(t.to(torch.int64).numpy().tobytes())
        return h.hexdigest()[:16]

    def select(self, rows: Union[torch.Tensor, Sequence[int]]) -> "RepeatSet":
        """A new set of the given rows (index tensor/list or boolean mask)."""
        rows = torch.as_tensor(rows)
        return RepeatSet(
            self.input_ids[rows],
            self.span_len[rows],
            self.first[rows],
            self.second[rows],
            dict(self.config),
        )

    def batches(self, size: int) -> Iterable["RepeatSet"]:
        for start in range(0, len(self), size):
            yield self.select(torch.arange(start, min(start + size, len(self))))

    def copy_mask(self, which: str = "second", *, skip_first_token: bool = False) -> torch.Tensor:
        """[n, seq_len] bool: positions inside the first or second copy.

        With ``skip_first_token`` the copy's first position is left out (for losses: the token
        predicted *at* position t is t+1, so use `target_mask` for next-token losses).
        """
        start = self.first if which == "first" else self.second
        if which not in ("first", "second"):
            raise InvalidArgumentError(f"which must be 'first' or 'second', got {which!r}")
        pos = torch.arange(self.seq_len)[None]
        lo = start[:, None] + int(skip_first_token)
        return (pos >= lo) & (pos < (start + self.span_len)[:, None])

    def target_mask(self, which: str = "second") -> torch.Tensor:
        """[n, seq_len - 1] bool: logit positions t whose next token t+1 is in a copy, not its
        first.

        The first token of a copy cannot be predicted by copying, so it is left out: the mask
        covers predictions of tokens start+1 .. start+L-1 of the copy.
        """
        mask = self.copy_mask(which, skip_first_token=True)
        return mask[:, 1:]


def _usable_ids(
    vocab: Union[int, Sequence[int], np.ndarray, torch.Tensor], exclude: Iterable[int]
) -> np.ndarray:
    if isinstance(vocab, (bool, str)) or not isinstance(
        vocab, (int, np.integer, Sequence, np.ndarray, torch.Tensor)
    ):
        raise ArgumentTypeError(
            f"vocab must be a vocabulary size (int) or a sequence of token ids, "
            f"got {type(vocab).__name__}"
        )
    ids = (
        np.arange(int(vocab))
        if isinstance(vocab, (int, np.integer))
        else np.asarray(vocab, dtype=np.int64)
    )
    excluded = set(int(i) for i in exclude)
    return np.array(sorted(set(int(i) for i in ids.tolist()) - excluded), dtype=np.int64)


def _check_lengths(span_lengths, offsets, seq_len, n_ctx, n_usable):
    if not span_lengths or not offsets:
        raise RepeatDataError(
            "give at least one span length and one offset, e.g. span_lengths=(8, 16), offsets=(0,)"
        )
    if min(span_lengths) < 2:
        raise RepeatDataError(
            f"span lengths must be >= 2 (a copy of one token has nothing to predict), "
            f"got {span_lengths}"
        )
    if min(offsets) < 0:
        raise RepeatDataError(
            f"offsets must be >= 0 (tokens of random prefix before the first copy), got "
            f"{offsets}; use 0 for no prefix"
        )
    need = 1 + max(offsets) + 2 * max(span_lengths)
    seq_len = need if seq_len is None else int(seq_len)
    if seq_len < need:
        raise RepeatDataError(
            f"seq_len={seq_len} is shorter than BOS + max offset + 2 x max span = {need}; "
            f"raise seq_len or lower the offsets / span lengths"
        )
    if n_ctx is not None and seq_len > n_ctx:
        raise SequenceTooLongError(
            f"sequences of {seq_len} tokens "
            f"(BOS + offset {max(offsets)} + 2 x span {max(span_lengths)}"
            f"{' + filler' if seq_len > need else ''}) "
            f"exceed the context window of {n_ctx} tokens; "
            f"use shorter spans / offsets (at most {n_ctx} tokens in all)"
        )
    if max(span_lengths) > n_usable:
        raise VocabularyTooSmallError(
            f"a random span of {max(span_lengths)} distinct tokens needs at least that many "
            f"usable tokens, but the vocabulary has only {n_usable} after excluding special "
            f"tokens; use span lengths "
            f"<= {n_usable}"
        )
    if seq_len > 1 + 2 * min(span_lengths) and max(span_lengths) >= n_usable:
        raise VocabularyTooSmallError(
            f"prefix/filler tokens must differ from the span's tokens, "
            f"but a span of {max(span_lengths)} "
            f"uses all {n_usable} usable tokens; use span lengths < {n_usable}"
        )
    return seq_len


def repeat_sequences(
    vocab,
    *,
    n: int = 16,
    span_lengths: Sequence[int] = (8, 16, 32),
    offsets: Sequence[int] = (0, 11, 29),
    bos_id: Optional[int] = None,
    exclude: Iterable[int] = (),
    n_ctx: Optional[int] = None,
    seq_len: Optional[int] = None,
    seed: int = 0,
) -> RepeatSet:
    """`n` rows for every (span length, offset): ``[BOS] + prefix(offset) + r + r + filler``.

    vocab: vocabulary size, or the token ids to draw from; `exclude`: ids never drawn (special
    tokens). Spans hold distinct tokens; prefix and filler tokens are drawn from the tokens not
    in the row's span, so each span token occurs exactly twice. Seeded: same arguments, same ids.
    Raises VocabularyTooSmallError / SequenceTooLongError (both ValueError) with the fix.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise RepeatDataError(
            f"n (rows per span length and offset) must be a positive int, got {n!r}"
        )
    span_lengths = tuple(int(x) for x in span_lengths)
    offsets = tuple(int(x) for x in offsets)
    usable = _usable_ids(vocab, list(exclude) + ([bos_id] if bos_id is not None else []))
    seq_len = _check_lengths(span_lengths, offsets, seq_len, n_ctx, len(usable))
    rng = np.random.default_rng([int(seed), 0x1D0C])
    head = [] if bos_id is None else [int(bos_id)]
    rows, lens, firsts = [], [], []
    for L in span_lengths:
        for o in offsets:
            for _ in range(n):
                perm = rng.permutation(len(usable))
                span, rest = usable[perm[:L]], usable[perm[L:]]
                n_fill = seq_len - len(head) - o - 2 * L
                pre = rng.choice(rest, size=o) if o else np.empty(0, np.int64)
                post = rng.choice(rest, size=n_fill) if n_fill else np.empty(0, np.int64)
                rows.append(np.concatenate([head, pre, span, span, post]).astype(np.int64))
                lens.append(L)
                firsts.append(len(head) + o)
    first = torch.tensor(firsts)
    span_len = torch.tensor(lens)
    config = {
        "n": n,
        "span_lengths": list(span_lengths),
        "offsets": list(offsets),
        "seq_len": seq_len,
        "bos_id": bos_id,
        "n_usable_tokens": int(len(usable)),
        "seed": int(seed),
    }
    return RepeatSet(torch.from_numpy(np.stack(rows)), span_len, first, first + span_len, config)


def repeat_sequences_for(
    model, *, token_ids: Optional[Sequence[int]] = None, **kwargs
) -> RepeatSet:
    """`repeat_sequences` with the model's vocabulary, BOS, special tokens and context window.

    token_ids: restrict draws to these ids (e.g. the zoo world's content tokens).

    >>> seqs = repeat_sequences_for(
    ...     interp.testing.tiny_model("llama"), n=2, span_lengths=(4,), offsets=(0,)
    ... )  # doctest: +SKIP
    """
    tok = model.tokenizer
    bos = tok.bos_token_id if model.prepends_bos else None
    specials = set(int(i) for i in getattr(tok, "all_special_ids", []) or [])
    vocab = model.vocab_size if token_ids is None else list(token_ids)
    kwargs.setdefault("n_ctx", model.n_ctx)
    return repeat_sequences(vocab, bos_id=bos, exclude=specials, **kwargs)
