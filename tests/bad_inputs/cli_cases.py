"""Bad input on the command line, on the zoo's world-base: every analyzer's flags, recipes and
data files. A command that is not refused runs its analysis and hits the time budget, which
the replay counts as silent (the input was not checked up front)."""

from __future__ import annotations

import json

from .replay import Case

__all__ = ["CLI_CASES"]

M = "world-base"


def _file(c, name: str, text: str) -> str:
    folder = c.scratch / "cli-files"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text)
    return str(path)


def _out(c, name: str) -> str:
    return str(c.scratch / "cli-out" / name)


def _page(c) -> str:
    return str(c.scratch / "cli-out" / "atlas.html")


def _summary_folder(c, text) -> str:
    """A results folder with one analyzer's summary.json: `text`, or (None) a valid summary of
    world-base that keeps its roles."""
    from interp.report import write_summary

    folder = c.scratch / "cli-saved" / ("bad" if text else "good")
    if text is None:
        info = {"name": M, "n_layers": 4, "n_heads": 8}
        write_summary(folder / "x", "x", {}, model=M, roles=[], model_info=info)
    else:
        (folder / "x").mkdir(parents=True, exist_ok=True)
        (folder / "x" / "summary.json").write_text(text)
    return str(folder)


NO_MODEL = ("induction-damage",)  # commands that take --family (a zoo family) for MODEL


def _command(command: str, *flags: str, model: str = M):
    """A case action: ``interp COMMAND MODEL --out <scratch> FLAGS``."""

    def run(c):
        named = ["--family", "rep2l"] if command in NO_MODEL else [model]
        args = [command, *named, "--out", _out(c, command), *flags]
        if command in ("generate", "info"):
            args = [command, model, *flags]
        return c.cli(*args)

    return run


def _with_file(command: str, flag: str, name: str, text: str, *more: str):
    def run(c):
        return _command(command, flag, _file(c, name, text), *more)(c)

    return run


def _cases(command: str, *rows) -> list[Case]:
    return [Case(f"cli {command}", name, action) for name, action in rows]


GOOD_ITEM = {"subject": "Avaria", "memory_answer": "Velm", "context_answer": "Doran"}

