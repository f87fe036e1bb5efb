"""Box prompts for entity tracking (Prakash et al. 2024), with the counterfactuals the method needs.

A sample lists objects in labelled boxes and asks for the content of one box:

    the apple is in box F , the key is in box Q , the pen is in box B . box Q contains the -> key

Every object and label must be one token in context, so all prompts with the same number of
boxes tokenize to the same length and can be patched position by position. Three positions
matter to the circuit: the last token, the query label (``Q`` after the context) and the
earlier occurrence of that label in the context (the correct segment's label).

Counterfactual constructions (each keeps the token length of its base):

- `corrupt`: for path patching, a different sample whose correct segment is at another
  position, with its query label replaced by a random label absent from its context.
- `desiderata` (DCM): base/source pairs, each with its own target, that separate what a head
  carries. ``positional``: source with new objects and labels, query at another position ->
  target is the base object at the source's query position. ``object``: the base with the
  correct object replaced by a new one -> target is the new object. ``label``: the base with
  the query box's label swapped with another box's label, queried by that other label (so the
  source's correct segment stays at the base position) -> target is the base object of the box
  the new label names.

Vocabulary and wording follow the model: the zoo's world words and `ZOO_TEMPLATE` for the
zoo's organisms, else the English objects and letters of ``english/boxes.json`` (those that are
one token of the model's tokenizer; `BoxDataset.vocabulary` counts the ones dropped) and the
paper's `PAPER_TEMPLATE` ("the apple is in Box F, ... Box F contains the").

    >>> import interp                                                          # doctest: +SKIP
    >>> data = box_dataset(interp.load("world-base"), n=300, n_boxes=7)         # doctest: +SKIP
    >>> data.prompts[0], data.answers[0], int(data.query_pos[0])                # doctest: +SKIP
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Optional, Sequence

import torch

from ..tokens import to_tokens
from .box_types import (  # noqa: F401  (re-exported: split out to keep files small)
    DESIDERATA,
    ENGLISH_PATH,
    PAPER_TEMPLATE,
    ZOO_TEMPLATE,
    BoxDataError,
    BoxDataset,
    BoxPairs,
    BoxSample,
    BoxTemplate,
    _english_words,
)

__all__ = [
    "BoxTemplate",
    "ZOO_TEMPLATE",
    "PAPER_TEMPLATE",
    "BoxSample",
    "BoxDataset",
    "BoxPairs",
    "BoxDataError",
    "DESIDERATA",
    "box_samples",
    "box_dataset",
    "corrupt",
    "desiderata",
    "single_token_id",
    "english_vocabulary",
    "default_template",
    "default_n_boxes",
    "speaks_world",
]


def _tokenizer_of(model_or_tokenizer):
    return getattr(model_or_tokenizer, "tokenizer", model_or_tokenizer)


def _ids(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def single_token_id(tokenizer, word: str, context: str = "the") -> Optional[int]:
    """The id of `word` when it is exactly one token after `context` (as inside a prompt), else
    None."""
    before, after = _ids(tokenizer, context), _ids(tokenizer, f"{context} {word}")
    if len(after) != len(before) + 1 or after[: len(before)] != before:
        return None
    unk = getattr(tokenizer, "unk_token_id", None)
    return None if after[-1] == unk else after[-1]


def _check_single_tokens(tokenizer, words: Sequence[str], what: str) -> dict[str, int]:
    ids = {w: single_token_id(tokenizer, w) for w in words}
    bad = [w for w, i in ids.items() if i is None]
    if bad:
        raise BoxDataError(
            f"{what} must each be one token of the model's tokenizer; not single tokens: "
            f"{bad[:8]}. Pass {what} that are (e.g. filter with single_token_id)."
        )
    if len(set(ids.values())) != len(ids):
        raise BoxDataError(f"{what} map to repeated token ids; give distinct single-token words")
    return ids


PAPER_N_BOXES = 7  # Prakash et al. 2024
ZOO_N_BOXES = 4  # the zoo's world models train on 2-6 boxes and are measured on 3-5


def speaks_world(tokenizer) -> bool:
    """Whether `tokenizer` has the zoo world's words (a zoo organism's word-level vocabulary).

    English words such as "apple" are whole entries of large BPE vocabularies too, so the
    world's invented country names (never single entries of an English vocabulary) decide."""
    # lazy: the zoo package brings its trainer (~1 s to import)
    from ..zoo.world import BOX_LABELS, OBJECTS, World

    vocab = tokenizer.get_vocab() if hasattr(tokenizer, "get_vocab") else {}
    words = list(OBJECTS[:5]) + list(BOX_LABELS[:5]) + list(World(0).countries[:3])
    return all(w in vocab for w in words)


