"""Cost of retrieval-head scoring vs a plain forward / plain cached greedy decoding, and vs \
the naive route.

Setting: the bench Llama of `_timing` (4 layers, d_model 256, 8 heads / 4 kv heads, d_head 32,
vocab 2000; window raised to 4096), CPU fp32, batch 1, a NIAH-shaped prompt of random tokens
whose answer (8 tokens by default) is a copy of a span of the context.

Variants, interleaved in every round, at each context length:
  plain_forward   hf(prompt + answer, use_cache=False): the floor for teacher forcing
  tf_scoring      circuits.retrieval.score_prompts(mode="teacher_forced"), default "rows" route: the
                  model's own SDPA attention, plus scores of the answer rows only
  tf_pattern      the same through the library's "pattern" site (route="pattern": interp_eager on
                  the answer rows, run over a KV cache of the prompt)
  naive_tf        an eager twin of the model, hf(prompt + answer, output_attentions=True),
                  copy test on the answer rows of every layer's full [T x T] pattern
  plain_generate  hand-written greedy loop on hf with a KV cache (prefill keeping only the last
                  logits + one cached step per further answer token): the floor for decoding
  decode_scoring  circuits.retrieval.score_prompts(mode="decode") (cached greedy decoding, then one
                  recorded replay of the emitted tokens), "rows" route
  decode_pattern  the same, route="pattern"
  naive_decode    the eager twin, prefill + cached steps with output_attentions=True (the
                  authors' route)

Peak memory (torch profiler: the most bytes held by tensors allocated during the call) of
every variant but the naive decode, at every context length.

    python bench/bench_retrieval.py [--quick] [--rounds N] [--lengths 256,512,1024,2048]
        [--json PATH]

Informational: always exits 0.
"""

from __future__ import annotations

import copy
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _timing as T  # noqa: E402
import torch  # noqa: E402

from circuits import retrieval as R  # noqa: E402
from interp.data.niah import Needle, NiahPrompt  # noqa: E402


def make_prompts(model, length: int, n_answer: int, batch: int, seed: int) -> list[NiahPrompt]:
    """Random-token prompts whose answer copies a span at mid-depth (a needle of random tokens)."""
    gen = torch.Generator().manual_seed(seed + length)
    out = []
    for _ in range(batch):
        ids = torch.randint(4, model.vocab_size, (length,), generator=gen).tolist()
        start = length // 2
        answer = tuple(ids[start : start + n_answer])
        out.append(
            NiahPrompt(
                "<random tokens>",
                tuple(ids),
                answer,
                (start - 2, start + n_answer + 1),
                (start, start + n_answer),
                Needle("x y", "q", "y"),
                0,
                length,
                0.5,
                0.5,
            )
        )
    return out


def eager_twin(hf):
    """A copy of the HF module with eager attention (what `output_attentions=True` needs)."""
    twin = copy.deepcopy(hf)
    twin.set_attn_implementation("eager")
    return twin.eval()


def naive_copy_hits(attentions, ids, answer, span, first_row):
    """The copy test on full patterns: argmax key of each answer row, every layer and head."""
    pos = torch.stack(
        [a[:, :, first_row : first_row + answer.shape[1]].argmax(-1) for a in attentions], 1
    )
    tok = ids.gather(1, pos.flatten(1)).view_as(pos)
    return R.copy_hits(pos, tok, answer, span), pos


