"""English facts shipped with interp: subject -> answer tables per relation, for real models.

The zoo's organisms speak a synthetic world language and are tested on its countries
(`interp.data.conflict.zoo_items`). A pretrained English model needs real facts instead; this
module holds them (``english/facts.json``, written for this project from common knowledge) and
the wording of each relation:

    relation       statement / question
    capital        "The capital of {subject} is"
                   "What is the capital of {subject}?"
    language       "The official language of {subject} is"
                   "What is the official language of {subject}?"
    city_country   "{subject} is a city in"
                   "In which country is the city of {subject}?"

Answers were chosen to be short (mostly one token for Llama-style BPE tokenizers). Nothing here
is filtered for a particular model: `interp.data.conflict.build_conflict_set` drops the subjects
a model does not know and counts them, per relation.

    >>> sorted(relations())
    ['capital', 'city_country', 'language']
    >>> relation("capital").statement_for("France")
    'The capital of France is'
    >>> facts("capital")["France"]
    'Paris'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from interp.errors import InvalidArgumentError

__all__ = ["Relation", "FactsError", "relations", "relation", "facts", "FACTS_PATH"]

FACTS_PATH = Path(__file__).with_name("english") / "facts.json"


class FactsError(InvalidArgumentError):
    """A relation that is not in the table, or a facts file that cannot be used."""


@dataclass(frozen=True)
class Relation:
    """How one relation is said about a subject, and its facts (subject -> answer).

    statement: the sentence start the answer completes, e.g. "The capital of {subject} is".
    question: the question asking for the answer, e.g. "What is the capital of {subject}?".
    """

    name: str
    statement: str
    question: str
    facts: tuple[tuple[str, str], ...]

    def statement_for(self, subject: str) -> str:
        return self.statement.format(subject=subject)

    def question_for(self, subject: str) -> str:
        return self.question.format(subject=subject)


def _relation(name: str, data: dict) -> Relation:
    for key in ("statement", "question"):
        if "{subject}" not in data.get(key, ""):
            raise FactsError(
                f"{FACTS_PATH}: relation {name!r} needs a {key} with a {{subject}} placeholder"
            )
    table = data.get("facts")
    if not isinstance(table, dict) or not table:
        raise FactsError(
            f"{FACTS_PATH}: relation {name!r} has no facts (a subject -> answer object)"
        )
    return Relation(name, data["statement"], data["question"], tuple(table.items()))


@lru_cache(maxsize=1)
def relations() -> dict[str, Relation]:
    """Every shipped relation by name (read once from ``english/facts.json``)."""
    try:
        data = json.loads(FACTS_PATH.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise FactsError(f"cannot read the shipped facts {FACTS_PATH}: {err}") from None
    return {name: _relation(name, body) for name, body in data["relations"].items()}


def relation(name: str) -> Relation:
    """The shipped relation `name`; the error lists the known ones."""
    table = relations()
    if name not in table:
        raise FactsError(
            f"no built-in wording for relation {name!r}; known relations: "
            f"{', '.join(sorted(table))}. Templates with {{statement}} or {{question}} "
            "need one of these; use {subject} templates for other relations"
        )
    return table[name]


def facts(name: str) -> dict[str, str]:
    """Subject -> answer of relation `name`, in file order."""
    return dict(relation(name).facts)
