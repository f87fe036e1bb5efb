"""Data helpers of the retrieval analyzer: a haystack of the model's own text (`self_haystack`)
and the no-needle control prompt (`without_needle`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from interp.data.niah import NiahPrompt
from interp.errors import InvalidArgumentError

__all__ = ["self_haystack", "without_needle", "STORY_OPENINGS"]

STORY_OPENINGS = (
    "Once upon a time",
    "One day",
    "Tom and Lily",
    "The little dog",
    "Sara had a",
    "There was a big",
    "Ben went to the",
    "Mom said",
)


def without_needle(model, prompt: NiahPrompt) -> NiahPrompt:
    """The same prompt with the needle sentence cut out (a control: can the model answer
    anyway?)."""
    ids = prompt.input_ids
    cut = ids[: prompt.needle_span[0]] + ids[prompt.needle_span[1] :]
    return replace(prompt, input_ids=tuple(cut), needle_span=(0, 0), answer_span=(0, 0))


def self_haystack(
    model, n_tokens: int = 600, openings: Sequence[str] = STORY_OPENINGS, max_new_tokens: int = 96
) -> str:
    """A haystack of the model's own greedy stories (one per opening), cut at sentence ends."""
    parts: list[str] = []
    total = 0
    while total < n_tokens:
        for opening in openings:
            gen = model.generate(opening, max_new_tokens=max_new_tokens)
            start = 1 if model.prepends_bos else 0
            text = model.decode(gen.tokens[0, start:]).replace("\n", " ")
            cut = max(text.rfind(". "), text.rfind("! "), text.rfind("? "), text.rfind("."))
            text = text[: cut + 1] if cut > 0 else text
            parts.append(text.strip())
            total += len(model.tokenizer(text, add_special_tokens=False)["input_ids"])
            if total >= n_tokens:
                break
        if not parts:
            raise InvalidArgumentError("the model generated no text to build a haystack from")
    return " ".join(parts)
