"""Generation's prefill step: logits of every prompt position vs of the last one only.

A generation step needs the last position's logits alone, yet a plain forward projects every
prompt position onto the vocabulary: batch x prompt x vocab floats. With a large vocabulary that
tensor is most of the step's memory (Gemma 3: 262,144 tokens; a batch of 512 prompts of 40 tokens
is 21 GB of fp32 logits). `interp.generation.generate` asks the model for the last position only
(``logits_to_keep=1``). Variants, interleaved in every round on the same batch:

  all_positions   model.run_plan(tokens, no edits, use_cache=True): every position's logits
  last_position   the same with logits_to_keep=1 (what generate runs)

Checked first: both give the same last-position logits (max |diff| <= 1e-4) and next tokens.
Peak bytes are torch's CPU allocations during one call (profiler), so they exclude the weights.

    python bench/bench_prefill_logits.py [--model gemma-3-270m] [--batch 64] [--prompt 40]
        [--quick] [--rounds N] [--json PATH]

Default model: the seeded bench Llama of `_timing` (vocab 2,000: the ratio is small there, the
lever matters where vocab >> d_model). Informational: always exits 0.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _timing as T  # noqa: E402
import torch  # noqa: E402
from bench_retrieval import peak_bytes  # noqa: E402

from interp.backends.plan import RunPlan  # noqa: E402


def main(argv=None) -> int:
    p = T.parser(__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="model spec (default: the bench Llama)")
    p.add_argument("--batch", type=int, default=None, help="prompts per batch (default 64)")
    p.add_argument("--prompt", type=int, default=40, help="prompt tokens (default 40)")
    args = p.parse_args(argv)
    T.setup(args, default_rounds=5)
    batch = args.batch or (8 if args.quick else 64)
    model = T.model_from_args(args)
    tokens = T.random_tokens(batch, args.prompt, len(model.tokenizer), seed=args.seed)

    def step(keep: int):
        def call():
            with torch.no_grad():
                return model.run_plan(tokens, RunPlan([]), use_cache=True, logits_to_keep=keep)

        return call

    variants = {"all_positions": step(0), "last_position": step(1)}
    full, last = (variants[name]().logits[:, -1] for name in variants)
    diff = float((full - last).abs().max())
    same_next = bool(torch.equal(full.argmax(-1), last.argmax(-1)))
    print(
        f"model {model.name}, batch {batch} x {args.prompt} tokens, vocab {full.shape[-1]}: "
        f"last-position logits max |diff| {diff:.1e}, same next tokens: {same_next}"
    )
    peaks = {name: peak_bytes(fn) for name, fn in variants.items()}
    times = T.interleaved(variants, rounds=args.rounds, warmup=args.warmup)
    rows = T.summarize(times, "all_positions")
    T.print_times(rows, "all_positions")
    ratios = T.check_targets(
        times, [("last_position", "all_positions", None, "time: last position / all positions")]
    )
    mib = {name: b / 2**20 for name, b in peaks.items()}
    print(
        f"peak torch allocation: all positions {mib['all_positions']:.1f} MiB, last position "
        f"{mib['last_position']:.1f} MiB ({mib['last_position'] / mib['all_positions']:.3f}x)"
    )
    T.write_json(
        args.json,
        {
            "settings": {"model": model.name, "batch": batch, "prompt": args.prompt},
            "environment": T.environment(),
            "correctness": {"max_abs_diff": diff, "same_next_tokens": same_next},
            "peak_mib": mib,
            "rows": rows,
            "targets": ratios,
            "times": times,
        },
    )
    return 0


if __name__ == "__main__":
    T.run_main(main, "bench_prefill_logits")
