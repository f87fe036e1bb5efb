"""Retrieval heads (Wu et al. 2024): the few heads that copy a needle out of a long context.

Method. Hide a needle sentence in a haystack (`interp.data.niah`) at a grid of context lengths
and depths, ask for it, and watch every head while the model answers. At each answer step that
emits token w, a head *copies* when its attention maximum (the key position i it attends to
most, for the current query) lies inside the needle's answer span and the prompt token at i is
w. A head's score on one test = copy steps / answer-span length; its retrieval score = the mean
over the tests the model actually solved (ROUGE-1 recall of its answer > 0.5). Heads scoring
above 0.1 are retrieval heads. The causal check (`prune_experiment`) masks the top-k heads
(uniform attention, as the paper, or zero output) and compares NIAH accuracy with k random
heads drawn from outside the top set.

Two modes give the same copy test:
- ``"decode"``: the model's own greedy answer (cached steps), each step scored (the paper's);
- ``"teacher_forced"``: the reference answer, one pass, every answer position scored at once.

Cost. Only the answer queries are scored, so no [pos x pos] pattern is ever built and memory
grows linearly with the context. Per layer only each scored query's argmax key and the token
there are kept (`ArgmaxRecorder`). Two routes, measured in ``bench/bench_retrieval.py``:
- ``route="rows"`` (default): the model runs its own SDPA attention; a wrapper registered with
  Hugging Face's attention interface also computes the pre-softmax scores of the answer rows
  ([b, H, n_answer, T]) and hands them to the recorder. Teacher forcing costs one plain pass.
- ``route="pattern"``: the library's ``pattern`` site. The prompt runs into a KV cache with the
  fast attention, then the answer rows alone run through `interp_eager`, where an `Edit` on
  ``pattern`` records the argmax and returns the pattern unchanged ([b, H, n_answer, T]).
Decode mode decodes with cached steps and no hooks, cuts the cache back and replays the emitted
tokens in one recorded pass: causal attention gives every replayed query the keys it had at its
step, so the argmax keys are the step's (the tests check this against step-by-step recompute).

    >>> import warnings, interp.testing
    >>> model = interp.testing.tiny_model("llama")         # random weights: it retrieves nothing
    >>> with warnings.catch_warnings(record=True):
    ...     result = run(model, Config(lengths=(24, 40), depths=(0.0, 1.0), n_needles=1))
    >>> result.scores.threshold, result.n_tests, result.retrieves
    (0.1, 4, False)
    >>> result.numbers()["note"][:38]
    'the model solved none of the 4 tests ('

On a model that retrieves (see the CLI, ``interp retrieval world-base --out DIR``):
``result.scores.top(5)``, ``result.share_above``, ``result.plot()``, ``result.plot_accuracy()``
and ``prune_experiment(model, k=3, mode="uniform", result=result)``.
"""

from __future__ import annotations

import random
import re
import warnings
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Optional, Sequence

import torch

from interp.backends.plan import Edit, EditContext, RunPlan
from interp.data.niah import (COMPLETION_TEMPLATE, PAPER_NEEDLE, PAPER_TEMPLATE, Needle,
                              NiahPrompt, build_grid, zoo_haystack, zoo_needles)
from interp.heads import Head
from interp.interventions import PruneHeads
from interp.results import HeadScores, data_hash
from interp.tokens import Tokens

__all__ = ["Config", "RetrievalResult", "NiahRecord", "PruneResult", "ArgmaxRecorder", "MODES",
           "NoRetrievalWarning", "copy_hits", "per_test_scores", "retrieval_scores", "rouge1_recall",
           "spearman", "score_prompts", "run", "niah_accuracy", "without_needle", "prune_experiment",
           "prune_curve", "prune_curve_figure",
           "self_haystack", "register"]

MODES = ("teacher_forced", "decode")
STORY_OPENINGS = ("Once upon a time", "One day", "Tom and Lily", "The little dog", "Sara had a",
                  "There was a big", "Ben went to the", "Mom said")


class NoRetrievalWarning(RuntimeWarning):
    """No test was solved, so retrieval scores are undefined (reported, not NaN-filled)."""


# ------------------------------------------------------------------------------------ config


