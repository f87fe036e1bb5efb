"""Shared helpers for the speed benchmarks: the bench model, interleaved timing, tables, JSON.

Timings on a shared CPU are noisy, so every benchmark runs all its variants inside the same
round (in a rotating order, so no variant always runs first) and reports medians: the median
time of each variant and the median over rounds of each per-round ratio. A ratio taken within
one round compares two runs made seconds apart, under the same background load.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as `python bench/bench_x.py` from a checkout
    sys.path.insert(0, str(ROOT))

import interp  # noqa: E402
import interp.testing  # noqa: E402

# The recipe of the issue: two heads pruned (mode "zero") and one scaled.
PRUNED = (("L1H0", 1, 0), ("L2H3", 2, 3))
SCALED = ("L3H1", 3, 1, 2.0)


def recipe():
    return interp.PruneHeads([name for name, _, _ in PRUNED]) + interp.ScaleValues(
        SCALED[0], SCALED[3]
    )


def build_model(
    *,
    n_layers=4,
    d_model=256,
    n_heads=8,
    n_kv_heads=4,
    d_head=32,
    intermediate=688,
    vocab=2000,
    n_ctx=512,
    seed=0,
):
    """A randomly initialised Llama (fixed seed) wrapped in `interp.Model`."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=d_model,
        num_attention_heads=n_heads,
        num_key_value_heads=n_kv_heads,
        head_dim=d_head,
        intermediate_size=intermediate,
        num_hidden_layers=n_layers,
        max_position_embeddings=n_ctx,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=2,
        architectures=["LlamaForCausalLM"],
    )
    torch.manual_seed(seed)
    hf = LlamaForCausalLM(config).eval()
    return interp.Model(hf, interp.testing.word_tokenizer(), name="bench-llama")


def model_from_args(args):
    """`--model SPEC` loaded quietly, else the seeded random bench Llama."""
    if not getattr(args, "model", None):
        return build_model(seed=args.seed)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return interp.load(args.model)


def random_tokens(batch: int, pos: int, vocab: int, seed: int = 0) -> interp.Tokens:
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, vocab, (batch, pos), generator=gen)
    return interp.Tokens(ids, torch.ones_like(ids))


# --- bare-engine edits, written by hand (no interp code on the hot path) --------------------


def bridge_hooks(d_head: int):
    """fwd_hooks for `TransformerBridge.hooks`: hook_z is [batch, pos, n_heads, d_head]."""

    def zero(head):
        def hook(z, hook=None):
            z = z.clone()
            z[:, :, head] = 0
            return z

        return hook

    def scale(head, alpha):
        def hook(z, hook=None):
            z = z.clone()
            z[:, :, head] *= alpha
            return z

        return hook

    hooks = [(f"blocks.{layer}.attn.hook_z", zero(head)) for _, layer, head in PRUNED]
    _, layer, head, alpha = SCALED
    hooks.append((f"blocks.{layer}.attn.hook_z", scale(head, alpha)))
    return hooks


def nnsight_trace(envoy, input_ids, d_head: int):
    """A raw nnsight trace with the three edits done on `o_proj.input`; returns the HF output."""
    (_, l0, h0), (_, l1, h1) = PRUNED
    _, l2, h2, alpha = SCALED
    with envoy.trace(input_ids):
        envoy.model.layers[l0].self_attn.o_proj.input[:, :, h0 * d_head : (h0 + 1) * d_head] = 0
        envoy.model.layers[l1].self_attn.o_proj.input[:, :, h1 * d_head : (h1 + 1) * d_head] = 0
        envoy.model.layers[l2].self_attn.o_proj.input[:, :, h2 * d_head : (h2 + 1) * d_head] *= (
            alpha
        )
        output = envoy.output.save()
    return output


# --- timing ---------------------------------------------------------------------------------


def interleaved(
    variants: dict[str, Callable[[], object]],
    *,
    rounds: int,
    warmup: int = 2,
    progress: Optional[bool] = None,
) -> dict[str, list[float]]:
    """Seconds per call of each variant, all variants run once per round in rotating order."""
    names = list(variants)
    if progress is None:
        progress = sys.stderr.isatty()
    for _ in range(warmup):
        for name in names:
            variants[name]()
    times = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            gc.collect()
            gc.disable()
            try:
                start = time.perf_counter()
                variants[name]()
                times[name].append(time.perf_counter() - start)
            finally:
                gc.enable()
        if progress:
            print(f"\r  round {r + 1}/{rounds}", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    return times


def median_ratio(times: dict[str, list[float]], num: str, den: str) -> float:
    return statistics.median(a / b for a, b in zip(times[num], times[den]))


def summarize(times: dict[str, list[float]], baseline: str) -> list[dict]:
    rows = []
    for name, ts in times.items():
        q = statistics.quantiles(ts, n=4) if len(ts) >= 2 else [ts[0]] * 3
        rows.append(
            {
                "variant": name,
                "median_ms": 1e3 * statistics.median(ts),
                "p25_ms": 1e3 * q[0],
                "p75_ms": 1e3 * q[2],
                f"ratio_vs_{baseline}": median_ratio(times, name, baseline),
            }
        )
    return rows


def print_times(rows: list[dict], baseline: str) -> None:
    key = f"ratio_vs_{baseline}"
    print(f"{'variant':<26}{'median ms':>11}{'p25-p75 ms':>18}{'x ' + baseline:>16}")
    for row in rows:
        spread = f"{row['p25_ms']:.1f}-{row['p75_ms']:.1f}"
        print(f"{row['variant']:<26}{row['median_ms']:>11.2f}{spread:>18}{row[key]:>15.3f}x")


def check_targets(times, targets: list[tuple[str, str, Optional[float], str]]) -> list[dict]:
    """targets: (numerator, denominator, max ratio or None for info-only, label)."""
    results = []
    print(f"\n{'ratio (median of per-round ratios)':<46}{'value':>8}{'target':>9}  result")
    for num, den, limit, label in targets:
        value = median_ratio(times, num, den)
        verdict = "info" if limit is None else ("PASS" if value <= limit else "FAIL")
        target = "" if limit is None else f"<={limit:.2f}"
        print(f"{label:<46}{value:>7.3f}x{target:>9}  {verdict}")
        results.append(
            {
                "label": label,
                "numerator": num,
                "denominator": den,
                "ratio": value,
                "target": limit,
                "result": verdict,
            }
        )
    return results


# --- command line and output ----------------------------------------------------------------


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="smoke run: small sizes, few rounds")
    p.add_argument("--rounds", type=int, default=None, help="timed rounds (default 20, quick 3)")
    p.add_argument(
        "--warmup", type=int, default=None, help="untimed rounds first (default 2, quick 1)"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch.set_num_threads; default 1 (steadier on a shared CPU), 0 = torch's default",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH", default=None, help="write the results as JSON")
    return p


def setup(args, default_rounds: int) -> None:
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.rounds is None:
        args.rounds = 3 if args.quick else default_rounds
    if args.warmup is None:
        args.warmup = 1 if args.quick else 2


def environment() -> dict:
    import nnsight
    import transformer_lens
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "transformer_lens": getattr(transformer_lens, "__version__", "?"),
        "nnsight": getattr(nnsight, "__version__", "?"),
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
    }


def write_json(path: Optional[str], payload: dict) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {path}")


def run_main(main: Callable[[], object], name: str) -> None:
    """Run a bench's main(); benches are informational: report a failure, never fail the caller."""
    try:
        main()
    except Exception as err:  # noqa: BLE001
        import traceback

        traceback.print_exc()
        print(f"{name} failed: {err}", file=sys.stderr)
    sys.exit(0)
