"""Bad input to head-aware KV compression (`interp.kv`): building a policy from scores, policy
files, and ``model.generate(..., kv_policy=...)``. Each case is what a user could plausibly type."""

from __future__ import annotations

import json

import torch

from interp import PruneHeads
from interp.kv import (
    HeadKVPolicy,
    full_policy,
    kv_head_scores,
    policy_from,
    random_policy,
    streaming_policy,
)
from interp.results.scores import HeadScores

from .context import LONG, SHORT, WORLD_PROMPT
from .replay import Case

__all__ = ["KV_CASES"]


def _cases(family: str, *rows) -> list[Case]:
    return [Case(family, *row) for row in rows]


def _scores(c, model=None) -> torch.Tensor:
    """Seeded [layers, heads] scores for `model` (the tiny Llama by default)."""
    model = model or c.tiny
    return torch.rand(model.n_layers, model.n_heads, generator=torch.Generator().manual_seed(0))


def _from(c, scores=None, **kw):
    kw = {"budget": 0.5, **kw} if "threshold" not in kw else kw
    return policy_from(_scores(c) if scores is None else scores, c.tiny, **kw)


def _nan_scores(c):
    return torch.full((c.tiny.n_layers, c.tiny.n_heads), float("nan"))


# --- building a policy --------------------------------------------------------------------------

BUILDING = _cases(
    "kv policies",
    ("scores of the wrong shape [3, 8]", lambda c: _from(c, torch.rand(3, 8))),
    ("scores [layers, kv heads] not query heads", lambda c: _from(c, torch.rand(2, 4))),
    ("scores of 3 dims", lambda c: _from(c, torch.rand(1, 2, 8))),
    ("scores all NaN", lambda c: _from(c, _nan_scores(c))),
    ("scores all NaN with a threshold", lambda c: _from(c, _nan_scores(c), threshold=0.5)),
    ("scores as nested lists", lambda c: _from(c, _scores(c).tolist())),
    ("scores as a path string", lambda c: _from(c, "retrieval_scores.json")),
    ("scores=None", lambda c: policy_from(None, c.tiny, budget=0.5)),
    (
        "HeadScores of another model with the same shape",
        lambda c: _from(c, HeadScores(_scores(c), model="world-base", method="retrieval")),
    ),
    ("budget=0 keeps no kv head whole", lambda c: _from(c, budget=0), lambda c, v: v.full == ()),
    ("budget=1.5", lambda c: _from(c, budget=1.5)),
    ("budget=-0.1", lambda c: _from(c, budget=-0.1)),
    ("budget=True", lambda c: _from(c, budget=True)),
    ("budget='0.5'", lambda c: _from(c, budget="0.5")),
    ("budget=nan", lambda c: _from(c, budget=float("nan"))),
    ("budget=0.01 rounds to no kv head", lambda c: _from(c, budget=0.01)),
    ("budget given as a percentage, 50", lambda c: _from(c, budget=50)),
    ("budget and threshold both", lambda c: _from(c, budget=0.5, threshold=0.5)),
    ("neither budget nor threshold", lambda c: _from(c, budget=None)),
    ("threshold=nan", lambda c: _from(c, threshold=float("nan"))),
    ("threshold='0.5'", lambda c: _from(c, threshold="0.5")),
    ("threshold=True", lambda c: _from(c, threshold=True)),
    ("group='bogus'", lambda c: _from(c, group="bogus")),
    ("group='MAX'", lambda c: _from(c, group="MAX")),
    ("ties='bogus'", lambda c: _from(c, ties="bogus")),
    ("ties='random' with seed='x'", lambda c: _from(c, ties="random", seed="x")),
    ("ties='random' with seed=1.5", lambda c: _from(c, ties="random", seed=1.5)),
    ("a seed with ties='position' draws nothing", lambda c: _from(c, seed=3)),
    ("sink=-1", lambda c: _from(c, sink=-1)),
    ("sink=True", lambda c: _from(c, sink=True)),
    ("sink=2.0", lambda c: _from(c, sink=2.0)),
    ("window=0", lambda c: _from(c, window=0)),
    ("window=-8", lambda c: _from(c, window=-8)),
    ("window=False", lambda c: _from(c, window=False)),
    ("window=16.5", lambda c: _from(c, window=16.5)),
    ("random_policy seed=None", lambda c: random_policy(c.tiny, 0.5, seed=None)),
    ("random_policy seed='x'", lambda c: random_policy(c.tiny, 0.5, seed="x")),
    ("random_policy budget=2", lambda c: random_policy(c.tiny, 2, seed=0)),
    ("kv_head_scores n_kv_heads=0", lambda c: kv_head_scores(_scores(c), 0)),
    ("kv_head_scores n_kv_heads=3 of 8 heads", lambda c: kv_head_scores(_scores(c), 3)),
    ("HeadKVPolicy budget=2.0", lambda c: HeadKVPolicy(((0, 1),), 2, 4, budget=2.0)),
    ("HeadKVPolicy budget='half'", lambda c: HeadKVPolicy(((0, 1),), 2, 4, budget="half")),
    ("HeadKVPolicy full=None", lambda c: HeadKVPolicy(None, 2, 4)),
    ("HeadKVPolicy full='L0H1'", lambda c: HeadKVPolicy("L0H1", 2, 4)),
    ("HeadKVPolicy kv head past the last", lambda c: HeadKVPolicy(((0, 4),), 2, 4)),
)

