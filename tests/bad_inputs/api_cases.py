"""Bad input to the Python API: head specs, interventions and their lifecycle, patch sources,
forwards and caches, generation options. Each case is what a user could plausibly type."""

from __future__ import annotations

import torch

from interp import Compose, Head, PatchHeads, PruneHeads, ScaleValues

from .context import LONG, SHORT
from .replay import Case

__all__ = ["API_CASES"]


def _cases(family: str, *rows) -> list[Case]:
    return [Case(family, *row) for row in rows]


# --- head specs -------------------------------------------------------------------------------

_BAD_SPECS = [
    (1.5, 2),
    (1, 2.5),
    (True, 1),
    (1, True),
    (-1, 0),
    (0, -1),
    (1, 2, 3),
    (1,),
    "L1H",
    "H1L1",
    "L-1H0",
    "LxH0",
    "L1.5H0",
    "",
    None,
    b"L1H0",
    {"layer": 1, "head": 0},
    float("nan"),
]

HEAD_SPECS = [
    Case("head specs", f"Head.parse({s!r})", lambda c, s=s: Head.parse(s)) for s in _BAD_SPECS
]
HEAD_SPECS += _cases(
    "head specs",
    ("model.heads('L2H0'): layer past the last", lambda c: c.tiny.heads(["L2H0"])),
    ("model.heads('L0H8'): head past the last", lambda c: c.tiny.heads(["L0H8"])),
    (
        "PruneHeads(['L9H0']) in a forward",
        lambda c: c.tiny.forward(SHORT, interventions=PruneHeads(["L9H0"])),
    ),
    (
        "ScaleValues('L0H99', 2) in a forward",
        lambda c: c.tiny.forward(SHORT, interventions=ScaleValues("L0H99", 2.0)),
    ),
)

# --- building interventions -------------------------------------------------------------------

CONSTRUCTION = _cases(
    "building interventions",
    ("ScaleValues alpha=1e38", lambda c: ScaleValues("L1H0", 1e38)),
    ("ScaleValues alpha=inf", lambda c: ScaleValues("L1H0", float("inf"))),
    ("ScaleValues alpha=nan", lambda c: ScaleValues("L1H0", float("nan"))),
    ("ScaleValues alpha='2'", lambda c: ScaleValues("L1H0", "2")),
    ("ScaleValues alpha=True", lambda c: ScaleValues("L1H0", True)),
    ("ScaleValues alpha=None", lambda c: ScaleValues("L1H0", None)),
    ("ScaleValues alpha=1+2j", lambda c: ScaleValues("L1H0", 1 + 2j)),
    ("ScaleValues with a list of heads", lambda c: ScaleValues(["L1H0", "L1H1"], 2.0)),
    ("empty Compose", lambda c: Compose([])),
    ("Compose of a string", lambda c: Compose(["L1H0"])),
    ("PruneHeads([])", lambda c: PruneHeads([])),
    ("PruneHeads mode='bogus'", lambda c: PruneHeads(["L1H0"], mode="bogus")),
    (
        "PruneHeads mode='mean' without means",
        lambda c: c.tiny.forward(SHORT, interventions=PruneHeads(["L1H0"], mode="mean")),
    ),
    (
        "PruneHeads means of the wrong count",
        lambda c: PruneHeads(["L1H0", "L1H1"], mode="mean", means=[[0.0] * 8]),
    ),
    ("PruneHeads.with_means over ''", lambda c: PruneHeads.with_means(c.tiny, ["L1H0"], "")),
    (
        "PruneHeads.with_means over ['  ']",
        lambda c: PruneHeads.with_means(c.tiny, ["L1H0"], ["  "]),
    ),
    ("PatchHeads source=[]", lambda c: PatchHeads(["L1H0"], source=[])),
    ("PatchHeads source=None", lambda c: PatchHeads(["L1H0"], source=None)),
    ("PatchHeads source=''", lambda c: PatchHeads(["L1H0"], source="")),
    ("PatchHeads heads=[]", lambda c: PatchHeads([], source=SHORT)),
    ("ScaleValues + a string", lambda c: ScaleValues("L1H0", 2.0) + "L1H1"),
)

# --- the lifecycle of an applied intervention -------------------------------------------------


def _nested_same(c):
    m, r = c.tiny, ScaleValues("L1H0", 3.0)
    with m.intervene(r):
        with m.intervene(r):
            pass
        still = bool(m.active_interventions)
    return still


def _apply_twice(c):
    m, r = c.tiny, ScaleValues("L1H0", 2.0)
    m.apply(r)
    try:
        m.apply(r)
    finally:
        m.remove()


def _remove_part(c):
    m = c.tiny
    a, b = PruneHeads(["L1H0"]), ScaleValues("L1H1", 2.0)
    m.apply(a + b)
    try:
        m.remove(a)
    finally:
        m.remove()


def _remove_not_applied(c):
    c.tiny.remove(PruneHeads(["L1H0"]))


def _intervene_without_with(c):
    c.tiny.intervene(PruneHeads(["L1H0"]))
    return c.tiny.active_interventions


