"""Knowledge-conflict items built from the model's own memory (Jin et al. 2024; Yu et al. 2023).

An item is a subject s, the answer the model has memorised o_m, and a conflicting answer
o_c that a context states. A `Template` (data, not code) turns it into prompts:

    clean    (memory baseline):  "the capital of Avaria is"                 -> o_m
    conflict (context + query):  "the capital of Avaria is Rusk . the capital of Avaria is"
                                                                    -> o_m (memory) or o_c (context)

`build_conflict_set` keeps only subjects the model answers correctly on the clean prompt
(greedy decoding of the whole answer), and counts what it leaves out and why:
``unknown_subject`` (model does not know it), ``context_equals_memory`` (o_c == o_m),
``same_first_token`` (o_m and o_c start with the same token, so a first-token metric could
not tell them apart). Answers of several tokens are scored by their first token, with a
warning saying how many items that concerns. Answer tokens are found by tokenizing
``prompt + joiner + answer`` (not the answer alone), so SentencePiece-style "▁" pieces are
handled.

Sources of items: `zoo_items` (the zoo world's countries and capitals, with their corpus
frequencies), `english_items` (the English facts shipped in `interp.data.facts`: capitals,
official languages, the countries of cities) and `load_items` (a JSONL file, one
``{"subject", "memory_answer", "context_answer"[, "frequency", "relation"]}`` object a line).
`interp.data.defaults.default_items(model)` picks the zoo's for zoo models, the English ones
otherwise.

Templates may name the subject directly (``{subject}``, the zoo's) or through the item's
relation: ``{statement}`` ("The capital of France is") and ``{question}`` ("What is the capital
of France?") come from `interp.data.facts`, so one template serves every relation. The English
formats are the papers': ``statement`` (Jin et al.: context sentence, then the same sentence to
complete) and ``qa`` (Yu et al.: context sentence, then "Q: ...?\nA:").

    >>> import interp                                                          # doctest: +SKIP
    >>> model = interp.load("world-base")                                      # doctest: +SKIP
    >>> data = build_conflict_set(model, zoo_items(), ZOO_TEMPLATES["statement"])  # doctest: +SKIP
    >>> data.prompts()[0], data.excluded                                       # doctest: +SKIP
"""

from __future__ import annotations

import json
import random
import warnings
from dataclasses import dataclass, field, replace
from typing import Optional, Sequence

import numpy as np

from .. import zoo
from ..errors import ArgumentTypeError
from ..jsonio import read_user_file
from ..zoo.world import World
from . import facts
from .conflict_items import (  # noqa: F401  (re-exported: split out to keep files small)
    _ITEM_KEYS,
    _RELATION_FIELDS,
    ConflictDataError,
    ConflictItem,
    MultiTokenAnswerWarning,
    Template,
    load_counts,
    load_items,
)

__all__ = [
    "Template",
    "ConflictItem",
    "ConflictSet",
    "ConflictDataError",
    "ZOO_TEMPLATES",
    "EN_TEMPLATES",
    "templates_for",
    "zoo_items",
    "zoo_counts",
    "english_items",
    "load_items",
    "load_counts",
    "load_templates",
    "build_conflict_set",
    "is_zoo_model",
    "answer_tokens",
    "MultiTokenAnswerWarning",
]


def _zoo_filler(world_seed: int = 0, seed: int = 0) -> str:
    """One fixed filler sentence of the zoo's world (e.g. ``a flondy lais rums with a shal .``)."""
    return " ".join(World(world_seed).filler_sentence(np.random.default_rng(seed)))


# The zoo models were trained on conflict passages set in filler text: a context sentence right
# after <bos> with no filler at all is a case they almost never saw (and there they always answer
# from memory), so each zoo format keeps one fixed filler sentence.  The two formats differ in
# where the context sits: before the query ("statement") or separated from it ("spaced").  The
# word-level vocabulary has no "Q", "what" or "?": its "qa" format asks "capital of X :", which
# the models never saw in training (they answer it from memory); it is kept for comparison.
_F = _zoo_filler()
ZOO_TEMPLATES = {
    "statement": Template(
        "statement", _F + " the capital of {subject} is {answer} .", "the capital of {subject} is"
    ),
    "spaced": Template(
        "spaced", "the capital of {subject} is {answer} . " + _F, "the capital of {subject} is"
    ),
    "qa": Template(
        "qa",
        "capital of {subject} : the capital of {subject} is {answer} .",
        "capital of {subject} : the capital of {subject} is",
        stop=(".", ":"),
    ),
}
# English formats for pretrained models, worded per relation (see the module docstring).
EN_TEMPLATES = {
    "statement": Template("statement", "{statement} {answer}.", "{statement}", stop=(".", "\n")),
    "qa": Template(
        "qa", "{statement} {answer}.", "Q: {question}\nA:", joiner="\n", stop=("Q:", "\n", ".")
    ),
}


