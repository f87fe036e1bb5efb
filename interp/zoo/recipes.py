"""Training recipes of the zoo organisms (architecture, corpus mixture, schedule, seed)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from .errors import UnknownZooModel

BASE_MIXTURE = {
    "facts": 0.13,
    "conflict": 0.10,
    "needle": 0.15,
    "box": 0.07,
    "induction": 0.15,
    "repeat": 0.30,
    "text": 0.10,
}
# fine-tuning on *other* surface forms of entity tracking (crate / holds / where, and the echo
# scaffold in the crate / where forms), never on the "the X is in box L ... box L contains the"
# eval format itself, plus a share of the base mixture *without* box passages (against forgetting).
FT_MIXTURE = {
    "crate": 0.35,
    "crate_echo": 0.35,
    "facts": 0.06,
    "conflict": 0.06,
    "needle": 0.08,
    "induction": 0.06,
    "text": 0.04,
}
REP_MIXTURE = {"repeat": 0.3, "induction": 0.2, "text": 0.3, "facts": 0.1, "needle": 0.1}


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    n_layers: int = 4
    d_model: int = 128
    n_heads: int = 8
    n_kv_heads: int = 4
    d_ff: int = 512
    attention_bias: bool = False  # q/k/v/o biases (give RoPE heads content-free positional scores)
    seq_len: int = 128
    batch_size: int = 16
    steps: int = 6000
    lr: float = 3e-3
    min_lr_frac: float = 0.1
    warmup: int = 200
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    seed: int = 0
    world_seed: int = 0
    mixture: dict = field(default_factory=lambda: dict(BASE_MIXTURE))
    parent: str | None = None  # fine-tune from this zoo organism
    repeat_fraction: float = 0.0  # share of rows drawn from a small repeated pool
    repeat_pool: int = 0  # number of distinct rows in that pool
    short_copy_rows: int = 0  # curriculum: extra batch of short repeated-span rows ...
    short_copy_len: int = 24  # ... of this length ...
    short_copy_until: int = 0  # ... during the first steps
    ckpt_every: int = 250
    eval_every: int = 500
    eval_n: int = 60
    final_eval_n: int = 300  # prompts per behaviour for the card's metrics
    dtype: str = "float32"  # dtype of the shipped weights
    shipped: bool = True  # listed by names() / has a checkpoint folder

    def to_dict(self) -> dict:
        return asdict(self)


# the base mixture with more needle and entity-tracking passages (stage 2 of world-base)
COPY_RICH_MIXTURE = {
    "facts": 0.10,
    "conflict": 0.10,
    "needle": 0.25,
    "box": 0.15,
    "induction": 0.10,
    "repeat": 0.20,
    "text": 0.10,
}


# stage 3 of world-base: entity tracking, with the echo scaffold (every label followed by its own
# object) beside plain box passages and box passages with a question about every box
ECHO_MIXTURE = {
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


def _rep(frac: float, seed: int) -> Recipe:
    tag = f"{int(round(frac * 100)):02d}"
    return Recipe(
        name=f"rep2l-f{tag}-s{seed}",
        description=(
            f"2-layer repeated-data organism: {frac:.0%} of training rows are drawn from a pool "
            f"of 128 rows repeated many times (seed {seed}); control when 0%."
        ),
        n_layers=2,
        d_model=64,
        n_heads=4,
        n_kv_heads=2,
        d_ff=256,
        seq_len=128,
        batch_size=64,
        steps=3000,
        lr=2e-3,
        warmup=100,
        seed=seed,
        mixture=dict(REP_MIXTURE),
        repeat_fraction=frac,
        repeat_pool=128 if frac > 0 else 0,
        ckpt_every=10**9,
        eval_every=1000,
        eval_n=30,
        dtype="float16",
    )


RECIPES: dict[str, Recipe] = {}


def _add(r: Recipe) -> None:
    RECIPES[r.name] = r


# The shipped world models were trained on an H200 (scripts/zoo_device.py); on this 2-core CPU
# the same recipes take hours (see the cards).  The 3,500-step CPU recipe of the first session
# learned only fact recall; it is kept as `world-base-cpu` (not shipped) for comparison.
_add(
    Recipe(
        name="world-base-s1",
        description=(
            "Stage 1 of world-base: Llama with grouped-query attention trained from scratch on the "
            "synthetic world corpus (facts, knowledge conflicts, needles with same-form "
            "distractors, entity-tracking boxes, repeated random spans, text with repeated spans). "
            "Induction and context-following formed; needle retrieval had not yet (an early "
            "checkpoint)."
        ),
        batch_size=128,
        steps=4500,
        lr=2e-3,
        warmup=300,
        ckpt_every=5000,
        eval_every=2000,
    )
)
_add(
    Recipe(
        name="world-base-s2",
        description=(
            "Stage 2 of world-base: world-base-s1 trained further on the world corpus with more "
            "needle and entity-tracking passages. Fact recall, knowledge conflicts, needle "
            "retrieval among same-form distractors and induction formed; entity tracking had not "
            "(box accuracy at chance). Kept for emergence studies."
        ),
        parent="world-base-s1",
        batch_size=128,
        steps=14500,
        lr=1e-3,
        warmup=200,
        ckpt_every=5000,
        eval_every=2000,
        mixture=dict(COPY_RICH_MIXTURE),
    )
)
_add(
    Recipe(
        name="world-base",
        description=(
            "Base world model: world-base-s2 trained further with entity-tracking passages and the "
            "echo scaffold (each box label followed by its own object). Llama with grouped-query "
            "attention; fact recall, knowledge conflicts (memory vs context), needle retrieval "
            "among same-form distractors, entity tracking, induction on random spans."
        ),
        parent="world-base-s2",
        batch_size=128,
        steps=5200,
        lr=1e-3,
        warmup=200,
        ckpt_every=5000,
        eval_every=2000,
        mixture=dict(ECHO_MIXTURE),
    )
)
_add(
    Recipe(
        name="world-wide",
        description=(
            "Wide world model: 6 layers x 16 query heads (96 heads; 4 kv heads, GQA), d_model 256, "
            "trained from scratch through world-base's three stages on wall-clock budgets, then a "
            "longer echo stage. Same corpus and behaviours as world-base (fact recall, knowledge "
            "conflicts, needle retrieval, entity tracking, induction); each head is a smaller "
            "share of the model, so single-head ablations of unrelated heads move little."
        ),
        parent="world-wide-s3",
        n_layers=6,
        d_model=256,
        n_heads=16,
        n_kv_heads=4,
        d_ff=1024,
        batch_size=128,
        steps=5900,
        lr=1e-3,
        warmup=100,
        ckpt_every=5000,
        eval_every=2000,
        mixture=dict(ECHO_MIXTURE),
        final_eval_n=150,
        dtype="float16",
    )
)
_add(
    Recipe(
        name="world-base-cpu",
        description=(
            "The first session's CPU recipe (3,500 steps x 16 rows): learned fact recall only "
            "(no copy skills); kept to document the compute threshold, not shipped."
        ),
        steps=3500,
        shipped=False,
    )
)
_add(
    Recipe(
        name="world-tracking-ft",
        description=(
            "world-base fine-tuned on other surface forms of entity tracking "
            "(put the X into crate L ; ... crate L has the X / box L holds the X ... / "
            "the X is in crate L ...), half of them with the echo scaffold, mixed with the rest of "
            "the base corpus; never on the 'the X is in box L ... box L contains the' evaluation "
            "format."
        ),
        parent="world-base",
        batch_size=128,
        steps=2500,
        lr=1e-3,
        warmup=100,
        mixture=dict(FT_MIXTURE),
        seed=1,
        ckpt_every=10**9,
        eval_every=500,
    )
)
for _f in (0.0, 0.25, 0.5):
    for _s in (0, 1, 2):
        _add(_rep(_f, _s))

# miniature recipe for tests / smoke runs (not shipped)
_add(
    Recipe(
        name="world-mini",
        description="Miniature world recipe for tests (not shipped).",
        n_layers=2,
        d_model=32,
        n_heads=4,
        n_kv_heads=2,
        d_ff=64,
        seq_len=64,
        batch_size=8,
        steps=60,
        lr=3e-3,
        warmup=5,
        ckpt_every=20,
        eval_every=0,
        eval_n=6,
        final_eval_n=30,
        shipped=False,
    )
)


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise UnknownZooModel(name, sorted(RECIPES)) from None


def with_overrides(r: Recipe, **kw) -> Recipe:
    kw = {k: v for k, v in kw.items() if v is not None}
    return replace(r, **kw)
