"""Deterministic, resumable training of zoo organisms.

Run layout (``out_dir``, default ``./runs/zoo/<name>``)::

    <run_dir>/train_state.pt   resumable state: weights, optimizer, step, RNG, logs (NOT shipped)
    <run_dir>/model/           the HF model folder (config.json, model.safetensors,
                               tokenizer.json, ..., card.md, metrics.json)

The data of step ``t`` is a pure function of ``(seed, t)``, so an interrupted run
resumed from its last state reproduces the uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .evaluate import evaluate, summary_line
from .recipes import Recipe, get_recipe, with_overrides
from .world import World, save_world


class CorruptCheckpointError(RuntimeError):
    """A checkpoint / training-state file exists but cannot be read."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_model(r: Recipe, vocab_size: int, tokenizer=None):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=vocab_size, hidden_size=r.d_model, intermediate_size=r.d_ff,
        num_hidden_layers=r.n_layers, num_attention_heads=r.n_heads, num_key_value_heads=r.n_kv_heads,
        max_position_embeddings=r.seq_len, rms_norm_eps=1e-5, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id if tokenizer else 2,
        eos_token_id=tokenizer.eos_token_id if tokenizer else 3,
        pad_token_id=tokenizer.pad_token_id if tokenizer else 0,
        attention_bias=r.attention_bias, mlp_bias=False, hidden_act="silu",
    )
    cfg._attn_implementation = "sdpa"
    return LlamaForCausalLM(cfg)


