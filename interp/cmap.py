"""Cross-model activation patching (CMAP; Prakash et al. 2024).

Two models of the same architecture (a base model and its fine-tuned version, or two
checkpoints of one run) read the same input. CMAP runs the *source* model, keeps chosen heads'
activations, and writes them into the *base* model's forward pass at chosen positions; whatever
the base model then does shows what those heads' activations carry that the base lacks. With
the heads of a circuit group patched at that group's position, the accuracy gained says how
much of the gap between the models that group explains:

    recovered = (acc(base with group from source) - acc(base)) / (acc(source) - acc(base))

Sites: ``z`` (a head's output before W_O, per query head) or its inputs ``q`` (per query
head), ``k`` / ``v`` (per kv group under grouped-query attention: a head picks its group).

    >>> from interp.testing import tiny_model
    >>> base, ft = tiny_model("llama", seed=0), tiny_model("llama", seed=1)
    >>> run = cmap(base, ft, ["the cat saw a red box"], [CrossPatch(["L1H0", "L1H3"])])
    >>> tuple(run.logits.shape)
    (1, 60)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

import torch

from .backends.plan import Edit, EditContext, RunPlan
from .errors import InvalidArgumentError
from .heads import Head, parse_heads
from .tokens import Tokens

__all__ = [
    "CrossPatch",
    "CMAPRun",
    "ModelMismatchError",
    "check_compatible",
    "cmap",
    "cmap_accuracy",
    "recovered_share",
    "CMAP_SITES",
]

CMAP_SITES = ("z", "q", "k", "v")


class ModelMismatchError(InvalidArgumentError):
    """The two models cannot exchange activations (different architecture, shapes or tokenizer)."""


@dataclass(frozen=True)
class CrossPatch:
    """Heads to patch and where: ``positions`` None for every position, else one index per
    prompt."""

    heads: tuple[Head, ...]
    positions: Optional[tuple[int, ...]] = None

    def __init__(self, heads, positions=None):
        object.__setattr__(self, "heads", parse_heads(heads))
        if positions is not None:
            positions = tuple(
                int(p)
                for p in (positions.tolist() if isinstance(positions, torch.Tensor) else positions)
            )
        object.__setattr__(self, "positions", positions)


@dataclass(frozen=True)
class CMAPRun:
    """Last-position logits of the base model under the patch [batch, vocab], and its accuracy."""

    logits: torch.Tensor
    accuracy: Optional[float]
    site: str
    heads: tuple[Head, ...]
    base_model: str
    source_model: str


_SHAPE_FIELDS = ("n_layers", "n_heads", "n_kv_heads", "d_head", "d_model", "vocab_size")


def check_compatible(base, source) -> None:
    """Raise `ModelMismatchError` unless `base` and `source` share architecture and head shapes."""
    if base.architecture != source.architecture:
        raise ModelMismatchError(
            f"CMAP needs two models of the same architecture; "
            f"got {base.architecture} ({base.name}) and "
            f"{source.architecture} ({source.name}). Patch between checkpoints of one architecture."
        )
    diffs = [
        f"{f}: {getattr(base, f)} vs {getattr(source, f)}"
        for f in _SHAPE_FIELDS
        if getattr(base, f) != getattr(source, f)
    ]
    if diffs:
        raise ModelMismatchError(
            f"CMAP needs matching head layouts; {base.name} and {source.name} differ in "
            + "; ".join(diffs)
            + ". Use two checkpoints of the same model configuration."
        )


def _same_tokens(base, source, prompts) -> Tokens:
    tokens = base.to_tokens(prompts)
    other = source.to_tokens(prompts)
    if other.input_ids.shape != tokens.input_ids.shape or not torch.equal(
        other.input_ids.cpu(), tokens.input_ids.cpu()
    ):
        raise ModelMismatchError(
            f"{base.name} and {source.name} tokenize the prompts differently; CMAP "
            "needs a shared tokenizer so positions line up"
        )
    return tokens


def _check_patches(base, patches, n_prompts: int) -> list[CrossPatch]:
    if isinstance(patches, CrossPatch):
        patches = [patches]
    else:
        patches = list(patches)
        if patches and not isinstance(patches[0], CrossPatch):
            patches = [CrossPatch(patches)]
    for patch in patches:
        base.heads(patch.heads)
        if patch.positions is not None and len(patch.positions) != n_prompts:
            raise InvalidArgumentError(
                f"CrossPatch.positions needs one position per prompt ({n_prompts}), "
                f"got {len(patch.positions)}"
            )
    return patches


def _unit(model, site: str, head: Head) -> int:
    """Index of `head` along the head axis of `site` (its kv group for k / v)."""
    if site in ("k", "v"):
        return head.head // (model.n_heads // model.n_kv_heads)
    return head.head


def _capture(source, tokens: Tokens, site: str, layers, backend) -> dict[int, torch.Tensor]:
    plan = RunPlan(source.edits(None, True), capture=[(l, site) for l in layers])
    with torch.no_grad():
        source.run_plan(tokens, plan, backend=backend)
    return {layer: t for (layer, _), t in plan.captured().items()}


def _patch_fn(units_positions: list[tuple[int, Optional[torch.Tensor]]], values: torch.Tensor):
    def patch(t: torch.Tensor, ctx: EditContext) -> torch.Tensor:
        t = t.clone()
        rows = torch.arange(t.shape[0], device=t.device)
        for unit, positions in units_positions:
            if positions is None:
                t[:, :, unit] = values[:, :, unit].to(t.dtype)
            else:
                pos = positions.to(t.device)
                t[rows, pos, unit] = values[rows, pos, unit].to(t.dtype)
        return t

    return patch


def _edits(base, patches: list[CrossPatch], site: str, captured, rows: slice) -> list[Edit]:
    per_layer: dict[int, list] = {}
    for patch in patches:
        pos = (
            None
            if patch.positions is None
            else torch.tensor(patch.positions[rows], dtype=torch.long)
        )
        for head in patch.heads:
            per_layer.setdefault(head.layer, []).append((_unit(base, site, head), pos))
    return [
        Edit(layer, site, _patch_fn(items, captured[layer])) for layer, items in per_layer.items()
    ]


def cmap(
    base,
    source,
    prompts,
    patches: Union[CrossPatch, Sequence[CrossPatch], Sequence],
    *,
    site: str = "z",
    answer_ids=None,
    batch_size: int = 64,
    backend=None,
) -> CMAPRun:
    """Run `base` on `prompts` with `patches` taken from `source` on the same prompts.

    patches: a `CrossPatch`, a list of them (e.g. one per circuit group, each at its own
    positions), or a plain list of heads (patched at every position). Interventions applied to
    either model stay active in its run. With `answer_ids` ([n] token ids) the accuracy of the
    last-position argmax is returned too.
    """
    if site not in CMAP_SITES:
        raise InvalidArgumentError(f"CMAP site must be one of {CMAP_SITES}, got {site!r}")
    check_compatible(base, source)
    tokens = _same_tokens(base, source, prompts)
    n = len(tokens)
    patches = _check_patches(base, patches, n)
    layers = sorted({h.layer for p in patches for h in p.heads})
    out = []
    for start in range(0, n, batch_size):
        rows = slice(start, min(n, start + batch_size))
        chunk = Tokens(tokens.input_ids[rows], tokens.attention_mask[rows])
        captured = _capture(source, chunk, site, layers, backend)
        plan = RunPlan(base.edits(None, True) + _edits(base, patches, site, captured, rows))
        with torch.no_grad():
            out.append(base.run_plan(chunk, plan, backend=backend).logits[:, -1].float())
    logits = torch.cat(out)
    accuracy = None if answer_ids is None else _accuracy(logits, answer_ids)
    heads = tuple(h for p in patches for h in p.heads)
    return CMAPRun(logits, accuracy, site, heads, base.name, source.name)


def _accuracy(logits: torch.Tensor, answer_ids) -> float:
    answers = torch.as_tensor(answer_ids, device=logits.device).long()
    if answers.shape[0] != logits.shape[0]:
        raise InvalidArgumentError(
            f"answer_ids has {answers.shape[0]} entries for {logits.shape[0]} prompts"
        )
    return float((logits.argmax(-1) == answers).float().mean())


def cmap_accuracy(
    base,
    source,
    prompts,
    answer_ids,
    patches,
    *,
    site: str = "z",
    batch_size: int = 64,
    backend=None,
) -> float:
    """Accuracy of `base` with `patches` from `source` (see `cmap`)."""
    return cmap(
        base,
        source,
        prompts,
        patches,
        site=site,
        answer_ids=answer_ids,
        batch_size=batch_size,
        backend=backend,
    ).accuracy


def recovered_share(patched: float, base: float, source: float) -> Optional[float]:
    """Share of the base -> source gap that a patch recovers; None when there is no gap."""
    gap = source - base
    return None if abs(gap) < 1e-12 else (patched - base) / gap
