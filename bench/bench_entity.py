"""Cost of entity-tracking circuit discovery (path patching A..D), batched vs an unbatched loop.

Setting: a world-base-sized Llama (4 layers, 8 heads / 4 kv heads, d_model 128, d_ff 512;
random weights, the cost does not depend on them) with the zoo's world tokenizer; 7-box prompts.
The four path-patching sweeps of `circuits.entity_tracking` are run with fixed receivers
(A -> logits, B -> layer-3 heads' q at the last token, C -> layer-2 heads' v at the query
label, D -> layer-1 heads' v at the earlier label), so both variants do the same work:

  batched     interp.patching.path_patch over all prompts, several senders per forward
              (batch_size rows per forward)
  unbatched   the same sweeps prompt by prompt and sender by sender (one row per forward)

Reported: forward calls and prompt-rows each variant issues, wall time, and the cost in
forward-pass equivalents (wall time / time of one plain forward over all prompts), plus the
median per-round ratio unbatched / batched. Both variants' scores are checked to agree.

    python bench/bench_entity.py [--quick] [--rounds N] [--prompts N] [--json PATH]

Informational: always exits 0.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _timing as T  # noqa: E402
import torch  # noqa: E402


def build_world_model(seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    import interp
    from interp.zoo.world import World

    tok = World(0).build_tokenizer()
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=128,
        intermediate_size=512,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=4,
        max_position_embeddings=128,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        architectures=["LlamaForCausalLM"],
    )
    torch.manual_seed(seed)
    return interp.Model(LlamaForCausalLM(cfg).eval(), tok, name="bench-world-llama")


def sweeps(model, data, corr, rows_per_forward: int):
    """The four group sweeps with fixed receivers; returns {group: HeadScores}."""
    import circuits.entity_tracking as et

    receivers = {
        "A": [],
        "B": [h for h in model.all_heads() if h.layer == 3],
        "C": [h for h in model.all_heads() if h.layer == 2],
        "D": [h for h in model.all_heads() if h.layer == 1],
    }
    return {
        k: et.group_scores(model, data, corr, k, prev, batch_size=rows_per_forward)
        for k, prev in receivers.items()
    }


def unbatched(model, data, corr):
    """Prompt by prompt, one sender per forward; averaged over prompts like the batched run."""
    per_prompt = [sweeps(model, data.subset([i]), corr.subset([i]), 1) for i in range(len(data))]
    return per_prompt


def agree(batched, per_prompt) -> float:
    """Max |batched - mean of per-prompt| over all scored heads, on the absolute effect scale."""
    worst = 0.0
    for k, hs in batched.items():
        base = hs.meta["base_p_correct"]
        effects = [p[k].scores * p[k].meta["base_p_correct"] for p in per_prompt]
        mean = torch.stack(effects).mean(0)
        diff = (hs.scores * base - mean)[hs.mask]
        worst = max(worst, float(diff.abs().max()))
    return worst


class Counter:
    def __init__(self, model):
        self.model, self.calls, self.rows = model, 0, 0
        self._orig = model.run_plan

    def __enter__(self):
        def counted(tokens, plan, **kw):
            self.calls += 1
            self.rows += tokens.input_ids.shape[0]
            return self._orig(tokens, plan, **kw)

        self.model.run_plan = counted
        return self

    def __exit__(self, *exc):
        del self.model.run_plan


def main(argv=None) -> int:
    from interp.data.boxes import box_dataset, corrupt

    p = T.parser(__doc__.splitlines()[0])
    p.add_argument("--prompts", type=int, default=None, help="default 32 (quick 8)")
    p.add_argument("--rows", type=int, default=256, help="rows per forward in the batched variant")
    args = p.parse_args(argv)
    T.setup(args, default_rounds=3)
    n = args.prompts or (8 if args.quick else 32)
    model = build_world_model(args.seed)
    data = box_dataset(model, n, 7, seed=args.seed)
    corr = corrupt(model, data, seed=args.seed + 1)

    with Counter(model) as c_b:
        batched = sweeps(model, data, corr, args.rows)
    with Counter(model) as c_u:
        per_prompt = unbatched(model, data, corr)
    diff = agree(batched, per_prompt)

    def plain():
        with torch.no_grad():
            return model.forward(list(data.prompts))

    times = T.interleaved(
        {
            "plain_forward": plain,
            "batched": lambda: sweeps(model, data, corr, args.rows),
            "unbatched": lambda: unbatched(model, data, corr),
        },
        rounds=args.rounds,
        warmup=min(args.warmup, 1),
    )
    t_fwd = statistics.median(times["plain_forward"])
    rows = T.summarize(times, "plain_forward")
    print(
        f"model {model.name}: {model.n_layers}x{model.n_heads} heads; "
        f"{n} prompts of {data.seq_len} tokens, "
        f"7 boxes; batched rows/forward {args.rows}"
    )
    print(
        f"{'variant':<12}{'forwards':>10}{'prompt-rows':>13}{'median s':>11}{'fwd-pass equiv':>16}"
    )
    for name, counter in (("batched", c_b), ("unbatched", c_u)):
        t = statistics.median(times[name])
        print(f"{name:<12}{counter.calls:>10}{counter.rows:>13}{t:>11.3f}{t / t_fwd:>16.1f}")
    ratio = T.median_ratio(times, "unbatched", "batched")
    print(f"\nunbatched / batched wall time (median of per-round ratios): {ratio:.2f}x")
    print(f"max |batched - per-prompt mean| effect on p(correct): {diff:.2e}")
    T.write_json(
        args.json,
        {
            "benchmark": "entity_tracking_discovery",
            "environment": T.environment(),
            "n_prompts": n,
            "rows_per_forward": args.rows,
            "timings": rows,
            "calls": {"batched": c_b.calls, "unbatched": c_u.calls},
            "prompt_rows": {"batched": c_b.rows, "unbatched": c_u.rows},
            "forward_pass_equivalents": {
                k: statistics.median(times[k]) / t_fwd for k in ("batched", "unbatched")
            },
            "ratio_unbatched_over_batched": ratio,
            "max_abs_diff": diff,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
