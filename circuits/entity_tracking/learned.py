"""The learned circuit: a hard-concrete gate per head (Louizos, Welling & Kingma 2018), trained
so that the task survives with as few open gates as possible, then pruned by backward
elimination while validation prompts keep the target.

A gate is a stretched, clipped binary-concrete sample, so it is exactly 0 or 1 with positive
probability and the expected number of open gates (the L0 norm) is differentiable in the gates'
log-odds.

    >>> import torch
    >>> hard_concrete_gate(torch.tensor([-20.0, 20.0])).tolist()
    [0.0, 1.0]
"""

from __future__ import annotations

import math
from typing import Optional

import torch

from interp.data.boxes import BoxDataset
from interp.dcm import mask_plan
from interp.errors import InvalidArgumentError
from interp.progress import stage
from interp.tokens import Tokens

from .ablation import ablation_sources, circuit_accuracy, random_faithfulness
from .config import ABLATIONS, MASK_LOSSES
from .greedy import greedy_circuit
from .metrics import accuracy, logit_diff, other_object_ids

__all__ = [
    "hard_concrete_sample",
    "hard_concrete_gate",
    "hard_concrete_l0",
    "mask_loss",
    "learned_circuit",
]

_HC_LOW, _HC_HIGH, _HC_TEMPERATURE = -0.1, 1.1, 2 / 3


def hard_concrete_sample(
    log_alpha: torch.Tensor, generator: Optional[torch.Generator] = None
) -> torch.Tensor:
    """One gate value in [0, 1] per entry of `log_alpha` (differentiable in it)."""
    u = torch.rand(log_alpha.shape, generator=generator).clamp(1e-6, 1 - 1e-6)
    s = torch.sigmoid((torch.log(u) - torch.log1p(-u) + log_alpha) / _HC_TEMPERATURE)
    return (s * (_HC_HIGH - _HC_LOW) + _HC_LOW).clamp(0.0, 1.0)


def hard_concrete_gate(log_alpha: torch.Tensor) -> torch.Tensor:
    """The deterministic gate used after training (the noise-free sample)."""
    return (torch.sigmoid(log_alpha) * (_HC_HIGH - _HC_LOW) + _HC_LOW).clamp(0.0, 1.0)


def hard_concrete_l0(log_alpha: torch.Tensor) -> torch.Tensor:
    """Expected number of open gates, P(gate > 0) summed."""
    return torch.sigmoid(log_alpha - _HC_TEMPERATURE * math.log(-_HC_LOW / _HC_HIGH)).sum()


def mask_loss(
    kind: str, logits: torch.Tensor, answers: torch.Tensor, others: torch.Tensor
) -> torch.Tensor:
    """The task loss of the gates: ``"ce"``, -log p(correct) over the whole vocabulary (what
    argmax accuracy rewards), or ``"logit_diff"``, minus the mean `logit_diff`."""
    if kind == "ce":
        return torch.nn.functional.cross_entropy(logits.float(), answers.to(logits.device))
    return -logit_diff(logits, answers, others).mean()


def _train_gates(
    model,
    heads,
    select: BoxDataset,
    sources: dict,
    lam: float,
    *,
    loss: str,
    lr: float,
    epochs: int,
    batch_size: int,
    seed: int,
    backend,
    bar,
) -> torch.Tensor:
    """Adam on the gates' log-odds (all open at the start) for `epochs` passes over `select`;
    returns the trained log-odds."""
    tokens = model.to_tokens(list(select.prompts))
    others = other_object_ids(model, select)
    log_alpha = torch.full((len(heads),), 3.0, requires_grad=True)
    opt = torch.optim.Adam([log_alpha], lr=lr)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(select), generator=gen)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            with torch.enable_grad():
                gates = hard_concrete_sample(log_alpha, gen)
                plan = mask_plan(model, heads, gates, sources)
                logits = model.run_plan(
                    Tokens(tokens.input_ids[rows], tokens.attention_mask[rows]),
                    plan,
                    backend=backend,
                ).logits[:, -1]
                value = mask_loss(
                    loss, logits, select.answer_ids[rows], others[rows]
                ) + lam * hard_concrete_l0(log_alpha)
                (log_alpha.grad,) = torch.autograd.grad(value, [log_alpha])
            opt.step()
            bar.update(1)
    return log_alpha.detach()


