"""The card of a finished organism: ``metrics.json`` (recipe, training record, measured
behaviours against their targets) and ``card.md`` rendered from it.

``finalize`` writes the shipped model folder at the end of a run (weights in the recipe's
dtype, tokenizer, world, card); ``adopt`` installs a folder trained elsewhere after checking its
recipe; ``refresh_card`` re-measures an existing folder's metrics.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from ..errors import InvalidArgumentError
from .batches import RepeatPool
from .evaluate import evaluate
from .recipes import Recipe, get_recipe
from .shelf import install_model, sha256
from .world import World, save_world


def hardware_string(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} GPU, torch {torch.__version__}"
    return f"{platform.machine()} CPU, torch {torch.__version__}, {torch.get_num_threads()} threads"


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
        xp = torch.from_numpy(RepeatPool(world, r).rows).to(dev)
        out["repeated_pool_loss"] = float(model(input_ids=xp, labels=xp).loss)
    if was:
        model.train()
    return out


def finalize(
    model,
    tok,
    world: World,
    r: Recipe,
    model_dir: Path,
    wall_s: float,
    log,
    evals,
    counts,
    hardware: str | None = None,
) -> None:
    model.eval()
    tmp = model_dir.with_name(model_dir.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    dtype = getattr(torch, r.dtype)
    model.to(dtype)
    model.config.dtype = r.dtype
    model.save_pretrained(tmp, safe_serialization=True)
    model.float()  # metrics are measured on the (rounded) shipped weights
    metrics = evaluate(model, tok, world, n=r.final_eval_n, seed=0)
    metrics.update(extra_metrics(model, world, r))
    tok.save_pretrained(tmp)
    save_world(world, tmp / "world.json")
    n_params = sum(p.numel() for p in model.parameters())
    total_facts = sum(counts.values())
    card = {
        "name": r.name,
        "description": r.description,
        "architecture": {
            "class": "LlamaForCausalLM",
            "n_layers": r.n_layers,
            "d_model": r.d_model,
            "n_heads": r.n_heads,
            "n_kv_heads": r.n_kv_heads,
            "d_ff": r.d_ff,
            "context_len": r.seq_len,
            "vocab_size": len(world.vocab),
            "n_params": n_params,
            "dtype": r.dtype,
            "positional": "RoPE",
            "tied_embeddings": True,
        },
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
        "country_train_counts": {
            c: counts.get(c, 0) for c in world.seen_countries + world.unseen_countries
        },
        "country_train_freq": {
            c: counts.get(c, 0) / max(total_facts, 1)
            for c in world.seen_countries + world.unseen_countries
        },
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
    lines = [
        f"# {c['name']}",
        "",
        c["description"],
        "",
        "## Architecture",
        "",
        f"LlamaForCausalLM, {a['n_layers']} layers, d_model {a['d_model']}, "
        f"{a['n_heads']} query heads / "
        f"{a['n_kv_heads']} kv heads (GQA), d_ff {a['d_ff']}, context {a['context_len']}, vocab "
        f"{a['vocab_size']} (word level), {a['n_params']:,} parameters, stored as {a['dtype']}.",
        "",
        "## Training",
        "",
        f"- seed {c['seed']}, world seed {c['world_seed']}, {c['steps']} steps x "
        f"{c['recipe']['batch_size']} x {c['recipe']['seq_len']} tokens "
        f"({c['tokens_seen']:,} tokens)",
        f"- lr {c['recipe']['lr']} (warmup {c['recipe']['warmup']}, cosine to "
        f"{c['recipe']['min_lr_frac']}x), AdamW wd {c['recipe']['weight_decay']}",
        "- corpus mixture (share of rows): "
        + ", ".join(f"{k} {v:.2f}" for k, v in c["corpus_mixture"].items()),
    ]
    if c["recipe"].get("parent"):
        lines.append(f"- starts from the trained weights of `{c['recipe']['parent']}`")
    if c["recipe"].get("repeat_fraction"):
        lines.append(
            f"- {c['recipe']['repeat_fraction']:.0%} of rows drawn from a pool of "
            f"{c['recipe']['repeat_pool']} rows repeated throughout training"
        )
    lines += [
        f"- wall time {c['wall_time_s']:.0f} s ({c['hardware']})",
        f"- final train loss {c['final_train_loss']:.3f}",
        "",
        "## Measured behaviour (held-out prompts)",
        "",
        "| metric | value | target | met |",
        "|---|---|---|---|",
    ]
    for k, t in c["targets"].items():
        lines.append(f"| {k} | {t['value']:.3f} | {t['target']} | {'yes' if t['met'] else 'NO'} |")
    extra = [
        "heldout_loss",
        "repeated_pool_loss",
        "fact_recall_unseen",
        "conflict_memory_rate",
        "conflict_context_rate_frequent",
        "conflict_context_rate_rare",
        "needle_acc_min_depth",
        "needle_distractor_rate",
        "induction_ratio_mean",
    ]
    lines += [""] + [f"- {k}: {m[k]:.3f}" for k in extra if k in m]
    if "needle_acc_by_depth" in m:
        lines.append(f"- needle accuracy by depth: {m['needle_acc_by_depth']}")
    if "box_acc_by_n" in m:
        lines.append(f"- box accuracy by number of boxes: {m['box_acc_by_n']}")
    lines += [
        "",
        "## Reproduce",
        "",
        f"`{c['reproduce']['command']}`; tolerance: {c['reproduce']['tolerance']}.",
        "",
    ]
    return "\n".join(lines)


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
    diff = {
        k: (card["recipe"].get(k), v)
        for k, v in want.items()
        if k not in RUN_LOCAL_FIELDS and card["recipe"].get(k) != v
    }
    if diff:
        raise InvalidArgumentError(
            f"{model_dir} was not trained with recipe {name!r}; differing fields "
            f"(card, recipe): {diff}. Update the recipe or train again."
        )
    dst = install_model(model_dir, name)
    card.update(name=name, description=r.description, recipe=want)
    device_flag = " --device cuda --workers 2" if "GPU" in card.get("hardware", "") else ""
    card["reproduce"]["command"] = (
        f"interp zoo train {name} --seed {r.seed} --steps {r.steps}{device_flag}"
        + (f"  (after `{r.parent}`)" if r.parent else "")
    )
    if "GPU" in card.get("hardware", ""):
        card["reproduce"]["tolerance"] = (
            "each rate metric within +-0.05 absolute, induction ratios within "
            "+-0.05 (GPU kernels are not bitwise deterministic)"
        )
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
    """Re-measure the metrics of a finished model folder and rewrite its card (weights
    untouched)."""
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