def default_n_boxes(model) -> int:
    """Boxes per prompt when the user names none: the middle of a zoo world model's range,
    else the paper's 7."""
    return ZOO_N_BOXES if speaks_world(model.tokenizer) else PAPER_N_BOXES


def default_template(model) -> BoxTemplate:
    """The wording when the user gives none: the zoo's world language for the zoo's
    organisms, the paper's English (`PAPER_TEMPLATE`) for any other model."""
    return ZOO_TEMPLATE if speaks_world(_tokenizer_of(model)) else PAPER_TEMPLATE


def english_vocabulary(model_or_tokenizer) -> tuple[list[str], list[str], dict]:
    """The shipped English objects and labels that are one token of this tokenizer, and a
    record of the check: how many of each are kept and which were dropped.

    >>> from interp.testing import tiny_model
    >>> objects, labels, record = english_vocabulary(tiny_model("llama"))
    >>> (
    ...     record["n_objects"] == len(objects),
    ...     record["n_objects"] + len(record["dropped_objects"]) >= 60,
    ... )
    (True, True)
    """
    tokenizer = _tokenizer_of(model_or_tokenizer)
    words_o, words_l = _english_words()
    objects = [w for w in words_o if single_token_id(tokenizer, w) is not None]
    labels = [w for w in words_l if single_token_id(tokenizer, w) is not None]
    record = {
        "source": "english",
        "n_objects": len(objects),
        "n_labels": len(labels),
        "dropped_objects": [w for w in words_o if w not in objects],
        "dropped_labels": [w for w in words_l if w not in labels],
    }
    return objects, labels, record


def _defaults(tokenizer, objects, labels):
    """Objects and labels to draw from (the user's, else the model's defaults) and the record
    of where they came from (`BoxDataset.vocabulary`)."""
    record = {"source": "given"}
    if objects is None or labels is None:
        # lazy: the zoo package brings its trainer (~1 s to import)
        from ..zoo.world import BOX_LABELS, OBJECTS

        if speaks_world(tokenizer):
            default_o, default_l, record = OBJECTS, BOX_LABELS, {"source": "zoo world"}
        else:
            default_o, default_l, record = english_vocabulary(tokenizer)
        objects = default_o if objects is None else objects
        labels = default_l if labels is None else labels
    objects, labels = list(dict.fromkeys(objects)), list(dict.fromkeys(labels))
    if set(objects) & set(labels):
        raise BoxDataError(
            f"objects and labels must not share words; "
            f"both contain {sorted(set(objects) & set(labels))}"
        )
    return objects, labels, record


def _check_counts(
    n_boxes: int, objects, labels, extra_labels: int = 0, extra_objects: int = 0
) -> None:
    if n_boxes < 2:
        raise BoxDataError(
            f"n_boxes must be at least 2 (a query needs alternatives), got {n_boxes}"
        )
    need_l, need_o = n_boxes + extra_labels, n_boxes + extra_objects
    if len(labels) < need_l:
        raise BoxDataError(
            f"{n_boxes} boxes need at least {need_l} distinct box labels, only {len(labels)} "
            "available; lower n_boxes or pass more labels"
        )
    if len(objects) < need_o:
        raise BoxDataError(
            f"{n_boxes} boxes need at least {need_o} distinct objects, only {len(objects)} "
            "available; lower n_boxes or pass more objects"
        )


# --- samples -------------------------------------------------------------------------------


