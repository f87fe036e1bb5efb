"""Greedy NIAH answers of SmolLM2-135M under kvpress presses (run in the SIDE venv, /tmp/kvpvenv).

Reads the prompts `kvpress_compare.py export` wrote and generates, batch 1, from the exact
input_ids (no re-tokenising), exactly n_new new tokens (greedy, no EOS stop: our `answer_text`
cuts the answer later) with `with press(model): model.generate(...)`, which compresses the
prefilled cache, under: no press (the full cache), StreamingLLMPress with a per-prompt ratio that
keeps exactly our streaming point's sink + window prefill positions, and StreamingLLM, SnapKV,
Knorm and ExpectedAttention presses at each --ratios value. Writes the new token ids, the KV
positions the cache held after generation (summed over layers and kv heads) and the wall time of
every (press, ratio, prompt). Reproduce: see bench/kvpress_compare.py (three commands in order).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import kvpress  # type: ignore[import-not-found]
import torch
import transformers
from transformers import AutoModelForCausalLM

PRESSES = {
    "streaming": lambda r: kvpress.StreamingLLMPress(compression_ratio=r, n_sink=4),
    "snapkv": lambda r: kvpress.SnapKVPress(compression_ratio=r),
    "knorm": lambda r: kvpress.KnormPress(compression_ratio=r),
    "expected_attention": lambda r: kvpress.ExpectedAttentionPress(compression_ratio=r),
}


def generate(model, ids: list, n_new: int, press) -> tuple[list, int, float]:
    gc = copy.deepcopy(model.generation_config)
    # no EOS stop ([] rather than None: generate fills a None back from the model's config)
    gc.update(do_sample=False, max_new_tokens=n_new, eos_token_id=[], return_dict_in_generate=True)
    x = torch.tensor([ids])
    t0 = time.perf_counter()
    with torch.no_grad(), press(model) if press is not None else nullcontext():
        out = model.generate(x, attention_mask=torch.ones_like(x), generation_config=gc)
    seconds = time.perf_counter() - t0
    new = out.sequences[0, len(ids) :].tolist()
    assert len(new) == n_new, (len(new), n_new)
    kept = sum(layer.keys.shape[1] * layer.keys.shape[2] for layer in out.past_key_values.layers)
    return new, kept, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default=None, help="HF folder (default: ~/.cache/interp/models/*)")
    ap.add_argument("--ratios", type=float, nargs="+", default=[0.21, 0.43])
    ap.add_argument("--presses", nargs="+", default=list(PRESSES))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--limit", type=int, default=None, help="first N prompts only (smoke test)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    transformers.logging.disable_progress_bar()
    folder = args.model or str(next((Path.home() / ".cache/interp/models").iterdir()))
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    spec = json.loads(Path(args.prompts).read_text())
    prompts, keep = spec["prompts"][: args.limit], spec["sink"] + spec["window"]
    cfg = model.config
    # (name, ratio for the record, per-prompt ratio -> press or None)
    plan: list = [("none", 0.0, lambda n: None)]
    # int(k_len * (1 - r)) == keep exactly: our sink + window, per prompt length
    plan.append(("streaming_matched", None, lambda n: PRESSES["streaming"](1 - (keep + 0.5) / n)))
    plan += [(p, r, lambda n, p=p, r=r: PRESSES[p](r)) for p in args.presses for r in args.ratios]
    runs = []
    for name, ratio, make in plan:
        gens = []
        for i, p in enumerate(prompts):
            ids, n_new = p["input_ids"], p["n_new"]
            press = make(len(ids))
            new, kept, seconds = generate(model, ids, n_new, press)
            full = cfg.num_hidden_layers * cfg.num_key_value_heads * (len(ids) + n_new - 1)
            gens.append(
                {
                    "prompt": i,
                    "new_ids": new,
                    "kv_positions": kept,
                    "kv_positions_full": full,
                    "compression_ratio": 0.0 if press is None else press.compression_ratio,
                    "seconds": seconds,
                }
            )
            print(
                f"{name:<20} ratio {gens[-1]['compression_ratio']:.3f} prompt {i} "
                f"({len(ids)} tok): KV kept {kept / full:.1%}, {seconds:.1f} s",
                flush=True,
            )
        runs.append({"press": name, "compression_ratio": ratio, "generations": gens})
    out = {
        "model_folder": folder,
        "versions": {
            "kvpress": kvpress.__dict__.get("__version__") or _dist_version("kvpress"),
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "python": sys.version.split()[0],
            "attn_implementation": model.config._attn_implementation,
        },
        "command": " ".join([sys.executable] + sys.argv),
        "threads": args.threads,
        "runs": runs,
    }
    Path(args.out).write_text(json.dumps(out))
    print(f"wrote {args.out}")


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


if __name__ == "__main__":
    main()