def templates_for(model) -> dict[str, Template]:
    """The zoo templates for zoo models (word-level world vocabulary), English ones otherwise."""
    return ZOO_TEMPLATES if is_zoo_model(model) else EN_TEMPLATES


def is_zoo_model(model) -> bool:
    """Whether `model` is a shipped zoo organism (loaded by its zoo name)."""
    try:
        return model.name in zoo.names()
    except Exception:  # noqa: BLE001 - no zoo checkpoints shipped
        return False


def load_templates(path) -> dict[str, Template]:
    """Templates from a JSON file: a list of template objects (see `Template`)."""
    text = read_user_file(path, ConflictDataError, "templates")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConflictDataError(f"templates file {path} is not valid JSON: {err}") from None
    if not isinstance(data, list) or not data:
        raise ConflictDataError(f"{path}: expected a JSON list of template objects")
    return {t.name: t for t in (Template.from_dict(d) for d in data)}


def zoo_counts(name: str = "world-base", world_seed: int = 0) -> tuple[dict[str, float], str]:
    """Per-country training mentions of a zoo model (from its card), else the world's fact
    probabilities."""
    try:
        counts = zoo.card(name).get("country_train_counts")
        if counts:
            return {k: float(v) for k, v in counts.items()}, f"{name} card: country_train_counts"
    except Exception:  # noqa: BLE001 - not shipped: fall back to the generator's probabilities
        pass
    world = World(world_seed)
    return {
        c: world.fact_probs.get(c, 0.0) for c in world.countries
    }, "World.fact_probs (sampling probability)"


def zoo_items(
    n_per_subject: int = 2, seed: int = 0, world_seed: int = 0, counts: Optional[dict] = None
) -> list[ConflictItem]:
    """Items for every zoo country (unknown ones are dropped later by `build_conflict_set`)."""
    world = World(world_seed)
    rng = random.Random(f"conflict-items-{seed}")
    counts = (
        counts if counts is not None else {c: world.fact_probs.get(c, 0.0) for c in world.countries}
    )
    items = []
    for country in world.countries:
        truth = world.capital_of[country]
        others = [k for k in world.capitals if k != truth]
        for other in rng.sample(others, n_per_subject):
            items.append(ConflictItem(country, truth, other, frequency=counts.get(country, 0.0)))
    return items


def english_items(
    n_per_subject: int = 2, seed: int = 0, relations: Optional[Sequence[str]] = None
) -> list[ConflictItem]:
    """Items for every shipped English fact (`interp.data.facts`), each relation in turn: per
    subject, `n_per_subject` context answers drawn (seeded) from the relation's other answers.
    Frequencies are unknown (None); unknown subjects are dropped later by `build_conflict_set`.

    >>> items = english_items(1)
    >>> items[0].subject, items[0].memory_answer, items[0].relation
    ('France', 'Paris', 'capital')
    """
    rng = random.Random(f"english-items-{seed}")
    names = list(relations) if relations is not None else list(facts.relations())
    items = []
    for name in names:
        table = facts.facts(name)
        answers = sorted(set(table.values()))
        for subject, truth in table.items():
            others = [a for a in answers if a != truth]
            for other in rng.sample(others, min(n_per_subject, len(others))):
                items.append(ConflictItem(subject, truth, other, relation=name))
    return items


def answer_tokens(model, prompt: str, answer: str, joiner: str = " ") -> list[int]:
    """Token ids of `answer` as the model reads it after `prompt` (joined by `joiner`)."""
    tok = model.tokenizer
    before = tok(prompt, add_special_tokens=False)["input_ids"]
    after = tok(prompt + joiner + answer.strip(), add_special_tokens=False)["input_ids"]
    if after[: len(before)] == before and len(after) > len(before):
        return after[len(before) :]
    pieces = tok(joiner + answer.strip(), add_special_tokens=False)["input_ids"]
    if not pieces:
        raise ConflictDataError(f"answer {answer!r} tokenizes to nothing")
    return pieces


