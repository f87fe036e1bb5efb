"""Deterministic, resumable training of zoo organisms.

Run layout (``out_dir``, default ``./runs/zoo/<name>``)::

    <run_dir>/train_state.pt   resumable state: weights, optimizer, step, RNG, logs (NOT shipped)
    <run_dir>/model/           the HF model folder (config.json, model.safetensors,
                               tokenizer.json, ..., card.md, metrics.json)

The data of step ``t`` is a pure function of ``(seed, t)``, so an interrupted run
resumed from its last state reproduces the uninterrupted run.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from .batches import BatchStream, RepeatPool, make_step_batch
from .batches import _RepeatPool as _RepeatPool
from .cards import (
    TARGETS,
    adopt,
    check_targets,
    extra_metrics,
    finalize,
    hardware_string,
    refresh_card,
    render_card,
    write_card,
)
from .errors import CorruptCheckpointError
from .evaluate import evaluate, summary_line
from .recipes import Recipe, get_recipe, with_overrides
from .shelf import install_model, load, sha256
from .world import World


def build_model(r: Recipe, vocab_size: int, tokenizer=None):
    cfg = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=r.d_model,
        intermediate_size=r.d_ff,
        num_hidden_layers=r.n_layers,
        num_attention_heads=r.n_heads,
        num_key_value_heads=r.n_kv_heads,
        max_position_embeddings=r.seq_len,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id if tokenizer else 2,
        eos_token_id=tokenizer.eos_token_id if tokenizer else 3,
        pad_token_id=tokenizer.pad_token_id if tokenizer else 0,
        attention_bias=r.attention_bias,
        mlp_bias=False,
        hidden_act="silu",
    )
    cfg._attn_implementation = "sdpa"
    return LlamaForCausalLM(cfg)


def lr_at(r: Recipe, step: int) -> float:
    if step < r.warmup:
        return r.lr * (step + 1) / r.warmup
    t = (step - r.warmup) / max(1, r.steps - r.warmup)
    return r.lr * (
        r.min_lr_frac + (1 - r.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
    )


def _atomic_torch_save(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _load_state(path: Path) -> dict:
    try:
        st = torch.load(path, map_location="cpu", weights_only=False)
        if not isinstance(st, dict) or "step" not in st or "model" not in st:
            raise ValueError("missing keys")
        return st
    except Exception as e:  # noqa: BLE001
        raise CorruptCheckpointError(
            f"training state {path} is corrupted or unreadable ({type(e).__name__}: {e}). "
            f"Nothing was overwritten; delete it or pass resume=False to start over."
        ) from e


def default_run_dir(name: str, seed: int | None = None) -> Path:
    base = Path(os.environ.get("INTERP_ZOO_RUNS", Path.cwd() / "runs" / "zoo"))
    return base / (name if seed is None else f"{name}-seed{seed}")


def _fit_steps(r: Recipe, step: int, s_per_step: float, remaining_s: float) -> int:
    """Total steps that fit a wall-clock budget at the measured rate, rounded down to a
    multiple of 100 and never above the recipe's.  Decided inside the warm-up, where the
    learning rate does not depend on the total, so the run equals one planned with that
    total from the start."""
    fit = (step + int(0.95 * remaining_s / s_per_step)) // 100 * 100
    return max(step + 1, min(r.steps, fit))


def _load_parent(r: Recipe):
    """The model a fine-tuning recipe starts from: a zoo name, or an HF model folder."""
    if Path(r.parent).is_dir():
        return AutoModelForCausalLM.from_pretrained(r.parent, dtype=torch.float32)
    model, _ = load(r.parent)
    return model.float()


def train(
    name: str,
    seed: int | None = None,
    out_dir=None,
    steps: int | None = None,
    resume: bool = True,
    progress: bool = True,
    *,
    callback=None,
    install: bool = False,
    threads: int | None = None,
    device: str | None = None,
    workers: int = 0,
    time_budget_s: float | None = None,
    **overrides,
) -> Path:
    """Train (or resume) the organism ``name``; returns the HF model folder.

    ``callback(step, loss)`` is called after every optimizer step (raising in it
    simulates an interruption).  ``install=True`` copies the result into the
    package's ``checkpoints/<name>`` folder (what ``interp.zoo.path`` serves).
    Extra keyword overrides (e.g. ``batch_size=8``) change the recipe.

    ``device`` trains on e.g. ``"cuda"``; ``workers`` processes build batches ahead
    (same batches as inline); ``time_budget_s`` caps the step count at what fits the
    budget, measured during the warm-up (the card records the steps actually run)."""
    r = with_overrides(get_recipe(name), seed=seed, steps=steps, **overrides)
    run_dir = Path(out_dir) if out_dir is not None else default_run_dir(name, seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    state_path = run_dir / "train_state.pt"
    model_dir = run_dir / "model"
    torch.set_num_threads(threads or int(os.environ.get("INTERP_ZOO_THREADS", "2")))
    dev = torch.device(device or "cpu")

    world = World(r.world_seed)
    tok = world.build_tokenizer()
    torch.manual_seed(r.seed)
    np.random.seed(r.seed)
    if r.parent:
        model = _load_parent(r)
    else:
        model = build_model(r, len(world.vocab), tok)
    model.to(dev).train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": r.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=r.lr,
        betas=(0.9, 0.98),
    )
    start, wall, log, evals, counts = 0, 0.0, [], [], {}
    if resume and state_path.exists():
        st = _load_state(state_path)
        saved = st.get("recipe", {})
        defaults = Recipe.__dataclass_fields__

        def _cmp(d):  # the step count may change on resume (extend / stop early); recipe
            # fields added after the state was written compare equal when at their default
            return {
                k: v
                for k, v in d.items()
                if k != "steps" and (k in saved or v != defaults[k].default)
            }

        if _cmp(saved) != _cmp(r.to_dict()):
            raise CorruptCheckpointError(
                f"training state {state_path} belongs to a different recipe/seed/steps; "
                f"pass resume=False or another out_dir. Nothing was overwritten."
            )
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])  # moved to the parameters' device by torch
        torch.set_rng_state(st["torch_rng"])
        start, wall, log, evals, counts = (
            st["step"],
            st["wall_s"],
            st["log"],
            st["evals"],
            st["counts"],
        )
        start = min(start, r.steps)
    pool = RepeatPool(world, r) if r.repeat_fraction > 0 else None
    stream = BatchStream(world, r, pool, workers)
    fit_at = r.warmup if (time_budget_s and start < r.warmup) else None
    probe_from, t_probe = start + min(10, max(0, (r.warmup - start) // 2)), None

    def save_state(step: int) -> None:
        _atomic_torch_save(
            {
                "recipe": r.to_dict(),
                "step": step,
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "wall_s": wall,
                "log": log,
                "evals": evals,
                "counts": counts,
            },
            state_path,
        )

    bar = None
    if progress:
        bar = tqdm(total=r.steps, initial=start, desc=f"zoo:{name}", dynamic_ncols=True)
    t_last = time.time()
    ema = None
    step = start
    while step < r.steps:
        if step == probe_from:
            t_probe = time.time()
        if fit_at is not None and step == fit_at:
            s_per_step = (time.time() - t_probe) / max(step - probe_from, 1)
            r = replace(r, steps=_fit_steps(r, step, s_per_step, time_budget_s - wall))
            fit_at = None
            if bar is not None:
                bar.total = r.steps
            continue
        x, c = stream.get(step, r.steps)
        x = x.to(dev, non_blocking=True)
        for k, v in c.items():
            counts[k] = counts.get(k, 0) + v
        for g in opt.param_groups:
            g["lr"] = lr_at(r, step)
        out = model(input_ids=x, labels=x)
        loss = out.loss
        if r.short_copy_rows and step < r.short_copy_until:
            xs = torch.from_numpy(
                world.short_copy_batch(
                    np.random.default_rng([r.seed, step, 11]), r.short_copy_rows, r.short_copy_len
                )
            ).to(dev)
            loss = 0.5 * (loss + model(input_ids=xs, labels=xs).loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), r.grad_clip)
        opt.step()
        # reading the loss syncs the device: on an accelerator only every 10th step
        lv = float(loss.item()) if (dev.type == "cpu" or step % 10 == 0 or callback) else None
        if lv is not None:
            ema = lv if ema is None else 0.98 * ema + 0.02 * lv
        now = time.time()
        wall += now - t_last
        t_last = now
        if lv is not None and (step % 10 == 0 or step == r.steps - 1):
            log.append([step, lv])
        if bar is not None:
            bar.update(1)
            if lv is not None:
                bar.set_postfix(loss=f"{ema:.3f}")
        done = step + 1
        if r.eval_every and (done % r.eval_every == 0) and done < r.steps:
            m = evaluate(model, tok, world, n=r.eval_n, seed=1)
            m = {k: v for k, v in m.items() if not isinstance(v, dict)}
            evals.append({"step": done, **m})
            msg = f"[{name}] step {done} loss {ema:.3f} {summary_line(m)} ({wall:.0f}s)"
            (bar.write(msg) if bar is not None else print(msg, flush=True))
            t_last = time.time()
        if done % r.ckpt_every == 0 and done < r.steps:
            save_state(done)
            t_last = time.time()
        if callback is not None:
            callback(done, lv)
        step = done
    stream.close()
    if bar is not None:
        bar.close()
    save_state(r.steps)
    finalize(
        model,
        tok,
        world,
        r,
        model_dir,
        wall_s=wall,
        log=log,
        evals=evals,
        counts=counts,
        hardware=hardware_string(dev),
    )
    if install:
        install_model(model_dir, r.name)
    return model_dir


__all__ = [
    "CorruptCheckpointError",
    "RepeatPool",
    "TARGETS",
    "adopt",
    "build_model",
    "check_targets",
    "default_run_dir",
    "extra_metrics",
    "finalize",
    "hardware_string",
    "install_model",
    "lr_at",
    "make_step_batch",
    "refresh_card",
    "render_card",
    "sha256",
    "train",
    "write_card",
]