def lr_at(r: Recipe, step: int) -> float:
    if step < r.warmup:
        return r.lr * (step + 1) / r.warmup
    t = (step - r.warmup) / max(1, r.steps - r.warmup)
    return r.lr * (r.min_lr_frac + (1 - r.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


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
            f"Nothing was overwritten; delete it or pass resume=False to start over.") from e


def default_run_dir(name: str, seed: int | None = None) -> Path:
    base = Path(os.environ.get("INTERP_ZOO_RUNS", Path.cwd() / "runs" / "zoo"))
    return base / (name if seed is None else f"{name}-seed{seed}")


class _RepeatPool:
    """Rows of a small fixed subset, repeated many times (repeated-data organisms)."""

    def __init__(self, world: World, r: Recipe):
        rng = np.random.default_rng([r.seed, 424242])
        self.rows, _ = world.make_batch(rng, r.mixture, r.repeat_pool, r.seq_len)


def make_step_batch(world: World, r: Recipe, step: int, pool: _RepeatPool | None):
    rng = np.random.default_rng([r.seed, step, 7])
    x, counts = world.make_batch(rng, r.mixture, r.batch_size, r.seq_len)
    if pool is not None and r.repeat_fraction > 0:
        m = rng.random(r.batch_size) < r.repeat_fraction
        if m.any():
            x[m] = pool.rows[rng.integers(len(pool.rows), size=int(m.sum()))]
    return torch.from_numpy(x), counts


def _load_parent(r: Recipe):
    from transformers import AutoModelForCausalLM

    from . import load
    model, _ = load(r.parent)
    return model.float()


def train(name: str, seed: int | None = None, out_dir=None, steps: int | None = None, resume: bool = True,
          progress: bool = True, *, callback=None, install: bool = False, threads: int | None = None,
          **overrides) -> Path:
    """Train (or resume) the organism ``name``; returns the HF model folder.

    ``callback(step, loss)`` is called after every optimizer step (raising in it
    simulates an interruption).  ``install=True`` copies the result into the
    package's ``checkpoints/<name>`` folder (what ``interp.zoo.path`` serves).
    Extra keyword overrides (e.g. ``batch_size=8``) change the recipe."""
    r = with_overrides(get_recipe(name), seed=seed, steps=steps, **overrides)
    run_dir = Path(out_dir) if out_dir is not None else default_run_dir(name, seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    state_path = run_dir / "train_state.pt"
    model_dir = run_dir / "model"
    torch.set_num_threads(threads or int(os.environ.get("INTERP_ZOO_THREADS", "2")))

    world = World(r.world_seed)
    tok = world.build_tokenizer()
    torch.manual_seed(r.seed)
    np.random.seed(r.seed)
    if r.parent:
        model = _load_parent(r)
    else:
        model = build_model(r, len(world.vocab), tok)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": r.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=r.lr, betas=(0.9, 0.98))
    start, wall, log, evals, counts = 0, 0.0, [], [], {}
    if resume and state_path.exists():
        st = _load_state(state_path)
        saved = st.get("recipe", {})
        defaults = Recipe.__dataclass_fields__

        def _cmp(d):  # the step count may change on resume (extend / stop early); recipe
            # fields added after the state was written compare equal when at their default
            return {k: v for k, v in d.items() if k != "steps"
                    and (k in saved or v != defaults[k].default)}
        if _cmp(saved) != _cmp(r.to_dict()):
            raise CorruptCheckpointError(
                f"training state {state_path} belongs to a different recipe/seed/steps; "
                f"pass resume=False or another out_dir. Nothing was overwritten.")
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        torch.set_rng_state(st["torch_rng"])
        start, wall, log, evals, counts = st["step"], st["wall_s"], st["log"], st["evals"], st["counts"]
        start = min(start, r.steps)
    pool = _RepeatPool(world, r) if r.repeat_fraction > 0 else None

    def save_state(step: int) -> None:
        _atomic_torch_save({"recipe": r.to_dict(), "step": step, "model": model.state_dict(),
                            "optimizer": opt.state_dict(), "torch_rng": torch.get_rng_state(),
                            "wall_s": wall, "log": log, "evals": evals, "counts": counts}, state_path)

    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=r.steps, initial=start, desc=f"zoo:{name}", dynamic_ncols=True)
    t_last = time.time()
    ema = None
    for step in range(start, r.steps):
        x, c = make_step_batch(world, r, step, pool)
        for k, v in c.items():
            counts[k] = counts.get(k, 0) + v
        for g in opt.param_groups:
            g["lr"] = lr_at(r, step)
        out = model(input_ids=x, labels=x)
        loss = out.loss
        if r.short_copy_rows and step < r.short_copy_until:
            xs = torch.from_numpy(world.short_copy_batch(
                np.random.default_rng([r.seed, step, 11]), r.short_copy_rows, r.short_copy_len))
            loss = 0.5 * (loss + model(input_ids=xs, labels=xs).loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), r.grad_clip)
        opt.step()
        lv = float(loss.item())
        ema = lv if ema is None else 0.98 * ema + 0.02 * lv
        now = time.time()
        wall += now - t_last
        t_last = now
        if step % 10 == 0 or step == r.steps - 1:
            log.append([step, lv])
        if bar is not None:
            bar.update(1)
            if step % 10 == 0:
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
    if bar is not None:
        bar.close()
    save_state(r.steps)
    finalize(model, tok, world, r, model_dir, wall_s=wall, log=log, evals=evals, counts=counts)
    if install:
        install_model(model_dir, r.name)
    return model_dir


TARGETS = {
    "fact_recall": (">=", 0.95),
    "conflict_context_rate": ("in", (0.2, 0.8)),
    "needle_acc": (">=", 0.90),
    "box_acc": (">=", 0.60),
    "induction_ratio_max": ("<=", 0.30),
}


def check_targets(m: dict) -> dict:
    out = {}
    for k, (op, v) in TARGETS.items():
        if k not in m:
            continue
        x = m[k]
        ok = x >= v if op == ">=" else x <= v if op == "<=" else v[0] <= x <= v[1]
        out[k] = {"value": x, "target": f"{op} {v}", "met": bool(ok)}
    return out