def _error_inside_with(c):
    with c.tiny.intervene(PruneHeads(["L1H0"])):
        raise KeyError("a user's own bug inside the block")


def _same_twice_in_run(c):
    r = PruneHeads(["L1H0"])
    return c.tiny.forward(SHORT, interventions=[r, r])


def _applied_given_again(c):
    m, r = c.tiny, ScaleValues("L1H0", 2.0)
    with m.intervene(r):
        return m.forward(SHORT, interventions=r)


LIFECYCLE = _cases(
    "intervention lifecycle",
    ("nested intervene of the same object keeps the outer", _nested_same, lambda c, v: v is True),
    ("apply the same object twice", _apply_twice),
    ("remove one part of an applied Compose", _remove_part),
    ("remove an intervention never applied", _remove_not_applied),
    ("intervene without with", _intervene_without_with),
    ("the same object twice in one run", _same_twice_in_run),
    ("an applied intervention given again to a run", _applied_given_again),
    ("apply('L1H0')", lambda c: c.tiny.apply("L1H0")),
    ("apply() of nothing", lambda c: c.tiny.apply()),
    ("forward(interventions='L1H0')", lambda c: c.tiny.forward(SHORT, interventions="L1H0")),
    (
        "forward(interventions=[PruneHeads, 'L1H1'])",
        lambda c: c.tiny.forward(SHORT, interventions=[PruneHeads(["L1H0"]), "L1H1"]),
    ),
    ("use_interventions='no'", lambda c: c.tiny.forward(SHORT, use_interventions="no")),
)
# A user's own exception inside the block is theirs to see: correct means it comes out unchanged
# and nothing stays attached (the leak check).
LIFECYCLE.append(
    Case(
        "intervention lifecycle",
        "the user's own error inside `with intervene` propagates and detaches",
        lambda c: _catch(_error_inside_with, c, KeyError),
        lambda c, v: v == "KeyError",
    )
)


def _catch(fn, c, error):
    try:
        fn(c)
    except error as err:
        return type(err).__name__
    return None


# --- patch sources ----------------------------------------------------------------------------


def _z(c, prompts=SHORT, layer=1):
    _, cache = c.tiny.run_with_cache(prompts, sites=("z",), layers=[layer])
    return torch.as_tensor(cache[layer, "z"])


def _patch(c, source, heads=("L1H0",), target=SHORT):
    return c.tiny.forward(target, interventions=PatchHeads(list(heads), source=source))


def _padded_self_patch(c):
    m, prompts = c.tiny, [SHORT, LONG]
    heads = [Head(1, h) for h in range(m.n_heads)]
    diff = m.forward(prompts, interventions=PatchHeads(heads, source=prompts)) - m.forward(prompts)
    return diff[m.to_tokens(prompts).attention_mask.bool()].abs().max().item()


def _short_source_into_padded_row(c):
    m, heads = c.tiny, ["L1H0", "L1H2"]
    batch = m.forward([LONG, SHORT], interventions=PatchHeads(heads, source=[SHORT, LONG]))
    alone = m.forward(SHORT, interventions=PatchHeads(heads, source=LONG))
    mask = m.to_tokens([LONG, SHORT]).attention_mask.bool()
    return (batch[1][mask[1]] - alone[0]).abs().max().item()


PATCHING = _cases(
    "patch sources",
    ("left-padded batch patched from itself", _padded_self_patch, lambda c, v: v <= 1e-5),
    (
        "single source into a left-padded batch row",
        _short_source_into_padded_row,
        lambda c, v: v <= 1e-4,
    ),
    (
        "source in head-major layout [b, head, pos, d]",
        lambda c: _patch(c, {(1, "z"): _z(c).transpose(1, 2)}),
    ),
    ("source with d_head = 1", lambda c: _patch(c, {(1, "z"): _z(c)[..., :1]})),
    ("source z of shape [1, 1, 2]", lambda c: _patch(c, {(1, "z"): torch.zeros(1, 1, 2)})),
    ("source keyed by layer alone", lambda c: _patch(c, {1: _z(c)})),
    ("source missing the patched layer", lambda c: _patch(c, {(0, "z"): _z(c, layer=0)})),
    ("source of another site", lambda c: _patch(c, {(1, "pattern"): _z(c)})),
    ("source with too many heads", lambda c: _patch(c, {(1, "z"): torch.zeros(1, 5, 9, 8)})),
    (
        "source batch of 2 into a batch of 3",
        lambda c: _patch(c, {(1, "z"): _z(c, [SHORT, LONG])}, target=[SHORT, LONG, SHORT]),
    ),
    ("source of NaN", lambda c: _patch(c, {(1, "z"): torch.full_like(_z(c), float("nan"))})),
    (
        "source as nested lists",
        lambda c: _patch(c, {(1, "z"): _z(c, LONG).tolist()}),
        lambda c, v: torch.equal(v, _patch(c, {(1, "z"): _z(c, LONG)})),
    ),
    ("source as an int", lambda c: _patch(c, 3)),
    (
        "means of the wrong d_head",
        lambda c: c.tiny.forward(
            SHORT, interventions=PruneHeads(["L1H0"], mode="mean", means=[[0.0] * 9])
        ),
    ),
    (
        "means of NaN",
        lambda c: c.tiny.forward(
            SHORT, interventions=PruneHeads(["L1H0"], mode="mean", means=[[float("nan")] * 8])
        ),
    ),
)

