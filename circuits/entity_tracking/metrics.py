"""What the circuit is judged by: argmax accuracy on box prompts, the chance bar a model must
clear, and the path-patching metrics, p(correct) (the paper's) and the logit difference
(correct object minus the mean of the prompt's other objects, which does not saturate when the
model is sure).

    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0, 1.0]])
    >>> float(logit_diff(logits, torch.tensor([0]), torch.tensor([[1, 2]])))
    1.5
"""

from __future__ import annotations

import math

import torch

from interp.data.boxes import BoxDataset, single_token_id

__all__ = [
    "accuracy",
    "chance",
    "prob_metric",
    "other_object_ids",
    "logit_diff",
    "logit_diff_metric",
    "metric",
]


def accuracy(
    model, data: BoxDataset, interventions=None, *, batch_size: int = 64, backend=None
) -> float:
    """Share of prompts whose last-position argmax is the correct object."""
    hits = 0
    for start in range(0, len(data), batch_size):
        rows = slice(start, start + batch_size)
        with torch.no_grad():
            logits = model.forward(
                list(data.prompts[rows]), interventions=interventions, backend=backend
            )
        hits += int((logits[:, -1].argmax(-1).cpu() == data.answer_ids[rows]).sum())
    return hits / len(data)


def chance(n_boxes: int, n: int) -> tuple[float, float]:
    """Chance accuracy (a random box's object) and the bar a model must clear: chance plus three
    binomial standard errors over `n` prompts."""
    p = 1.0 / n_boxes
    return p, p + 3 * math.sqrt(p * (1 - p) / n)


def prob_metric(answer_ids: torch.Tensor):
    """logits [n, vocab] -> p(correct object) per row."""

    def metric(logits: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(logits.shape[0], device=logits.device)
        return logits.float().softmax(-1)[rows, answer_ids.to(logits.device)]

    return metric


def other_object_ids(model, data: BoxDataset) -> torch.Tensor:
    """[n, n_boxes - 1] token ids of each prompt's objects other than the answer."""
    ids = {}
    return torch.tensor(
        [
            [
                ids.setdefault(o, single_token_id(model.tokenizer, o))
                for i, o in enumerate(s.objects)
                if i != s.query
            ]
            for s in data.samples
        ]
    )


def logit_diff(logits: torch.Tensor, answers: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    """logit(correct object) - mean logit of the prompt's other objects, per row."""
    logits = logits.float()
    rows = torch.arange(logits.shape[0], device=logits.device)
    other = logits.gather(1, others.to(logits.device)).mean(-1)
    return logits[rows, answers.to(logits.device)] - other


def logit_diff_metric(model, data: BoxDataset):
    """logits [n, vocab] -> `logit_diff` per row, for the prompts of `data`."""
    others = other_object_ids(model, data)
    return lambda logits: logit_diff(logits, data.answer_ids, others)


def metric(model, data: BoxDataset, kind: str):
    """The path-patching metric named `kind` ("prob" or "logit_diff") for the prompts of `data`."""
    return prob_metric(data.answer_ids) if kind == "prob" else logit_diff_metric(model, data)
