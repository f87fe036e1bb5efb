"""The copy test and what feeds it: pure scoring functions, the argmax recorder, and the "rows"
attention route.

A head *copies* at an answer step that emits token w when its attention maximum (the key it
attends to most) lies inside the needle's answer span and the prompt token there is w
(`copy_hits`). Per test, copy steps / span length (`per_test_scores`); per head, the mean over
solved tests (`retrieval_scores`); a test is solved when ROUGE-1 recall > 0.5 (`rouge1_recall`).

Only each scored query's argmax key and the token there are kept per layer (`ArgmaxRecorder`),
fed by either route: ``pattern`` edits (the library's site), or `rows_route`, under which the
model runs its own SDPA attention and `rows_attention` also computes the pre-softmax scores of
the scored rows only. The route's state (recorder, rows, each module's layer) is owned by the
call: `rows_route` sets it on this model's attention modules and removes it on exit, so nothing
leaks to another model or another call.
"""

from __future__ import annotations

import re
from collections import Counter
from contextlib import contextmanager
from typing import Optional

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

from interp.backends.attention import attention_implementation
from interp.backends.plan import Edit, EditContext
from interp.errors import InvalidArgumentError

__all__ = [
    "copy_hits",
    "per_test_scores",
    "retrieval_scores",
    "rouge1_recall",
    "ArgmaxRecorder",
    "RowsRoute",
    "rows_route",
    "rows_attention",
    "ROWS_IMPLEMENTATION",
]


