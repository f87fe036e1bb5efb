"""Forward-pass cost of interp's interventions vs plain Hugging Face and the bare engines.

Setting (the issue's): 4-layer Llama, d_model 256, 8 heads / 4 kv heads, d_head 32,
intermediate 688, vocab 2000; batch 16 x 128; CPU, fp32, torch.no_grad. Recipe: PruneHeads
L1H0, L2H3 (mode "zero") + ScaleValues L3H1 x2.

Variants, interleaved in every round:
  hf               hf(input_ids)                                   the reference
  bridge_bare      model.bridge.hooks(3 hand-written hook_z edits) around bridge.original_model
  nnsight_bare     model.envoy.trace with 3 hand-written o_proj.input edits
  interp_tl        model.forward(tokens, interventions=recipe, backend="transformer_lens")
  interp_nnsight   model.forward(tokens, interventions=recipe, backend="nnsight")

    python bench/bench_forward.py [--quick] [--rounds N] [--json PATH]

Informational: always exits 0.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _timing as T  # noqa: E402
import torch  # noqa: E402

TOLERANCE = 1e-5


def main(argv=None) -> int:
    p = T.parser(__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=None, help="default 16 (quick 4)")
    p.add_argument("--pos", type=int, default=None, help="default 128 (quick 32)")
    args = p.parse_args(argv)
    T.setup(args, default_rounds=25)
    batch = args.batch or (4 if args.quick else 16)
    pos = args.pos or (32 if args.quick else 128)

    model = T.build_model(seed=args.seed)
    hf, d_head = model.hf, model.d_head
    tokens = T.random_tokens(batch, pos, model.vocab_size, seed=args.seed)
    ids = tokens.input_ids
    recipe = T.recipe()
    bridge, envoy = model.bridge, model.envoy  # build both engines before timing
    hooks = T.bridge_hooks(d_head)

    def hf_forward():
        return hf(ids).logits

    def bridge_bare():
        with bridge.hooks(fwd_hooks=hooks):
            return bridge.original_model(ids).logits

    def nnsight_bare():
        return T.nnsight_trace(envoy, ids, d_head).logits

    def interp_tl():
        return model.forward(tokens, interventions=recipe, backend="transformer_lens")

    def interp_nnsight():
        return model.forward(tokens, interventions=recipe, backend="nnsight")

    variants = {
        "hf": hf_forward,
        "bridge_bare": bridge_bare,
        "nnsight_bare": nnsight_bare,
        "interp_tl": interp_tl,
        "interp_nnsight": interp_nnsight,
    }

    print(
        f"bench_forward: Llama 4L d256 8h/4kv d_head 32, batch {batch} x {pos}, fp32 CPU, "
        f"{torch.get_num_threads()} threads, {args.rounds} rounds (+{args.warmup} warmup)"
    )
    with torch.no_grad():
        # correctness, once: interp's edited logits == the hand-edited bare engines
        outs = {name: fn() for name, fn in variants.items()}
        checks = {
            "interp_tl vs bridge_bare": (outs["interp_tl"] - outs["bridge_bare"])
            .abs()
            .max()
            .item(),
            "interp_nnsight vs nnsight_bare": (outs["interp_nnsight"] - outs["nnsight_bare"])
            .abs()
            .max()
            .item(),
            "interp_tl vs interp_nnsight": (outs["interp_tl"] - outs["interp_nnsight"])
            .abs()
            .max()
            .item(),
        }
        edited = (outs["interp_tl"] - outs["hf"]).abs().max().item()
        print("\ncorrectness (max |diff| of logits, tolerance 1e-5):")
        for label, diff in checks.items():
            print(f"  {label:<38}{diff:.2e}  {'OK' if diff <= TOLERANCE else 'MISMATCH'}")
        print(
            f"  {'(edits change logits: interp vs hf)':<38}{edited:.2e}  "
            f"{'OK' if edited > 1e-3 else 'EDITS HAD NO EFFECT'}"
        )
        del outs

        times = T.interleaved(variants, rounds=args.rounds, warmup=args.warmup)

    print()
    rows = T.summarize(times, "hf")
    T.print_times(rows, "hf")
    targets = T.check_targets(
        times,
        [
            ("interp_tl", "hf", 1.05, "interp (bridge) / hf"),
            ("interp_nnsight", "hf", 1.10, "interp (nnsight) / hf"),
            ("bridge_bare", "hf", None, "bare bridge / hf   (issue: 0.96)"),
            ("nnsight_bare", "hf", None, "bare nnsight / hf  (issue: 1.09)"),
            ("interp_tl", "bridge_bare", None, "interp (bridge) / bare bridge"),
            ("interp_nnsight", "nnsight_bare", None, "interp (nnsight) / bare nnsight"),
        ],
    )
    T.write_json(
        args.json,
        {
            "bench": "forward",
            "quick": args.quick,
            "batch": batch,
            "pos": pos,
            "rounds": args.rounds,
            "warmup": args.warmup,
            "environment": T.environment(),
            "correctness": {
                "max_abs_diff": checks,
                "tolerance": TOLERANCE,
                "ok": all(d <= TOLERANCE for d in checks.values()),
            },
            "variants": rows,
            "targets": targets,
            "raw_seconds": times,
        },
    )
    return 0


if __name__ == "__main__":
    T.run_main(main, "bench_forward")
