"""The data each analyzer gets when the user gives none: the zoo's world for zoo models, English otherwise.

The zoo's organisms were trained on a synthetic world language (`interp.zoo.world`); any other
model is taken to read English and gets the data shipped in `interp/data/english/`:

    analyzer                         zoo model                     any other model
    knowledge conflict, recall       world countries -> capitals   `facts` (3 relations)
    entity tracking                  world objects and box labels  English objects, letters A-Z
    retrieval (NIAH)                 world filler and needles      English essays, the paper's needle

    >>> from interp.testing import tiny_model
    >>> items = default_items(tiny_model("llama"))          # not a zoo model: English facts
    >>> sorted({i.relation for i in items})
    ['capital', 'city_country', 'language']
"""

from __future__ import annotations

from .conflict import ConflictItem, english_items, is_zoo_model, zoo_counts, zoo_items

__all__ = ["default_items", "default_counts"]


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
    return {}, "none: the training frequencies of the English facts are unknown (give a count table)"
