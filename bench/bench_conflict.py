"""Cost of the all-heads path-patching sweep of `circuits.knowledge_conflict` vs transformer-lens.

Same model, same prompts, same metric (mean logit(memory) - logit(context) at the last
position), interleaved in every round:

  interp_path     interp.patching.path_patch, every head -> logits, all other heads frozen
                  (batched: different senders in different batch rows)
  tl_act_patch    transformer_lens.patching.get_act_patch_attn_head_out_all_pos on
                  model.bridge (the simpler activation patching: one forward per head)
  interp_attr     interp.patching.attribution_patch (path to logits): one forward + one backward

The target of issue 5: interp_path / tl_act_patch <= 1. Before timing, interp's activation
patching is checked against transformer-lens's numbers (same method, so they must agree).

    python bench/bench_conflict.py [--model world-base] [--prompts 32] [--quick] [--json PATH]

Model: a zoo name / folder / .gguf if given (items from the zoo world for zoo models), else the
bench Llama of `_timing.build_model` with word prompts. Informational: always exits 0.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _timing as T  # noqa: E402
import torch  # noqa: E402

from circuits import knowledge_conflict as kc  # noqa: E402
from interp.data.conflict import (
    ConflictItem,
    Template,
    build_conflict_set,
    templates_for,
    zoo_items,
)  # noqa: E402
from interp.patching import activation_patch, attribution_patch, path_patch  # noqa: E402

WORDS = "cat dog box key apple girl boy city country time red blue green big small little".split()
NUMBERS = "one two three four five six seven eight nine ten".split()


def bench_data(model, n_prompts: int, seed: int):
    """Conflict prompts, reference prompts and the metric (no memory check: timing only)."""
    if model.name.startswith("world"):
        items = zoo_items(2, seed=seed)
        template = templates_for(model)["statement"]
    else:
        items = [
            ConflictItem(w, NUMBERS[i % 10], NUMBERS[(i + 3) % 10]) for i, w in enumerate(WORDS * 4)
        ]
        template = Template(
            "statement", "the capital of {subject} is {answer} .", "the capital of {subject} is"
        )
    data = build_conflict_set(model, items, template, check_memory=False).subset(range(n_prompts))
    return data


def main(argv=None) -> int:
    p = T.parser(__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="zoo name / folder / .gguf (default: bench Llama)")
    p.add_argument("--prompts", type=int, default=None, help="default 32 (quick 8)")
    p.add_argument("--batch-size", type=int, default=256, help="rows per forward of interp's sweep")
    args = p.parse_args(argv)
    T.setup(args, default_rounds=5)
    n_prompts = args.prompts or (8 if args.quick else 32)

    model = T.model_from_args(args)
    data = bench_data(model, n_prompts, args.seed)
    base_t, source_t = kc.aligned_tokens(
        model, data.prompts(), data.corrupted_prompts(args.seed, model)
    )
    base_ids, source_ids = base_t.input_ids, source_t.input_ids
    if base_t.has_padding or source_t.has_padding:
        print(
            "prompts need padding; transformer-lens's sweep takes plain ids: "
            "use equal-length prompts"
        )
        return 0
    metric = kc.conflict_metric(data)
    bridge = model.bridge

    def tl_metric(logits):
        return metric(logits[:, -1]).mean()

    from transformer_lens.patching import get_act_patch_attn_head_out_all_pos

    def tl_act_patch():
        _, cache = bridge.run_with_cache(source_ids)
        return get_act_patch_attn_head_out_all_pos(bridge, base_ids, cache, tl_metric)

    def interp_path():
        return path_patch(model, base_ids, source_ids, metric, batch_size=args.batch_size)

    def interp_attr():
        return attribution_patch(model, base_ids, source_ids, metric, path=True)

    variants = {
        "tl_act_patch": tl_act_patch,
        "interp_path": interp_path,
        "interp_attr": interp_attr,
    }
    n_heads = model.n_layers * model.n_heads
    print(
        f"bench_conflict: {model.name} ({model.n_layers}L x {model.n_heads}H = {n_heads} heads), "
        f"{n_prompts} prompts x {base_ids.shape[1]} tokens, interp batch {args.batch_size} rows, "
        f"{torch.get_num_threads()} threads, {args.rounds} rounds (+{args.warmup} warmup)"
    )
    with torch.no_grad():
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tl = tl_act_patch()
            base_value = float(metric(model.forward(base_ids)[:, -1]).mean())
            ours = activation_patch(
                model, base_ids, source_ids, metric, batch_size=args.batch_size
            ).scores
            diff = float((tl - base_value - ours).abs().max())
            print(
                f"check: interp activation_patch vs transformer-lens (same method): "
                f"max |diff| {diff:.2e} "
                f"{'OK' if diff < 1e-4 else 'MISMATCH'}"
            )
            exact = kc.locate_heads(model, data, batch_size=args.batch_size, seed=args.seed)
            approx = kc.attribution_scores(model, data, seed=args.seed)
            rho = kc.spearman(exact.scores, approx.scores)
            print(f"attribution vs exact path patching: Spearman {rho:.3f}")
            times = T.interleaved(variants, rounds=args.rounds, warmup=args.warmup)
    print()
    rows = T.summarize(times, "tl_act_patch")
    T.print_times(rows, "tl_act_patch")
    targets = T.check_targets(
        times,
        [
            ("interp_path", "tl_act_patch", 1.0, "interp path patching / TL act patching"),
            ("interp_attr", "tl_act_patch", None, "interp attribution / TL act patching"),
            ("interp_attr", "interp_path", None, "interp attribution / interp path patching"),
        ],
    )
    T.write_json(
        args.json,
        {
            "bench": "conflict",
            "model": model.name,
            "n_prompts": n_prompts,
            "batch_size": args.batch_size,
            "environment": T.environment(),
            "check_max_abs_diff": diff,
            "spearman_attr_vs_path": rho,
            "variants": rows,
            "targets": targets,
            "raw_seconds": times,
        },
    )
    return 0


if __name__ == "__main__":
    T.run_main(main, "bench_conflict")