def copy_hits(
    positions: torch.Tensor,
    tokens: torch.Tensor,
    emitted: torch.Tensor,
    span: torch.Tensor,
    valid: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Copy steps per head: argmax key inside the answer span and its token == the emitted one.

    positions, tokens: [batch, layer, head, step] argmax key position and the token there;
    emitted: [batch, step]; span: [batch, 2] (start, end) of the answer span; valid: [batch, step].
    Returns [batch, layer, head] counts (float).

    >>> pos = torch.tensor([[[[5, 6], [0, 0]]]])        # 1 test, 1 layer, 2 heads, 2 steps
    >>> tok = torch.tensor([[[[9, 8], [1, 1]]]])
    >>> copy_hits(pos, tok, torch.tensor([[9, 8]]), torch.tensor([[5, 7]])).tolist()
    [[[2.0, 0.0]]]
    """
    start = span[:, 0].view(-1, 1, 1, 1)
    end = span[:, 1].view(-1, 1, 1, 1)
    hit = (positions >= start) & (positions < end) & (tokens == emitted[:, None, None, :])
    if valid is not None:
        hit = hit & valid[:, None, None, :].bool()
    return hit.sum(-1).float()


def per_test_scores(hits: torch.Tensor, span_len: torch.Tensor) -> torch.Tensor:
    """Per-test retrieval scores [batch, layer, head]: copy steps / answer-span length."""
    return hits / span_len.clamp(min=1).to(hits.dtype).view(-1, 1, 1)


def retrieval_scores(per_test: torch.Tensor, kept: torch.Tensor) -> Optional[torch.Tensor]:
    """Mean per-test score over kept (solved) tests; None when no test was kept.

    >>> retrieval_scores(
    ...     torch.tensor([[[1.0]], [[0.0]], [[0.5]]]), torch.tensor([True, False, True])
    ... ).tolist()
    [[0.75]]
    """
    kept = kept.bool()
    if not bool(kept.any()):
        return None
    return per_test[kept].mean(0)


def rouge1_recall(reference: str, response: str) -> float:
    """Share of the reference's words (lower-cased, counted with repeats) found in the response.

    >>> rouge1_recall("eat a sandwich", "I would eat a sandwich")
    1.0
    >>> rouge1_recall("eat a sandwich", "a nap")
    0.3333333333333333
    """
    ref = Counter(re.findall(r"\w+", reference.lower()))
    if not ref:
        raise InvalidArgumentError("the reference answer has no words to score against")
    got = Counter(re.findall(r"\w+", response.lower()))
    return sum(min(n, got[w]) for w, n in ref.items()) / sum(ref.values())


class ArgmaxRecorder:
    """Per layer, each scored query's argmax key position and the token at that key.

    Two ways to feed it, both keeping only [batch, head, query] integers per layer:
    - `edits()`: observer `Edit`s on every layer's ``pattern`` site (the library's route; the
      pattern passes through unchanged);
    - `observe_scores(layer, scores)`: pre-softmax scores of the scored query rows only (the
      rows route, see `rows_attention`); softmax is monotonic, so the argmax is the same.
    Set `key_ids` ([batch, keys], the token at every key position) before the call.
    """

    def __init__(self, n_layers: int):
        self.n_layers = n_layers
        self.key_ids: Optional[torch.Tensor] = None
        self.positions: dict[int, torch.Tensor] = {}
        self.tokens: dict[int, torch.Tensor] = {}

    def edits(self) -> list[Edit]:
        return [Edit(layer, "pattern", self._observer(layer)) for layer in range(self.n_layers)]

    def _observer(self, layer: int):
        def observe(pattern: torch.Tensor, ctx: EditContext) -> torch.Tensor:
            self.record(layer, pattern.detach().argmax(-1))
            return pattern

        return observe

    def observe_scores(self, layer: int, scores: torch.Tensor) -> None:
        self.record(layer, scores.argmax(-1))

    def record(self, layer: int, pos: torch.Tensor) -> None:
        """pos: [batch, head, query] argmax key positions."""
        keys = self.key_ids.to(pos.device)
        self.positions[layer] = pos
        self.tokens[layer] = keys.gather(1, pos.flatten(1)).view_as(pos)

    @property
    def complete(self) -> bool:
        return all(layer in self.positions for layer in range(self.n_layers))

    def stacked(self) -> tuple[torch.Tensor, torch.Tensor]:
        """[batch, layer, head, query] positions and tokens of the last call."""
        missing = [l for l in range(self.n_layers) if l not in self.positions]
        if missing:
            raise RuntimeError(f"no attention was seen at layer(s) {missing}")
        order = range(self.n_layers)
        return (
            torch.stack([self.positions[l] for l in order], 1),
            torch.stack([self.tokens[l] for l in order], 1),
        )


# --- the rows route: the model's own fast attention, plus the scored rows' scores ----------

ROWS_IMPLEMENTATION = "interp_retrieval_rows"
_ROUTE_ATTR = "interp_rows_route"  # set on each attention module only inside `rows_route`


def _row_scores(query, key, attention_mask, scaling, rows: int) -> torch.Tensor:
    """Scores [b, H, rows, k] of the last `rows` queries; keys a query may not see are at -inf.
    Without an additive mask the scaling is left out (a positive factor does not move an argmax)."""
    b, n_heads, q_len, d = query.shape
    n_kv, k_len = key.shape[1], key.shape[2]
    q = query[:, :, q_len - rows :].reshape(b, n_kv, (n_heads // n_kv) * rows, d)
    scores = torch.matmul(q, key.transpose(-1, -2)).view(b, n_heads, rows, k_len).float()
    if attention_mask is None:
        if rows == 1:  # the newest query sees every key
            return scores
        q_pos = torch.arange(k_len - rows, k_len, device=query.device)[:, None]
        allowed = torch.arange(k_len, device=query.device)[None, :] <= q_pos
        return scores.masked_fill(~allowed, float("-inf"))
    mask = attention_mask[:, :, attention_mask.shape[2] - rows :, :k_len]
    if mask.dtype == torch.bool:
        return scores.masked_fill(~mask, float("-inf"))
    return scores * (scaling if scaling is not None else d**-0.5) + mask.float()


class RowsRoute:
    """One call's rows route: the recorder that gets the scores and how many rows are scored.

    `rows_route` hands it, with its layer index, to each attention module of one model;
    `rows_attention` calls `observe` from inside that module's attention."""

    def __init__(self, recorder: ArgmaxRecorder, rows: int):
        self.recorder = recorder
        self.rows = rows

    def observe(self, layer: int, query, key, attention_mask, scaling) -> None:
        self.recorder.observe_scores(
            layer, _row_scores(query, key, attention_mask, scaling, self.rows)
        )


def rows_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """SDPA attention that also hands the scored rows' scores to the route set on `module`
    (none outside `rows_route`: then it is plain SDPA)."""
    out = sdpa_attention_forward(
        module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs
    )
    owner = module.__dict__.get(_ROUTE_ATTR)
    if owner is not None:
        route, layer = owner
        route.observe(layer, query, key, attention_mask, scaling)
    return out


AttentionInterface.register(ROWS_IMPLEMENTATION, rows_attention)
AttentionMaskInterface.register(ROWS_IMPLEMENTATION, ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])


@contextmanager
def rows_route(model, recorder: ArgmaxRecorder, rows: int):
    """Inside the block `model` attends with `rows_attention`, each of its attention modules
    recording into `recorder` the scores of its last `rows` queries; on exit the attention
    implementation and every module's previous route (normally none) are restored."""
    route = RowsRoute(recorder, rows)
    modules = list(model.attention_modules())
    saved = [(m, m.__dict__.get(_ROUTE_ATTR)) for m in modules]
    try:
        for layer, module in enumerate(modules):
            module.__dict__[_ROUTE_ATTR] = (route, layer)
        with attention_implementation(model.hf, ROWS_IMPLEMENTATION):
            yield route
    finally:
        for module, previous in saved:
            if previous is None:
                module.__dict__.pop(_ROUTE_ATTR, None)
            else:
                module.__dict__[_ROUTE_ATTR] = previous
