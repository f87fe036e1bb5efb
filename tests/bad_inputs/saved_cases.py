"""Bad saved results: the summary.json files that ``interp atlas --from DIR`` (and
`interp.cli.demo.atlas_from_saved` behind it) reads back to draw an atlas without a rerun."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from interp.cli.demo import atlas_from_saved
from interp.saved_results import read_saved_results

from .replay import Case

__all__ = ["SAVED_CASES"]

M = "world-base"
INFO = {"name": M, "architecture": "LlamaForCausalLM", "n_layers": 4, "n_heads": 8}
ROLE = {
    "role": "retrieval",
    "analyzer": "retrieval (Wu et al.)",
    "heads": {"L2H1": 0.6, "L3H0": 0.2},
    "causal_check": {},
    "note": "",
    "checks": [],
}
SUMMARY = {"analyzer": "retrieval", "model": M, "numbers": {}, "model_info": INFO, "roles": [ROLE]}


def _summary(**changes) -> dict:
    return {**copy.deepcopy(SUMMARY), **changes}


def _role(**changes) -> dict:
    return {**copy.deepcopy(ROLE), **changes}


def _folder(c, *summaries) -> str:
    """A fresh results folder with one sub-folder per (name, summary): a dict is written as JSON,
    a str as it is."""
    root = c.scratch / "saved"
    root.mkdir(exist_ok=True)
    folder = root / f"r{len(list(root.iterdir()))}"
    folder.mkdir()
    for name, data in summaries:
        (folder / name).mkdir()
        text = data if isinstance(data, str) else json.dumps(data)
        (folder / name / "summary.json").write_text(text)
    return str(folder)


def _atlas(c, *summaries, model=None):
    folder = _folder(c, *summaries)
    return atlas_from_saved(folder, c.scratch / "saved-out" / f"{folder[-3:]}.html", model)


def _read(c, *summaries):
    return read_saved_results(_folder(c, *summaries))


def _cli(c, *summaries, model=None):
    folder = _folder(c, *summaries)
    named = [] if model is None else [model]
    return c.cli(
        "atlas", *named, "--from", folder, "--out", str(c.scratch / "saved-out" / "a.html")
    )


def _rolled(**changes) -> dict:
    return _summary(roles=[_role(**changes)])


def _no(key: str) -> dict:
    return {k: v for k, v in ROLE.items() if k != key}


def _cli_file(c):
    folder = _folder(c, ("r", _summary()))
    return c.cli("atlas", "--from", f"{folder}/r/summary.json", "--out", str(c.scratch / "x.html"))


def _no_summaries(c):
    folder = _folder(c)
    (Path(folder) / "retrieval").mkdir()
    (Path(folder) / "retrieval" / "scores.json").write_text("{}")
    return read_saved_results(folder)


def _cases(family: str, *rows) -> list[Case]:
    return [Case(family, *row) for row in rows]


SAVED_CASES = _cases(
    "saved results",
    (
        "a summary of an analyzer interp does not have",
        lambda c: _atlas(c, ("mine", _summary(analyzer="my_probe"))),
        lambda c, v: v["analyzers"] == ["mine"] and v["roles"] == {"retrieval": ["L2H1", "L3H0"]},
    ),
    (
        "a summary of another model than the one named",
        lambda c: _atlas(c, ("retrieval", _summary()), model="smollm2-135m"),
    ),
    (
        "summaries of two models in one folder",
        lambda c: _read(
            c, ("a", _summary()), ("b", _summary(model_info={**INFO, "name": "smollm2-135m"}))
        ),
    ),
    (
        "summaries of one name but two shapes",
        lambda c: _read(c, ("a", _summary()), ("b", _summary(model_info={**INFO, "n_layers": 30}))),
    ),
    ("a truncated summary.json", lambda c: _read(c, ("r", json.dumps(SUMMARY)[:90]))),
    ("an empty summary.json", lambda c: _read(c, ("r", ""))),
    ("a summary.json that is a list", lambda c: _read(c, ("r", json.dumps([SUMMARY])))),
    ("an empty folder", lambda c: _read(c)),
    (
        "a folder of sub-folders with no summary",
        _no_summaries,
    ),
    ("--from a file, not a folder", lambda c: _cli_file(c)),
    (
        "a role with a head past the last layer",
        lambda c: _atlas(c, ("r", _rolled(heads={"L9H0": 1.0}))),
    ),
    (
        "a role with a head past the last head",
        lambda c: _atlas(c, ("r", _rolled(heads={"L0H8": 1.0}))),
    ),
    (
        "a role with a head that is no head name",
        lambda c: _atlas(c, ("r", _rolled(heads={"head one": 1.0}))),
    ),
    ("a role whose score is text", lambda c: _atlas(c, ("r", _rolled(heads={"L1H0": "high"})))),
    ("a role whose heads are a list", lambda c: _atlas(c, ("r", _rolled(heads=["L1H0"])))),
    ("a role without its name", lambda c: _atlas(c, ("r", _summary(roles=[_no("role")])))),
    ("a role without heads", lambda c: _atlas(c, ("r", _summary(roles=[_no("heads")])))),
    ("roles as an object", lambda c: _atlas(c, ("r", _summary(roles={"retrieval": ROLE})))),
    ("roles as a list of names", lambda c: _atlas(c, ("r", _summary(roles=["retrieval"])))),
    ("roles as a list of numbers", lambda c: _atlas(c, ("r", _summary(roles=[3])))),
    ("a check without its effect", lambda c: _atlas(c, ("r", _rolled(checks=[{"control": "x"}])))),
    (
        "model_info n_layers as text",
        lambda c: _atlas(c, ("r", _summary(model_info={**INFO, "n_layers": "four"}))),
    ),
    (
        "model_info n_heads 0",
        lambda c: _atlas(c, ("r", _summary(model_info={**INFO, "n_heads": 0}))),
    ),
    ("a circuit that is not a circuit", lambda c: _atlas(c, ("r", _summary(circuits=[{"x": 1}])))),
    (
        "the CLI on a role with a head out of range",
        lambda c: _cli(c, ("r", _rolled(heads={"L4H0": 1.0}))),
    ),
    (
        "the CLI on a role whose score is text",
        lambda c: _cli(c, ("r", _rolled(heads={"L1H0": "x"}))),
    ),
)
