"""Behaviour metrics of a zoo model on held-out prompts of the world language."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from .world import World

BEHAVIOURS = ("facts", "conflict", "needle", "box", "induction")
# box prompts are short, and the base / fine-tune comparison (>= 10 points) needs a small
# standard error: box accuracy uses 5x the prompts of the other behaviours (1,500 at n=300,
# +-1.2 points at 75%)
BOX_PROMPT_FACTOR = 5


def _batched_last_logits(
    model, tokenizer, prompts: list[str], batch_size: int = 64
) -> torch.Tensor:
    """Logits at the last real position of each prompt (right padding; causal model)."""
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(prompts), batch_size):
        enc = [tokenizer(p).input_ids for p in prompts[i : i + batch_size]]
        L = max(map(len, enc))
        pad = tokenizer.pad_token_id or 0
        ids = torch.tensor([e + [pad] * (L - len(e)) for e in enc], device=device)
        mask = torch.tensor([[1] * len(e) + [0] * (L - len(e)) for e in enc], device=device)
        logits = model(input_ids=ids, attention_mask=mask).logits
        last = torch.tensor([len(e) - 1 for e in enc], device=device)
        out.append(logits[torch.arange(len(enc), device=device), last].float().cpu())
    return torch.cat(out)


def _tid(tokenizer, word: str) -> int:
    return tokenizer.convert_tokens_to_ids(word)


@torch.no_grad()
def evaluate(
    model,
    tokenizer,
    world: World | None = None,
    behaviours=BEHAVIOURS,
    n: int = 200,
    seed: int = 0,
    context_len: int | None = None,
) -> dict:
    """Measure every behaviour; returns a flat-ish JSON-able dict.

    * ``fact_recall`` greedy accuracy on ``the capital of C is`` over seen countries
      (``fact_recall_unseen`` for the held-out countries);
    * ``conflict_context_rate`` / ``conflict_memory_rate`` / ``conflict_other_rate``:
      greedy choice on conflict prompts;
    * ``needle_acc`` (and per depth) at ``context_len`` tokens, with 1-5 same-form distractors;
    * ``box_acc`` (and per number of boxes), on ``BOX_PROMPT_FACTOR`` x ``n`` prompts;
    * ``induction_ratio_max``: worst (largest) ratio over span lengths / offsets of the mean
      loss on the second copy of a random span to the loss on its first copy.
    """
    world = world or World(0)
    was_training = model.training
    model.eval()
    if context_len is None:
        context_len = int(getattr(model.config, "max_position_embeddings", 256))
    res: dict = {}
    if "facts" in behaviours:
        for key, cs in (
            ("fact_recall", world.seen_countries),
            ("fact_recall_unseen", world.unseen_countries),
        ):
            ps = world.fact_prompts(cs)
            lg = _batched_last_logits(model, tokenizer, [p["prompt"] for p in ps])
            pred = lg.argmax(-1).tolist()
            ok = [pr == _tid(tokenizer, p["answer"]) for pr, p in zip(pred, ps)]
            res[key] = float(np.mean(ok))
            if key == "fact_recall":
                res["fact_recall_by_country"] = {p["country"]: bool(o) for p, o in zip(ps, ok)}
    if "conflict" in behaviours:
        ps = world.conflict_prompts(n, seed=seed)
        lg = _batched_last_logits(model, tokenizer, [p["prompt"] for p in ps])
        pred = lg.argmax(-1).tolist()
        ctx = [pr == _tid(tokenizer, p["context_answer"]) for pr, p in zip(pred, ps)]
        mem = [pr == _tid(tokenizer, p["memory_answer"]) for pr, p in zip(pred, ps)]
        res["conflict_context_rate"] = float(np.mean(ctx))
        res["conflict_memory_rate"] = float(np.mean(mem))
        res["conflict_other_rate"] = float(1 - np.mean(ctx) - np.mean(mem))
        # frequency effect: context rate for the most / least frequent half of countries
        half = len(world.seen_countries) // 2
        fr = [p["freq_rank"] < half for p in ps]
        res["conflict_context_rate_frequent"] = float(np.mean([c for c, f in zip(ctx, fr) if f]))
        res["conflict_context_rate_rare"] = float(np.mean([c for c, f in zip(ctx, fr) if not f]))
    if "needle" in behaviours:
        ps = world.needle_prompts(n_per_depth=max(n // 5, 1), context_len=context_len, seed=seed)
        lg = _batched_last_logits(model, tokenizer, [p["prompt"] for p in ps], batch_size=32)
        pred = lg.argmax(-1).tolist()
        ok = [pr == _tid(tokenizer, p["answer"]) for pr, p in zip(pred, ps)]
        dis = [
            tokenizer.convert_ids_to_tokens(pr) in p["distractor_answers"]
            for pr, p in zip(pred, ps)
        ]
        res["needle_acc"] = float(np.mean(ok))
        res["needle_distractor_rate"] = float(np.mean(dis))
        by = defaultdict(list)
        for p, o in zip(ps, ok):
            by[p["depth"]].append(o)
        res["needle_acc_by_depth"] = {str(d): float(np.mean(v)) for d, v in sorted(by.items())}
        res["needle_acc_min_depth"] = float(min(np.mean(v) for v in by.values()))
        res["needle_context_len"] = context_len
    if "box" in behaviours:
        ps = world.box_prompts(n_per_size=max(n // 3, 1) * BOX_PROMPT_FACTOR, seed=seed)
        lg = _batched_last_logits(model, tokenizer, [p["prompt"] for p in ps])
        pred = lg.argmax(-1).tolist()
        ok = [pr == _tid(tokenizer, p["answer"]) for pr, p in zip(pred, ps)]
        res["box_acc"] = float(np.mean(ok))
        by = defaultdict(list)
        for p, o in zip(ps, ok):
            by[p["n_boxes"]].append(o)
        res["box_acc_by_n"] = {str(k): float(np.mean(v)) for k, v in sorted(by.items())}
    if "induction" in behaviours:
        res.update(induction_scores(model, world, seed=seed, context_len=context_len))
    if was_training:
        model.train()
    return res


@torch.no_grad()
def induction_scores(
    model,
    world: World,
    lengths=(10, 20, 40),
    offsets=(0, 30, 80),
    n: int = 16,
    seed: int = 0,
    context_len: int = 256,
) -> dict:
    device = next(model.parameters()).device
    offsets = tuple(o for o in offsets if o + 2 * max(lengths) + 1 <= context_len) or (0,)
    seqs = world.repeated_span_sequences(lengths, offsets, n=n, seed=seed)
    groups = defaultdict(list)
    for s in seqs:
        groups[(s["span_len"], s["offset"])].append(s)
    by = {}
    for (L, o), ss in groups.items():
        ids = torch.tensor([s["input_ids"] for s in ss], device=device)
        logits = model(input_ids=ids).logits.float()
        lp = torch.log_softmax(logits[:, :-1], -1)
        nll = -lp.gather(-1, ids[:, 1:, None])[..., 0]  # nll[:, t] predicts token t+1
        a, b = ss[0]["first"], ss[0]["second"]
        # exclude the first token of each copy (not predictable by copying)
        first = nll[:, a[0] : a[1] - 1].mean().item()  # predicts tokens a0+1 .. a1-1
        second = nll[:, b[0] : b[1] - 1].mean().item()
        by[f"L{L}_o{o}"] = {"first": first, "second": second, "ratio": second / max(first, 1e-9)}
    ratios = [v["ratio"] for v in by.values()]
    return {
        "induction_ratio_max": float(max(ratios)),
        "induction_ratio_mean": float(np.mean(ratios)),
        "induction_by_setting": by,
    }


def summary_line(m: dict) -> str:
    keys = [
        ("fact_recall", "fact"),
        ("conflict_context_rate", "ctx"),
        ("needle_acc", "needle"),
        ("box_acc", "box"),
        ("induction_ratio_max", "ind"),
    ]
    return " ".join(f"{s}={m[k]:.2f}" for k, s in keys if k in m)