@torch.no_grad()
def extra_metrics(model, world: World, r: Recipe) -> dict:
    """Held-out LM loss on fresh rows of the recipe's own mixture (same rows for every seed),
    and, for repeated-data organisms, the loss on the repeated pool (memorisation)."""
    was = model.training
    model.eval()
    x, _ = world.make_batch(np.random.default_rng([10**6, 99]), r.mixture, 32, r.seq_len)
    x = torch.from_numpy(x)
    out = {"heldout_loss": float(model(input_ids=x, labels=x).loss)}
    for kind in r.mixture:
        xk, _ = world.make_batch(np.random.default_rng([10**6, 98]), {kind: 1.0}, 16, r.seq_len)
        xk = torch.from_numpy(xk)
        out[f"heldout_loss_{kind}"] = float(model(input_ids=xk, labels=xk).loss)
    if r.repeat_fraction > 0:
        xp = torch.from_numpy(_RepeatPool(world, r).rows)
        out["repeated_pool_loss"] = float(model(input_ids=xp, labels=xp).loss)
    if was:
        model.train()
    return out


def finalize(model, tok, world: World, r: Recipe, model_dir: Path, wall_s: float, log, evals, counts) -> None:
    model.eval()
    tmp = model_dir.with_name(model_dir.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    dtype = getattr(torch, r.dtype)
    model.to(dtype)
    model.config.dtype = r.dtype
    model.save_pretrained(tmp, safe_serialization=True)
    model.float()            # metrics are measured on the (rounded) shipped weights
    metrics = evaluate(model, tok, world, n=r.final_eval_n, seed=0)
    metrics.update(extra_metrics(model, world, r))
    tok.save_pretrained(tmp)
    save_world(world, tmp / "world.json")
    n_params = sum(p.numel() for p in model.parameters())
    total_facts = sum(counts.values())
    card = {
        "name": r.name,
        "description": r.description,
        "architecture": {"class": "LlamaForCausalLM", "n_layers": r.n_layers, "d_model": r.d_model,
                         "n_heads": r.n_heads, "n_kv_heads": r.n_kv_heads, "d_ff": r.d_ff,
                         "context_len": r.seq_len, "vocab_size": len(world.vocab), "n_params": n_params,
                         "dtype": r.dtype, "positional": "RoPE", "tied_embeddings": True},
        "recipe": r.to_dict(),
        "corpus_mixture": r.mixture,
        "seed": r.seed,
        "world_seed": r.world_seed,
        "steps": r.steps,
        "tokens_seen": r.steps * r.batch_size * r.seq_len,
        "wall_time_s": round(wall_s, 1),
        "hardware": f"{platform.machine()} CPU, torch {torch.__version__}, {torch.get_num_threads()} threads",
        "final_train_loss": float(np.mean([l for _, l in log[-10:]])) if log else None,
        "metrics": metrics,
        "targets": check_targets(metrics),
        "eval_history": evals,
        "loss_curve": log[:: max(1, len(log) // 100)],
        "country_train_counts": {c: counts.get(c, 0) for c in world.seen_countries + world.unseen_countries},
        "country_train_freq": {c: counts.get(c, 0) / max(total_facts, 1)
                               for c in world.seen_countries + world.unseen_countries},
        "reproduce": {
            "command": f"interp zoo train {r.name} --seed {r.seed} --steps {r.steps}",
            "tolerance": "each rate metric within +-0.05 absolute, induction ratios within +-0.05, "
                         "on the same torch version and thread count (bitwise identical on the same machine)",
        },
        "weights_sha256": sha256(tmp / "model.safetensors"),
    }
    (tmp / "metrics.json").write_text(json.dumps(card, indent=1))
    (tmp / "card.md").write_text(render_card(card))
    if model_dir.exists():
        shutil.rmtree(model_dir)
    os.replace(tmp, model_dir)


def render_card(c: dict) -> str:
    a, m = c["architecture"], c["metrics"]
    lines = [f"# {c['name']}", "", c["description"], "",
             "## Architecture", "",
             f"LlamaForCausalLM, {a['n_layers']} layers, d_model {a['d_model']}, {a['n_heads']} query heads / "
             f"{a['n_kv_heads']} kv heads (GQA), d_ff {a['d_ff']}, context {a['context_len']}, vocab "
             f"{a['vocab_size']} (word level), {a['n_params']:,} parameters, stored as {a['dtype']}.", "",
             "## Training", "",
             f"- seed {c['seed']}, world seed {c['world_seed']}, {c['steps']} steps x "
             f"{c['recipe']['batch_size']} x {c['recipe']['seq_len']} tokens ({c['tokens_seen']:,} tokens)",
             f"- lr {c['recipe']['lr']} (warmup {c['recipe']['warmup']}, cosine to "
             f"{c['recipe']['min_lr_frac']}x), AdamW wd {c['recipe']['weight_decay']}",
             f"- corpus mixture (share of rows): " + ", ".join(f"{k} {v:.2f}" for k, v in c['corpus_mixture'].items()),
             ]
    if c["recipe"].get("parent"):
        lines.append(f"- fine-tuned from `{c['recipe']['parent']}`")
    if c["recipe"].get("repeat_fraction"):
        lines.append(f"- {c['recipe']['repeat_fraction']:.0%} of rows drawn from a pool of "
                     f"{c['recipe']['repeat_pool']} rows repeated throughout training")
    lines += [f"- wall time {c['wall_time_s']:.0f} s ({c['hardware']})",
              f"- final train loss {c['final_train_loss']:.3f}", "",
              "## Measured behaviour (held-out prompts)", "", "| metric | value | target | met |",
              "|---|---|---|---|"]
    for k, t in c["targets"].items():
        lines.append(f"| {k} | {t['value']:.3f} | {t['target']} | {'yes' if t['met'] else 'NO'} |")
    extra = ["heldout_loss", "repeated_pool_loss", "fact_recall_unseen", "conflict_memory_rate", "conflict_context_rate_frequent",
             "conflict_context_rate_rare", "needle_acc_min_depth", "needle_distractor_rate",
             "induction_ratio_mean"]
    lines += [""] + [f"- {k}: {m[k]:.3f}" for k in extra if k in m]
    if "needle_acc_by_depth" in m:
        lines.append(f"- needle accuracy by depth: {m['needle_acc_by_depth']}")
    if "box_acc_by_n" in m:
        lines.append(f"- box accuracy by number of boxes: {m['box_acc_by_n']}")
    lines += ["", "## Reproduce", "", f"`{c['reproduce']['command']}`; tolerance: {c['reproduce']['tolerance']}.", ""]
    return "\n".join(lines)


def install_model(model_dir: Path, name: str) -> Path:
    from . import CHECKPOINT_DIR
    dst = CHECKPOINT_DIR / name
    tmp = dst.with_name(name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(model_dir, tmp)
    if dst.exists():
        shutil.rmtree(dst)
    os.replace(tmp, dst)
    return dst


def refresh_card(model_dir: Path, notes: str | None = None) -> dict:
    """Re-measure the metrics of a finished model folder and rewrite its card (weights untouched)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = Path(model_dir)
    card = json.loads((model_dir / "metrics.json").read_text())
    r = Recipe(**{k: v for k, v in card["recipe"].items() if k in Recipe.__dataclass_fields__})
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(model_dir)
    world = World(r.world_seed)
    m = evaluate(model, tok, world, n=300, seed=0)
    m.update(extra_metrics(model, world, r))
    card["metrics"] = m
    card["targets"] = check_targets(m)
    if notes:
        card["notes"] = notes
    (model_dir / "metrics.json").write_text(json.dumps(card, indent=1))
    text = render_card(card)
    if card.get("notes"):
        text += "\n## Notes\n\n" + card["notes"] + "\n"
    (model_dir / "card.md").write_text(text)
    return card
