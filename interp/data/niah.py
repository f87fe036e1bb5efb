"""Needle-in-a-haystack (NIAH) prompts, built with the model's own tokenizer.

A NIAH test hides one *needle* sentence inside a long *haystack* text and then asks for it
(Kamradt's test, as used by Wu et al. 2024 to find retrieval heads):

1. the haystack is cut to a token budget so the whole prompt has `context_length` tokens;
2. the needle goes in at `depth` (0 = start of the document, 1 = end), moved back to the
   nearest sentence boundary so no sentence is split;
3. the question follows, through a template (the paper's is `PAPER_TEMPLATE`; completion
   models such as the zoo use `COMPLETION_TEMPLATE`, whose question is a prefix to continue;
   instruction-tuned models get the paper's request as the user's turn of their own chat
   template, `chat_template`, as the paper prompted its chat models).

Haystacks: the zoo's filler (`zoo_haystack`, its world language) for the zoo's organisms, and for
pretrained English models `english_haystack`, plain essays on ordinary topics written for this
project (``english/haystack.txt``, about 2,200 words), with the paper's needle first among
`ENGLISH_NEEDLES`.

Only the *answer* part of the needle is scored: `NiahPrompt.answer_span` is its token range
inside the prompt, found from the tokenizer's character offsets (so multi-token answers and
tokenizers that fold the leading space into a token are handled), and `answer_ids` are the
tokens a model emits when it answers (the reference for teacher forcing).

    >>> import interp.zoo
    >>> from interp.data import niah
    >>> tok = interp.zoo.World(0).build_tokenizer()
    >>> needle = niah.zoo_needles(1)[0]
    >>> p = niah.build_prompt(tok, niah.zoo_haystack(400), needle, context_length=64, depth=0.5,
    ...                       template=niah.COMPLETION_TEMPLATE, bos_id=tok.bos_token_id)
    >>> p.n_tokens <= 64, tok.decode(p.input_ids[slice(*p.answer_span)]) == needle.answer
    (True, True)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import ArgumentTypeError
from .niah_templates import (
    CHAT_REQUEST,
    COMPLETION_TEMPLATE,
    PAPER_TEMPLATE,
    NiahError,
    chat_template,
)

__all__ = [
    "Needle",
    "NiahPrompt",
    "NiahError",
    "NeedleNotFoundError",
    "EmptyHaystackError",
    "ContextTooLongError",
    "PAPER_NEEDLE",
    "PAPER_TEMPLATE",
    "COMPLETION_TEMPLATE",
    "CHAT_REQUEST",
    "chat_template",
    "build_prompt",
    "build_grid",
    "locate",
    "zoo_haystack",
    "zoo_needles",
    "ENGLISH_NEEDLES",
    "english_haystack",
    "english_needles",
]

_BOUNDARY = re.compile(r"[.!?](?=\s)|\n")


def _find(text: str, part: str) -> int:
    at = text.find(part)
    return at if at >= 0 else text.lower().find(part.lower())


class NeedleNotFoundError(NiahError):
    """The needle (or its answer) is not where it should be in the tokenized prompt."""


class EmptyHaystackError(NiahError):
    """The haystack has no text (or no tokens) to hide a needle in."""


class ContextTooLongError(NiahError):
    """A context length the model cannot take (above its window)."""


@dataclass(frozen=True)
class Needle:
    """A needle sentence, the question that asks for it, and the answer (verbatim in `text`)."""

    text: str
    question: str
    answer: str

    def __post_init__(self):
        for name in ("text", "question", "answer"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise NiahError(f"Needle.{name} must be a non-empty string, got {value!r}")
        if _find(self.text, self.answer) < 0:
            raise NiahError(
                f"the answer {self.answer!r} must appear verbatim in the needle "
                f"{self.text!r} (it is the scored span); give a substring of the needle"
            )


PAPER_NEEDLE = Needle(
    text=(
        "The best thing to do in San Francisco is eat a sandwich and sit in Dolores Park on a "
        "sunny day."
    ),
    question="What is the best thing to do in San Francisco?",
    answer="eat a sandwich and sit in Dolores Park on a sunny day",
)


@dataclass(frozen=True)
class NiahPrompt:
    """One NIAH test. Token positions count from 0 = BOS (when the model has one).

    needle_span / answer_span: [start, end) token ranges of the needle sentence and of its
    answer part (the scored span) in `input_ids`. answer_ids: the reference continuation.
    """

    text: str
    input_ids: tuple[int, ...]
    answer_ids: tuple[int, ...]
    needle_span: tuple[int, int]
    answer_span: tuple[int, int]
    needle: Needle
    needle_index: int
    context_length: int
    depth: float
    actual_depth: float

    @property
    def n_tokens(self) -> int:
        return len(self.input_ids)

    @property
    def answer(self) -> str:
        return self.needle.answer


# --- tokenizer helpers -------------------------------------------------------------------------


def _encode(tokenizer, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    if not getattr(tokenizer, "is_fast", False):
        raise ArgumentTypeError(
            f"NIAH prompts need a fast tokenizer (character offsets), got "
            f"{type(tokenizer).__name__}; load the model's tokenizer with use_fast=True"
        )
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]


def _token_span(offsets, start: int, end: int, shift: int) -> tuple[int, int]:
    """[first, last+1) of the tokens whose characters overlap [start, end), shifted by BOS."""
    hit = [i for i, (a, b) in enumerate(offsets) if b > start and a < end and b > a]
    if not hit:
        return (0, 0)
    return (hit[0] + shift, hit[-1] + 1 + shift)


def locate(
    tokenizer,
    text: str,
    needle: Needle,
    *,
    bos_id: Optional[int] = None,
    needle_start: Optional[int] = None,
):
    """Token ids of `text` (BOS first when given) and the token spans of `needle` and its answer.

    Raises `NeedleNotFoundError` (naming the needle) when the needle is not in the text or
    its answer covers no token.

    >>> import interp.zoo
    >>> tok = interp.zoo.World(0).build_tokenizer()
    >>> n = Needle("the code of Flen is 104 .", "the code of Flen is", "104")
    >>> locate(tok, "a . the code of Flen is 104 . the code of Flen is", n)[2]      # doctest: +SKIP
    (8, 9)
    """
    at = _find(text, needle.text) if needle_start is None else needle_start
    if at < 0 or _find(text[at : at + len(needle.text)], needle.text) != 0:
        raise NeedleNotFoundError(
            f"needle {needle.text!r} is not in the prompt "
            f"(prompt starts {text[:80]!r}); insert it before scoring"
        )
    ids, offsets = _encode(tokenizer, text)
    shift = 0 if bos_id is None else 1
    ids = ([bos_id] if bos_id is not None else []) + ids
    needle_span = _token_span(offsets, at, at + len(needle.text), shift)
    a0 = at + _find(needle.text, needle.answer)
    answer_span = _token_span(offsets, a0, a0 + len(needle.answer), shift)
    if answer_span[1] <= answer_span[0] or needle_span[1] <= needle_span[0]:
        raise NeedleNotFoundError(
            f"needle {needle.text!r} (answer {needle.answer!r}) maps to no "
            f"token of the tokenized prompt; check the tokenizer"
        )
    return ids, needle_span, answer_span


def _answer_ids(tokenizer, prompt: str, prompt_ids: list[int], answer: str, sep: str) -> list[int]:
    """Tokens that continue `prompt` with `sep + answer`, as the model would emit them."""
    full, offsets = _encode(tokenizer, prompt + sep + answer)
    n = len(prompt_ids)
    if full[:n] == prompt_ids:
        tail = full[n:]
    else:  # the tokenizer merged across the boundary: take the tokens after the prompt
        tail = [t for t, (a, b) in zip(full, offsets) if a >= len(prompt) and b > a]
    if not tail:
        raise NeedleNotFoundError(f"the answer {answer!r} tokenizes to nothing after the prompt")
    return tail


# --- haystack ----------------------------------------------------------------------------------


def _boundaries(text: str) -> list[int]:
    """Character positions right after a sentence end (where a needle may go)."""
    return [0] + [m.end() for m in _BOUNDARY.finditer(text)]


def _back_to_boundary(bounds: list[int], char: int) -> int:
    best = 0
    for b in bounds:
        if b > char:
            break
        best = b
    return best


def _haystack_tokens(tokenizer, haystack: str, n_tokens: int):
    """The haystack (repeated as needed) and its token offsets, at least `n_tokens` long."""
    if not isinstance(haystack, str):
        raise ArgumentTypeError(f"haystack must be a str of text, got {type(haystack).__name__}")
    base = haystack.strip()
    if not base:
        raise EmptyHaystackError(
            "the haystack is empty: give a text file with some sentences "
            "(or leave it out to use the zoo's filler text)"
        )
    text = base
    ids, offsets = _encode(tokenizer, text)
    if not ids:
        raise EmptyHaystackError(f"the haystack {base[:60]!r} has no tokens for this tokenizer")
    while len(ids) < n_tokens:
        text = text + " " + base
        ids, offsets = _encode(tokenizer, text)
    return text, offsets


def _document(text: str, offsets, n_doc: int, depth: float, needle: str) -> tuple[str, int, float]:
    """Haystack cut to `n_doc` tokens with the needle inserted; (document, needle char, depth)."""
    end = offsets[n_doc - 1][1] if n_doc > 0 else 0
    bounds = [b for b in _boundaries(text) if b <= end]
    if bounds and bounds[-1] >= end // 2:  # end the document at a sentence end when one is near
        end = bounds[-1]
    body = text[:end].rstrip()
    n_body = sum(1 for a, b in offsets if b <= len(body))
    target = int(round(depth * n_body))
    char = len(body) if target >= n_body else offsets[target][0]
    at = _back_to_boundary(_boundaries(body) + [len(body)], char)
    before, after = body[:at].rstrip(), body[at:].lstrip()
    start = len(before) + (1 if before else 0)
    doc = (before + " " if before else "") + needle + (" " + after if after else "")
    return doc, start, (n_body and sum(1 for a, b in offsets if b <= at) / n_body)


# --- builders ----------------------------------------------------------------------------------


def prompt_overhead(tokenizer, needle: Needle, template: str, bos_id: Optional[int] = None) -> int:
    """Tokens a prompt spends on BOS, the needle and the question: the shortest context length."""
    text = template.format(context=needle.text, question=needle.question)
    return (0 if bos_id is None else 1) + len(_encode(tokenizer, text)[0])


def build_prompt(
    tokenizer,
    haystack: str,
    needle: Needle,
    context_length: int,
    depth: float,
    *,
    template: str = PAPER_TEMPLATE,
    bos_id: Optional[int] = None,
    answer_sep: str = " ",
    needle_index: int = 0,
) -> NiahPrompt:
    """One NIAH prompt of at most `context_length` tokens (BOS, needle and question included).

    >>> import interp.zoo
    >>> tok = interp.zoo.World(0).build_tokenizer()
    >>> p = build_prompt(tok, zoo_haystack(300), zoo_needles(1)[0], 48, 0.0,
    ...                  template=COMPLETION_TEMPLATE)
    >>> p.needle_span[0], p.n_tokens <= 48
    (0, True)
    """
    if "{context}" not in template or "{question}" not in template:
        raise NiahError(f"template must contain {{context}} and {{question}}, got {template!r}")
    if not 0.0 <= float(depth) <= 1.0:
        raise NiahError(f"depth must be in [0, 1] (0 = start, 1 = end), got {depth}")
    shift = 0 if bos_id is None else 1
    overhead = prompt_overhead(tokenizer, needle, template, bos_id)
    n_doc = int(context_length) - overhead
    if n_doc < 0:
        raise NiahError(
            f"context_length {context_length} is too short for the needle and the "
            f"question ({overhead} tokens); use at least {overhead}"
        )
    text, offsets = _haystack_tokens(tokenizer, haystack, max(n_doc, 1))
    # characters the template puts before the context (a chat header, an instruction)
    prefix = len(template[: template.index("{context}")].format(question=needle.question))
    for _ in range(8):  # re-tokenizing the joined text can differ by a token or two: shrink to fit
        doc, start, actual = _document(text, offsets, n_doc, float(depth), needle.text)
        prompt = template.format(context=doc, question=needle.question)
        ids, needle_span, answer_span = locate(
            tokenizer, prompt, needle, bos_id=bos_id, needle_start=prefix + start
        )
        if len(ids) <= context_length or n_doc == 0:
            break
        n_doc = max(0, n_doc - (len(ids) - int(context_length)))
    answer_ids = _answer_ids(tokenizer, prompt, ids[shift:], needle.answer, answer_sep)
    return NiahPrompt(
        prompt,
        tuple(ids),
        tuple(answer_ids),
        needle_span,
        answer_span,
        needle,
        needle_index,
        int(context_length),
        float(depth),
        float(actual),
    )


def build_grid(
    tokenizer,
    haystack: str,
    needles: Sequence[Needle],
    lengths: Sequence[int],
    depths: Sequence[float],
    *,
    template: str = PAPER_TEMPLATE,
    bos_id: Optional[int] = None,
    n_ctx: Optional[int] = None,
    max_new_tokens: int = 0,
) -> list[NiahPrompt]:
    """Every (length, depth, needle) combination, in that order of nesting.

    `n_ctx` (the model's window) is checked up front: a length that leaves no room for
    `max_new_tokens` answer tokens raises `ContextTooLongError`.
    """
    needles = list(needles)
    lengths = [int(n) for n in lengths]
    if not needles or not lengths or not list(depths):
        raise NiahError("give at least one needle, one context length and one depth")
    if n_ctx is not None:
        too_long = [n for n in lengths if n + max_new_tokens > n_ctx]
        if too_long:
            raise ContextTooLongError(
                f"context length(s) {too_long} (+{max_new_tokens} answer tokens) "
                f"exceed the model's "
                f"window of {n_ctx} tokens; use lengths <= {n_ctx - max_new_tokens}"
            )
    return [
        build_prompt(
            tokenizer,
            haystack,
            needle,
            length,
            depth,
            template=template,
            bos_id=bos_id,
            needle_index=i,
        )
        for length in lengths
        for depth in depths
        for i, needle in enumerate(needles)
    ]


# --- the zoo's world language ------------------------------------------------------------------


def zoo_haystack(n_tokens: int = 2000, seed: int = 0, world_seed: int = 0) -> str:
    """Filler sentences of the zoo's world language (what its needles are hidden in)."""
    from ..zoo.world import World  # lazy: the zoo package brings its trainer (~1 s)

    rng = np.random.default_rng([world_seed, seed, 7])
    return " ".join(World(world_seed).filler(rng, n_tokens))


def zoo_needles(n: int = 3, seed: int = 0, world_seed: int = 0) -> list[Needle]:
    """`n` world-language needles ``the code of P is N .`` asked as ``the code of P is`` -> N."""
    from ..zoo.world import World  # lazy: the zoo package brings its trainer (~1 s)

    world = World(world_seed)
    rng = np.random.default_rng([world_seed, seed, 11])
    people = rng.choice(len(world.people), size=n, replace=False)
    numbers = rng.choice(len(world.numbers), size=n, replace=False)
    out = []
    for p, q in zip(people, numbers):
        person, number = world.people[p], world.numbers[q]
        out.append(
            Needle(
                " ".join(world.needle_sentence(person, number)),
                " ".join(["the", "code", "of", person, "is"]),
                number,
            )
        )
    return out


# --- English, for pretrained models ------------------------------------------------------------

ENGLISH_HAYSTACK = Path(__file__).with_name("english") / "haystack.txt"

# The paper's needle, then three of the same form written for interp (none of their answers
# appears in the English haystack).
ENGLISH_NEEDLES = (
    PAPER_NEEDLE,
    Needle(
        "The secret to the best pancakes is a spoonful of vanilla and a pinch of cinnamon.",
        "What is the secret to the best pancakes?",
        "a spoonful of vanilla and a pinch of cinnamon",
    ),
    Needle(
        "The best way to spend a rainy afternoon is to build a blanket fort and watch old "
        "cartoons.",
        "What is the best way to spend a rainy afternoon?",
        "build a blanket fort and watch old cartoons",
    ),
    Needle(
        "The key to keeping a houseplant healthy is to water it every Sunday and give it "
        "morning sunlight.",
        "What is the key to keeping a houseplant healthy?",
        "water it every Sunday and give it morning sunlight",
    ),
)


def english_haystack(seed: int = 0) -> str:
    """The shipped English essays, paragraphs rotated by `seed` (0: as written).

    >>> text = english_haystack()
    >>> text.startswith("On Baking Bread"), len(text.split()) > 2000, PAPER_NEEDLE.answer in text
    (True, True, False)
    """
    paragraphs = [
        p.strip() for p in ENGLISH_HAYSTACK.read_text(encoding="utf-8").split("\n\n") if p.strip()
    ]
    k = seed % len(paragraphs)
    return "\n\n".join(paragraphs[k:] + paragraphs[:k])


def english_needles(n: int = 1) -> list[Needle]:
    """The first `n` English needles (the paper's first)."""
    if not 1 <= n <= len(ENGLISH_NEEDLES):
        raise NiahError(
            f"there are {len(ENGLISH_NEEDLES)} built-in English needles; asked for {n} "
            "(give your own Needle objects for more)"
        )
    return list(ENGLISH_NEEDLES[:n])
