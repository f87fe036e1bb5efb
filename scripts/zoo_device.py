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

BASE = dict(
    batch_size=128, lr=2e-3, warmup=300, steps=40000, eval_every=2000, eval_n=60, ckpt_every=5000
)
REP = dict(
    batch_size=64,
    lr=2e-3,
    warmup=100,
    steps=3000,
    eval_every=1000,
    eval_n=30,
    ckpt_every=10**9,
    repeat_pool=128,
)

FT = dict(
    batch_size=64, steps=1000, lr=5e-4, warmup=50, eval_every=500, eval_n=60, ckpt_every=10**9
)
ARCH = ("n_layers", "d_model", "n_heads", "n_kv_heads", "d_ff")


def _base_then_ft(tag: str, base_recipe: str = "world-base", **overrides):
    """A base candidate, then world-tracking-ft fine-tuned from it (same architecture)."""
    base = dict(BASE, **overrides)
    arch = {k: base[k] for k in ARCH + ("dtype",) if k in base}
    return [
        (base_recipe, base, True),
        (
            "world-tracking-ft",
            dict(FT, parent=f"{{work}}/{tag}/{base_recipe}/model", **arch),
            False,
        ),
    ]


# tag -> list of (recipe name, overrides, use the time budget?)
PLAN: dict = {
    "base-a": _base_then_ft("base-a"),
    "base-b": _base_then_ft("base-b", short_copy_rows=64, short_copy_len=32, short_copy_until=1500),
    "base-c": _base_then_ft(
        "base-c",
        n_layers=6,
        d_model=192,
        n_heads=8,
        n_kv_heads=4,
        d_ff=768,
        lr=1.5e-3,
        dtype="float16",
    ),
    "base-d": _base_then_ft("base-d", batch_size=256, lr=3e-3),
    **{
        f"rep-f{f}": [
            (
                f"rep2l-f{f}-s{s}",
                dict(REP, repeat_pool=REP["repeat_pool"] if f != "00" else 0),
                False,
            )
            for s in (0, 1, 2)
        ]
        for f in ("00", "25", "50")
    },
}
# stage 2: continue the two best stage-1 candidates (their folders carried under runs/carry/),
# one on the base mixture, one on a mixture with more needle and box passages
COPY_RICH = {
    "facts": 0.10,
    "conflict": 0.10,
    "needle": 0.25,
    "box": 0.15,
    "induction": 0.10,
    "repeat": 0.20,
    "text": 0.10,
}
STAGE2 = dict(BASE, lr=1e-3, warmup=200)
# stage 3: entity tracking.  Continue world-base with denser box supervision (boxq: a question
# about every box) and the echo scaffold (each label followed by its own object), beside
# dedicated box-only models trained from scratch on the same documents.
_BOXQ = {
    "facts": 0.10,
    "conflict": 0.10,
    "needle": 0.20,
    "box": 0.15,
    "boxq": 0.15,
    "induction": 0.10,
    "repeat": 0.10,
    "text": 0.10,
}
_ECHO = {
    "facts": 0.10,
    "conflict": 0.10,
    "needle": 0.20,
    "box": 0.10,
    "boxq": 0.10,
    "echo": 0.15,
    "induction": 0.10,
    "repeat": 0.05,
    "text": 0.10,
}
_ECHO_HEAVY = {
    "facts": 0.10,
    "conflict": 0.10,
    "needle": 0.10,
    "box": 0.15,
    "boxq": 0.15,
    "echo": 0.30,
    "induction": 0.05,
    "repeat": 0.05,
}
STAGE3 = dict(
    BASE, lr=1e-3, warmup=200, parent="world-base-s2"
)  # the stage-2 model (shipped as world-base-s2)
# stage 4: fine-tune the stage-3 winner (s3-e, shipped as world-base; carried under runs/carry/) on
# the echo scaffold in the crate / where surface forms; never the box evaluation form.
_FT_ECHO = {
    "crate": 0.25,
    "crate_echo": 0.25,
    "facts": 0.10,
    "conflict": 0.08,
    "needle": 0.10,
    "induction": 0.14,
    "text": 0.08,
}
_FT_CRATE = {
    "crate": 0.5,
    "facts": 0.10,
    "conflict": 0.08,
    "needle": 0.10,
    "induction": 0.14,
    "text": 0.08,
}
STAGE4 = dict(FT, batch_size=128, steps=2000, warmup=100, parent="runs/carry/s3-e")
# stage 5: gentler / longer fine-tunes (f5-strong is the shipped world-tracking-ft); _FT_STAGE3 is
# stage 3's mixture with every box-form document replaced by its crate-form counterpart
_FT_STRONG = {
    "crate": 0.35,
    "crate_echo": 0.35,
    "facts": 0.06,
    "conflict": 0.06,
    "needle": 0.08,
    "induction": 0.06,
    "text": 0.04,
}
_FT_STAGE3 = {
    "facts": 0.10,
    "conflict": 0.10,
    "needle": 0.20,
    "crate": 0.20,
    "crate_echo": 0.15,
    "induction": 0.10,
    "repeat": 0.05,
    "text": 0.10,
}
STAGE5 = dict(STAGE4, steps=2500)