# --- forwards and caches ----------------------------------------------------------------------


def _cache(c, **kw):
    return c.tiny.run_with_cache(SHORT, **kw)[1]


FORWARD = _cases(
    "forwards and caches",
    (
        "sites='pattern' is one site",
        lambda c: set(_cache(c, sites="pattern")),
        lambda c, v: v == {(0, "pattern"), (1, "pattern")},
    ),
    ("layers=1 is one layer", lambda c: set(_cache(c, layers=1)), lambda c, v: v == {(1, "z")}),
    ("sites=('bogus',)", lambda c: _cache(c, sites=("bogus",))),
    ("sites=None", lambda c: _cache(c, sites=None)),
    ("sites=3", lambda c: _cache(c, sites=3)),
    ("layers=[1.0]", lambda c: _cache(c, layers=[1.0])),
    ("layers=[2] past the last", lambda c: _cache(c, layers=[2])),
    ("layers=[-1]", lambda c: _cache(c, layers=[-1])),
    ("layers=True", lambda c: _cache(c, layers=True)),
    ("layers='1'", lambda c: _cache(c, layers="1")),
    ("cache.head of an uncaptured site", lambda c: _cache(c, sites="z").head("pattern", "L1H0")),
    ("cache.head of an uncaptured layer", lambda c: _cache(c, layers=1).head("z", "L0H0")),
    ("cache.head past the last head", lambda c: _cache(c).head("z", "L1H9")),
    ("cache[5, 'z']", lambda c: _cache(c)[5, "z"]),
    ("forward([])", lambda c: c.tiny.forward([])),
    (
        "forward('') is BOS alone",
        lambda c: c.tiny.forward(""),
        lambda c, v: tuple(v.shape[:2]) == (1, 1),
    ),
    ("forward(None)", lambda c: c.tiny.forward(None)),
    ("forward(123)", lambda c: c.tiny.forward(123)),
    ("forward(['a', 3])", lambda c: c.tiny.forward(["once", 3])),
    (
        "forward of a prompt past the context window",
        lambda c: c.tiny.forward(" ".join(["the"] * (c.tiny.n_ctx + 5))),
    ),
    ("forward(backend='bogus')", lambda c: c.tiny.forward(SHORT, backend="bogus")),
    (
        "forward of token ids past the vocabulary",
        lambda c: c.tiny.forward(torch.tensor([[1, c.tiny.vocab_size + 3]])),
    ),
    ("forward of float token ids", lambda c: c.tiny.forward(torch.tensor([[1.0, 2.0]]))),
    ("head_means([])", lambda c: c.tiny.head_means([])),
    ("head_means(batch_size=0)", lambda c: c.tiny.head_means([SHORT], batch_size=0)),
)

# --- generation options -----------------------------------------------------------------------


def _gen(c, **kw):
    return c.tiny.generate(SHORT, **{"max_new_tokens": 2, **kw})


GENERATION = _cases(
    "generation options",
    ("max_new_tokens=2.5", lambda c: _gen(c, max_new_tokens=2.5)),
    ("max_new_tokens='3'", lambda c: _gen(c, max_new_tokens="3")),
    ("max_new_tokens=0", lambda c: _gen(c, max_new_tokens=0)),
    ("max_new_tokens=-1", lambda c: _gen(c, max_new_tokens=-1)),
    ("max_new_tokens=True", lambda c: _gen(c, max_new_tokens=True)),
    ("max_new_tokens past the context window", lambda c: _gen(c, max_new_tokens=c.tiny.n_ctx + 1)),
    ("top_k=0", lambda c: _gen(c, do_sample=True, top_k=0)),
    ("top_k above the vocabulary", lambda c: _gen(c, do_sample=True, top_k=10**6)),
    ("top_k=2.5", lambda c: _gen(c, do_sample=True, top_k=2.5)),
    ("temperature=0", lambda c: _gen(c, do_sample=True, temperature=0.0)),
    ("temperature=-1", lambda c: _gen(c, do_sample=True, temperature=-1.0)),
    ("temperature=nan", lambda c: _gen(c, do_sample=True, temperature=float("nan"))),
    ("temperature='hot'", lambda c: _gen(c, do_sample=True, temperature="hot")),
    ("top_k without do_sample", lambda c: _gen(c, top_k=5)),
    ("temperature without do_sample", lambda c: _gen(c, temperature=0.5)),
    ("do_sample='yes'", lambda c: _gen(c, do_sample="yes")),
    ("seed='x'", lambda c: _gen(c, do_sample=True, seed="x")),
    ("interventions='L1H0'", lambda c: _gen(c, interventions="L1H0")),
    ("an unknown option top_p", lambda c: _gen(c, top_p=0.9)),
    ("generate([])", lambda c: c.tiny.generate([], max_new_tokens=2)),
)

API_CASES = HEAD_SPECS + CONSTRUCTION + LIFECYCLE + PATCHING + FORWARD + GENERATION
