"""The items and templates of the knowledge-conflict data (`interp.data.conflict`): the typed
errors, `Template`, `ConflictItem` and the JSONL / count-table loaders."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Optional

from interp.errors import InvalidArgumentError

from ..jsonio import read_user_file
from . import facts


class ConflictDataError(InvalidArgumentError):
    """Conflict items or templates that cannot be used (the message says how to fix them)."""


class MultiTokenAnswerWarning(UserWarning):
    """Some answers span several tokens; they are scored by their first token."""


_RELATION_FIELDS = ("statement", "question")


@dataclass(frozen=True)
class Template:
    """How an item becomes prompts. Placeholders: ``{subject}``, ``{answer}``, and the item's
    relation said about the subject, ``{statement}`` and ``{question}`` (`interp.data.facts`).

    context: the sentence stating the context answer, e.g. "the capital of {subject} is {answer} ."
    query: the prompt the model completes, e.g. "the capital of {subject} is"
    joiner: text between context and query (and between the query and an answer).
    stop: strings that end an answer in generated text (behaviour scoring cuts there).

    >>> t = Template("s", "the capital of {subject} is {answer} .", "the capital of {subject} is")
    >>> t.conflict_prompt("Avaria", "Rusk")
    'the capital of Avaria is Rusk . the capital of Avaria is'
    >>> from interp.data.conflict import EN_TEMPLATES
    >>> EN_TEMPLATES["qa"].conflict_prompt("Lyon", "Italy", relation="city_country")
    'Lyon is a city in Italy.\\nQ: In which country is the city of Lyon?\\nA:'
    """

    name: str
    context: str
    query: str
    joiner: str = " "
    answer_prefix: str = " "
    stop: tuple[str, ...] = (".",)

    def __post_init__(self):
        if not any(f"{{{name}}}" in self.query for name in ("subject",) + _RELATION_FIELDS):
            raise ConflictDataError(
                f"template {self.name!r}: query needs a {{subject}}, {{statement}} "
                f"or {{question}} placeholder, got {self.query!r}"
            )
        if "{answer}" not in self.context:
            raise ConflictDataError(
                f"template {self.name!r}: context needs an {{answer}} placeholder, "
                f"got {self.context!r}"
            )
        object.__setattr__(self, "stop", tuple(self.stop))

    def fields(self, subject: str, relation: str = "capital") -> dict:
        """The placeholder values for `subject`; the relation's wording only when used."""
        if not any(f"{{{name}}}" in self.context + self.query for name in _RELATION_FIELDS):
            return {"subject": subject}
        said = facts.relation(relation)
        return {
            "subject": subject,
            "statement": said.statement_for(subject),
            "question": said.question_for(subject),
        }

    def clean_prompt(self, subject: str, relation: str = "capital") -> str:
        return self.query.format(**self.fields(subject, relation))

    def conflict_prompt(
        self,
        subject: str,
        context_answer: str,
        context_subject: Optional[str] = None,
        relation: str = "capital",
    ) -> str:
        ctx = self.context.format(
            **self.fields(context_subject or subject, relation), answer=context_answer
        )
        return ctx + self.joiner + self.clean_prompt(subject, relation)

    def to_dict(self) -> dict:
        return {**asdict(self), "stop": list(self.stop)}

    @classmethod
    def from_dict(cls, data: dict) -> "Template":
        allowed = {"name", "context", "query", "joiner", "answer_prefix", "stop"}
        if not isinstance(data, dict):
            raise ConflictDataError(
                f"a template must be a JSON object with the fields name, context and query "
                f"(optional: {', '.join(sorted(allowed - {'name', 'context', 'query'}))}); "
                f"got {type(data).__name__} {data!r}"
            )
        extra = set(data) - allowed
        if extra:
            raise ConflictDataError(
                f"template has unknown field(s) {sorted(extra)}; allowed: {sorted(allowed)}"
            )
        missing = {"name", "context", "query"} - set(data)
        if missing:
            raise ConflictDataError(f"template is missing field(s) {sorted(missing)}")
        return cls(**data)


@dataclass(frozen=True)
class ConflictItem:
    """One subject with its memorised answer and the conflicting answer a context states."""

    subject: str
    memory_answer: str
    context_answer: str
    frequency: Optional[float] = None
    relation: str = "capital"

    def __post_init__(self):
        for name in ("subject", "memory_answer", "context_answer"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ConflictDataError(
                    f"ConflictItem.{name} must be a non-empty string, got {value!r}"
                )


_ITEM_KEYS = {"subject", "memory_answer", "context_answer", "frequency", "relation"}


def load_items(path) -> list[ConflictItem]:
    """Items from a JSONL file: one ``{"subject", "memory_answer", "context_answer"}`` a line.

    Optional keys: ``frequency`` (a count or rate, for the frequency analysis) and
    ``relation``. Blank lines are skipped; unknown keys are refused, with the line number.
    """
    items = []
    lines = read_user_file(path, ConflictDataError, "conflict items").splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as err:
            raise ConflictDataError(f"{path}:{number}: not valid JSON ({err})") from None
        if not isinstance(data, dict):
            raise ConflictDataError(
                f"{path}:{number}: expected a JSON object, got {type(data).__name__}"
            )
        extra, missing = (
            set(data) - _ITEM_KEYS,
            {"subject", "memory_answer", "context_answer"} - set(data),
        )
        if extra or missing:
            raise ConflictDataError(
                f"{path}:{number}: unknown keys {sorted(extra)} / missing keys "
                f"{sorted(missing)}; an item needs subject, memory_answer, "
                f"context_answer (optional: frequency, relation)"
            )
        items.append(ConflictItem(**data))
    if not items:
        raise ConflictDataError(f"{path} holds no items")
    return items


def load_counts(path) -> dict[str, float]:
    """A subject -> training-frequency table: JSON object, or CSV/TSV lines ``subject,count``."""
    text = read_user_file(path, ConflictDataError, "subject count table")
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ConflictDataError(
                f"{path}: a JSON count table must be an object {{subject: count}}"
            )
        return {str(k): float(v) for k, v in data.items()}
    except json.JSONDecodeError:
        pass
    table = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.replace("\t", ",").rsplit(",", 1)]
        try:
            table[parts[0]] = float(parts[1])
        except (IndexError, ValueError):
            if number == 1:
                continue  # header
            raise ConflictDataError(
                f"{path}:{number}: expected 'subject,count', got {line!r}"
            ) from None
    return table