def _fresh_sample(
    rng: random.Random, n_boxes: int, objects, labels, query: Optional[int] = None
) -> BoxSample:
    objs, labs = tuple(rng.sample(objects, n_boxes)), tuple(rng.sample(labels, n_boxes))
    q = rng.randrange(n_boxes) if query is None else query
    return BoxSample(objs, labs, q, labs[q])


def box_samples(
    n: int,
    n_boxes: int = 7,
    objects: Sequence[str] = None,
    labels: Sequence[str] = None,
    seed: int = 0,
) -> list[BoxSample]:
    """`n` random samples (no tokenizer involved); objects and labels are drawn without repeats."""
    if objects is None or labels is None:
        raise BoxDataError(
            "box_samples needs explicit objects and labels; box_dataset picks defaults"
        )
    _check_counts(n_boxes, objects, labels)
    rng = random.Random(seed)
    return [_fresh_sample(rng, n_boxes, list(objects), list(labels)) for _ in range(n)]


def _positions(ids: torch.Tensor, samples, label_ids, object_ids):
    n, width = ids.shape
    last = torch.full((n,), width - 1, dtype=torch.long)
    query_pos, label_pos, object_pos = (torch.empty(n, dtype=torch.long) for _ in range(3))
    for i, s in enumerate(samples):
        row = ids[i].tolist()
        query_pos[i] = _last_index(row, label_ids[s.query_label])
        label_pos[i] = row.index(label_ids[s.labels[s.query]])
        object_pos[i] = row.index(object_ids[s.objects[s.query]])
    return last, query_pos, label_pos, object_pos


def _last_index(row: list[int], token: int) -> int:
    return len(row) - 1 - row[::-1].index(token)


def _build(model_or_tokenizer, samples, template) -> BoxDataset:
    tokenizer = _tokenizer_of(model_or_tokenizer)
    used_o = sorted({o for s in samples for o in s.objects})
    used_l = sorted({l for s in samples for l in s.labels + (s.query_label,)})
    object_ids = _check_single_tokens(tokenizer, used_o, "objects")
    label_ids = _check_single_tokens(tokenizer, used_l, "labels")
    prompts = tuple(s.prompt(template) for s in samples)
    bos = getattr(tokenizer, "bos_token_id", None)
    tokens = to_tokens(
        tokenizer, list(prompts), prepend_bos=bos is not None, pad_id=0, max_len=None
    )
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is not None and bool((tokens.input_ids == unk).any()):
        words = [
            w
            for w in template.render(["x"], ["y"], "y").split()
            if single_token_id(tokenizer, w) is None and w not in ("x", "y")
        ]
        raise BoxDataError(
            f"the template has words the tokenizer does not know ({words}); pass a "
            "BoxTemplate written in the model's vocabulary"
        )
    if tokens.has_padding:
        raise BoxDataError(
            "box prompts tokenize to different lengths; every object and label must be "
            "one token in context and all samples must have the same number of boxes"
        )
    ids = tokens.input_ids
    last, query_pos, label_pos, object_pos = _positions(ids, samples, label_ids, object_ids)
    answers = torch.tensor([object_ids[s.answer] for s in samples], dtype=torch.long)
    return BoxDataset(
        tuple(samples),
        prompts,
        answers,
        last,
        query_pos,
        label_pos,
        object_pos,
        template,
        int(ids.shape[1]),
    )


def box_dataset(
    model,
    n: int = 300,
    n_boxes: int = 7,
    *,
    objects: Sequence[str] = None,
    labels: Sequence[str] = None,
    seed: int = 0,
    template: Optional[BoxTemplate] = None,
) -> BoxDataset:
    """`n` box prompts for `model` (or a tokenizer), with answer ids and circuit positions.

    Objects/labels default to the zoo's world vocabulary when the tokenizer has it, else to
    the shipped English words / capital letters that are single tokens of the tokenizer
    (`english_vocabulary`); the template defaults to `default_template(model)`.

    >>> from interp.testing import tiny_model
    >>> m = tiny_model("llama")
    >>> d = box_dataset(m, n=4, n_boxes=3, objects=["key", "apple", "cat", "dog"],
    ...                 labels=["one", "two", "three", "four"],
    ...                 template=BoxTemplate(query="box {label} is the"))
    >>> d.seq_len, len(d), m.to_str(d.answer_ids[:1]) == [d.answers[0]]
    (26, 4, True)
    """
    tokenizer = _tokenizer_of(model)
    objects, labels, record = _defaults(tokenizer, objects, labels)
    _check_counts(n_boxes, objects, labels)
    samples = box_samples(n, n_boxes, objects, labels, seed)
    data = _build(model, samples, template if template is not None else default_template(model))
    return replace(data, vocabulary=record)