def _wide_chain(tag: str, budgets=(130, 120, 170, 70), batch_size: int = 128, **arch):
    """A wider world model trained from scratch through all three world-base stages, then the
    fine-tune, in one run: each stage starts from the previous stage's weights and gets a
    wall-clock budget (seconds) instead of world-base's step counts."""
    model = lambda recipe: f"{{work}}/{tag}/{recipe}/model"  # noqa: E731
    quick = dict(final_eval_n=30, eval_every=10**9)  # intermediate stages: a short card
    b1, b2, b3, b4 = budgets
    arch_bs = dict(arch, batch_size=batch_size)  # the fine-tune keeps 128 rows
    return [
        (
            "world-base-s1",
            dict(
                BASE,
                short_copy_rows=64,
                short_copy_len=32,
                short_copy_until=1500,
                dtype="float16",
                **quick,
                **arch_bs,
            ),
            b1,
        ),
        (
            "world-base-s2",
            dict(
                STAGE2,
                mixture=COPY_RICH,
                parent=model("world-base-s1"),
                dtype="float16",
                **quick,
                **arch_bs,
            ),
            b2,
        ),
        (
            "world-base",
            dict(
                STAGE3,
                mixture=_ECHO,
                parent=model("world-base-s2"),
                dtype="float16",
                final_eval_n=150,
                **arch_bs,
            ),
            b3,
        ),
        (
            "world-tracking-ft",
            dict(
                FT,
                batch_size=128,
                lr=1e-3,
                warmup=100,
                steps=2500,
                mixture=_FT_STRONG,
                seed=1,
                parent=model("world-base"),
                dtype="float16",
                final_eval_n=150,
                **arch,
            ),
            b4,
        ),
    ]


WIDE = dict(d_model=256, n_heads=16, n_kv_heads=4, d_ff=1024)
PLANS = {
    "stage1": dict(PLAN),
    "stage2": {
        "cont-b": _base_then_ft("cont-b", **dict(STAGE2, parent="runs/carry/base-b")),
        "cont-a": _base_then_ft(
            "cont-a", **dict(STAGE2, parent="runs/carry/base-a", mixture=COPY_RICH)
        ),
    },
    "stage3": {
        "s3-q": _base_then_ft("s3-q", **dict(STAGE3, mixture=_BOXQ)),
        "s3-e": _base_then_ft("s3-e", **dict(STAGE3, mixture=_ECHO)),
        "s3-e-hi": _base_then_ft("s3-e-hi", **dict(STAGE3, mixture=_ECHO, lr=2e-3)),
        "s3-eh": _base_then_ft("s3-eh", **dict(STAGE3, mixture=_ECHO_HEAVY)),
        "box-q": _base_then_ft(
            "box-q", "world-base-s1", **dict(BASE, mixture={"box": 0.5, "boxq": 0.5})
        ),
        "box-e": _base_then_ft(
            "box-e", "world-base-s1", **dict(BASE, mixture={"box": 0.3, "boxq": 0.3, "echo": 0.4})
        ),
    },
    "stage4": {
        "ft-echo": [("world-tracking-ft", dict(STAGE4, mixture=_FT_ECHO, lr=1e-3), False)],
        "ft-echo-lo": [("world-tracking-ft", dict(STAGE4, mixture=_FT_ECHO, lr=5e-4), False)],
        "ft-crate": [("world-tracking-ft", dict(STAGE4, mixture=_FT_CRATE, lr=1e-3), False)],
        "ft-echo-s1": [
            ("world-tracking-ft", dict(STAGE4, mixture=_FT_ECHO, lr=1e-3, seed=2), False)
        ],
    },
    "stage5": {
        "f5-echo-3e4": [("world-tracking-ft", dict(STAGE5, mixture=_FT_ECHO, lr=3e-4), False)],
        "f5-strong": [("world-tracking-ft", dict(STAGE5, mixture=_FT_STRONG, lr=1e-3), False)],
        "f5-s3": [("world-tracking-ft", dict(STAGE5, mixture=_FT_STAGE3, lr=1e-3), False)],
        "f5-s3-hi": [("world-tracking-ft", dict(STAGE5, mixture=_FT_STAGE3, lr=2e-3), False)],
        "f5-s3-lo": [("world-tracking-ft", dict(STAGE5, mixture=_FT_STAGE3, lr=5e-4), False)],
        "f5-crate-3e4": [("world-tracking-ft", dict(STAGE5, mixture=_FT_CRATE, lr=3e-4), False)],
    },
    # stage 6: wider world models (more heads, so that one head is a smaller share of the model)
    "stage6": {
        "w6": _wide_chain("w6", n_layers=6, **WIDE),
        "w4": _wide_chain("w4", n_layers=4, **WIDE),
        "w4-b256": _wide_chain("w4-b256", n_layers=4, batch_size=256, **WIDE),
    },
    # stage 7: the 6-layer candidate's echo stage continued alone (its stage-6 result carried
    # under runs/carry/)
    "stage7": {
        "w6-more": [
            (
                "world-base",
                dict(
                    STAGE3,
                    mixture=_ECHO,
                    parent="runs/carry/w6-s3",
                    warmup=100,
                    dtype="float16",
                    final_eval_n=150,
                    n_layers=6,
                    **WIDE,
                ),
                True,
            )
        ]
    },
    # stage 8: its fine-tune (stage 7's result carried under runs/carry/)
    "stage8": {
        "w6-ft": [
            (
                "world-tracking-ft",
                dict(
                    FT,
                    batch_size=128,
                    lr=1e-3,
                    warmup=100,
                    steps=2500,
                    mixture=_FT_STRONG,
                    seed=1,
                    parent="runs/carry/w6-more",
                    dtype="float16",
                    final_eval_n=100,
                    n_layers=6,
                    **WIDE,
                ),
                True,
            )
        ]
    },
}
PACK_ONLY = {
    "stage6": ("world-base", "world-tracking-ft"),
    "stage7": ("world-base",),
    "stage8": ("world-tracking-ft",),
}  # archives of at most 16 MiB each
SMOKE = dict(
    batch_size=8, warmup=20, steps=60, eval_every=30, eval_n=6, final_eval_n=15, ckpt_every=40
)