def peak_bytes(fn) -> int:
    """Peak CPU bytes allocated by torch during `fn()` (profiler memory events)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    with tempfile.NamedTemporaryFile(suffix=".json") as handle:
        prof.export_chrome_trace(handle.name)
        events = json.load(open(handle.name))["traceEvents"]
    totals = [e["args"].get("Total Allocated", 0) for e in events if e.get("name") == "[memory]"]
    return max(totals, default=0)


def main(argv=None) -> int:
    p = T.parser(__doc__.splitlines()[0])
    p.add_argument(
        "--lengths", default=None, help="context lengths (default 256,512,1024,2048; quick 128,256)"
    )
    p.add_argument("--answer", type=int, default=8, help="answer tokens (default 8)")
    p.add_argument("--batch", type=int, default=1)
    args = p.parse_args(argv)
    T.setup(args, default_rounds=9)
    lengths = [
        int(x)
        for x in (args.lengths or ("128,256" if args.quick else "256,512,1024,2048")).split(",")
    ]
    model = T.build_model(n_ctx=4096, seed=args.seed)
    hf, twin = model.hf, eager_twin(model.hf)
    model.envoy  # build the engine before timing
    n = args.answer
    print(
        f"bench_retrieval: Llama 4L d256 8h/4kv, batch {args.batch}, answer {n} tokens, fp32 CPU, "
        f"{torch.get_num_threads()} threads, {args.rounds} rounds (+{args.warmup} warmup)"
    )
    report = {
        "bench": "retrieval",
        "lengths": lengths,
        "answer_tokens": n,
        "batch": args.batch,
        "rounds": args.rounds,
        "environment": T.environment(),
        "per_length": [],
    }
    for length in lengths:
        report["per_length"].append(run_length(model, hf, twin, length, n, args))
    summary = summarize(report["per_length"])
    report["summary"] = summary
    T.write_json(args.json, report)
    return 0


def run_length(model, hf, twin, length, n, args) -> dict:
    prompts = make_prompts(model, length, n, args.batch, args.seed)
    prompt_ids = torch.tensor([p.input_ids for p in prompts])
    answer = torch.tensor([p.answer_ids for p in prompts])
    full = torch.cat([prompt_ids, answer], 1)
    span = torch.tensor([p.answer_span for p in prompts])

    def plain_forward():
        return hf(input_ids=full, use_cache=False).logits

    def tf_scoring():
        return R.score_prompts(model, prompts, "teacher_forced")

    def tf_pattern():
        return R.score_prompts(model, prompts, "teacher_forced", route="pattern")

    def naive_tf():
        out = twin(input_ids=full[:, :-1], use_cache=False, output_attentions=True)
        return naive_copy_hits(out.attentions, full, answer, span, length - 1)

    def plain_generate():
        out = hf(input_ids=prompt_ids, use_cache=True, logits_to_keep=1)
        past, word = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
        for _ in range(n - 1):
            out = hf(input_ids=word, past_key_values=past, use_cache=True)
            past, word = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
        return word

    def decode_scoring():
        return R.score_prompts(model, prompts, "decode")

    def decode_pattern():
        return R.score_prompts(model, prompts, "decode", route="pattern")

    def naive_decode():
        ids = prompt_ids
        out = twin(input_ids=ids[:, :-1], use_cache=True)
        past, word, hits = out.past_key_values, ids[:, -1:], 0
        for _ in range(n):
            out = twin(input_ids=word, past_key_values=past, use_cache=True, output_attentions=True)
            ids = torch.cat([ids, word], 1)
            past, word = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
            hits = hits + naive_copy_hits(out.attentions, ids, word, span, 0)[0]
        return hits

    variants = {
        "plain_forward": plain_forward,
        "tf_scoring": tf_scoring,
        "tf_pattern": tf_pattern,
        "naive_tf": naive_tf,
        "plain_generate": plain_generate,
        "decode_scoring": decode_scoring,
        "decode_pattern": decode_pattern,
        "naive_decode": naive_decode,
    }
    with torch.no_grad():
        check = correctness(model, prompts, naive_tf, naive_decode)
        times = T.interleaved(variants, rounds=args.rounds, warmup=args.warmup)
        memory = {name: peak_bytes(fn) for name, fn in variants.items() if name != "naive_decode"}
    print(f"\n== context length {length} (+{n} answer tokens) ==")
    print(f"correctness: {check}")
    rows = T.summarize(times, "plain_forward")
    T.print_times(rows, "plain_forward")
    targets = T.check_targets(
        times,
        [
            ("tf_scoring", "plain_forward", 1.15, "teacher-forced scoring / plain forward"),
            ("decode_scoring", "plain_generate", 1.15, "decode scoring / plain cached greedy"),
            ("tf_pattern", "plain_forward", None, "teacher-forced, pattern route / plain forward"),
            (
                "decode_pattern",
                "plain_generate",
                None,
                "decode, pattern route / plain cached greedy",
            ),
            ("naive_tf", "plain_forward", None, "naive (output_attentions) / plain forward"),
            ("tf_scoring", "naive_tf", None, "teacher-forced scoring / naive"),
            ("naive_decode", "plain_generate", None, "naive decode / plain cached greedy"),
            ("decode_scoring", "naive_decode", None, "decode scoring / naive decode"),
        ],
    )
    mem_ratio = memory["tf_scoring"] / memory["plain_forward"]
    dec_ratio = memory["decode_scoring"] / memory["plain_generate"]
    print("peak MiB: " + ", ".join(f"{k} {v / 2**20:.1f}" for k, v in memory.items()))
    print(
        f"memory tf_scoring / plain_forward {mem_ratio:.3f}x (target <= 1.20: "
        f"{'PASS' if mem_ratio <= 1.2 else 'FAIL'}); tf_pattern / plain_forward "
        f"{memory['tf_pattern'] / memory['plain_forward']:.3f}x; naive_tf / plain_forward "
        f"{memory['naive_tf'] / memory['plain_forward']:.2f}x; decode_scoring / plain_generate "
        f"{dec_ratio:.3f}x; decode_pattern / plain_generate "
        f"{memory['decode_pattern'] / memory['plain_generate']:.3f}x"
    )
    return {
        "length": length,
        "correctness": check,
        "variants": rows,
        "targets": targets,
        "peak_bytes": memory,
        "memory_ratio_tf": mem_ratio,
        "memory_ratio_decode": dec_ratio,
        "raw_seconds": times,
    }


def correctness(model, prompts, naive_tf, naive_decode) -> dict:
    """Both routes' scores == the naive route's scores (the copy test on full patterns)."""
    span_len = torch.tensor([p.answer_span[1] - p.answer_span[0] for p in prompts])
    naive = {
        "teacher_forced": R.per_test_scores(naive_tf()[0], span_len),
        "decode": R.per_test_scores(naive_decode(), span_len),
    }
    out = {"naive_total": {k: float(v.sum()) for k, v in naive.items()}}
    for mode, ref in naive.items():
        for route in R.ROUTES:
            got, _ = R.score_prompts(model, prompts, mode, route=route)
            out[f"{mode}/{route} max|diff|"] = float((got - ref).abs().max())
    out["ok"] = all(v == 0 for k, v in out.items() if k.endswith("diff|"))
    return out


def summarize(per_length) -> dict:
    worst = lambda key, label: max(
        t["ratio"] for r in per_length for t in r["targets"] if t["label"] == label
    )  # noqa: E731
    out = {
        "max_tf_ratio": worst(None, "teacher-forced scoring / plain forward"),
        "max_decode_ratio": worst(None, "decode scoring / plain cached greedy"),
        "max_memory_ratio_tf": max(r["memory_ratio_tf"] for r in per_length),
        "correct": all(r["correctness"]["ok"] for r in per_length),
    }
    print(
        f"\nsummary over lengths: worst tf ratio {out['max_tf_ratio']:.3f}x (<=1.15), worst decode "
        f"ratio {out['max_decode_ratio']:.3f}x (<=1.15), "
        f"worst memory ratio {out['max_memory_ratio_tf']:.3f}x "
        f"(<=1.20), scores equal to the naive route: {out['correct']}"
    )
    return out


if __name__ == "__main__":
    T.run_main(main, "bench_retrieval")