@dataclass(frozen=True)
class ConflictSet:
    """Usable items in one template, with their answers' first tokens and the exclusion counts."""

    items: tuple[ConflictItem, ...]
    template: Template
    memory_ids: tuple[int, ...]
    context_ids: tuple[int, ...]
    memory_tokens: tuple[tuple[int, ...], ...]
    excluded: dict = field(default_factory=dict)
    n_multi_token: int = 0
    n_candidates: int = 0
    per_relation: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.items)

    def prompts(self) -> list[str]:
        """Conflict prompts (context + query)."""
        return [
            self.template.conflict_prompt(i.subject, i.context_answer, relation=i.relation)
            for i in self.items
        ]

    def clean_prompts(self) -> list[str]:
        """Memory-baseline prompts (query only)."""
        return [self.template.clean_prompt(i.subject, i.relation) for i in self.items]

    def corrupted_prompts(self, seed: int = 0, model=None, tries: int = 20) -> list[str]:
        """Same template with another item's subject and another context answer, both of the
        item's relation (no information about this item's o_m or o_c): the reference input of
        path patching.

        With `model`, each reference is drawn (up to `tries` times) to have the token length of
        its conflict prompt, so the pair can be patched without padding."""
        rng = random.Random(f"corrupt-{seed}")
        subjects, answers = {}, {}
        for rel in {i.relation for i in self.items}:
            members = [i for i in self.items if i.relation == rel]
            subjects[rel] = sorted({i.subject for i in members})
            answers[rel] = sorted({a for i in members for a in (i.memory_answer, i.context_answer)})
            if len(subjects[rel]) < 2 or len(answers[rel]) < 4:
                raise ConflictDataError(
                    f"corrupted prompts need at least 2 subjects and 4 distinct answers "
                    f"per relation; relation {rel!r} has {len(subjects[rel])} and "
                    f"{len(answers[rel])}"
                )
        length = (
            (lambda text: len(model.tokenizer(text, add_special_tokens=False)["input_ids"]))
            if model
            else None
        )
        out = []
        for item, prompt in zip(self.items, self.prompts()):
            want = length(prompt) if length else None
            for _ in range(tries if length else 1):
                subject = rng.choice([s for s in subjects[item.relation] if s != item.subject])
                answer = rng.choice(
                    [
                        a
                        for a in answers[item.relation]
                        if a not in (item.memory_answer, item.context_answer)
                    ]
                )
                ref = self.template.conflict_prompt(subject, answer, relation=item.relation)
                if want is None or length(ref) == want:
                    break
            out.append(ref)
        return out

    def subset(self, indices: Sequence[int]) -> "ConflictSet":
        idx = list(indices)
        bad = [i for i in idx if not -len(self.items) <= i < len(self.items)]
        if bad:
            raise ConflictDataError(
                f"item indices {bad[:5]} are outside this set of {len(self.items)} items"
            )
        pick = lambda seq: tuple(seq[i] for i in idx)  # noqa: E731
        return replace(
            self,
            items=pick(self.items),
            memory_ids=pick(self.memory_ids),
            context_ids=pick(self.context_ids),
            memory_tokens=pick(self.memory_tokens),
        )

    def of_subjects(self, subjects) -> "ConflictSet":
        keep = set(subjects)
        return self.subset([i for i, item in enumerate(self.items) if item.subject in keep])

    def split_subjects(self, fractions: Sequence[float], seed: int = 0) -> list[list[str]]:
        """Subjects shuffled (seeded) and cut into groups of the given fractions."""
        subjects = sorted({i.subject for i in self.items})
        random.Random(f"split-{seed}").shuffle(subjects)
        cuts, total, out, start = [], 0.0, [], 0
        for frac in fractions[:-1]:
            total += frac
            cuts.append(round(total * len(subjects)))
        for cut in cuts + [len(subjects)]:
            out.append(subjects[start:cut])
            start = cut
        return out

    def summary(self) -> dict:
        """Counts and the template; per-relation counts when the items span several relations."""
        out = {
            "n_items": len(self.items),
            "n_subjects": len({i.subject for i in self.items}),
            "n_candidates": self.n_candidates,
            "excluded": dict(self.excluded),
            "n_multi_token_answers": self.n_multi_token,
            "template": self.template.to_dict(),
        }
        if len(self.per_relation) > 1:
            out["per_relation"] = {rel: dict(counts) for rel, counts in self.per_relation.items()}
        return out


