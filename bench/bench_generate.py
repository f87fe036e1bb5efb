"""Greedy generation (64 new tokens, KV cache) under interp's interventions vs plain HF generate.

Setting: the bench_forward Llama (4 layers, d_model 256, 8 heads / 4 kv heads, d_head 32),
batch 4 x 32 prompt tokens, 64 new tokens, CPU, fp32. Recipe: PruneHeads L1H0, L2H3 (zero)
+ ScaleValues L3H1 x2.

Variants, interleaved in every round:
  hf_generate      hf.generate(ids, max_new_tokens=64, min_new_tokens=64, do_sample=False)
  bridge_bare      the same HF generate on bridge.original_model inside bridge.hooks(3 edits)
  interp_loop      model.generate without interventions: interp's own loop over plain HF steps
  interp_tl        model.generate(..., interventions=recipe, backend="transformer_lens")
  interp_nnsight   model.generate(..., interventions=recipe, backend="nnsight")

(nnsight 0.8's `NNsight` wrapper has no multi-step generate trace, so there is no bare-nnsight
generate to compare against; bench_forward gives the per-trace cost.)

    python bench/bench_generate.py [--quick] [--rounds N] [--json PATH]

Informational: always exits 0.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _timing as T  # noqa: E402
import torch  # noqa: E402


def main(argv=None) -> int:
    p = T.parser(__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--prompt", type=int, default=None, help="prompt tokens, default 32 (quick 16)")
    p.add_argument("--new", type=int, default=None, help="new tokens, default 64 (quick 16)")
    args = p.parse_args(argv)
    T.setup(args, default_rounds=15)
    prompt = args.prompt or (16 if args.quick else 32)
    new = args.new or (16 if args.quick else 64)

    model = T.build_model(seed=args.seed)
    hf = model.hf
    tokens = T.random_tokens(args.batch, prompt, model.vocab_size, seed=args.seed)
    ids, mask = tokens.input_ids, tokens.attention_mask
    recipe = T.recipe()
    bridge, _ = model.bridge, model.envoy  # build both engines before timing
    hooks = T.bridge_hooks(model.d_head)
    hf_kwargs = dict(
        attention_mask=mask,
        max_new_tokens=new,
        min_new_tokens=new,
        do_sample=False,
        pad_token_id=model.pad_token_id,
    )

    def hf_generate():
        return hf.generate(ids, **hf_kwargs)

    def bridge_bare():
        with bridge.hooks(fwd_hooks=hooks):
            return bridge.original_model.generate(ids, **hf_kwargs)

    def interp_loop():
        return model.generate(tokens, max_new_tokens=new, backend="nnsight", use_cache=True).tokens

    def interp_tl():
        return model.generate(
            tokens,
            max_new_tokens=new,
            interventions=recipe,
            backend="transformer_lens",
            use_cache=True,
        ).tokens

    def interp_nnsight():
        return model.generate(
            tokens, max_new_tokens=new, interventions=recipe, backend="nnsight", use_cache=True
        ).tokens

    variants = {
        "hf_generate": hf_generate,
        "bridge_bare": bridge_bare,
        "interp_loop": interp_loop,
        "interp_tl": interp_tl,
        "interp_nnsight": interp_nnsight,
    }

    print(
        f"bench_generate: Llama 4L d256 8h/4kv d_head 32, batch {args.batch} x {prompt} prompt + "
        f"{new} new tokens, greedy, KV cache, fp32 CPU, {torch.get_num_threads()} threads, "
        f"{args.rounds} rounds (+{args.warmup} warmup)"
    )
    with torch.no_grad():
        outs = {name: fn() for name, fn in variants.items()}
        checks = {
            "interp_loop == hf_generate (no edits)": bool(
                torch.equal(outs["interp_loop"], outs["hf_generate"])
            ),
            "interp_tl == bridge_bare (edited)": bool(
                torch.equal(outs["interp_tl"], outs["bridge_bare"])
            ),
            "interp_nnsight == interp_tl (edited)": bool(
                torch.equal(outs["interp_nnsight"], outs["interp_tl"])
            ),
        }
        changed = not torch.equal(outs["interp_tl"], outs["hf_generate"])
        print("\ncorrectness (identical generated token ids):")
        for label, ok in checks.items():
            print(f"  {label:<40}{'OK' if ok else 'MISMATCH'}")
        print(f"  {'(edits change the continuation)':<40}{'yes' if changed else 'no'}")
        del outs

        times = T.interleaved(variants, rounds=args.rounds, warmup=args.warmup)

    print()
    rows = T.summarize(times, "hf_generate")
    T.print_times(rows, "hf_generate")
    targets = T.check_targets(
        times,
        [
            ("interp_tl", "hf_generate", 1.20, "interp (bridge) / hf generate"),
            ("interp_nnsight", "hf_generate", 1.20, "interp (nnsight) / hf generate"),
            ("interp_loop", "hf_generate", None, "interp loop, no edits / hf generate"),
            ("bridge_bare", "hf_generate", None, "bare bridge generate / hf generate"),
            ("interp_tl", "bridge_bare", None, "interp (bridge) / bare bridge"),
            ("interp_nnsight", "interp_loop", None, "interp (nnsight) / interp loop"),
        ],
    )
    per_token = {row["variant"]: row["median_ms"] / new for row in rows}
    print("\nper new token (ms): " + ", ".join(f"{k} {v:.2f}" for k, v in per_token.items()))
    T.write_json(
        args.json,
        {
            "bench": "generate",
            "quick": args.quick,
            "batch": args.batch,
            "prompt": prompt,
            "new_tokens": new,
            "rounds": args.rounds,
            "warmup": args.warmup,
            "environment": T.environment(),
            "correctness": checks,
            "variants": rows,
            "targets": targets,
            "ms_per_new_token": per_token,
            "raw_seconds": times,
        },
    )
    return 0


if __name__ == "__main__":
    T.run_main(main, "bench_generate")
