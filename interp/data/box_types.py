"""The model-free types of the entity-tracking data (`interp.data.boxes`): templates, samples,
datasets and pairs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import torch

from interp.errors import InvalidArgumentError

DESIDERATA = ("positional", "object", "label")


class BoxDataError(InvalidArgumentError):
    """Box data that cannot be built: too few objects/labels, or words that are not one token."""


@dataclass(frozen=True)
class BoxTemplate:
    """How a sample becomes text: segments joined by `separator`, then `end`, then the query."""

    segment: str = "the {object} is in box {label}"
    separator: str = " , "
    end: str = " . "
    query: str = "box {label} contains the"

    def render(self, objects: Sequence[str], labels: Sequence[str], query_label: str) -> str:
        body = self.separator.join(
            self.segment.format(object=o, label=l) for o, l in zip(objects, labels)
        )
        return body + self.end + self.query.format(label=query_label)


# The zoo's world language (interp.zoo.world: `box_prompts`), word level.
ZOO_TEMPLATE = BoxTemplate()
# The paper's wording, for pretrained subword models ("Box T contains the" -> " pot").
PAPER_TEMPLATE = BoxTemplate(
    "the {object} is in Box {label}", ", ", ". ", "Box {label} contains the"
)

ENGLISH_PATH = Path(__file__).with_name("english") / "boxes.json"


@lru_cache(maxsize=1)
def _english_words() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The shipped English objects and box labels (before any tokenizer check)."""
    data = json.loads(ENGLISH_PATH.read_text(encoding="utf-8"))
    return tuple(data["objects"]), tuple(data["labels"])


@dataclass(frozen=True)
class BoxSample:
    """One prompt: ``objects[i]`` is in box ``labels[i]``; the query asks for box ``query_label``.

    `query` is the index of the correct segment (for a corrupt sample, whose query label is
    absent from the context, the segment it was built around).
    """

    objects: tuple[str, ...]
    labels: tuple[str, ...]
    query: int
    query_label: str

    @property
    def answer(self) -> str:
        return self.objects[self.query]

    def prompt(self, template: BoxTemplate = ZOO_TEMPLATE) -> str:
        return template.render(self.objects, self.labels, self.query_label)


@dataclass(frozen=True)
class BoxDataset:
    """Samples, their prompts, answer token ids and the circuit's positions (all [n] tensors).

    Positions index the model's token sequence (BOS included): `last_pos` the final token,
    `query_pos` the query label, `label_pos` the correct segment's label in the context
    (the earlier occurrence of the query label), `object_pos` the correct object.
    """

    samples: tuple[BoxSample, ...]
    prompts: tuple[str, ...]
    answer_ids: torch.Tensor
    last_pos: torch.Tensor
    query_pos: torch.Tensor
    label_pos: torch.Tensor
    object_pos: torch.Tensor
    template: BoxTemplate
    seq_len: int
    vocabulary: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def answers(self) -> list[str]:
        return [s.answer for s in self.samples]

    @property
    def n_boxes(self) -> int:
        return len(self.samples[0].objects)

    def subset(self, index) -> "BoxDataset":
        """Rows `index` (a slice or a list of ints) as a new dataset."""
        rows = (
            list(range(len(self)))[index] if isinstance(index, slice) else [int(i) for i in index]
        )
        pick = torch.tensor(rows, dtype=torch.long)
        return replace(
            self,
            samples=tuple(self.samples[i] for i in rows),
            prompts=tuple(self.prompts[i] for i in rows),
            answer_ids=self.answer_ids[pick],
            last_pos=self.last_pos[pick],
            query_pos=self.query_pos[pick],
            label_pos=self.label_pos[pick],
            object_pos=self.object_pos[pick],
        )


@dataclass(frozen=True)
class BoxPairs:
    """A DCM desideratum: base and source datasets (same shapes) and the target token per pair."""

    kind: str
    base: BoxDataset
    source: BoxDataset
    target_ids: torch.Tensor

    def __len__(self) -> int:
        return len(self.base)

    def subset(self, index) -> "BoxPairs":
        rows = (
            list(range(len(self)))[index] if isinstance(index, slice) else [int(i) for i in index]
        )
        return BoxPairs(
            self.kind,
            self.base.subset(rows),
            self.source.subset(rows),
            self.target_ids[torch.tensor(rows, dtype=torch.long)],
        )


# --- tokenizer checks ----------------------------------------------------------------------