# --- policy files -------------------------------------------------------------------------------


def _policy_dict(c) -> dict:
    return HeadKVPolicy(((0, 1), (1, 3)), 2, 4, sink=1, window=2).to_dict()


def _from_dict(c, drop=(), **changes):
    data = {k: v for k, v in {**_policy_dict(c), **changes}.items() if k not in drop}
    return HeadKVPolicy.from_dict(data)


def _policy_file(c, text: str):
    folder = c.scratch / "kv-files"
    folder.mkdir(exist_ok=True)
    path = folder / f"policy-{len(list(folder.iterdir()))}.json"
    path.write_text(text)
    return HeadKVPolicy.load(path)


def _saved(c, path):
    return HeadKVPolicy.from_dict(_policy_dict(c)).save(path)


def _generate_loaded(c, **changes):
    policy = _from_dict(c, **changes)
    return c.tiny.generate(LONG, max_new_tokens=2, kv_policy=policy)


FILES = _cases(
    "kv policy files",
    ("a missing n_layers", lambda c: _from_dict(c, drop=("n_layers",))),
    ("a missing full", lambda c: _from_dict(c, drop=("full",))),
    ("n_layers of another model, used", lambda c: _generate_loaded(c, n_layers=3)),
    ("n_kv_heads of another model, used", lambda c: _generate_loaded(c, n_kv_heads=8)),
    ("a kv head index out of range", lambda c: _from_dict(c, full=[[0, 9]])),
    ("a negative kv head index", lambda c: _from_dict(c, full=[[0, -1]])),
    (
        "the same kv head twice",
        lambda c: _from_dict(c, full=[[0, 1], [0, 1]]),
        lambda c, v: v.full == ((0, 1),),
    ),
    ("full as head names", lambda c: _from_dict(c, full=["L0H1"])),
    ("full as a number", lambda c: _from_dict(c, full=3)),
    ("sink as text", lambda c: _from_dict(c, sink="4")),
    ("budget as text", lambda c: _from_dict(c, budget="0.5")),
    ("spans of the wrong length", lambda c: _from_dict(c, spans=[8, 8, 8])),
    ("an unknown key", lambda c: _from_dict(c, colour="red")),
    ("an unknown schema", lambda c: _from_dict(c, schema="interp.kv_policy/9")),
    ("a JSON list", lambda c: HeadKVPolicy.from_dict([_policy_dict(c)])),
    ("not JSON", lambda c: _policy_file(c, "{full: [[0, 1]]")),
    ("an empty file", lambda c: _policy_file(c, "")),
    ("a JSON list in a file", lambda c: _policy_file(c, json.dumps([_policy_dict(c)]))),
    ("a missing file", lambda c: HeadKVPolicy.load(c.scratch / "no-such-policy.json")),
    ("a folder", lambda c: HeadKVPolicy.load(c.scratch)),
    (
        "save into a missing folder makes it",
        lambda c: HeadKVPolicy.load(_saved(c, c.scratch / "none" / "p.json")),
        lambda c, v: v.to_dict() == _policy_dict(c),
    ),
    ("save to a folder path", lambda c: _saved(c, c.scratch)),
)

# --- generating under a policy ------------------------------------------------------------------


