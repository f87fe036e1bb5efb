"""The data each analyzer gets when the user gives none: the zoo's world for zoo models, English
otherwise.

The zoo's organisms were trained on a synthetic world language (`interp.zoo.world`); any other
model is taken to read English and gets the data shipped in `interp/data/english/`:

    analyzer                     zoo model                     any other model
    knowledge conflict, recall   world countries -> capitals   `facts` (3 relations)
    entity tracking              world objects and box labels  English objects, letters A-Z
    retrieval (NIAH)             world filler and needles      English essays, the paper's needle

Conflict items follow the zoo's rule (`is_zoo_model`: loaded by a zoo name); boxes and NIAH
follow the tokenizer (`speaks_world`), as the box defaults always have. The box defaults
(`default_template`, `default_n_boxes`, `english_vocabulary`) live in `interp.data.boxes` and
are re-exported here.

    >>> from interp.testing import tiny_model
    >>> items = default_items(tiny_model("llama"))          # not a zoo model: English facts
    >>> sorted({i.relation for i in items})
    ['capital', 'city_country', 'language']
"""

from __future__ import annotations

from .boxes import default_n_boxes, default_template, english_vocabulary, speaks_world
from .conflict import ConflictItem, english_items, is_zoo_model, zoo_counts, zoo_items
from .niah import (
    COMPLETION_TEMPLATE,
    PAPER_TEMPLATE,
    Needle,
    chat_template,
    english_haystack,
    english_needles,
    zoo_haystack,
    zoo_needles,
)

__all__ = [
    "default_items",
    "default_counts",
    "default_haystack",
    "default_needles",
    "default_niah_template",
    "restate_tokens",
    "speaks_english",
    "default_template",
    "default_n_boxes",
    "english_vocabulary",
]


def default_items(model, n_per_subject: int = 2, seed: int = 0) -> list[ConflictItem]:
    """Built-in conflict items for `model`: the zoo world's countries (with their training
    counts) for zoo models, the English facts otherwise."""
    if is_zoo_model(model):
        return zoo_items(n_per_subject, seed=seed, counts=zoo_counts(model.name)[0])
    return english_items(n_per_subject, seed=seed)


def default_counts(model) -> tuple[dict[str, float], str]:
    """Subject -> training frequency for the built-in items of `model`, and where it comes from.

    Zoo models have their corpus counts; the training data of a pretrained model is unknown
    here, so the English facts come with an empty table (the frequency analysis is skipped)."""
    if is_zoo_model(model):
        return zoo_counts(model.name)
    return (
        {},
        "none: the training frequencies of the English facts are unknown (give a count table)",
    )


def speaks_english(model) -> bool:
    """Whether `model` gets the English data: its tokenizer lacks the zoo world's words."""
    return not speaks_world(model.tokenizer)


def default_haystack(model, n_tokens: int = 2000, seed: int = 0) -> str:
    """NIAH haystack: the zoo's filler (about `n_tokens` long) for world-language models, the
    English essays otherwise (repeated by the prompt builder when a context is longer)."""
    return english_haystack(seed) if speaks_english(model) else zoo_haystack(n_tokens, seed=seed)


def default_needles(model, n: int = 4, seed: int = 0) -> list[Needle]:
    """`n` NIAH needles: the zoo world's ``the code of P is N`` for world-language models,
    the paper's needle and its English siblings otherwise."""
    return english_needles(n) if speaks_english(model) else zoo_needles(n, seed=seed)


def default_niah_template(model) -> str:
    """How the question follows the haystack: a prefix to complete for the zoo's models; for
    English models the paper's "Based on the content of the book, Question: ...\\nAnswer:",
    inside the model's chat template when its tokenizer has one (an instruction-tuned model:
    asked raw, SmolLM2-135M-Instruct ends the user's turn instead of answering)."""
    if not speaks_english(model):
        return COMPLETION_TEMPLATE
    if getattr(model.tokenizer, "chat_template", None):
        return chat_template(model.tokenizer, bos_added=bool(model.prepends_bos))
    return PAPER_TEMPLATE


def restate_tokens(model, needles) -> int:
    """Decode room beyond the answer for English models: the longest needle's tokens, since a
    pretrained model often restates the needle before its answer ("The best thing to do in San
    Francisco is to eat a sandwich ..."); 0 for the zoo's models, which answer directly."""
    if not speaks_english(model):
        return 0
    return max(
        len(model.tokenizer(" " + n.text, add_special_tokens=False)["input_ids"]) for n in needles
    )
