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
from dataclasses import replace
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
    """The training rows of step ``step``: a pure function of ``(r.seed, step)``."""
    rng = np.random.default_rng([r.seed, step, 7])
    x, counts = world.make_batch(rng, r.mixture, r.batch_size, r.seq_len)
    if pool is not None and r.repeat_fraction > 0:
        m = rng.random(r.batch_size) < r.repeat_fraction
        if m.any():
            x[m] = pool.rows[rng.integers(len(pool.rows), size=int(m.sum()))]
    return torch.from_numpy(x), counts


class _BatchStream:
    """Training batches in step order, built ahead by ``workers`` processes (0: inline).

    Batches are pure functions of the step, so prefetching changes nothing but speed;
    at most ``ahead`` batches are in flight (bounded memory)."""

    def __init__(self, world: World, r: Recipe, pool: _RepeatPool | None, workers: int, ahead: int = 32):
        self.world, self.r, self.pool, self.ahead = world, r, pool, ahead
        self.procs = None
        if workers > 0:
            import multiprocessing as mp
            self.procs = mp.get_context("spawn").Pool(workers, initializer=_worker_init, initargs=(r,))
        self.pending: dict[int, object] = {}

    def get(self, step: int, last: int):
        if self.procs is None:
            return make_step_batch(self.world, self.r, step, self.pool)
        for s in range(step, min(step + self.ahead, last)):
            if s not in self.pending:
                self.pending[s] = self.procs.apply_async(_worker_batch, (s,))
        return self.pending.pop(step).get()

    def close(self) -> None:
        if self.procs is not None:
            self.procs.terminate()
            self.procs = None


_WORKER: dict = {}


def _worker_init(r: Recipe) -> None:
    torch.set_num_threads(1)
    world = World(r.world_seed)
    _WORKER.update(world=world, r=r, pool=_RepeatPool(world, r) if r.repeat_fraction > 0 else None)


def _worker_batch(step: int):
    return make_step_batch(_WORKER["world"], _WORKER["r"], step, _WORKER["pool"])


def hardware_string(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} GPU, torch {torch.__version__}"
    return f"{platform.machine()} CPU, torch {torch.__version__}, {torch.get_num_threads()} threads"


def _fit_steps(r: Recipe, step: int, s_per_step: float, remaining_s: float) -> int:
    """Total steps that fit a wall-clock budget at the measured rate, rounded down to a
    multiple of 100 and never above the recipe's.  Decided inside the warm-up, where the
    learning rate does not depend on the total, so the run equals one planned with that
    total from the start."""
    fit = (step + int(0.95 * remaining_s / s_per_step)) // 100 * 100
    return max(step + 1, min(r.steps, fit))


def _load_parent(r: Recipe):
    """The model a fine-tuning recipe starts from: a zoo name, or an HF model folder."""
    from transformers import AutoModelForCausalLM

    from . import load
    if Path(r.parent).is_dir():
        return AutoModelForCausalLM.from_pretrained(r.parent, dtype=torch.float32)
    model, _ = load(r.parent)
    return model.float()


def train(name: str, seed: int | None = None, out_dir=None, steps: int | None = None, resume: bool = True,
          progress: bool = True, *, callback=None, install: bool = False, threads: int | None = None,
          device: str | None = None, workers: int = 0, time_budget_s: float | None = None,
          **overrides) -> Path:
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
        opt.load_state_dict(st["optimizer"])   # moved to the parameters' device by torch
        torch.set_rng_state(st["torch_rng"])
        start, wall, log, evals, counts = st["step"], st["wall_s"], st["log"], st["evals"], st["counts"]
        start = min(start, r.steps)
    pool = _RepeatPool(world, r) if r.repeat_fraction > 0 else None
    stream = _BatchStream(world, r, pool, workers)
    fit_at = r.warmup if (time_budget_s and start < r.warmup) else None
    probe_from, t_probe = start + min(10, max(0, (r.warmup - start) // 2)), None

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
            xs = torch.from_numpy(world.short_copy_batch(
                np.random.default_rng([r.seed, step, 11]), r.short_copy_rows, r.short_copy_len)).to(dev)
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
    finalize(model, tok, world, r, model_dir, wall_s=wall, log=log, evals=evals, counts=counts,
             hardware=hardware_string(dev))
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
    dev = next(model.parameters()).device
    x, _ = world.make_batch(np.random.default_rng([10**6, 99]), r.mixture, 32, r.seq_len)
    x = torch.from_numpy(x).to(dev)
    out = {"heldout_loss": float(model(input_ids=x, labels=x).loss)}
    for kind in r.mixture:
        xk, _ = world.make_batch(np.random.default_rng([10**6, 98]), {kind: 1.0}, 16, r.seq_len)
        xk = torch.from_numpy(xk).to(dev)
        out[f"heldout_loss_{kind}"] = float(model(input_ids=xk, labels=xk).loss)
    if r.repeat_fraction > 0:
        xp = torch.from_numpy(_RepeatPool(world, r).rows).to(dev)
        out["repeated_pool_loss"] = float(model(input_ids=xp, labels=xp).loss)
    if was:
        model.train()
    return out


def finalize(model, tok, world: World, r: Recipe, model_dir: Path, wall_s: float, log, evals, counts,
             hardware: str | None = None) -> None:
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
        "hardware": hardware or hardware_string(torch.device("cpu")),
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
        lines.append(f"- starts from the trained weights of `{c['recipe']['parent']}`")
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


RUN_LOCAL_FIELDS = ("name", "description", "parent", "shipped")


def adopt(model_dir: Path, name: str, notes: str | None = None) -> Path:
    """Install a finished model folder trained elsewhere (e.g. on an accelerator by
    ``scripts/zoo_device.py``) as the zoo organism ``name``.

    The card's training recipe must equal ``RECIPES[name]`` in every field that shapes
    training; only the run-local fields (name, description, parent path) are rewritten
    to the zoo's.  Weights are copied unchanged (the card's sha256 still holds)."""
    model_dir = Path(model_dir)
    card = json.loads((model_dir / "metrics.json").read_text())
    r = get_recipe(name)
    want = r.to_dict()
    diff = {k: (card["recipe"].get(k), v) for k, v in want.items()
            if k not in RUN_LOCAL_FIELDS and card["recipe"].get(k) != v}
    if diff:
        raise ValueError(f"{model_dir} was not trained with recipe {name!r}; differing fields "
                         f"(card, recipe): {diff}. Update the recipe or train again.")
    dst = install_model(model_dir, name)
    card.update(name=name, description=r.description, recipe=want)
    device_flag = " --device cuda --workers 2" if "GPU" in card.get("hardware", "") else ""
    card["reproduce"]["command"] = (f"interp zoo train {name} --seed {r.seed} --steps {r.steps}{device_flag}"
                                    + (f"  (after `{r.parent}`)" if r.parent else ""))
    if "GPU" in card.get("hardware", ""):
        card["reproduce"]["tolerance"] = ("each rate metric within +-0.05 absolute, induction ratios within "
                                          "+-0.05 (GPU kernels are not bitwise deterministic)")
    write_card(dst, card, notes)
    return dst


def write_card(model_dir: Path, card: dict, notes: str | None = None) -> None:
    """Write ``metrics.json`` and ``card.md`` (with a Notes section when the card has notes)."""
    if notes:
        card["notes"] = notes
    (model_dir / "metrics.json").write_text(json.dumps(card, indent=1))
    text = render_card(card)
    if card.get("notes"):
        text += "\n## Notes\n\n" + card["notes"] + "\n"
    (model_dir / "card.md").write_text(text)


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
    write_card(model_dir, card, notes)
    return card