@dataclass(frozen=True)
class Config:
    """What to test. `lengths=None` picks four lengths up to the model's window (<= 512).

    haystack=None uses the zoo's filler text; needles=None uses `n_needles` zoo needles.
    """

    lengths: Optional[tuple] = None
    depths: tuple = (0.0, 0.25, 0.5, 0.75, 1.0)
    needles: Optional[tuple] = None
    n_needles: int = 4
    haystack: Optional[str] = None
    template: str = COMPLETION_TEMPLATE
    mode: str = "teacher_forced"
    threshold: float = 0.1
    rouge_threshold: float = 0.5
    extra_tokens: int = 0
    batch_size: int = 16
    seed: int = 0
    backend: Optional[str] = None
    route: str = "rows"

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        if self.mode not in MODES:
            raise ValueError(f"Config.mode must be one of {MODES}, got {self.mode!r}")
        if self.route not in ROUTES:
            raise ValueError(f"Config.route must be one of {ROUTES}, got {self.route!r}")
        if self.lengths is not None:
            lengths = tuple(int(n) for n in self.lengths)
            if not lengths or min(lengths) < 8:
                raise ValueError(f"Config.lengths must be context lengths >= 8 tokens, got {self.lengths}")
            set_("lengths", lengths)
        depths = tuple(float(d) for d in self.depths)
        if not depths or not all(0.0 <= d <= 1.0 for d in depths):
            raise ValueError(f"Config.depths must be fractions in [0, 1], got {self.depths}")
        set_("depths", depths)
        if self.needles is not None:
            needles = tuple(self.needles)
            if not needles or not all(isinstance(n, Needle) for n in needles):
                raise TypeError("Config.needles must be a non-empty sequence of niah.Needle")
            set_("needles", needles)
        for name, low in (("n_needles", 1), ("batch_size", 1), ("extra_tokens", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"Config.{name} must be an int >= {low}, got {value!r}")
        if not 0.0 <= self.threshold or not 0.0 <= self.rouge_threshold < 1.0:
            raise ValueError("Config.threshold must be >= 0 and rouge_threshold in [0, 1)")

    def grid_lengths(self, model) -> tuple:
        if self.lengths is not None:
            return self.lengths
        top = min(model.n_ctx, 512) - 16
        return tuple(sorted({max(16, top * i // 4) for i in (1, 2, 3)} | {top}))

    def prompts(self, model) -> list[NiahPrompt]:
        """The test prompts of this config for `model` (its tokenizer, its window)."""
        needles = self.needles or tuple(zoo_needles(self.n_needles, seed=self.seed))
        lengths = self.grid_lengths(model)
        haystack = self.haystack if self.haystack is not None else zoo_haystack(
            max(lengths) * 2 + 64, seed=self.seed)
        bos = model.tokenizer.bos_token_id if model.prepends_bos else None
        longest = max(len(model.tokenizer(" " + n.answer, add_special_tokens=False)["input_ids"])
                      for n in needles)
        return build_grid(model.tokenizer, haystack, needles, lengths, self.depths,
                          template=self.template, bos_id=bos, n_ctx=model.n_ctx,
                          max_new_tokens=longest + self.extra_tokens)


# ------------------------------------------------------------------------- pure scoring


def copy_hits(positions: torch.Tensor, tokens: torch.Tensor, emitted: torch.Tensor,
              span: torch.Tensor, valid: Optional[torch.Tensor] = None) -> torch.Tensor:
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

    >>> retrieval_scores(torch.tensor([[[1.0]], [[0.0]], [[0.5]]]), torch.tensor([True, False, True])).tolist()
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
        raise ValueError("the reference answer has no words to score against")
    got = Counter(re.findall(r"\w+", response.lower()))
    return sum(min(n, got[w]) for w, n in ref.items()) / sum(ref.values())


def spearman(a: Sequence[float], b: Sequence[float]) -> Optional[float]:
    """Spearman rank correlation (average ranks for ties); None when a side is constant.

    >>> spearman([0.1, 0.5, 0.9], [1, 2, 3])
    1.0
    """
    x = torch.as_tensor(list(a), dtype=torch.float64)
    y = torch.as_tensor(list(b), dtype=torch.float64)
    if x.numel() != y.numel() or x.numel() < 2:
        raise ValueError(f"spearman needs two equal-length series of >= 2 values, got {x.numel()}, {y.numel()}")
    rx, ry = _ranks(x), _ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    den = float((rx.square().sum() * ry.square().sum()).sqrt())
    return None if den == 0 else float((rx * ry).sum()) / den


def _ranks(x: torch.Tensor) -> torch.Tensor:
    order = torch.argsort(x, stable=True)
    ranks = torch.empty_like(x)
    ranks[order] = torch.arange(len(x), dtype=x.dtype)
    for value in torch.unique(x):
        tie = x == value
        ranks[tie] = ranks[tie].mean()
    return ranks


# ------------------------------------------------------------------ streaming statistics


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
        return (torch.stack([self.positions[l] for l in order], 1),
                torch.stack([self.tokens[l] for l in order], 1))


# --- the rows route: the model's own fast attention, plus the scored rows' scores ----------

ROWS_IMPLEMENTATION = "interp_retrieval_rows"
_ROWS_STATE: dict = {"recorder": None, "rows": 0, "layers": {}}


def _row_scores(query, key, attention_mask, scaling, rows: int) -> torch.Tensor:
    """Scores [b, H, rows, k] of the last `rows` queries; keys a query may not see are at -inf.
    Without an additive mask the scaling is left out (a positive factor does not move an argmax)."""
    b, n_heads, q_len, d = query.shape
    n_kv, k_len = key.shape[1], key.shape[2]
    q = query[:, :, q_len - rows:].reshape(b, n_kv, (n_heads // n_kv) * rows, d)
    scores = torch.matmul(q, key.transpose(-1, -2)).view(b, n_heads, rows, k_len).float()
    if attention_mask is None:
        if rows == 1:  # the newest query sees every key
            return scores
        q_pos = torch.arange(k_len - rows, k_len, device=query.device)[:, None]
        allowed = torch.arange(k_len, device=query.device)[None, :] <= q_pos
        return scores.masked_fill(~allowed, float("-inf"))
    mask = attention_mask[:, :, attention_mask.shape[2] - rows:, :k_len]
    if mask.dtype == torch.bool:
        return scores.masked_fill(~mask, float("-inf"))
    return scores * (scaling if scaling is not None else d ** -0.5) + mask.float()


def rows_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """SDPA attention that also hands the scored rows' scores to the active `ArgmaxRecorder`."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    out = sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling,
                                 dropout=dropout, **kwargs)
    recorder, rows = _ROWS_STATE["recorder"], _ROWS_STATE["rows"]
    layer = _ROWS_STATE["layers"].get(id(module))
    if recorder is not None and layer is not None:
        recorder.observe_scores(layer, _row_scores(query, key, attention_mask, scaling, rows))
    return out


def _register_rows() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

    AttentionInterface.register(ROWS_IMPLEMENTATION, rows_attention)
    AttentionMaskInterface.register(ROWS_IMPLEMENTATION, ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])


@contextmanager
def _rows_route(model, recorder: ArgmaxRecorder, rows: int):
    """Inside the block the model attends with `rows_attention`; everything is restored after."""
    from interp.backends.attention import attention_implementation

    _register_rows()
    _ROWS_STATE.update(recorder=recorder, rows=rows,
                       layers={id(m): i for i, m in enumerate(model.attention_modules())})
    try:
        with attention_implementation(model.hf, ROWS_IMPLEMENTATION):
            yield
    finally:
        _ROWS_STATE.update(recorder=None, rows=0, layers={})


# ----------------------------------------------------------------------------- running


ROUTES = ("rows", "pattern")


@dataclass(frozen=True)
class NiahRecord:
    """One NIAH test: where the needle was, what the model answered, whether it was kept."""

    context_length: int
    n_tokens: int
    depth: float
    actual_depth: float
    needle_index: int
    response: str
    rouge1: float
    retrieved: bool


def _left_pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row):] = torch.tensor(list(row), dtype=torch.long)
        mask[i, width - len(row):] = 1
    return ids, mask


def _positions(mask: torch.Tensor) -> torch.Tensor:
    return (mask.cumsum(-1) - 1).clamp(min=0)


def _call(model, ids, mask, edits, backend, *, past=None, logits_to_keep=0, use_cache=True):
    """One pass of the newest tokens `ids` ([b, n]); `mask` covers cache + ids. HF output."""
    n = ids.shape[1]
    q_offset = 0 if past is None else past.get_seq_length()
    ctx = EditContext(key_mask=mask.bool(), q_offset=q_offset)
    kwargs = dict(input_ids=ids, position_ids=_positions(mask)[:, -n:], use_cache=use_cache,
                  logits_to_keep=logits_to_keep)
    if past is not None:
        kwargs["past_key_values"] = past
    if bool((mask == 0).any()):
        kwargs["attention_mask"] = mask
    return model.engine(backend).run(RunPlan(edits), ctx, **kwargs)


def _rows_usable(model, edits, backend, route) -> bool:
    """The rows route needs the HF attention functions (nnsight engine) and no pattern edit."""
    return (route == "rows" and (backend or model.backend) == "nnsight"
            and not RunPlan(edits).needs_pattern)


def _check_complete(model, recorder) -> None:
    if not recorder.complete:
        raise RuntimeError(f"{model.name}: the attention of some layers did not go through "
                           "Hugging Face's attention interface; use route='pattern'")


def _observed_call(model, ids, mask, edits, backend, route, recorder, rows, *, past=None,
                   use_cache=False):
    """A pass that records the argmax keys of its last `rows` queries (rows or pattern route)."""
    if _rows_usable(model, edits, backend, route):
        with _rows_route(model, recorder, rows):
            out = _call(model, ids, mask, edits, backend, past=past, logits_to_keep=rows,
                        use_cache=use_cache)
        _check_complete(model, recorder)
        return out
    # pattern route: the answer rows run alone over a KV cache of the rest, so that
    # `interp_eager` builds only [b, H, rows, keys] patterns
    n_rest = ids.shape[1] - rows
    if n_rest > 0:
        prefix_mask = mask[:, : mask.shape[1] - rows]
        past = _call(model, ids[:, :n_rest], prefix_mask, edits, backend, past=past,
                     logits_to_keep=1).past_key_values
    plan = RunPlan(list(edits) + recorder.edits())
    n = rows
    tokens = Tokens(ids[:, -n:], torch.ones_like(ids[:, -n:]))
    return model.run_plan(tokens, plan, backend=backend, past_key_values=past, use_cache=True,
                          position_ids=_positions(mask)[:, -n:], attention_mask=mask)


def _stop_text(model, ids: Sequence[int]) -> str:
    text = model.decode(list(ids))
    return text.split("\n")[0].strip()


def _is_stop(model, token: int) -> bool:
    return token == model.tokenizer.eos_token_id or "\n" in model.decode([token])


def _batch_teacher_forced(model, prompts, edits, backend, route):
    """Copy hits [b, L, H] and the teacher-forced greedy answers: one pass over prompt + answer."""
    n = len(prompts[0].answer_ids)
    ids, mask = _left_pad([p.input_ids + p.answer_ids[:-1] for p in prompts], model.pad_token_id)
    answer = torch.tensor([p.answer_ids for p in prompts], dtype=torch.long)
    pad = mask.shape[1] - mask.sum(1)
    recorder = ArgmaxRecorder(model.n_layers)
    recorder.key_ids = ids
    with torch.no_grad():
        out = _observed_call(model, ids, mask, edits, backend, route, recorder, n)
    positions, tokens = recorder.stacked()
    span = torch.tensor([p.answer_span for p in prompts]) + pad[:, None]
    hits = copy_hits(positions, tokens, answer, span)
    predicted = out.logits[:, -n:].argmax(-1)
    return hits, [_stop_text(model, row.tolist()) for row in predicted]


def _batch_decode(model, prompts, edits, backend, extra_tokens, route):
    """Copy hits [b, L, H] and the greedy answers (the stop step, newline / EOS, is scored too,
    as in the authors' code)."""
    ids, mask = _left_pad([p.input_ids for p in prompts], model.pad_token_id)
    pad = mask.shape[1] - mask.sum(1)
    span = torch.tensor([p.answer_span for p in prompts]) + pad[:, None]
    n_steps = max(len(p.answer_ids) for p in prompts) + extra_tokens
    if _rows_usable(model, edits, backend, route):
        return _decode_stepwise(model, ids, mask, span, n_steps, edits, backend)
    return _decode_replay(model, ids, mask, span, n_steps, edits, backend, route)


def _greedy(model, ids, mask, n_steps, edits, backend, on_step=None):
    """Cached greedy decoding; `on_step(seq_ids, word, alive)` after each step. Returns the
    emitted ids [b, steps], per-step alive masks [b, steps], each row's answer tokens, the cache."""
    alive = torch.ones(ids.shape[0], dtype=torch.bool)
    valid, words, emitted = [], [], [[] for _ in range(ids.shape[0])]
    seq_ids, seq_mask = ids, mask
    out = _call(model, ids, mask, edits, backend, logits_to_keep=1)
    for step in range(n_steps):
        past, word = out.past_key_values, out.logits[:, -1].argmax(-1)
        if on_step is not None:
            on_step(seq_ids, word, alive)
        valid.append(alive.clone())
        words.append(word)
        for i in torch.nonzero(alive).flatten().tolist():
            if _is_stop(model, int(word[i])):
                alive[i] = False
            else:
                emitted[i].append(int(word[i]))
        if not bool(alive.any()) or step == n_steps - 1:
            break
        seq_ids = torch.cat([seq_ids, word[:, None]], 1)
        seq_mask = torch.cat([seq_mask, torch.ones_like(word[:, None])], 1)
        out = _call(model, word[:, None], seq_mask, edits, backend, past=past, logits_to_keep=1)
    return torch.stack(words, 1), torch.stack(valid, 1), emitted, past


def _decode_stepwise(model, ids, mask, span, n_steps, edits, backend):
    """Rows route: each decoding call also scores its last query row (the paper's per-step test)."""
    recorder = ArgmaxRecorder(model.n_layers)
    recorder.key_ids = ids
    hits = torch.zeros(ids.shape[0], model.n_layers, model.n_heads)

    def on_step(seq_ids, word, alive):
        _check_complete(model, recorder)
        positions, tokens = recorder.stacked()
        hits.add_(copy_hits(positions, tokens, word[:, None], span, alive[:, None]))
        recorder.positions.clear()
        recorder.tokens.clear()
        recorder.key_ids = torch.cat([seq_ids, word[:, None]], 1)   # the keys of the next call

    with torch.no_grad(), _rows_route(model, recorder, 1):
        _, _, emitted, _ = _greedy(model, ids, mask, n_steps, edits, backend, on_step)
    return hits, [_stop_text(model, row) for row in emitted]


def _decode_replay(model, ids, mask, span, n_steps, edits, backend, route):
    """Pattern route: decode with no hooks, cut the KV cache back to the prompt minus its last
    token, and replay [last prompt token, emitted tokens] in ONE recorded pass. Causal attention
    gives each replayed query exactly the keys it had at its step, so its argmax key is the step's."""
    with torch.no_grad():
        word_ids, valid, emitted, past = _greedy(model, ids, mask, n_steps, edits, backend)
        replay = torch.cat([ids[:, -1:], word_ids[:, :-1]], 1)
        past = _cut_cache(model, past, ids, mask, edits, backend)
        recorder = ArgmaxRecorder(model.n_layers)
        recorder.key_ids = torch.cat([ids[:, :-1], replay], 1)
        full_mask = torch.cat([mask, torch.ones_like(replay[:, 1:])], 1)
        _observed_call(model, replay, full_mask, edits, backend, route, recorder, replay.shape[1],
                       past=past, use_cache=True)
    positions, tokens = recorder.stacked()
    return copy_hits(positions, tokens, word_ids, span, valid), [_stop_text(model, r) for r in emitted]


def _cut_cache(model, past, ids, mask, edits, backend):
    """The KV cache of the prompt minus its last token (cropped, or rebuilt if it cannot crop)."""
    keep = ids.shape[1] - 1
    try:
        past.crop(keep - past.get_seq_length())
        return past
    except (AttributeError, ValueError, NotImplementedError):
        return _call(model, ids[:, :-1], mask[:, :-1], edits, backend, logits_to_keep=1).past_key_values


def score_prompts(model, prompts: Sequence[NiahPrompt], mode: str = "teacher_forced", *,
                  batch_size: int = 16, backend: Optional[str] = None, extra_tokens: int = 0,
                  rouge_threshold: float = 0.5, route: str = "rows") -> tuple[torch.Tensor, list[NiahRecord]]:
    """Per-test scores [n_tests, layer, head] and one `NiahRecord` per prompt (in order).

    Prompts are batched by answer length (left-padded); the model's applied interventions stay
    on, and nothing is left attached to the model. route="rows" (default) runs the model's own
    SDPA attention and scores only the answer rows; route="pattern" reads the library's
    ``pattern`` site (`interp_eager`) with the answer rows run over a KV cache of the prompt.
    Both give the same argmax keys; "rows" falls back to "pattern" when an applied
    intervention edits the pattern or the engine does not call the HF attention function.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if route not in ROUTES:
        raise ValueError(f"route must be one of {ROUTES}, got {route!r}")
    prompts = list(prompts)
    if not prompts:
        raise ValueError("score_prompts needs at least one NIAH prompt (see interp.data.niah)")
    for p in prompts:
        if p.n_tokens + len(p.answer_ids) + extra_tokens > model.n_ctx:
            raise ValueError(f"a prompt of {p.n_tokens} tokens + its answer exceeds the model's "
                             f"window of {model.n_ctx}; use shorter context lengths")
    edits = model._edits(None, True)
    per_test = torch.zeros(len(prompts), model.n_layers, model.n_heads)
    records: list[Optional[NiahRecord]] = [None] * len(prompts)
    groups: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        groups.setdefault(len(p.answer_ids), []).append(i)
    for members in groups.values():
        for start in range(0, len(members), batch_size):
            idx = members[start:start + batch_size]
            batch = [prompts[i] for i in idx]
            if mode == "teacher_forced":
                hits, answers = _batch_teacher_forced(model, batch, edits, backend, route)
            else:
                hits, answers = _batch_decode(model, batch, edits, backend, extra_tokens, route)
            span_len = torch.tensor([p.answer_span[1] - p.answer_span[0] for p in batch])
            per_test[idx] = per_test_scores(hits, span_len)
            for i, p, text in zip(idx, batch, answers):
                r = rouge1_recall(p.answer, text)
                records[i] = NiahRecord(p.context_length, p.n_tokens, p.depth, p.actual_depth,
                                        p.needle_index, text, r, r > rouge_threshold)
    return per_test, records


# ------------------------------------------------------------------------------ results


def _grid(values: Sequence[float], records: Sequence[NiahRecord], lengths, depths):
    """[depth, length] mean of `values` per cell (None where a cell is empty)."""
    cells: dict[tuple, list[float]] = {}
    for v, r in zip(values, records):
        cells.setdefault((r.depth, r.context_length), []).append(float(v))
    return [[(sum(cells[(d, n)]) / len(cells[(d, n)])) if (d, n) in cells else None
             for n in lengths] for d in depths]


@dataclass(frozen=True, eq=False)
class RetrievalResult:
    """Retrieval scores with the tests behind them.

    scores: `HeadScores` (threshold 0.1); all heads unscored (NaN by HeadScores' convention,
    never a silent 0) when no test was solved, see `retrieves`. per_test: [n_tests, L, H]
    scores of every test, solved or not; kept: [n_tests] bool.
    """

    scores: HeadScores
    per_test: torch.Tensor
    kept: torch.Tensor
    tests: tuple
    prompts: tuple
    config: Config
    model_name: str
    lengths: tuple
    depths: tuple

    @property
    def n_tests(self) -> int:
        return len(self.tests)

    @property
    def n_kept(self) -> int:
        return int(self.kept.sum())

    @property
    def retrieves(self) -> bool:
        """False when the model solved no test (then no head has a retrieval score)."""
        return self.n_kept > 0

    @property
    def share_above(self) -> Optional[float]:
        return self.scores.share_above() if self.retrieves else None

    @property
    def heads(self) -> list[Head]:
        """Retrieval heads (score > threshold), best first."""
        if not self.retrieves:
            return []
        above = {(l, h) for l, h in self.scores.heads()}
        return [Head(l, h) for l, h, _ in self.scores.top(self.scores.n_scored) if (l, h) in above]

    def top(self, k: int) -> list[Head]:
        if not self.retrieves:
            raise ValueError(f"no retrieval scores: the model solved 0 of {self.n_tests} tests; "
                             "use longer answers, shorter contexts or another model")
        return [Head(l, h) for l, h, _ in self.scores.top(k)]

    def accuracy(self) -> list[list[Optional[float]]]:
        """NIAH accuracy [depth][length] (share of tests solved in each cell)."""
        return _grid([float(t.retrieved) for t in self.tests], self.tests, self.lengths, self.depths)

    def plot(self):
        """Heatmap of retrieval scores (layer x head)."""
        title = (f"retrieval scores ({self.config.mode}): {self.model_name}, "
                 f"{self.n_kept}/{self.n_tests} tests kept")
        if not self.retrieves:
            title += " - no test solved, no scores"
        return self.scores.plot(title=title, zmin=0, zmax=1)

    def plot_accuracy(self):
        """NIAH accuracy heatmap: depth x context length."""
        from interp import plots

        grid = [[float("nan") if v is None else v for v in row] for row in self.accuracy()]
        return plots.heatmap_grid(grid, [f"{100 * d:g}%" for d in self.depths], list(self.lengths),
                                  title=f"NIAH accuracy ({self.config.mode}): {self.model_name}",
                                  zmin=0, zmax=1, row_title="needle depth",
                                  col_title="context length (tokens)")

    def numbers(self) -> dict:
        out = {"mode": self.config.mode, "n_tests": self.n_tests, "n_kept": self.n_kept,
               "retrieves": self.retrieves, "threshold": self.config.threshold,
               "niah_accuracy": self.n_kept / self.n_tests,
               "accuracy_grid": {"rows_depth": list(self.depths), "cols_length": list(self.lengths),
                                 "values": self.accuracy()}}
        if self.retrieves:
            out.update(share_above=self.share_above, n_above=len(self.heads),
                       n_heads_total=self.scores.n_scored,
                       heads_above=[str(h) for h in self.heads],
                       top10=[{"head": f"L{l}H{h}", "score": s}
                              for l, h, s in self.scores.top(min(10, self.scores.n_scored))])
        else:
            out["note"] = (f"the model solved none of the {self.n_tests} tests (ROUGE-1 recall > "
                           f"{self.config.rouge_threshold}); retrieval scores are undefined")
        mean_all = self.per_test.mean(0)
        order = torch.argsort(mean_all.flatten(), descending=True, stable=True)[:5].tolist()
        n_heads = mean_all.shape[1]
        out["diagnostic_top5_all_tests"] = [
            {"head": f"L{i // n_heads}H{i % n_heads}", "mean_score_all_tests": float(mean_all.flatten()[i])}
            for i in order]
        out["answers_sample"] = [t.response for t in self.tests[:5]]
        return out


def run(model, cfg: Optional[Config] = None, prompts: Optional[Sequence[NiahPrompt]] = None) -> RetrievalResult:
    """Score every head of `model` on the NIAH grid of `cfg` (or on the given prompts).

    >>> import warnings, interp.testing
    >>> with warnings.catch_warnings(record=True):
    ...     res = run(interp.testing.tiny_model("llama"), Config(lengths=(24,), depths=(0.5,), n_needles=1))
    >>> res.scores.shape, res.per_test.shape
    ((2, 8), torch.Size([1, 2, 8]))
    """
    cfg = Config() if cfg is None else cfg
    if not isinstance(cfg, Config):
        raise TypeError(f"cfg must be a circuits.retrieval.Config, got {type(cfg).__name__}; "
                        "e.g. Config(lengths=(64, 128), depths=(0.0, 0.5, 1.0))")
    prompts = tuple(prompts) if prompts is not None else tuple(cfg.prompts(model))
    lengths = tuple(sorted({p.context_length for p in prompts}))
    depths = tuple(sorted({p.depth for p in prompts}))
    per_test, records = score_prompts(model, prompts, cfg.mode, batch_size=cfg.batch_size,
                                      backend=cfg.backend, extra_tokens=cfg.extra_tokens,
                                      rouge_threshold=cfg.rouge_threshold, route=cfg.route)
    kept = torch.tensor([r.retrieved for r in records], dtype=torch.bool)
    mean = retrieval_scores(per_test, kept)
    if mean is None:
        warnings.warn(f"{model.name}: no NIAH test was solved (0/{len(records)}); retrieval scores "
                      "are undefined and every head is left unscored", NoRetrievalWarning, stacklevel=2)
        grid, mask = torch.zeros(model.n_layers, model.n_heads), torch.zeros(
            model.n_layers, model.n_heads, dtype=torch.bool)
    else:
        grid, mask = mean, torch.ones_like(mean, dtype=torch.bool)
    meta = {"mode": cfg.mode, "n_tests": len(records), "n_kept": int(kept.sum()),
            "lengths": list(lengths), "depths": list(depths),
            "needles": [asdict(n) for n in dict.fromkeys(p.needle for p in prompts)],
            "rouge_threshold": cfg.rouge_threshold,
            "per_test": [_test_meta(r, per_test[i]) for i, r in enumerate(records)]}
    scores = HeadScores(grid, model=model.name, method="retrieval", mask=mask,
                        data_hash=data_hash([[list(p.input_ids), list(p.answer_ids)] for p in prompts]),
                        seed=cfg.seed, threshold=cfg.threshold, meta=meta)
    return RetrievalResult(scores, per_test, kept, tuple(records), prompts, cfg, model.name, lengths,
                           depths)


def _test_meta(record: NiahRecord, scores: torch.Tensor) -> dict:
    nonzero = {f"L{l}H{h}": round(float(scores[l, h]), 6) for l, h in torch.nonzero(scores).tolist()}
    return {**asdict(record), "scores": nonzero}


# ------------------------------------------------------------------------ causal check


def without_needle(model, prompt: NiahPrompt) -> NiahPrompt:
    """The same prompt with the needle sentence cut out (a control: can the model answer anyway?)."""
    ids = prompt.input_ids
    cut = ids[:prompt.needle_span[0]] + ids[prompt.needle_span[1]:]
    return replace(prompt, input_ids=tuple(cut), needle_span=(0, 0), answer_span=(0, 0))


def niah_accuracy(model, prompts: Sequence[NiahPrompt], interventions=None, *, batch_size: int = 16,
                  backend: Optional[str] = None, extra_tokens: int = 0,
                  rouge_threshold: float = 0.5) -> tuple[float, list[bool]]:
    """Share of prompts answered (greedy decoding, ROUGE-1 recall > threshold), under `interventions`."""
    solved: list[bool] = []
    prompts = list(prompts)
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start:start + batch_size]
        ids, mask = _left_pad([p.input_ids for p in batch], model.pad_token_id)
        n_new = max(len(p.answer_ids) for p in batch) + extra_tokens
        gen = model.generate(Tokens(ids, mask), max_new_tokens=n_new, interventions=interventions,
                             backend=backend)
        for p, row in zip(batch, gen.new_tokens):
            tokens = []
            for t in row.tolist():
                if _is_stop(model, t):
                    break
                tokens.append(t)
            solved.append(rouge1_recall(p.answer, _stop_text(model, tokens)) > rouge_threshold)
    return sum(solved) / max(len(solved), 1), solved


@dataclass(frozen=True)
class PruneResult:
    """NIAH accuracy with the top-k retrieval heads masked vs k random heads (several draws)."""

    k: int
    mode: str
    top_heads: tuple
    baseline: float
    top: float
    random_draws: tuple        # ((heads, accuracy), ...)
    n_tests: int
    seed: int
    excluded: int

    @property
    def drop_top(self) -> float:
        """Accuracy lost (points, 0-100) when the top-k heads are masked."""
        return 100 * (self.baseline - self.top)

    @property
    def random_drops(self) -> list[float]:
        return [100 * (self.baseline - acc) for _, acc in self.random_draws]

    @property
    def mean_random_drop(self) -> float:
        drops = self.random_drops
        return sum(drops) / len(drops)

    def to_dict(self) -> dict:
        return {"k": self.k, "mode": self.mode, "top_heads": [str(h) for h in self.top_heads],
                "baseline_accuracy": self.baseline, "top_accuracy": self.top,
                "drop_top_points": self.drop_top, "mean_random_drop_points": self.mean_random_drop,
                "random_draws": [{"heads": [str(h) for h in heads], "accuracy": acc,
                                  "drop_points": 100 * (self.baseline - acc)}
                                 for heads, acc in self.random_draws],
                "n_tests": self.n_tests, "seed": self.seed,
                "random_heads_drawn_outside_top": self.excluded}

    def figure(self):
        """Bar chart: NIAH accuracy unpruned, top-k masked, and each random draw."""
        import plotly.graph_objects as go

        labels = ["none", f"top-{self.k}"] + [f"random #{i + 1}" for i in range(len(self.random_draws))]
        values = [self.baseline, self.top] + [acc for _, acc in self.random_draws]
        hover = ["no heads masked", ", ".join(map(str, self.top_heads))] + [
            ", ".join(map(str, heads)) for heads, _ in self.random_draws]
        colors = ["#4c78a8", "#e45756"] + ["#9d9d9d"] * len(self.random_draws)
        fig = go.Figure(go.Bar(x=labels, y=values, marker_color=colors, hovertext=hover,
                               hovertemplate="%{x}<br>accuracy %{y:.2f}<br>%{hovertext}<extra></extra>"))
        fig.update_layout(title=f"NIAH accuracy with {self.k} heads masked ({self.mode})",
                          yaxis=dict(title="accuracy", range=[0, 1.05]), xaxis_title="heads masked")
        return fig


def prune_experiment(model, k: int, mode: str = "uniform", *, result: Optional[RetrievalResult] = None,
                     cfg: Optional[Config] = None, n_draws: int = 5, seed: int = 0,
                     exclude: Optional[int] = None, baseline: Optional[float] = None) -> PruneResult:
    """Mask the top-k retrieval heads vs `n_draws` draws of k random heads; NIAH accuracy of each.

    Random heads come from outside the top `exclude` heads (default: the top-k and every head
    above the threshold), as the paper draws from outside its top 100.

    >>> pr = prune_experiment(model, k=2, mode="uniform", result=res)   # doctest: +SKIP
    >>> pr.drop_top, pr.random_drops                                    # doctest: +SKIP
    """
    if mode not in ("uniform", "zero"):
        raise ValueError(f"prune mode must be 'uniform' (the paper's) or 'zero', got {mode!r}")
    result = result if result is not None else run(model, cfg)
    cfg = result.config
    total = model.n_layers * model.n_heads
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k < total:
        raise ValueError(f"k must be an int in 1..{total - 1}, got {k!r}")
    if n_draws < 1:
        raise ValueError(f"n_draws must be >= 1, got {n_draws}")
    top = tuple(result.top(k))
    n_out = max(k, len(result.heads)) if exclude is None else max(int(exclude), k)
    outside = [h for h in model.all_heads()
               if h not in set(result.top(min(n_out, result.scores.n_scored)))]
    if len(outside) < k:
        raise ValueError(f"only {len(outside)} heads lie outside the top {n_out}; lower k or exclude")
    opts = dict(batch_size=cfg.batch_size, backend=cfg.backend, extra_tokens=cfg.extra_tokens,
                rouge_threshold=cfg.rouge_threshold)
    if baseline is None:                       # unpruned accuracy (a curve over k passes it once)
        baseline, _ = niah_accuracy(model, result.prompts, **opts)
    top_acc, _ = niah_accuracy(model, result.prompts, PruneHeads(list(top), mode=mode), **opts)
    rng = random.Random(seed)
    draws = []
    for _ in range(n_draws):
        heads = tuple(sorted(rng.sample(outside, k)))
        acc, _ = niah_accuracy(model, result.prompts, PruneHeads(list(heads), mode=mode), **opts)
        draws.append((heads, acc))
    return PruneResult(k, mode, top, baseline, top_acc, tuple(draws), len(result.prompts), seed, n_out)


def prune_curve(model, ks: Sequence[int], mode: str = "uniform", *, result: RetrievalResult,
                n_draws: int = 5, seed: int = 0) -> list[PruneResult]:
    """`prune_experiment` at every k in `ks`: how the top-k drop and the random-k drops grow with k.

    One k can flatter or hide a finding (in a small model, random k-sets soon include heads the
    retrieval path needs); the curve shows the whole picture.

    >>> curve = prune_curve(model, range(1, 5), result=res)             # doctest: +SKIP
    >>> [(c.k, c.drop_top, c.mean_random_drop) for c in curve]          # doctest: +SKIP
    """
    ks = sorted({int(k) for k in ks})
    if not ks:
        raise ValueError("prune_curve needs at least one k")
    first = prune_experiment(model, ks[0], mode, result=result, n_draws=n_draws, seed=seed)
    return [first] + [prune_experiment(model, k, mode, result=result, n_draws=n_draws, seed=seed,
                                       baseline=first.baseline) for k in ks[1:]]


def prune_curve_figure(curve: Sequence[PruneResult]):
    """NIAH accuracy against k: top-k masked, and the mean and worst of the random k-sets."""
    from interp import plots

    ks = [c.k for c in curve]
    series = {"top-k masked": [c.top for c in curve],
              "random k (mean)": [sum(a for _, a in c.random_draws) / len(c.random_draws) for c in curve],
              "random k (worst draw)": [min(a for _, a in c.random_draws) for c in curve]}
    return plots.line_curves(ks, series, title=f"NIAH accuracy vs heads masked ({curve[0].mode})",
                             x_title="k", y_title="accuracy")


def curve_numbers(curve: Sequence[PruneResult]) -> list[dict]:
    return [{"k": c.k, "drop_top_points": c.drop_top, "mean_random_drop_points": c.mean_random_drop,
             "random_drop_points": c.random_drops, "top_heads": [str(h) for h in c.top_heads]} for c in curve]


# --------------------------------------------------------------------------- haystacks


def self_haystack(model, n_tokens: int = 600, openings: Sequence[str] = STORY_OPENINGS,
                  max_new_tokens: int = 96) -> str:
    """A haystack of the model's own greedy stories (one per opening), cut at sentence ends."""
    parts: list[str] = []
    total = 0
    while total < n_tokens:
        for opening in openings:
            gen = model.generate(opening, max_new_tokens=max_new_tokens)
            start = 1 if model.prepends_bos else 0
            text = model.decode(gen.tokens[0, start:]).replace("\n", " ")
            cut = max(text.rfind(". "), text.rfind("! "), text.rfind("? "), text.rfind("."))
            text = text[:cut + 1] if cut > 0 else text
            parts.append(text.strip())
            total += len(model.tokenizer(text, add_special_tokens=False)["input_ids"])
            if total >= n_tokens:
                break
        if not parts:
            raise ValueError("the model generated no text to build a haystack from")
    return " ".join(parts)


# --------------------------------------------------------------------------------- CLI


def _floats(text: Optional[str], kind=float) -> Optional[tuple]:
    if text is None:
        return None
    try:
        return tuple(kind(x) for x in text.replace(",", " ").split())
    except ValueError:
        raise ValueError(f"expected comma-separated numbers, got {text!r}") from None


def compare_modes(primary: RetrievalResult, other: RetrievalResult) -> dict:
    """Spearman rank agreement of two modes' scores: on the heads above threshold, and on all heads."""
    out = {"modes": [primary.config.mode, other.config.mode]}
    if not (primary.retrieves and other.retrieves):
        out["note"] = "a mode kept no test: no rank agreement to compute"
        return out
    a, b = primary.scores.scores.flatten().tolist(), other.scores.scores.flatten().tolist()
    above = sorted(set(primary.scores.heads()) | set(other.scores.heads()))
    n_heads = primary.scores.n_heads
    idx = [l * n_heads + h for l, h in above]
    out["heads_above_either"] = [f"L{l}H{h}" for l, h in above]
    out["spearman_above_threshold"] = (spearman([a[i] for i in idx], [b[i] for i in idx])
                                       if len(idx) >= 2 else None)
    out["spearman_all_heads"] = spearman(a, b)
    out["same_heads_above"] = set(primary.scores.heads()) == set(other.scores.heads())
    return out


def analyze(model, cfg: Config, *, k: Optional[int] = None, prune_mode: str = "uniform",
            n_draws: int = 5, prune: bool = True, curve: bool = True) -> dict:
    """Both modes, their agreement, the pruning check at k and (with `curve`) at every k from 1 to
    max(k, heads above threshold), capped at 16: everything the CLI reports."""
    primary = run(model, cfg)
    other_mode = "decode" if cfg.mode == "teacher_forced" else "teacher_forced"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoRetrievalWarning)
        other = run(model, replace(cfg, mode=other_mode), prompts=primary.prompts)
    control, _ = niah_accuracy(model, [without_needle(model, p) for p in primary.prompts],
                               batch_size=cfg.batch_size, backend=cfg.backend,
                               extra_tokens=cfg.extra_tokens, rouge_threshold=cfg.rouge_threshold)
    out = {"primary": primary, "other": other, "agreement": compare_modes(primary, other),
           "prune": None, "prune_curve": None, "control_no_needle_accuracy": control}
    if prune and primary.retrieves:
        k = k or max(1, len(primary.heads))
        top_k = min(max(k, len(primary.heads)), 16, model.n_layers * model.n_heads - 1)
        if curve and top_k > 1:
            out["prune_curve"] = prune_curve(model, range(1, top_k + 1), prune_mode, result=primary,
                                             n_draws=n_draws, seed=cfg.seed)
        at_k = [c for c in out["prune_curve"] or [] if c.k == k]      # the curve already ran k
        out["prune"] = at_k[0] if at_k else prune_experiment(model, k, prune_mode, result=primary,
                                                            n_draws=n_draws, seed=cfg.seed)
    return out


def register(app) -> None:
    """Add ``interp retrieval MODEL [--haystack FILE|self] [--lengths ..] [--depths ..] --out DIR``."""
    import typer

    @app.command("retrieval")
    def retrieval_command(
        model: str = typer.Argument(..., help="HF id, local folder, .gguf file or zoo name."),
        out: Path = typer.Option(..., "--out", help="Folder for the figures and summary.json."),
        haystack: Optional[str] = typer.Option(None, "--haystack",
                                               help="Haystack text file, or 'self' for the model's own "
                                                    "greedy stories (default: the zoo's filler)."),
        lengths: Optional[str] = typer.Option(None, "--lengths", help="Context lengths, e.g. 48,80,112."),
        depths: Optional[str] = typer.Option(None, "--depths", help="Needle depths, e.g. 0,0.5,1."),
        needle: Optional[str] = typer.Option(None, "--needle", help="Needle sentence (with --question, --answer)."),
        question: Optional[str] = typer.Option(None, "--question"),
        answer: Optional[str] = typer.Option(None, "--answer", help="Answer: verbatim part of the needle."),
        template: Optional[str] = typer.Option(None, "--template",
                                               help="Prompt template with {context} and {question}."),
        mode: str = typer.Option("teacher_forced", "--mode", help="teacher_forced or decode."),
        n_needles: int = typer.Option(4, "--n-needles", help="Zoo needles (when no --needle)."),
        k: Optional[int] = typer.Option(None, "--k", help="Heads to prune (default: those above 0.1)."),
        prune_mode: str = typer.Option("uniform", "--prune-mode", help="uniform (paper) or zero."),
        draws: int = typer.Option(5, "--draws", help="Random-head draws for the pruning check."),
        seed: int = typer.Option(0, "--seed"),
        batch_size: int = typer.Option(16, "--batch-size"),
        backend: str = typer.Option("nnsight", "--backend"),
        no_prune: bool = typer.Option(False, "--no-prune", help="Skip the pruning check."),
        no_curve: bool = typer.Option(False, "--no-curve", help="Skip the pruning curve over k."),
    ):
        """Retrieval heads (Wu et al. 2024): scores, NIAH accuracy, and the pruning check."""
        from interp.cli import _fail, _load

        try:
            m = _load(model, backend)
            cfg = _cli_config(m, haystack, lengths, depths, needle, question, answer, template, mode,
                              n_needles, seed, batch_size)
            report = analyze(m, cfg, k=k, prune_mode=prune_mode, n_draws=draws, prune=not no_prune,
                             curve=not no_curve)
            summary = write_outputs(report, out, m)
        except (FileNotFoundError, ValueError, TypeError) as err:
            _fail(str(err))
        typer.echo(_describe(summary))


def _cli_config(m, haystack, lengths, depths, needle, question, answer, template, mode, n_needles,
                seed, batch_size) -> Config:
    text = None
    if haystack == "self":
        text = self_haystack(m)
    elif haystack is not None:
        path = Path(haystack)
        if not path.is_file():
            raise FileNotFoundError(f"haystack file {haystack} not found (or pass --haystack self)")
        text = path.read_text(encoding="utf-8")
    given = [needle, question, answer]
    if any(given) and not all(given):
        raise ValueError("give --needle, --question and --answer together")
    needles = (Needle(needle, question, answer),) if all(given) else (
        (PAPER_NEEDLE,) if text is not None else None)
    if template is None:
        template = PAPER_TEMPLATE if (text is not None and not all(given)) else COMPLETION_TEMPLATE
    kwargs = dict(lengths=_floats(lengths, int), haystack=text, needles=needles, template=template,
                  mode=mode, n_needles=n_needles, seed=seed, batch_size=batch_size)
    if depths is not None:
        kwargs["depths"] = _floats(depths)
    return Config(**kwargs)


def write_outputs(report: dict, out, model) -> dict:
    """Figures (HTML) and summary.json for an `analyze` report; returns the summary numbers."""
    from interp import plots
    from interp.report import write_summary

    out = Path(out)
    primary, other = report["primary"], report["other"]
    figures = [plots.save_html(primary.plot(), out / "retrieval_scores.html"),
               plots.save_html(primary.plot_accuracy(), out / "niah_accuracy.html"),
               plots.save_html(other.plot(), out / f"retrieval_scores_{other.config.mode}.html")]
    primary.scores.to_json(out / "retrieval_scores.json")
    numbers = {"model": model.name, "heads_total": model.n_layers * model.n_heads,
               primary.config.mode: primary.numbers(), other.config.mode: other.numbers(),
               "mode_agreement": report["agreement"],
               "control_no_needle_accuracy": report["control_no_needle_accuracy"]}
    if report["prune"] is not None:
        numbers["prune"] = report["prune"].to_dict()
        figures.append(plots.save_html(report["prune"].figure(), out / "prune.html"))
    if report.get("prune_curve"):
        numbers["prune_curve"] = curve_numbers(report["prune_curve"])
        figures.append(plots.save_html(prune_curve_figure(report["prune_curve"]), out / "prune_curve.html"))
    else:
        numbers["prune"] = {"skipped": True, "reason": "no test solved" if not primary.retrieves
                            else "--no-prune"}
    cfg = primary.config
    write_summary(out, "retrieval", numbers, model=model.name, figures=figures,
                  seeds={"data": cfg.seed, "random_heads": cfg.seed},
                  data={"n_tests": primary.n_tests, "lengths": list(primary.lengths),
                        "depths": list(primary.depths), "needles": primary.scores.meta["needles"],
                        "template": cfg.template, "haystack_chars": len(cfg.haystack or "") or "zoo filler"})
    return numbers


def _describe(numbers: dict) -> str:
    lines = [f"model: {numbers['model']} ({numbers['heads_total']} heads)"]
    for mode in MODES:
        n = numbers[mode]
        if n["retrieves"]:
            lines.append(f"{mode}: kept {n['n_kept']}/{n['n_tests']}, share above {n['threshold']}: "
                         f"{n['share_above']:.3f} ({n['n_above']} heads: {', '.join(n['heads_above'][:8])})")
        else:
            lines.append(f"{mode}: {n['note']}")
    lines.append(f"control (needle cut out, answered anyway): {numbers['control_no_needle_accuracy']:.2f}")
    agree = numbers["mode_agreement"]
    if "spearman_above_threshold" in agree:
        lines.append(f"spearman (heads above threshold): {agree['spearman_above_threshold']}, "
                     f"all heads: {agree['spearman_all_heads']}")
    prune = numbers["prune"]
    if not prune.get("skipped"):
        lines.append(f"prune top-{prune['k']} ({prune['mode']}): accuracy {prune['baseline_accuracy']:.2f} "
                     f"-> {prune['top_accuracy']:.2f} (drop {prune['drop_top_points']:.1f} pts); random "
                     f"drops {[round(d['drop_points'], 1) for d in prune['random_draws']]} "
                     f"(mean {prune['mean_random_drop_points']:.1f})")
    for c in numbers.get("prune_curve") or []:
        lines.append(f"  k={c['k']}: top drop {c['drop_top_points']:.1f} pts, random mean "
                     f"{c['mean_random_drop_points']:.1f}")
    return "\n".join(lines)
