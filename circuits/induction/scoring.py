"""Scoring: one forward per repeated sequence gives every head's statistics and the copy losses.

`score_heads` runs the sequences in batches; in each forward the pattern edits of an
`Observer` reduce attention to per-sequence statistics, the heads' z and the final norm's
input are captured for the copying score, and the logits give the next-token loss on the
first and second copy (first token of each copy left out: it cannot be predicted).

    >>> from interp.testing import tiny_model
    >>> from circuits.induction.config import Config, make_sequences
    >>> model = tiny_model("llama")
    >>> stats = score_heads(
    ...     model, make_sequences(model, Config(n=2, span_lengths=(4, 6), offsets=(0,)))
    ... )
    >>> tuple(stats["prefix"].shape), tuple(stats["loss_second"].shape)
    ((4, 2, 8), (4,))
"""

from __future__ import annotations

import torch

from interp.backends.plan import RunPlan
from interp.data.repeats import RepeatSet
from interp.errors import InvalidArgumentError
from interp.tokens import Tokens

from .copying import copying_scores
from .observe import Observer

__all__ = ["score_heads", "sequence_losses", "token_batch", "next_token_nll", "copy_losses"]


def token_batch(ids: torch.Tensor, device) -> Tokens:
    """Token ids [b, T] as an unpadded `Tokens` batch on `device`."""
    return Tokens(ids.to(device), torch.ones_like(ids, device=device))


def next_token_nll(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """[b, T - 1] loss of each next token given the logits [b, T, vocab] of `ids` [b, T]."""
    logp = torch.log_softmax(logits[:, :-1].float().cpu(), -1)
    return -logp.gather(-1, ids[:, 1:, None])[..., 0]


def copy_losses(nll: torch.Tensor, seqs: RepeatSet) -> tuple[torch.Tensor, torch.Tensor]:
    """(first-copy loss [b], second-copy loss [b]): mean next-token loss over each copy's
    targets."""
    out = []
    for which in ("first", "second"):
        m = seqs.target_mask(which).float()
        out.append((nll * m).sum(1) / m.sum(1))
    return out[0], out[1]


def _forward_observed(model, seqs: RepeatSet, obs: Observer, interventions):
    """Logits, captured z per layer and the final norm's input, of one observed forward."""
    edits = model._edits(interventions, True) + [obs.edit(layer) for layer in range(model.n_layers)]
    plan = RunPlan(
        edits, capture=[(layer, "z") for layer in range(model.n_layers)], w_out=model.w_out
    )
    captured = {}
    hook = lambda mod, args: captured.__setitem__("x", args[0].detach())  # noqa: E731
    handle = model.final_norm.register_forward_pre_hook(hook)
    try:
        with torch.no_grad():
            logits = model.run_plan(token_batch(seqs.input_ids, model.device), plan).logits
    finally:
        handle.remove()
    if "x" not in captured:
        raise RuntimeError(
            "the final norm was not called during the forward pass; cannot compute copying"
        )
    zs = {layer: t for (layer, site), t in plan.captured().items() if site == "z"}
    return logits, zs, captured["x"].cpu()


def _score_batch(model, seqs: RepeatSet, interventions=None) -> dict:
    obs = Observer(seqs, model.n_layers, model.n_heads)
    logits, zs, final_in = _forward_observed(model, seqs, obs, interventions)
    first, second = copy_losses(next_token_nll(logits, seqs.input_ids), seqs)
    return {
        "prefix": obs.prefix,
        "dup": obs.dup,
        "prev": obs.prev,
        "offsets": obs.offsets,
        "copy": copying_scores(model, seqs, obs, zs, final_in),
        "loss_first": first,
        "loss_second": second,
    }


def score_heads(model, seqs: RepeatSet, *, batch_size: int = 32, interventions=None) -> dict:
    """Per-sequence statistics for every head, batched: dict of tensors with a leading [n_seqs] dim.

    keys: prefix, dup, prev, copy ([n, n_layers, n_heads]), offsets
    ([n, n_layers, n_heads, seq_len]), loss_first, loss_second ([n]). Pure: the model and `seqs`
    are not modified.
    """
    if seqs.seq_len > model.n_ctx:
        raise InvalidArgumentError(
            f"sequences of {seqs.seq_len} tokens exceed the context window of " f"{model.n_ctx}"
        )
    parts = [_score_batch(model, chunk, interventions) for chunk in seqs.batches(batch_size)]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def sequence_losses(model, seqs: RepeatSet, interventions=None, batch_size: int = 32):
    """(first-copy loss [n], second-copy loss [n]) per sequence, under `interventions`."""
    firsts, seconds = [], []
    for chunk in seqs.batches(batch_size):
        with torch.no_grad():
            logits = model.forward(
                token_batch(chunk.input_ids, model.device), interventions=interventions
            )
        f, s = copy_losses(next_token_nll(logits, chunk.input_ids), chunk)
        firsts.append(f)
        seconds.append(s)
    return torch.cat(firsts), torch.cat(seconds)
