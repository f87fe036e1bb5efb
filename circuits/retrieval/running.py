"""Running the copy test: teacher-forced (one pass over prompt + reference answer) or decoded
(the model's own greedy answer), batched by answer length, left-padded.

- ``"teacher_forced"``: every answer position is scored at once in one pass;
- ``"decode"``: cached greedy decoding; on the rows route each step scores its query row (the
  paper's per-step test); on the pattern route the emitted tokens are replayed in ONE recorded
  pass over the cache cut back to the prompt: causal attention gives every replayed query the
  keys it had at its step, so the argmax keys are the step's.

Every forward goes through `Model.run_plan`, so the cost meters (`interp.cost`) count it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch

from interp.backends.plan import RunPlan
from interp.data.niah import NiahPrompt
from interp.errors import InvalidArgumentError
from interp.progress import track
from interp.tokens import Tokens

from .config import MODES, ROUTES
from .scoring import ArgmaxRecorder, copy_hits, per_test_scores, rouge1_recall, rows_route

__all__ = [
    "NiahRecord",
    "score_prompts",
    "left_pad",
    "stop_text",
    "is_stop",
    "answer_text",
    "answer_groups",
    "teacher_forced_answers",
]


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


def left_pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token rows left-padded to one width: ids [b, width] and their attention mask."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row) :] = torch.tensor(list(row), dtype=torch.long)
        mask[i, width - len(row) :] = 1
    return ids, mask


def _positions(mask: torch.Tensor) -> torch.Tensor:
    return (mask.cumsum(-1) - 1).clamp(min=0)


def _call(model, ids, mask, edits, backend, *, past=None, logits_to_keep=0, use_cache=True):
    """One pass of the newest tokens `ids` ([b, n]) through `Model.run_plan`; `mask` covers
    cache + ids. HF output."""
    n = ids.shape[1]
    return model.run_plan(
        Tokens(ids, mask[:, -n:]),
        RunPlan(edits),
        backend=backend,
        past_key_values=past,
        use_cache=use_cache,
        position_ids=_positions(mask)[:, -n:],
        attention_mask=mask,
        logits_to_keep=logits_to_keep,
    )


def _rows_usable(model, edits, backend, route) -> bool:
    """The rows route needs the HF attention functions (nnsight engine) and no pattern edit."""
    return (
        route == "rows"
        and (backend or model.backend) == "nnsight"
        and not RunPlan(edits).needs_pattern
    )


def _check_complete(model, recorder) -> None:
    if not recorder.complete:
        raise RuntimeError(
            f"{model.name}: the attention of some layers did not go through "
            "Hugging Face's attention interface; use route='pattern'"
        )


def _observed_call(
    model, ids, mask, edits, backend, route, recorder, rows, *, past=None, use_cache=False
):
    """A pass that records the argmax keys of its last `rows` queries (rows or pattern route)."""
    if _rows_usable(model, edits, backend, route):
        with rows_route(model, recorder, rows):
            out = _call(
                model,
                ids,
                mask,
                edits,
                backend,
                past=past,
                logits_to_keep=rows,
                use_cache=use_cache,
            )
        _check_complete(model, recorder)
        return out
    # pattern route: the answer rows run alone over a KV cache of the rest, so that
    # `interp_eager` builds only [b, H, rows, keys] patterns
    n_rest = ids.shape[1] - rows
    if n_rest > 0:
        prefix_mask = mask[:, : mask.shape[1] - rows]
        past = _call(
            model, ids[:, :n_rest], prefix_mask, edits, backend, past=past, logits_to_keep=1
        ).past_key_values
    plan = RunPlan(list(edits) + recorder.edits())
    n = rows
    tokens = Tokens(ids[:, -n:], torch.ones_like(ids[:, -n:]))
    return model.run_plan(
        tokens,
        plan,
        backend=backend,
        past_key_values=past,
        use_cache=True,
        position_ids=_positions(mask)[:, -n:],
        attention_mask=mask,
    )


def stop_text(model, ids: Sequence[int]) -> str:
    """The answer text of emitted ids: its first line, stripped."""
    text = model.decode(list(ids))
    return text.split("\n")[0].strip()


def is_stop(model, token: int) -> bool:
    """Whether emitting `token` ends an answer (EOS, or a token holding a newline)."""
    return token == model.tokenizer.eos_token_id or "\n" in model.decode([token])


def answer_text(model, ids: Sequence[int]) -> str:
    """The answer a row of predicted ids spells: up to its first stop token (`is_stop`), as
    `stop_text` reads it. Decoding stops there too, so both metrics read the same answer."""
    kept = []
    for token in ids:
        if is_stop(model, int(token)):
            break
        kept.append(int(token))
    return stop_text(model, kept)


def _teacher_forced_inputs(model, prompts):
    """Prompt + reference answer minus its last token, left-padded: ids, mask, answer length."""
    ids, mask = left_pad([p.input_ids + p.answer_ids[:-1] for p in prompts], model.pad_token_id)
    return ids, mask, len(prompts[0].answer_ids)


def teacher_forced_answers(model, prompts: Sequence[NiahPrompt], edits, backend=None) -> list[str]:
    """The answers of one batch (one answer length) by teacher forcing: ONE forward over prompt
    + reference answer under `edits`, the argmax at each answer position read as the model's
    answer (`answer_text`). With the answer fixed this is the pruning check's floor: no decode
    loop, logits projected at the answer rows only."""
    ids, mask, n = _teacher_forced_inputs(model, prompts)
    with torch.no_grad():
        out = _call(model, ids, mask, edits, backend, logits_to_keep=n, use_cache=False)
    return [answer_text(model, row.tolist()) for row in out.logits[:, -n:].argmax(-1)]


def _batch_teacher_forced(model, prompts, edits, backend, route):
    """Copy hits [b, L, H] and the teacher-forced greedy answers: one pass over prompt + answer."""
    ids, mask, n = _teacher_forced_inputs(model, prompts)
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
    return hits, [answer_text(model, row.tolist()) for row in predicted]


def _batch_decode(model, prompts, edits, backend, extra_tokens, route):
    """Copy hits [b, L, H] and the greedy answers (the stop step, newline / EOS, is scored too,
    as in the authors' code)."""
    ids, mask = left_pad([p.input_ids for p in prompts], model.pad_token_id)
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
            if is_stop(model, int(word[i])):
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
        recorder.key_ids = torch.cat([seq_ids, word[:, None]], 1)  # the keys of the next call

    with torch.no_grad(), rows_route(model, recorder, 1):
        _, _, emitted, _ = _greedy(model, ids, mask, n_steps, edits, backend, on_step)
    return hits, [stop_text(model, row) for row in emitted]


def _decode_replay(model, ids, mask, span, n_steps, edits, backend, route):
    """Pattern route: decode with no hooks, cut the KV cache back to the prompt minus its last
    token, and replay [last prompt token, emitted tokens] in ONE recorded pass. Causal attention
    gives each replayed query exactly the keys it had at its step, so its argmax key is the
    step's."""
    with torch.no_grad():
        word_ids, valid, emitted, past = _greedy(model, ids, mask, n_steps, edits, backend)
        replay = torch.cat([ids[:, -1:], word_ids[:, :-1]], 1)
        past = _cut_cache(model, past, ids, mask, edits, backend)
        recorder = ArgmaxRecorder(model.n_layers)
        recorder.key_ids = torch.cat([ids[:, :-1], replay], 1)
        full_mask = torch.cat([mask, torch.ones_like(replay[:, 1:])], 1)
        _observed_call(
            model,
            replay,
            full_mask,
            edits,
            backend,
            route,
            recorder,
            replay.shape[1],
            past=past,
            use_cache=True,
        )
    positions, tokens = recorder.stacked()
    return copy_hits(positions, tokens, word_ids, span, valid), [
        stop_text(model, r) for r in emitted
    ]


def _cut_cache(model, past, ids, mask, edits, backend):
    """The KV cache of the prompt minus its last token (cropped, or rebuilt if it cannot crop)."""
    keep = ids.shape[1] - 1
    try:
        past.crop(keep - past.get_seq_length())
        return past
    except (AttributeError, ValueError, NotImplementedError):
        return _call(
            model, ids[:, :-1], mask[:, :-1], edits, backend, logits_to_keep=1
        ).past_key_values


def answer_groups(prompts: Sequence[NiahPrompt], batch_size: int) -> list[list[int]]:
    """Prompt indices in batches of at most `batch_size`, each of one answer length (so a
    teacher-forced batch scores the same number of answer rows), in first-seen order."""
    groups: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        groups.setdefault(len(p.answer_ids), []).append(i)
    return [
        members[start : start + batch_size]
        for members in groups.values()
        for start in range(0, len(members), batch_size)
    ]


def score_prompts(
    model,
    prompts: Sequence[NiahPrompt],
    mode: str = "teacher_forced",
    *,
    batch_size: int = 16,
    backend: Optional[str] = None,
    extra_tokens: int = 0,
    rouge_threshold: float = 0.5,
    route: str = "rows",
) -> tuple[torch.Tensor, list[NiahRecord]]:
    """Per-test scores [n_tests, layer, head] and one `NiahRecord` per prompt (in order).

    Prompts are batched by answer length (left-padded); the model's applied interventions stay
    on, and nothing is left attached to the model. route="rows" (default) runs the model's own
    SDPA attention and scores only the answer rows; route="pattern" reads the library's
    ``pattern`` site (`interp_eager`) with the answer rows run over a KV cache of the prompt.
    Both give the same argmax keys; "rows" falls back to "pattern" when an applied
    intervention edits the pattern or the engine does not call the HF attention function.
    """
    if mode not in MODES:
        raise InvalidArgumentError(f"mode must be one of {MODES}, got {mode!r}")
    if route not in ROUTES:
        raise InvalidArgumentError(f"route must be one of {ROUTES}, got {route!r}")
    prompts = list(prompts)
    if not prompts:
        raise InvalidArgumentError(
            "score_prompts needs at least one NIAH prompt (see interp.data.niah)"
        )
    for p in prompts:
        if p.n_tokens + len(p.answer_ids) + extra_tokens > model.n_ctx:
            raise InvalidArgumentError(
                f"a prompt of {p.n_tokens} tokens + its answer exceeds the model's "
                f"window of {model.n_ctx}; use shorter context lengths"
            )
    edits = model.edits(None, True)
    per_test = torch.zeros(len(prompts), model.n_layers, model.n_heads)
    records: list[Optional[NiahRecord]] = [None] * len(prompts)
    for idx in track(
        answer_groups(prompts, batch_size), f"retrieval: scoring ({mode})", unit="batch"
    ):
        batch = [prompts[i] for i in idx]
        if mode == "teacher_forced":
            hits, answers = _batch_teacher_forced(model, batch, edits, backend, route)
        else:
            hits, answers = _batch_decode(model, batch, edits, backend, extra_tokens, route)
        span_len = torch.tensor([p.answer_span[1] - p.answer_span[0] for p in batch])
        per_test[idx] = per_test_scores(hits, span_len)
        for i, p, text in zip(idx, batch, answers):
            r = rouge1_recall(p.answer, text)
            records[i] = NiahRecord(
                p.context_length,
                p.n_tokens,
                p.depth,
                p.actual_depth,
                p.needle_index,
                text,
                r,
                r > rouge_threshold,
            )
    return per_test, records
