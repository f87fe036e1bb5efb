"""Cost of the value-scaling alpha sweep of `circuits.factual_recall`: batched vs a naive loop.

Same head, alphas, prompts and greedy generation length, interleaved in every round:

  batched    circuits.factual_recall.scale_sweep: prompts x alphas in the batch rows, each row
             with its own alpha (RowScaleValues), cached generation
  naive      one model.generate call per (prompt, alpha) with ScaleValues(head, alpha)
  forward1   one single-prompt forward pass (the unit of "forward-pass equivalents")

Printed: the sweep's cost in forward-pass equivalents (its time / forward1) and in engine calls,
and the ratio batched / naive. Before timing, the batched rates are checked equal to the naive
loop's.

    python bench/bench_recall.py [--model world-base] [--prompts 16] [--alphas 21] [--quick]
        [--json PATH]

Informational: always exits 0.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _timing as T  # noqa: E402
import torch  # noqa: E402

from circuits import factual_recall as fr  # noqa: E402
from interp.data.conflict import (
    ConflictItem,
    Template,
    build_conflict_set,
    templates_for,
    zoo_items,
)  # noqa: E402

WORDS = "cat dog box key apple girl boy city country time red blue green big small little".split()
NUMBERS = "one two three four five six seven eight nine ten".split()


def bench_data(model, n_prompts: int, seed: int):
    if model.name.startswith("world"):
        items, template = zoo_items(2, seed=seed), templates_for(model)["statement"]
    else:
        items = [
            ConflictItem(w, NUMBERS[i % 10], NUMBERS[(i + 3) % 10]) for i, w in enumerate(WORDS * 4)
        ]
        template = Template(
            "statement", "the capital of {subject} is {answer} .", "the capital of {subject} is"
        )
    return build_conflict_set(model, items, template, check_memory=False).subset(range(n_prompts))


def main(argv=None) -> int:
    p = T.parser(__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="zoo name / folder / .gguf (default: bench Llama)")
    p.add_argument("--prompts", type=int, default=None, help="default 16 (quick 4)")
    p.add_argument(
        "--alphas", type=int, default=None, help="alphas in [-5, 5]; default 21 (quick 5)"
    )
    p.add_argument("--new-tokens", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--head", default="L1H2")
    args = p.parse_args(argv)
    T.setup(args, default_rounds=3)
    n_prompts = args.prompts or (4 if args.quick else 16)
    n_alphas = args.alphas or (5 if args.quick else 21)
    model = T.model_from_args(args)
    data = bench_data(model, n_prompts, args.seed)
    alphas = [round(-5 + 10 * i / (n_alphas - 1), 6) for i in range(n_alphas)]
    head = model.heads([args.head])[0]
    gen = dict(max_new_tokens=args.new_tokens, batch_size=args.batch_size)

    def batched():
        return fr.scale_sweep(model, data, head, alphas, **gen)

    def naive():
        out = []
        for alpha in alphas:
            iv = T.interp.ScaleValues(head, alpha)
            labels = []
            for prompt, item in zip(data.prompts(), data.items):
                text = model.generate(prompt, args.new_tokens, interventions=iv).texts[0]
                labels.append(
                    fr.classify(
                        " " + text, item.memory_answer, item.context_answer, data.template.stop
                    )
                )
            out.append(fr.rates(labels))
        return out

    def forward1():
        return model.forward(data.prompts()[0])

    rows = n_prompts * n_alphas
    calls_batched = math.ceil(rows / args.batch_size) * args.new_tokens
    calls_naive = rows * args.new_tokens
    print(
        f"bench_recall: {model.name}, head {head}, "
        f"{n_prompts} prompts x {n_alphas} alphas = {rows} "
        f"generations of {args.new_tokens} tokens, batch {args.batch_size} rows, "
        f"{torch.get_num_threads()} threads, {args.rounds} rounds (+{args.warmup} warmup)"
    )
    same = batched()["rates"] == naive()
    print(f"check: batched sweep rates == naive loop rates: {'OK' if same else 'MISMATCH'}")
    times = T.interleaved(
        {"naive": naive, "batched": batched, "forward1": forward1},
        rounds=args.rounds,
        warmup=args.warmup,
    )
    print()
    table = T.summarize(times, "naive")
    T.print_times(table, "naive")
    med = {r["variant"]: r["median_ms"] for r in table}
    fpe_batched = med["batched"] / med["forward1"]
    fpe_naive = med["naive"] / med["forward1"]
    print(
        f"\nforward-pass equivalents (time / one single-prompt forward): "
        f"batched {fpe_batched:.1f}, "
        f"naive {fpe_naive:.1f}; engine calls: batched {calls_batched}, naive {calls_naive}"
    )
    targets = T.check_targets(times, [("batched", "naive", None, "batched sweep / naive loop")])
    T.write_json(
        args.json,
        {
            "bench": "recall",
            "model": model.name,
            "n_prompts": n_prompts,
            "n_alphas": n_alphas,
            "new_tokens": args.new_tokens,
            "check_equal": same,
            "forward_pass_equivalents": {"batched": fpe_batched, "naive": fpe_naive},
            "engine_calls": {"batched": calls_batched, "naive": calls_naive},
            "environment": T.environment(),
            "variants": table,
            "targets": targets,
            "raw_seconds": times,
        },
    )
    return 0


if __name__ == "__main__":
    T.run_main(main, "bench_recall")