# --- counterfactuals -----------------------------------------------------------------------


def _vocab(data: BoxDataset, objects, labels):
    objects = (
        list(objects)
        if objects is not None
        else sorted({o for s in data.samples for o in s.objects})
    )
    labels = (
        list(labels) if labels is not None else sorted({l for s in data.samples for l in s.labels})
    )
    return objects, labels


def corrupt(
    model,
    data: BoxDataset,
    *,
    objects: Sequence[str] = None,
    labels: Sequence[str] = None,
    seed: int = 1,
) -> BoxDataset:
    """Path-patching counterparts of `data`: for each sample a different sample whose correct
    segment is at another position, its query label replaced by a label absent from its context.

    Objects/labels default to those seen in `data` (pass the full lists to draw from more).
    """
    objects, labels = _vocab(data, objects, labels)
    _check_counts(data.n_boxes, objects, labels, extra_labels=1)
    rng = random.Random(seed)
    out = []
    for s in data.samples:
        q = rng.choice([i for i in range(data.n_boxes) if i != s.query])
        fresh = _fresh_sample(rng, data.n_boxes, objects, labels, query=q)
        absent = [l for l in labels if l not in fresh.labels]
        out.append(replace(fresh, query_label=rng.choice(absent)))
    return _build(model, out, data.template)


def desiderata(
    model,
    data: BoxDataset,
    kind: str,
    *,
    objects: Sequence[str] = None,
    labels: Sequence[str] = None,
    seed: int = 2,
) -> BoxPairs:
    """DCM pairs of desideratum `kind` ("positional", "object", "label") built on `data` (the
    base)."""
    if kind not in DESIDERATA:
        raise BoxDataError(f"unknown desideratum {kind!r}; choose one of {DESIDERATA}")
    objects, labels = _vocab(data, objects, labels)
    k = data.n_boxes
    _check_counts(k, objects, labels, extra_objects=1 if kind == "object" else 0)
    rng = random.Random(f"{seed}-{kind}")
    sources, targets = [], []
    for s in data.samples:
        source, target = _DESIDERATUM[kind](rng, s, k, objects, labels)
        sources.append(source)
        targets.append(target)
    source = _build(model, sources, data.template)
    tok = _tokenizer_of(model)
    target_ids = torch.tensor([single_token_id(tok, t) for t in targets], dtype=torch.long)
    return BoxPairs(kind, data, source, target_ids)


def _disjoint_or_any(rng, pool, avoid, k):
    fresh = [x for x in pool if x not in avoid]
    return tuple(rng.sample(fresh if len(fresh) >= k else list(pool), k))


def _positional(rng, s: BoxSample, k, objects, labels):
    q = rng.choice([i for i in range(k) if i != s.query])
    objs = _disjoint_or_any(rng, objects, set(s.objects), k)
    labs = _disjoint_or_any(rng, labels, set(s.labels), k)
    return BoxSample(objs, labs, q, labs[q]), s.objects[q]


def _object(rng, s: BoxSample, k, objects, labels):
    new = rng.choice([o for o in objects if o not in s.objects])
    objs = tuple(new if i == s.query else o for i, o in enumerate(s.objects))
    return BoxSample(objs, s.labels, s.query, s.query_label), new


def _label(rng, s: BoxSample, k, objects, labels):
    other = rng.choice([i for i in range(k) if i != s.query])
    labs = list(s.labels)
    labs[s.query], labs[other] = labs[other], labs[s.query]
    return BoxSample(s.objects, tuple(labs), s.query, labs[s.query]), s.objects[other]


_DESIDERATUM = {"positional": _positional, "object": _object, "label": _label}