def _stream(c, model=None, **kw):
    return streaming_policy(model or c.tiny, **{"sink": 1, "window": 2, **kw})


def _gen(c, prompts=LONG, n=3, **kw):
    return c.tiny.generate(prompts, max_new_tokens=n, **kw)


def _rows_alone_equal(c, prompts, n=6, policy=None):
    """Each row of a batch under the policy equals that prompt generated alone under it."""
    policy = policy or _stream(c)
    batch = _gen(c, prompts, n, kv_policy=policy).new_tokens
    alone = [_gen(c, p, n, kv_policy=policy).new_tokens[0] for p in prompts]
    return all(torch.equal(row, one) for row, one in zip(batch, alone))


def _same_tokens(a, b) -> bool:
    return torch.equal(a.tokens, b.tokens)


def _sampled_equal(c):
    plain = _gen(c, do_sample=True, seed=3, n=5)
    kept = _gen(c, do_sample=True, seed=3, n=5, kv_policy=full_policy(c.tiny))
    return _same_tokens(plain, kept)


def _pruned_equal(c):
    prune = PruneHeads(["L1H0", "L0H3"])
    plain = _gen(c, n=5, interventions=prune)
    return _same_tokens(plain, _gen(c, n=5, interventions=prune, kv_policy=full_policy(c.tiny)))


def _applied_equal(c):
    with c.tiny.intervene(PruneHeads(["L1H2"])):
        plain = _gen(c, n=5)
        kept = _gen(c, n=5, kv_policy=full_policy(c.tiny))
    return _same_tokens(plain, kept)


def _renamed(c):
    """The tiny Llama's own layout, but built for (and named as) world-base."""
    return HeadKVPolicy(((0, 1),), 2, 4, sink=1, window=2, kind="retrieval", model="world-base")


GENERATING = _cases(
    "kv generation",
    (
        "a tiny-Llama policy on world-base",
        lambda c: c.world.generate(WORLD_PROMPT, 2, kv_policy=_stream(c)),
    ),
    ("a world-base policy on the tiny Llama", lambda c: _gen(c, kv_policy=_stream(c, c.world))),
    ("a policy of another model with the same layout", lambda c: _gen(c, kv_policy=_renamed(c))),
    ("kv_policy a dict", lambda c: _gen(c, kv_policy=_policy_dict(c))),
    ("kv_policy a path string", lambda c: _gen(c, kv_policy="policy.json")),
    ("kv_policy a list of policies", lambda c: _gen(c, kv_policy=[_stream(c)])),
    ("kv_policy=True", lambda c: _gen(c, kv_policy=True)),
    ("kv_policy a budget number", lambda c: _gen(c, kv_policy=0.5)),
    (
        "a batch of prompts of one length",
        lambda c: _rows_alone_equal(c, [LONG, LONG.replace("girl", "boy")]),
        lambda c, v: v is True,
    ),
    (
        "a left-padded batch, streaming heads",
        lambda c: _rows_alone_equal(c, [LONG, SHORT + " there was"]),
        lambda c, v: v is True,
    ),
    (
        "a left-padded batch, streaming heads with sink=0",
        lambda c: _rows_alone_equal(c, [LONG, SHORT + " there was"], policy=_stream(c, sink=0)),
        lambda c, v: v is True,
    ),
    (
        "a left-padded batch, every kv head full",
        lambda c: _rows_alone_equal(c, [LONG, SHORT], policy=full_policy(c.tiny)),
        lambda c, v: v is True,
    ),
    ("do_sample under the full policy", _sampled_equal, lambda c, v: v is True),
    ("interventions= under the full policy", _pruned_equal, lambda c, v: v is True),
    ("applied interventions under the full policy", _applied_equal, lambda c, v: v is True),
    ("max_new_tokens=0", lambda c: _gen(c, n=0, kv_policy=_stream(c))),
    ("use_cache=False", lambda c: _gen(c, use_cache=False, kv_policy=_stream(c))),
    (
        "backend='transformer_lens'",
        lambda c: _gen(c, backend="transformer_lens", kv_policy=_stream(c)),
    ),
    ("sink + window cover the prompt", lambda c: _gen(c, kv_policy=_stream(c, window=64))),
    ("a prompt of BOS alone", lambda c: _gen(c, "", kv_policy=_stream(c))),
)

KV_CASES = BUILDING + FILES + GENERATING