def build_conflict_set(
    model,
    items: Sequence[ConflictItem],
    template: Template,
    *,
    check_memory: bool = True,
    batch_size: int = 64,
) -> ConflictSet:
    """Keep the items the model can be tested on (see the module docstring for the rules).

    `ConflictSet.excluded` counts the items dropped for each reason; `per_relation` counts,
    for each relation, the candidates, the drops and the subjects kept (what the model knows)."""
    if not isinstance(template, Template):
        raise ArgumentTypeError(
            f"template must be an interp.data.conflict.Template, got {type(template).__name__}"
        )
    items = list(items)
    if not items:
        raise ConflictDataError(
            "no conflict items given: the item file is empty (or none was built); give JSONL "
            "lines with subject, memory_answer and context_answer"
        )
    reasons: list[Optional[str]] = []
    mem_tokens, ctx_first = [], []
    for item in items:
        reason, mem, ctx = _screen(model, item, template)
        reasons.append(reason)
        mem_tokens.append(mem)
        ctx_first.append(ctx)
    if check_memory:
        screened = [i for i, r in enumerate(reasons) if r is None]
        known = _knows(
            model,
            [template.clean_prompt(items[i].subject, items[i].relation) for i in screened],
            [mem_tokens[i] for i in screened],
            batch_size,
        )
        for i, k in zip(screened, known):
            reasons[i] = None if k else "unknown_subject"
    excluded = {
        name: reasons.count(name)
        for name in ("context_equals_memory", "same_first_token", "unknown_subject")
    }
    keep = [i for i, r in enumerate(reasons) if r is None]
    if not keep:
        raise ConflictDataError(
            f"no usable conflict items out of {len(items)} (excluded: {excluded}); "
            "the model must answer each clean prompt correctly; give items it knows (--items FILE)"
        )
    n_multi = sum(len(mem_tokens[i]) > 1 for i in keep)
    if n_multi:
        warnings.warn(
            f"{n_multi} of {len(keep)} memorised answers span several tokens; logit metrics "
            "use their first token (answers with equal first tokens were excluded)",
            MultiTokenAnswerWarning,
            stacklevel=2,
        )
    return ConflictSet(
        tuple(items[i] for i in keep),
        template,
        tuple(mem_tokens[i][0] for i in keep),
        tuple(ctx_first[i] for i in keep),
        tuple(mem_tokens[i] for i in keep),
        excluded,
        n_multi,
        len(items),
        _per_relation(items, reasons),
    )


def _screen(model, item: ConflictItem, template: Template):
    """(reason to drop or None, memorised answer's tokens, context answer's first token)."""
    if item.memory_answer.strip().lower() == item.context_answer.strip().lower():
        return "context_equals_memory", (), None
    clean = template.clean_prompt(item.subject, item.relation)
    mem = answer_tokens(model, clean, item.memory_answer, template.answer_prefix)
    ctx = answer_tokens(model, clean, item.context_answer, template.answer_prefix)
    if mem[0] == ctx[0]:
        return "same_first_token", tuple(mem), ctx[0]
    return None, tuple(mem), ctx[0]


def _per_relation(items: Sequence[ConflictItem], reasons: Sequence[Optional[str]]) -> dict:
    """Per relation: candidate items, items dropped per reason, items and subjects kept."""
    out: dict = {}
    for item, reason in zip(items, reasons):
        row = out.setdefault(
            item.relation,
            {
                "n_candidates": 0,
                "context_equals_memory": 0,
                "same_first_token": 0,
                "unknown_subject": 0,
                "n_items": 0,
                "subjects": set(),
                "known": set(),
            },
        )
        row["n_candidates"] += 1
        row["subjects"].add(item.subject)
        if reason is None:
            row["n_items"] += 1
            row["known"].add(item.subject)
        else:
            row[reason] += 1
    for row in out.values():
        row["n_subjects"], row["n_subjects_kept"] = len(row.pop("subjects")), len(row.pop("known"))
    return out


def _knows(
    model, prompts: list[str], answers: list[tuple[int, ...]], batch_size: int
) -> list[bool]:
    """Whether greedy decoding of each clean prompt reproduces its whole memorised answer.

    Each distinct (prompt, answer) pair is generated once (items of one subject share both)."""
    pairs = list(dict.fromkeys(zip(prompts, answers)))
    verdict = {}
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        steps = max(len(a) for _, a in chunk)
        gen = model.generate([p for p, _ in chunk], max_new_tokens=steps, use_interventions=False)
        for (prompt, want), row in zip(chunk, gen.new_tokens.tolist()):
            verdict[prompt, want] = tuple(row[: len(want)]) == tuple(want)
    return [verdict[pair] for pair in zip(prompts, answers)]
