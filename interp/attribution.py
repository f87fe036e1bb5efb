"""Which prompt tokens drive an answer? Token attribution with captum's LLM attribution API.

For a prompt and a target answer, each method gives every prompt token a score in units of
the answer's log-probability ``log p(target | prompt)``:

- ``"feature_ablation"``: replace one token by a baseline token (``<unk>`` / pad) and record
  how much the log-probability drops. Cheap (one forward per token), misses interactions.
- ``"shapley"``: Shapley value sampling -- the token's mean marginal effect over random
  orders of removing tokens; the scores add up exactly to log p(all) - log p(all removed).
- ``"integrated_gradients"``: layer integrated gradients on the input embedding layer, on the
  straight path from the baseline token's embedding to each token's embedding, summed over
  the embedding dimension; the scores add up to the same difference up to the path error.

A target that tokenizes to several tokens is **attributed as a whole sequence**: the result
holds one row per target token (attribution to ``log p(t_i | prompt, t_<i)``) and their sum is
the attribution to ``log p(target | prompt)``; pass ``single_token=True`` to refuse such a target
instead (`MultiTokenTargetError`). The target is read as the continuation ``" " + target``
(like `interp.ablation.answer_ids`) unless it already starts with whitespace.

    >>> res = token_attribution(model, "the capital of Avaria is", "Rusk")   # doctest: +SKIP
    >>> res.top(3)                                                          # doctest: +SKIP
    [('Avaria', 3, 2.41), ('capital', 2, 0.87), ('is', 5, 0.12)]
    >>> res.plot(); res.to_frame()                                          # doctest: +SKIP

The model is run unmodified (``model.hf``); BOS is not attributed (it is never removed).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch

from interp.errors import InvalidArgumentError

__all__ = [
    "METHODS",
    "TokenAttribution",
    "token_attribution",
    "attribute_methods",
    "attributions_frame",
    "attributions_figure",
    "target_ids",
    "AttributionError",
    "MultiTokenTargetError",
]

METHODS = ("feature_ablation", "shapley", "integrated_gradients")


class AttributionError(InvalidArgumentError):
    """Bad input to token attribution; the message says what was expected and the fix."""


class MultiTokenTargetError(AttributionError):
    """The target answer tokenizes to several tokens and ``single_token=True`` was asked."""


# --------------------------------------------------------------------------- result


@dataclass(frozen=True)
class TokenAttribution:
    """Per-token attributions of one method, with provenance.

    ``scores[i, j]``: attribution of prompt token j to target token i's log-probability;
    ``total`` (= ``scores.sum(0)``): attribution to the whole target's log-probability.
    ``positions`` are the tokens' indices in the model input (BOS, when present, is 0).
    """

    model: str
    method: str
    prompt: str
    target: str
    input_tokens: tuple[str, ...]
    positions: tuple[int, ...]
    target_tokens: tuple[str, ...]
    scores: torch.Tensor
    meta: dict = field(default_factory=dict)

    @property
    def total(self) -> torch.Tensor:
        return self.scores.sum(0)

    def top(self, k: int = 5) -> list[tuple[str, int, float]]:
        """The k tokens with the largest total attribution: (token, position, score)."""
        order = torch.argsort(self.total, descending=True)[:k]
        return [
            (self.input_tokens[i], self.positions[i], float(self.total[i])) for i in order.tolist()
        ]

    def to_frame(self):
        """pandas table: one row per prompt token; total, then one column per target token."""
        frame = pd.DataFrame(
            {
                "position": list(self.positions),
                "token": list(self.input_tokens),
                "attribution": self.total.tolist(),
            }
        )
        if len(self.target_tokens) > 1:
            for i, tok in enumerate(self.target_tokens):
                frame[f"-> {tok} ({i})"] = self.scores[i].tolist()
        return frame

    def plot(self, title: Optional[str] = None):
        """Plotly heatmap: prompt tokens across; the total (and each target token) down."""
        rows = {"total": self.total}
        if len(self.target_tokens) > 1:
            rows.update(
                {f"-> {tok} ({i})": self.scores[i] for i, tok in enumerate(self.target_tokens)}
            )
        return _heatmap(
            rows,
            self.input_tokens,
            self.positions,
            title or (f"{self.model}: {_METHOD_NAMES[self.method]} attribution to '{self.target}'"),
        )

    def __repr__(self) -> str:
        return (
            f"TokenAttribution({self.method}, {len(self.input_tokens)} prompt tokens -> "
            f"{len(self.target_tokens)} target tokens, top={self.top(3)})"
        )


_METHOD_NAMES = {
    "feature_ablation": "feature ablation",
    "shapley": "Shapley value sampling",
    "integrated_gradients": "layer integrated gradients",
}


def _heatmap(rows: dict, tokens: Sequence[str], positions: Sequence[int], title: str):
    labels = [f"{tok} ({pos})" for tok, pos in zip(tokens, positions)]
    z = np.array([row.tolist() for row in rows.values()])
    text = [[f"{v:.3f}" for v in row] for row in z]
    bound = float(np.abs(z).max()) or 1.0
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=labels,
            y=list(rows),
            colorscale="RdBu",
            zmid=0,
            zmin=-bound,
            zmax=bound,
            text=text,
            texttemplate="%{text}",
            colorbar={"title": {"text": "Δ log p"}},
            hovertemplate="%{y}<br>token %{x}<br>attribution %{z:.4f}<extra></extra>",
        )
    )
    fig.update_layout(
        title={"text": title},
        xaxis={"type": "category", "title": {"text": "prompt token"}},
        yaxis={"type": "category", "autorange": "reversed"},
        height=180 + 40 * len(rows),
    )
    return fig


# --------------------------------------------------------------------------- inputs


class _ModelTokenizer:
    """The model's tokenizer, but `encode` gives exactly the ids `model.to_tokens` feeds the
    model."""

    def __init__(self, model):
        self.model = model
        self.tokenizer = model.tokenizer

    def encode(self, text, return_tensors=None, add_special_tokens=True, **_):
        ids = self.model.to_tokens(
            text, prepend_bos=None if add_special_tokens else False
        ).input_ids.cpu()
        return ids if return_tensors == "pt" else ids[0].tolist()

    def convert_ids_to_tokens(self, ids):
        return self.model.to_str(ids)

    def convert_tokens_to_ids(self, tokens):
        return self.tokenizer.convert_tokens_to_ids(tokens)

    def decode(self, *args, **kwargs):
        return self.tokenizer.decode(*args, **kwargs)

    def __call__(self, *args, **kwargs):
        return self.tokenizer(*args, **kwargs)


def _check_text(name: str, value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise AttributionError(f"{name} must be a non-empty string, got {value!r}")
    return value


def target_ids(model, prompt: str, target: str) -> list[int]:
    """Token ids of `target` as it continues `prompt` (tokenized in context when possible)."""
    continuation = target if target[:1].isspace() else " " + target
    prompt_ids = model.to_tokens(prompt).input_ids[0].tolist()
    full_ids = model.to_tokens(prompt + continuation).input_ids[0].tolist()
    if full_ids[: len(prompt_ids)] == prompt_ids and len(full_ids) > len(prompt_ids):
        return full_ids[len(prompt_ids) :]
    ids = model.tokenizer(continuation, add_special_tokens=False)["input_ids"]
    if not ids:
        raise AttributionError(f"target {target!r} tokenizes to nothing; give the answer text")
    return list(ids)


def _baseline_id(model, baseline) -> int:
    if baseline is None:
        tok = model.tokenizer
        for candidate in (tok.unk_token_id, tok.pad_token_id, tok.eos_token_id):
            if candidate is not None:
                return int(candidate)
        return 0
    if isinstance(baseline, str):
        token_id = model.tokenizer.convert_tokens_to_ids(baseline)
        unknown = token_id is None or (
            token_id == model.tokenizer.unk_token_id and baseline != model.tokenizer.unk_token
        )
        if unknown:
            raise AttributionError(
                f"baseline token {baseline!r} is not in the vocabulary; pass a token id"
            )
        return int(token_id)
    if (
        isinstance(baseline, int)
        and not isinstance(baseline, bool)
        and 0 <= baseline < model.vocab_size
    ):
        return baseline
    raise AttributionError(
        f"baseline must be a token string or an id in 0..{model.vocab_size - 1}, got {baseline!r}"
    )


def _prompt_input(model, prompt: str, baseline_id: int):
    from captum.attr import TextTokenInput  # lazy: captum is slow to import (0.6 s)

    skip = [model.tokenizer.bos_token_id] if model.prepends_bos else None
    inp = TextTokenInput(prompt, _ModelTokenizer(model), baselines=baseline_id, skip_tokens=skip)
    if inp.n_itp_features == 0:
        raise AttributionError(f"prompt {prompt!r} has no tokens to attribute besides BOS")
    ids = inp.inp_tensor[0].tolist()
    positions = tuple(i for i, t in enumerate(ids) if skip is None or t not in skip)
    return inp, positions


# --------------------------------------------------------------------------- methods


def _run_captum(model, method: str, inp, targets: torch.Tensor, n_samples: int, n_steps: int):
    from captum.attr import (  # lazy: captum is slow to import (0.6 s); only a run needs it
        FeatureAblation,
        LayerIntegratedGradients,
        LLMAttribution,
        LLMGradientAttribution,
        ShapleyValueSampling,
    )

    if method == "integrated_gradients":
        lig = LayerIntegratedGradients(model.hf, model.hf.get_input_embeddings())
        return LLMGradientAttribution(lig, model.tokenizer).attribute(
            inp, target=targets, n_steps=n_steps
        )
    algo = (
        FeatureAblation(model.hf)
        if method == "feature_ablation"
        else ShapleyValueSampling(model.hf)
    )
    extra = {"n_samples": n_samples} if method == "shapley" else {}
    with torch.no_grad():
        return LLMAttribution(algo, model.tokenizer).attribute(
            inp, target=targets, forward_in_tokens=False, **extra
        )


def _log_prob(model, ids: list[int], targets: list[int]) -> float:
    """log p(targets | ids) in one teacher-forced forward of the unmodified model."""
    seq = torch.tensor([ids + targets], device=model.device)
    model.record_forward(tuple(seq.shape))
    with torch.no_grad():
        logits = model.hf(input_ids=seq, attention_mask=torch.ones_like(seq)).logits[0].float()
    logp = torch.log_softmax(logits[len(ids) - 1 : len(ids) - 1 + len(targets)], -1)
    return float(logp[torch.arange(len(targets)), torch.tensor(targets)].sum())


def token_attribution(
    model,
    prompt: str,
    target: str,
    method: str = "feature_ablation",
    *,
    baseline=None,
    n_samples: int = 25,
    n_steps: int = 32,
    seed: int = 0,
    single_token: bool = False,
) -> TokenAttribution:
    """Attribute ``log p(target | prompt)`` to the prompt's tokens with one of `METHODS`.

    Args:
        baseline: token that stands in for a removed token (string or id); default the
            tokenizer's unk, else pad, else eos token.
        n_samples: random orders for ``"shapley"``; n_steps: integration steps for
            ``"integrated_gradients"``; seed: seeds the Shapley orders (global RNG untouched).
        single_token: refuse a target of several tokens instead of attributing the sequence.

    >>> res = token_attribution(model, "the cat saw the", "cat", "shapley")   # doctest: +SKIP
    """
    if method not in METHODS:
        raise AttributionError(f"unknown attribution method {method!r}; choose one of {METHODS}")
    _check_text("prompt", prompt)
    _check_text("target", target)
    if model.active_interventions:
        raise AttributionError(
            "attribution runs the unmodified model, but interventions are applied; "
            "call model.remove() first (or attribute outside `with model.intervene`)"
        )
    targets = target_ids(model, prompt, target)
    pieces = model.to_str(targets)
    if single_token and len(targets) != 1:
        raise MultiTokenTargetError(
            f"target {target!r} is {len(targets)} tokens {pieces}; pass one "
            f"token (e.g. {pieces[0]!r}) or single_token=False to attribute the sequence"
        )
    base_id = _baseline_id(model, baseline)
    inp, positions = _prompt_input(model, prompt, base_id)
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        torch.manual_seed(seed)
        warnings.simplefilter("ignore", UserWarning)  # captum's pretty-token notices
        result = _run_captum(
            model, method, inp, torch.tensor(targets, device=model.device), n_samples, n_steps
        )
    scores = result.token_attr.detach().float().cpu().reshape(len(targets), len(positions))
    ids = inp.inp_tensor[0].tolist()
    ablated = [base_id if i in positions else t for i, t in enumerate(ids)]
    meta = {
        "baseline_token": model.to_str([base_id])[0],
        "baseline_id": base_id,
        "seed": seed,
        "log_prob": _log_prob(model, ids, targets),
        "log_prob_baseline": _log_prob(model, ablated, targets),
        "target_ids": targets,
        "captum": _captum_version(),
    }
    meta |= {"n_samples": n_samples} if method == "shapley" else {}
    meta |= {"n_steps": n_steps} if method == "integrated_gradients" else {}
    return TokenAttribution(
        model.name,
        method,
        prompt,
        target,
        tuple(model.to_str([ids[p] for p in positions])),
        positions,
        tuple(pieces),
        scores,
        meta,
    )


def _captum_version() -> str:
    import captum  # lazy: slow to import (0.6 s); only a run's record reads its version

    return str(captum.__version__)


def attribute_methods(
    model, prompt: str, target: str, methods: Sequence[str] = METHODS, **kwargs
) -> dict[str, TokenAttribution]:
    """`token_attribution` by each method, keyed by method name."""
    return {m: token_attribution(model, prompt, target, m, **kwargs) for m in methods}


def _check_same_tokens(results: dict) -> list[TokenAttribution]:
    values = list(results.values())
    if not values:
        raise AttributionError("no attribution results given; pass attribute_methods(...)")
    if any(r.positions != values[0].positions or r.target != values[0].target for r in values):
        raise AttributionError(
            "results attribute different prompts or targets; compare one prompt at a time"
        )
    return values


def attributions_frame(results: dict[str, TokenAttribution]):
    """pandas table: one row per prompt token, one total-attribution column per method."""
    values = _check_same_tokens(results)
    frame = values[0].to_frame()[["position", "token"]].copy()
    for name, res in results.items():
        frame[name] = res.total.tolist()
    return frame


def attributions_figure(results: dict[str, TokenAttribution], title: Optional[str] = None):
    """Plotly heatmap comparing methods: one row per method, prompt tokens across."""
    values = _check_same_tokens(results)
    first = values[0]
    return _heatmap(
        {name: res.total for name, res in results.items()},
        first.input_tokens,
        first.positions,
        title or f"{first.model}: which tokens drive '{first.target}'",
    )