def run_job(tag: str, jobs, out: Path, device: str, workers: int, budget: float) -> None:
    sys.stdout = sys.stderr = open(out / f"{tag}.log", "a", buffering=1)
    from interp.zoo.train import train

    for name, overrides, timed in jobs:
        t0 = time.time()
        if "parent" in overrides:
            overrides = dict(overrides, parent=overrides["parent"].format(work=out))
        seconds = budget if timed is True else (timed or None)  # True: --budget; a number: its own
        try:
            d = train(
                name,
                out_dir=out / tag / name,
                progress=False,
                device=device,
                workers=workers,
                resume=False,
                time_budget_s=seconds,
                **overrides,
            )
            print(f"[{tag}] {name} done in {time.time() - t0:.0f}s -> {d}", flush=True)
        except Exception:  # noqa: BLE001  (one job's failure must not lose the others)
            traceback.print_exc()


def pack(out: Path, dest: Path, only: tuple | None = None) -> None:
    groups: dict[str, list[Path]] = {}  # one archive per base candidate, one for all rep jobs
    if only:  # or one archive per (candidate, recipe) named in ``only``
        for tag in PLAN:
            for recipe in only:
                if (out / tag / recipe / "model").is_dir():
                    groups[f"{tag}-{recipe}"] = [out / tag / recipe / "model"]
    for tag in PLAN if not only else ():
        groups.setdefault("rep" if tag.startswith("rep-") else tag, []).extend(
            sorted((out / tag).glob("*/model"))
        )  # <recipe>/model
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
    ap.add_argument(
        "--work", default="/tmp/zoo-work", help="run folders (training states stay here)"
    )
    ap.add_argument("--budget", type=float, default=360.0, help="training seconds per timed job")
    ap.add_argument(
        "--hard", type=float, default=480.0, help="stop every job after this many seconds"
    )
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--workers", type=int, default=2, help="batch-building processes per job")
    ap.add_argument("--only", nargs="*", help="tags to run (default: all)")
    ap.add_argument(
        "--smoke", action="store_true", help="tiny steps/batches: check the plumbing on a CPU"
    )
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
    procs = {
        tag: ctx.Process(
            target=run_job,
            args=(tag, jobs, work, a.device, 1 if tag.startswith("rep-") else a.workers, a.budget),
        )
        for tag, jobs in PLAN.items()
        if not a.only or tag in a.only
    }
    t0 = time.time()
    for p in procs.values():
        p.start()
    for tag, p in procs.items():
        p.join(max(1.0, a.hard - (time.time() - t0)))
        if p.is_alive():
            print(f"{tag}: still running after {a.hard:.0f}s, stopped", flush=True)
            p.terminate()
    pack(work, dest, PACK_ONLY.get(a.plan))
    print(f"all done in {time.time() - t0:.0f}s", flush=True)
    print((dest / "log.txt").read_text()[-6000:])


if __name__ == "__main__":
    main()
