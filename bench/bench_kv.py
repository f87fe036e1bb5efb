"""Generation under a head-aware KV policy: its cost against a plain generate, fast routes vs not.

`interp.kv.attention` computes a policy's attention on two routes: a general one (an explicit
boolean mask: any padding, any offset) and fast ones for an unpadded prompt (SDPA's causal
kernel for the full kv heads' prefill, chunked sink + window attention for the streaming
heads', no mask in a decode step). This bench times, at each prompt length, interleaved in
every round on the same seeded prompt:

  plain               model.generate(prompt) with no policy (the model's own SDPA and cache)
  <policy>_fast       model.generate(prompt, kv_policy=...) as it runs (FAST_ROUTES = True)
  <policy>_general    the same with every call on the general route (FAST_ROUTES = False)

for the policies full (every kv head whole), random_75 / random_25 (75% / 25% of kv heads whole,
seeded draws) and streaming (sink + window for every head). Checked first: each policy's tokens
are the same on both routes, and the full policy's tokens equal the plain generate's.

    python bench/bench_kv.py [--model smollm2-135m] [--lengths 1024,2048,4096] [--new 8]
        [--window 256] [--rounds N] [--threads T] [--json PATH]

Informational: always exits 0.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _timing as T  # noqa: E402
import torch  # noqa: E402

from interp.kv import attention as kv_attention  # noqa: E402
from interp.kv import full_policy, random_policy, streaming_policy  # noqa: E402


def policies(model, window: int) -> dict:
    """The bench's policies by name (seeded)."""
    kw = {"sink": 4, "window": window}
    return {
        "full": full_policy(model),
        "random_75": random_policy(model, 0.75, seed=0, **kw),
        "random_25": random_policy(model, 0.25, seed=0, **kw),
        "streaming": streaming_policy(model, **kw),
    }


def generator(model, tokens, n_new: int, policy=None, fast: bool = True):
    """A call that generates `n_new` greedy tokens, on the fast routes or not."""

    def call():
        kv_attention.FAST_ROUTES = fast
        try:
            with torch.no_grad():
                kw = {} if policy is None else {"kv_policy": policy}
                return model.generate(
                    tokens, max_new_tokens=n_new, backend="nnsight", **kw
                ).new_tokens
        finally:
            kv_attention.FAST_ROUTES = True

    return call


def one_length(model, length: int, args) -> dict:
    tokens = T.random_tokens(1, length, len(model.tokenizer), seed=args.seed)
    variants = {"plain": generator(model, tokens, args.new)}
    for name, policy in policies(model, args.window).items():
        variants[f"{name}_fast"] = generator(model, tokens, args.new, policy)
        variants[f"{name}_general"] = generator(model, tokens, args.new, policy, fast=False)
    out = {name: call() for name, call in variants.items()}
    same = {
        name: bool(torch.equal(out[f"{name}_fast"], out[f"{name}_general"]))
        for name in policies(model, args.window)
    }
    same["full_equals_plain"] = bool(torch.equal(out["full_fast"], out["plain"]))
    print(f"\n{length} tokens, {args.new} new; same tokens: {same}")
    times = T.interleaved(variants, rounds=args.rounds, warmup=args.warmup)
    rows = T.summarize(times, "plain")
    T.print_times(rows, "plain")
    targets = [("full_fast", "plain", 1.10, "full policy (fast) / plain generate")]
    for name in policies(model, args.window):
        targets.append((f"{name}_fast", f"{name}_general", None, f"{name}: fast / general"))
    for name in ("random_75", "random_25", "streaming"):
        targets.append((f"{name}_fast", "plain", None, f"{name} (fast) / plain generate"))
    ratios = T.check_targets(times, targets)
    return {"length": length, "same_tokens": same, "rows": rows, "targets": ratios, "times": times}


def main(argv=None) -> int:
    p = T.parser(__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m", help="model spec (default smollm2-135m)")
    p.add_argument("--lengths", default="1024,2048,4096", help="prompt lengths, comma-separated")
    p.add_argument("--new", type=int, default=8, help="new tokens per generate (default 8)")
    p.add_argument("--window", type=int, default=256, help="streaming window (default 256)")
    args = p.parse_args(argv)
    T.setup(args, default_rounds=3)
    model = T.model_from_args(args)
    lengths = [int(n) for n in args.lengths.split(",")]
    print(f"model {model.name}, torch threads {torch.get_num_threads()}, lengths {lengths}")
    results = [one_length(model, n, args) for n in lengths]
    T.write_json(
        args.json,
        {
            "settings": {"model": model.name, "lengths": lengths, "new": args.new},
            "environment": T.environment(),
            "results": results,
        },
    )
    return 0


if __name__ == "__main__":
    T.run_main(main, "bench_kv")