def learned_circuit(
    model,
    select: BoxDataset,
    evaluation: BoxDataset,
    reference: BoxDataset,
    *,
    validation: Optional[BoxDataset] = None,
    lambdas=(0.1, 0.15, 0.2, 0.25, 0.3),
    target: float = 0.9,
    ablation: str = "mean",
    loss: str = "ce",
    refine: bool = True,
    lr: float = 0.1,
    epochs: int = 20,
    batch_size: int = 32,
    seed: int = 0,
    n_random: int = 10,
    random_pool: str = "outside",
    backend=None,
) -> dict:
    """Which heads does the behaviour need? Learn a gate g_h per head, the rest of each head's z
    replaced by its mean (as `circuit_accuracy` ablates):

        z_h = g_h * z_h + (1 - g_h) * mean_h,   loss = task loss + lambda * E[#open gates]

    with hard-concrete gates (`hard_concrete_sample`: exactly 0 or 1 with positive probability,
    so training sees the hard ablation it is measured with) on the `select` prompts, Adam on the
    gates' log-odds. The task loss is ``"ce"``, -log p(correct object) over the vocabulary (what
    argmax accuracy rewards), or ``"logit_diff"`` (correct object - the prompt's other objects).
    Each lambda gives the heads whose noise-free gate is >= 0.5; with `refine`, a set that keeps
    `target` on the `validation` prompts is then pruned by backward elimination on `select`
    (`greedy_circuit` from that set), stopping at the smallest set that still keeps `target` on
    `validation`. The answer is the smallest set at `target` on `validation` over all lambdas,
    measured once on the held-out `evaluation` prompts, with `n_random` random head sets of its
    size beside it (drawn from `random_pool`, outside the answer by default). Without
    `validation` the `select` prompts stand in (they flatter the heads they chose). A learned
    counterpart of `greedy_circuit`: gradients weigh all heads at once, so redundant heads are
    judged together instead of one at a time."""
    if ablation not in ABLATIONS:
        raise InvalidArgumentError(f"ablation must be one of {ABLATIONS}, got {ablation!r}")
    if loss not in MASK_LOSSES:
        raise InvalidArgumentError(f"loss must be one of {MASK_LOSSES}, got {loss!r}")
    validation = select if validation is None else validation
    heads = list(model.all_heads())
    sources = ablation_sources(model, reference, ablation)
    kw = dict(batch_size=64, backend=backend)
    full_val, full_eval = accuracy(model, validation, **kw), accuracy(model, evaluation, **kw)

    def faith(kept, data, full) -> float:
        return circuit_accuracy(model, kept, data, reference, ablation=ablation, **kw) / max(
            full, 1e-12
        )

    runs = []
    steps = len(lambdas) * epochs * math.ceil(len(select) / batch_size)
    with stage("entity: learned gates", total=steps, unit="step") as bar:
        for lam in lambdas:
            log_alpha = _train_gates(
                model,
                heads,
                select,
                sources,
                lam,
                loss=loss,
                lr=lr,
                epochs=epochs,
                batch_size=batch_size,
                seed=seed,
                backend=backend,
                bar=bar,
            )
            learned = [h for h, g in zip(heads, hard_concrete_gate(log_alpha).tolist()) if g >= 0.5]
            run_ = {
                "lambda": lam,
                "n_heads_learned": len(learned),
                "heads_learned": [str(h) for h in learned],
                "faithfulness_validation_learned": faith(learned, validation, full_val),
            }
            kept, faith_val = learned, run_["faithfulness_validation_learned"]
            if refine and faith_val >= target and len(learned) > 1:
                pruned = greedy_circuit(
                    model,
                    select,
                    evaluation,
                    reference,
                    target=target,
                    ablation=ablation,
                    start=learned,
                    validation=validation,
                    **kw,
                )
                run_["refine_trajectory"] = pruned["trajectory"]
                kept, held_out = (
                    list(model.heads(pruned["smallest_at_target"])),
                    pruned["faithfulness_held_out"],
                )
                if pruned["faithfulness_validation"] is not None:  # None: no step kept the target
                    faith_val = pruned["faithfulness_validation"]
            else:
                held_out = faith(kept, evaluation, full_eval)
            run_.update(
                n_heads=len(kept),
                heads=[str(h) for h in kept],
                faithfulness_validation=faith_val,
                faithfulness_held_out=held_out,
            )
            runs.append(run_)
    good = [r for r in runs if r["faithfulness_validation"] >= target]
    best = min(good, key=lambda r: (r["n_heads"], -r["faithfulness_validation"])) if good else None
    if best is not None and n_random:
        best = dict(
            best,
            random_faithfulness=random_faithfulness(
                model,
                {"all": best["n_heads"]},
                evaluation,
                reference,
                full_eval,
                n_random,
                seed,
                located=list(model.heads(best["heads"])),
                pool=random_pool,
                ablation=ablation,
                **kw,
            ),
        )
    return {
        "target": target,
        "ablation": ablation,
        "loss": loss,
        "refine": refine,
        "n_heads_total": len(heads),
        "n_select": len(select),
        "n_validation": len(validation),
        "n_eval": len(evaluation),
        "lr": lr,
        "epochs": epochs,
        "seed": seed,
        "runs": runs,
        "best": best,
    }
