"""Which heads does a behaviour need? Zero-ablate each head and measure the answer's loss.

The simplest causal head map: for every head h, prune it (z_h = 0) and record how much the
mean cross-entropy of the expected answer token rises. Positive = the behaviour needs h.

    >>> scores = head_ablation_scores(
    ...     model, ["Q : capital of Avaria ? A :"], ["Rusk"]
    ... )  # doctest: +SKIP
    >>> scores.top(3)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Sequence

import torch

from .errors import InvalidArgumentError
from .interventions import PruneHeads
from .results import HeadScores, data_hash

__all__ = ["answer_loss", "head_ablation_scores"]


def answer_ids(model, answers: Sequence[str]) -> torch.Tensor:
    """First token of each answer (as the model's tokenizer splits it after a space)."""
    ids = []
    for answer in answers:
        pieces = model.tokenizer(" " + answer.strip(), add_special_tokens=False)["input_ids"]
        if not pieces:
            raise InvalidArgumentError(f"answer {answer!r} tokenizes to nothing")
        ids.append(pieces[0])
    return torch.tensor(ids, device=model.device)


def answer_loss(model, prompts: Sequence[str], answers: Sequence[str], interventions=None) -> float:
    """Mean cross-entropy of each answer's first token after its prompt."""
    if len(prompts) != len(answers):
        raise InvalidArgumentError(f"got {len(prompts)} prompts but {len(answers)} answers")
    logits = model.forward(list(prompts), interventions=interventions)[:, -1]
    return float(torch.nn.functional.cross_entropy(logits.float(), answer_ids(model, answers)))


def head_ablation_scores(model, prompts: Sequence[str], answers: Sequence[str]) -> HeadScores:
    """Rise in answer loss when each head is zero-ablated: HeadScores [layer, head]."""
    base = answer_loss(model, prompts, answers)
    scores = torch.zeros(model.n_layers, model.n_heads)
    for head in model.all_heads():
        scores[head.layer, head.head] = (
            answer_loss(model, prompts, answers, PruneHeads([head])) - base
        )
    return HeadScores(
        scores,
        model=model.name,
        method="zero-ablation: rise in answer loss",
        data_hash=data_hash([list(prompts), list(answers)]),
        meta={"base_loss": base, "n_prompts": len(prompts)},
    )