CLI_CASES = (
    _cases(
        "info",
        ("a model that does not exist", lambda c: c.cli("info", str(c.scratch / "none"))),
        ("a zoo-name typo", lambda c: c.cli("info", "world-bsae")),
    )
    + _cases(
        "generate",
        ("--scale without =", _command("generate", "the", "--scale", "L1H0")),
        ("--scale L1H0=abc", _command("generate", "the", "--scale", "L1H0=abc")),
        ("--scale L1H0=inf", _command("generate", "the", "--scale", "L1H0=inf")),
        ("--scale L1H0=1e39", _command("generate", "the", "--scale", "L1H0=1e39")),
        ("--prune L99H0", _command("generate", "the", "--prune", "L99H0")),
        ("--prune head", _command("generate", "the", "--prune", "head")),
        ("--mode bogus", _command("generate", "the", "--prune", "L1H0", "--mode", "bogus")),
        (
            "--mode mean without means",
            _command("generate", "the", "--prune", "L1H0", "--mode", "mean"),
        ),
        ("-n 0", _command("generate", "the", "-n", "0")),
        ("--backend bogus", _command("generate", "the", "--backend", "bogus")),
        (
            "--save-recipe without an intervention",
            lambda c: _command("generate", "the", "--save-recipe", _out(c, "r.json"))(c),
        ),
        (
            "--recipe of a folder",
            lambda c: _command("generate", "the", "--recipe", str(c.scratch))(c),
        ),
        (
            "--recipe of a missing file",
            lambda c: _command("generate", "the", "--recipe", _out(c, "none.json"))(c),
        ),
        (
            "--recipe without alpha",
            _with_file(
                "generate", "--recipe", "a.json", '{"type": "ScaleValues", "head": "L1H0"}', "the"
            ),
        ),
        (
            "--recipe of means of the wrong length",
            _with_file(
                "generate",
                "--recipe",
                "m.json",
                json.dumps(
                    {"type": "PruneHeads", "heads": ["L1H0"], "mode": "mean", "means": [[0.0]]}
                ),
                "the",
            ),
        ),
        ("--recipe not JSON", _with_file("generate", "--recipe", "n.json", "{oops", "the")),
    )
    + _cases(
        "retrieval",
        ("--k 0", _command("retrieval", "--k", "0")),
        ("--k of every head (no random control)", _command("retrieval", "--k", "32")),
        ("--lengths abc", _command("retrieval", "--lengths", "abc")),
        ("--lengths 0", _command("retrieval", "--lengths", "0")),
        ("--lengths past the context window", _command("retrieval", "--lengths", "100000")),
        ("--depths 2", _command("retrieval", "--depths", "2")),
        ("--depths abc", _command("retrieval", "--depths", "abc")),
        ("--mode bogus", _command("retrieval", "--mode", "bogus")),
        ("--prune-mode bogus", _command("retrieval", "--prune-mode", "bogus")),
        ("--prune-metric bogus", _command("retrieval", "--prune-metric", "bogus")),
        ("--draws 0", _command("retrieval", "--draws", "0")),
        ("--batch-size 0", _command("retrieval", "--batch-size", "0")),
        ("--n-needles 0", _command("retrieval", "--n-needles", "0")),
        (
            "--needle without --answer",
            _command("retrieval", "--needle", "the key is red .", "--question", "what ?"),
        ),
        (
            "--answer not in the needle",
            _command(
                "retrieval",
                "--needle",
                "the key is red .",
                "--question",
                "what ?",
                "--answer",
                "blue",
            ),
        ),
        (
            "--haystack of a missing file",
            lambda c: _command("retrieval", "--haystack", _out(c, "none.txt"))(c),
        ),
        ("--haystack of an empty file", _with_file("retrieval", "--haystack", "h.txt", "")),
        ("--template without {context}", _command("retrieval", "--template", "Q: {question} A:")),
        ("--backend bogus", _command("retrieval", "--backend", "bogus")),
    )
    + _cases(
        "conflict",
        ("--formats qa", _command("conflict", "--formats", "qa")),
        ("--formats bogus,statement", _command("conflict", "--formats", "bogus,statement")),
        (
            "--items of a missing file",
            lambda c: _command("conflict", "--items", _out(c, "none.jsonl"))(c),
        ),
        ("--items not JSONL", _with_file("conflict", "--items", "i.jsonl", "subject,answer\n")),
        (
            "--items missing a field",
            _with_file("conflict", "--items", "k.jsonl", json.dumps({"subject": "Avaria"}) + "\n"),
        ),
        ("--items empty", _with_file("conflict", "--items", "e.jsonl", "")),
        (
            "--items whose answers are the same",
            _with_file(
                "conflict",
                "--items",
                "s.jsonl",
                json.dumps({**GOOD_ITEM, "context_answer": "Velm"}) + "\n",
            ),
        ),
        (
            "--templates without {subject}",
            _with_file("conflict", "--templates", "t.json", json.dumps(["the capital is"])),
        ),
        ("--source bogus", _command("conflict", "--source", "bogus")),
        ("--metric bogus", _command("conflict", "--metric", "bogus")),
        ("--order bogus", _command("conflict", "--order", "bogus")),
        ("--k 0", _command("conflict", "--k", "0")),
        ("--n-random 0", _command("conflict", "--n-random", "0")),
        ("--n-per-subject 0", _command("conflict", "--n-per-subject", "0")),
        ("--shortlist -1", _command("conflict", "--shortlist", "-1")),
    )
    + _cases(
        "recall",
        ("--format bogus", _command("recall", "--format", "bogus")),
        ("--items empty", _with_file("recall", "--items", "e.jsonl", "")),
        ("--counts not a table", _with_file("recall", "--counts", "c.json", "[1, 2, 3]")),
        (
            "--counts of a missing file",
            lambda c: _command("recall", "--counts", _out(c, "none.csv"))(c),
        ),
        ("--max-new-tokens 0", _command("recall", "--max-new-tokens", "0")),
        ("--alpha-step -1", _command("recall", "--alpha-step", "-1")),
        ("--n-per-subject 0", _command("recall", "--n-per-subject", "0")),
        ("--n-random 0", _command("recall", "--n-random", "0")),
    )
    + _cases(
        "entity",
        ("--n-boxes 1", _command("entity", "--n-boxes", "1")),
        ("--n-boxes 1000", _command("entity", "--n-boxes", "1000")),
        ("--n-prompts 0", _command("entity", "--n-prompts", "0")),
        ("--n-eval 0", _command("entity", "--n-eval", "0")),
        ("--threshold 2", _command("entity", "--threshold", "2")),
        ("--metric bogus", _command("entity", "--metric", "bogus")),
        ("--ablation bogus", _command("entity", "--ablation", "bogus")),
        ("--random-pool bogus", _command("entity", "--random-pool", "bogus")),
        ("--max-per-group 0", _command("entity", "--max-per-group", "0")),
        (
            "--finetuned of a missing model",
            lambda c: _command("entity", "--finetuned", str(c.scratch / "none"))(c),
        ),
    )
    + _cases(
        "induction",
        ("--top-k 1000", _command("induction", "--top-k", "1000")),
        ("--top-k 0", _command("induction", "--top-k", "0")),
        ("--n 0", _command("induction", "--n", "0")),
        ("--lengths abc", _command("induction", "--lengths", "abc")),
        ("--lengths 0", _command("induction", "--lengths", "0")),
        ("--lengths past the context window", _command("induction", "--lengths", "5000")),
        ("--offsets -1", _command("induction", "--offsets", "-1")),
        ("--threshold 2", _command("induction", "--threshold", "2")),
        ("--ablation bogus", _command("induction", "--ablation", "bogus")),
        ("--rank-by bogus", _command("induction", "--rank-by", "bogus")),
        ("--sweep bogus", _command("induction", "--sweep", "bogus")),
        ("--shortlist 0", _command("induction", "--shortlist", "0")),
        ("--n-random 0", _command("induction", "--n-random", "0")),
        (
            "--checkpoints of a missing .pt file",
            lambda c: _command("induction", "--checkpoints", _out(c, "step-99999.pt"))(c),
        ),
    )
    + _cases(
        "induction-damage",
        ("--n 0", _command("induction-damage", "--n", "0")),
        ("--test-rows 0", _command("induction-damage", "--test-rows", "0")),
        ("--lengths abc", _command("induction-damage", "--lengths", "abc")),
    )
    + _cases(
        "kv",
        ("--budgets 2", _command("kv", "--budgets", "2")),
        ("--budgets 0", _command("kv", "--budgets", "0")),
        ("--depths 1.5", _command("kv", "--depths", "1.5")),
        ("--lengths abc", _command("kv", "--lengths", "abc")),
        ("--group bogus", _command("kv", "--group", "bogus")),
        ("--sink -1", _command("kv", "--sink", "-1")),
        ("--window 0", _command("kv", "--window", "0")),
        ("--n-random 0", _command("kv", "--n-random", "0")),
        (
            "--scores of a missing file",
            lambda c: _command("kv", "--scores", _out(c, "none.json"))(c),
        ),
        ("--scores not JSON", _with_file("kv", "--scores", "s.json", "{oops")),
        (
            "--scores of another model's shape",
            _with_file("kv", "--scores", "o.json", json.dumps({"scores": [[0.5] * 3] * 2})),
        ),
    )
    + [
        Case(
            f"cli {cmd}",
            "--out is a file",
            lambda c, cmd=cmd: c.cli(
                cmd,
                *(["--family", "rep2l"] if cmd in NO_MODEL else [M]),
                "--out",
                _file(c, f"{cmd}.txt", "x"),
            ),
        )
        for cmd in (
            "retrieval",
            "conflict",
            "recall",
            "entity",
            "induction",
            "induction-damage",
            "kv",
        )
    ]
    + _cases(
        "demo and atlas",
        ("demo --out is a file", lambda c: c.cli("demo", "--out", _file(c, "demo.txt", "x"))),
        (
            "demo --model of a missing model",
            lambda c: c.cli("demo", "--model", str(c.scratch / "none"), "--out", _out(c, "demo")),
        ),
        ("atlas --out is a folder", lambda c: c.cli("atlas", M, "--out", str(c.scratch))),
        ("atlas with neither MODEL nor --from", lambda c: c.cli("atlas", "--out", _page(c))),
        (
            "atlas --from a folder that does not exist",
            lambda c: c.cli("atlas", "--from", str(c.scratch / "none"), "--out", _page(c)),
        ),
        (
            "atlas --from a folder without analyzer results",
            lambda c: c.cli("atlas", "--from", str(c.scratch / "cli-files"), "--out", _page(c)),
        ),
        (
            "atlas --from a summary that is not JSON",
            lambda c: c.cli("atlas", "--from", _summary_folder(c, "{not json"), "--out", _page(c)),
        ),
        (
            "atlas --from results of another MODEL",
            lambda c: c.cli(
                "atlas", "other-model", "--from", _summary_folder(c, None), "--out", _page(c)
            ),
        ),
    )
)
