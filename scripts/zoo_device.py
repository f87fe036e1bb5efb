"""Train several zoo organisms at once on one accelerator, each in its own process.

How the GPU-trained organisms of the zoo were made (the CPU path is `interp zoo train`).
Every job is ``interp.zoo.train(name, device=..., workers=..., **overrides)``; jobs run
side by side (tiny models leave an accelerator mostly idle, so several share it), each
under a wall-clock budget.  Finished model folders (without the resumable training state)
are packed as ``<out>/<tag>.tar.gz``; ``<out>/log.txt`` collects every job's eval lines.

    PYTHONPATH=. python3 scripts/zoo_device.py --out /tmp/zoo-out --budget 360
    # then, here: tar xzf <tag>.tar.gz; interp.zoo.train.install_model(<folder>, <name>)

The plan below is the one the shipped cards name (``hardware`` / ``recipe`` fields).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tarfile
import time
import traceback
from pathlib import Path

BASE = dict(batch_size=128, lr=2e-3, warmup=300, steps=40000, eval_every=2000, eval_n=60, ckpt_every=5000)
REP = dict(batch_size=64, lr=2e-3, warmup=100, steps=3000, eval_every=1000, eval_n=30, ckpt_every=10**9,
           repeat_pool=128)

FT = dict(batch_size=64, steps=1000, lr=5e-4, warmup=50, eval_every=500, eval_n=60, ckpt_every=10**9)
ARCH = ("n_layers", "d_model", "n_heads", "n_kv_heads", "d_ff")


def _base_then_ft(tag: str, **overrides):
    """A base candidate, then world-tracking-ft fine-tuned from it (same architecture)."""
    base = dict(BASE, **overrides)
    arch = {k: base[k] for k in ARCH + ("dtype",) if k in base}
    return [("world-base", base, True),
            ("world-tracking-ft", dict(FT, parent=f"{{work}}/{tag}/world-base/model", **arch), False)]


# tag -> list of (recipe name, overrides, use the time budget?)
PLAN: dict = {
    "base-a": _base_then_ft("base-a"),
    "base-b": _base_then_ft("base-b", short_copy_rows=64, short_copy_len=32, short_copy_until=1500),
    "base-c": _base_then_ft("base-c", n_layers=6, d_model=192, n_heads=8, n_kv_heads=4, d_ff=768, lr=1.5e-3,
                            dtype="float16"),
    "base-d": _base_then_ft("base-d", batch_size=256, lr=3e-3),
    **{f"rep-f{f}": [(f"rep2l-f{f}-s{s}", dict(REP, repeat_pool=REP["repeat_pool"] if f != "00" else 0), False)
                     for s in (0, 1, 2)] for f in ("00", "25", "50")},
}
# stage 2: continue the two best stage-1 candidates (their folders carried under runs/carry/),
# one on the base mixture, one on a mixture with more needle and box passages
COPY_RICH = {"facts": 0.10, "conflict": 0.10, "needle": 0.25, "box": 0.15, "induction": 0.10, "repeat": 0.20,
             "text": 0.10}
STAGE2 = dict(BASE, lr=1e-3, warmup=200)
PLANS = {
    "stage1": dict(PLAN),
    "stage2": {
        "cont-b": _base_then_ft("cont-b", **dict(STAGE2, parent="runs/carry/base-b")),
        "cont-a": _base_then_ft("cont-a", **dict(STAGE2, parent="runs/carry/base-a", mixture=COPY_RICH)),
    },
}
SMOKE = dict(batch_size=8, warmup=20, steps=60, eval_every=30, eval_n=6, final_eval_n=15, ckpt_every=40)


def run_job(tag: str, jobs, out: Path, device: str, workers: int, budget: float) -> None:
    sys.stdout = sys.stderr = open(out / f"{tag}.log", "a", buffering=1)
    from interp.zoo.train import train
    for name, overrides, timed in jobs:
        t0 = time.time()
        if "parent" in overrides:
            overrides = dict(overrides, parent=overrides["parent"].format(work=out))
        try:
            d = train(name, out_dir=out / tag / name, progress=False, device=device, workers=workers,
                      resume=False, time_budget_s=budget if timed else None, **overrides)
            print(f"[{tag}] {name} done in {time.time() - t0:.0f}s -> {d}", flush=True)
        except Exception:  # noqa: BLE001  (one job's failure must not lose the others)
            traceback.print_exc()


def pack(out: Path, dest: Path) -> None:
    groups: dict[str, list[Path]] = {}            # one archive per base candidate, one for all rep jobs
    for tag in PLAN:
        groups.setdefault("rep" if tag.startswith("rep") else tag, []).extend(
            sorted((out / tag).glob("*/model")))     # <recipe>/model
    for group, models in groups.items():
        if models:
            with tarfile.open(dest / f"{group}.tar.gz", "w:gz") as tf:
                for m in models:
                    tf.add(m, arcname=m.parent.name)
    with open(dest / "log.txt", "w") as f:
        for tag in PLAN:
            p = out / f"{tag}.log"
            if p.exists():
                f.write(f"===== {tag}\n" + p.read_text()[-20000:] + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, help="where the packed results go")
    ap.add_argument("--work", default="/tmp/zoo-work", help="run folders (training states stay here)")
    ap.add_argument("--budget", type=float, default=360.0, help="training seconds per timed job")
    ap.add_argument("--hard", type=float, default=480.0, help="stop every job after this many seconds")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--workers", type=int, default=2, help="batch-building processes per job")
    ap.add_argument("--only", nargs="*", help="tags to run (default: all)")
    ap.add_argument("--smoke", action="store_true", help="tiny steps/batches: check the plumbing on a CPU")
    ap.add_argument("--plan", default="stage1", choices=sorted(PLANS))
    a = ap.parse_args()
    PLAN.clear()
    PLAN.update(PLANS[a.plan])
    if a.smoke:
        for jobs in PLAN.values():
            for _, overrides, _ in jobs:
                overrides.update(SMOKE)
    work, dest = Path(a.work), Path(a.out)
    work.mkdir(parents=True, exist_ok=True)
    dest.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("INTERP_ZOO_THREADS", "1")
    ctx = mp.get_context("spawn")
    procs = {tag: ctx.Process(target=run_job, args=(tag, jobs, work, a.device,
                                                    a.workers if tag.startswith("base") else 1, a.budget))
             for tag, jobs in PLAN.items() if not a.only or tag in a.only}
    t0 = time.time()
    for p in procs.values():
        p.start()
    for tag, p in procs.items():
        p.join(max(1.0, a.hard - (time.time() - t0)))
        if p.is_alive():
            print(f"{tag}: still running after {a.hard:.0f}s, stopped", flush=True)
            p.terminate()
    pack(work, dest)
    print(f"all done in {time.time() - t0:.0f}s", flush=True)
    print((dest / "log.txt").read_text()[-6000:])


if __name__ == "__main__":
    main()
