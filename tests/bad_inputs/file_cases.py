"""Bad input from outside Python: model specs and folders, recipe JSON, circuit files."""

from __future__ import annotations

import json
import warnings

import torch

import interp
from interp.interventions import Intervention
from interp.testing import tiny_model

from .replay import Case

__all__ = ["FILE_CASES"]


def _cases(family: str, *rows) -> list[Case]:
    return [Case(family, *row) for row in rows]


def _saved(c, name: str, edit=None):
    """A tiny Llama written as an ordinary HF folder (weights + tokenizer), `edit(model)` first."""
    model = tiny_model("llama")
    if edit is not None:
        with torch.no_grad():
            edit(model)
    folder = c.folder(name)
    model.hf.save_pretrained(folder)
    model.tokenizer.save_pretrained(folder)
    return folder


def _load(path, **kw):
    return interp.load(str(path), **kw)


def _bert_folder(c):
    from helpers import save_bert_folder

    return _load(save_bert_folder(c.folder("bert")))


def _t5_folder(c):
    from transformers import T5Config, T5ForConditionalGeneration

    config = T5Config(d_model=32, d_ff=37, num_layers=1, num_heads=2, d_kv=16, vocab_size=50)
    folder = c.folder("t5")
    T5ForConditionalGeneration(config).save_pretrained(folder)
    return _load(folder)


def _truncated(c):
    folder = _saved(c, "truncated")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    return _load(folder)


def _nan_weights(c):
    folder = _saved(c, "nan", lambda m: m.hf.model.layers[1].mlp.up_proj.weight.fill_(float("nan")))
    return _load(folder)


def _no_tokenizer(c):
    folder = _saved(c, "no-tokenizer")
    for path in folder.iterdir():
        if path.name.startswith(("tokenizer", "vocab", "merges", "special_tokens")):
            path.unlink()
    return _load(folder)


def _no_config(c):
    folder = _saved(c, "no-config")
    (folder / "config.json").unlink()
    return _load(folder)


def _bad_config(c):
    folder = _saved(c, "bad-config")
    (folder / "config.json").write_text("{ not json")
    return _load(folder)


def _garbage_gguf(c):
    path = c.folder("gguf") / "model.gguf"
    path.write_bytes(b"GGUF" + bytes(range(256)) * 4)
    return _load(path)


def _shadowing_folder(c):
    import os

    here = os.getcwd()
    os.chdir(c.folder("shadow"))
    try:
        (c.scratch / "shadow" / "world-base").mkdir()
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            return interp.load("world-base")
    finally:
        os.chdir(here)


LOADING = _cases(
    "loading",
    ("load(None)", lambda c: interp.load(None)),
    ("load(123)", lambda c: interp.load(123)),
    ("load('')", lambda c: interp.load("")),
    ("load(['world-base'])", lambda c: interp.load(["world-base"])),
    ("a zoo-name typo 'world-bsae'", lambda c: interp.load("world-bsae")),
    ("device='gpu'", lambda c: interp.load("world-base", device="gpu")),
    (
        "device='cuda' without a GPU",
        lambda c: interp.load("world-base", device="cuda")
        if not torch.cuda.is_available()
        else (_ for _ in ()).throw(RuntimeError("has a GPU")),
    ),
    ("device='cuda:7'", lambda c: interp.load("world-base", device="cuda:7")),
    ("dtype='float8'", lambda c: interp.load("world-base", dtype="float8")),
    ("dtype=3", lambda c: interp.load("world-base", dtype=3)),
    ("backend='bogus'", lambda c: interp.load("world-base", backend="bogus")),
    ("backend=None", lambda c: interp.load("world-base", backend=None)),
    ("revision= for a zoo name", lambda c: interp.load("world-base", revision="main")),
    ("revision= for a folder", lambda c: _load(_saved(c, "revision"), revision="v2")),
    ("a folder that does not exist", lambda c: _load(c.scratch / "no-such-folder")),
    ("an empty folder", lambda c: _load(c.folder("empty"))),
    ("a folder without config.json", _no_config),
    ("a folder whose config.json is not JSON", _bad_config),
    ("a BERT folder", _bert_folder),
    ("a T5 folder", _t5_folder),
    ("truncated safetensors", _truncated),
    ("weights of NaN", _nan_weights),
    ("a folder without tokenizer files", _no_tokenizer),
    ("a .gguf of garbage bytes", _garbage_gguf),
    ("a .gguf path that does not exist", lambda c: _load(c.scratch / "missing.gguf")),
    (
        "a folder in the working directory named like a zoo model",
        _shadowing_folder,
        lambda c, m: m.name == "world-base",
    ),
    ("a plain text file as the model", lambda c: _load(_write(c, "model.txt", "hello"))),
)


def _write(c, name: str, text: str, encoding="utf-8"):
    path = c.folder(f"file-{len(list(c.scratch.iterdir()))}") / name
    path.write_text(text, encoding=encoding)
    return path


# --- recipes ----------------------------------------------------------------------------------


def _recipe(c, data) -> Intervention:
    text = data if isinstance(data, str) else json.dumps(data)
    return Intervention.from_json(str(_write(c, "recipe.json", text)))


def _recipe_run(c, data):
    return c.tiny.forward("once upon a time", interventions=_recipe(c, data))


RECIPES = _cases(
    "recipe files",
    ("ScaleValues without alpha", lambda c: _recipe(c, {"type": "ScaleValues", "head": "L1H0"})),
    (
        "ScaleValues alpha true",
        lambda c: _recipe(c, {"type": "ScaleValues", "head": "L1H0", "alpha": True}),
    ),
    (
        "ScaleValues alpha '2'",
        lambda c: _recipe(c, {"type": "ScaleValues", "head": "L1H0", "alpha": "2"}),
    ),
    (
        "ScaleValues alpha 1e39",
        lambda c: _recipe(c, {"type": "ScaleValues", "head": "L1H0", "alpha": 1e39}),
    ),
    ("an unknown type", lambda c: _recipe(c, {"type": "Steer", "head": "L1H0"})),
    ("no type", lambda c: _recipe(c, {"head": "L1H0", "alpha": 2})),
    (
        "an unknown key",
        lambda c: _recipe(
            c, {"type": "PruneHeads", "heads": ["L1H0"], "mode": "zero", "colour": 1}
        ),
    ),
    (
        "PruneHeads heads as one string",
        lambda c: _recipe_run(c, {"type": "PruneHeads", "heads": "L1H0", "mode": "zero"}),
        lambda c, v: torch.equal(
            v, c.tiny.forward("once upon a time", interventions=interp.PruneHeads(["L1H0"]))
        ),
    ),
    (
        "means of the wrong length",
        lambda c: _recipe_run(
            c, {"type": "PruneHeads", "heads": ["L1H0"], "mode": "mean", "means": [[0.0] * 3]}
        ),
    ),
    ("a Compose of nothing", lambda c: _recipe(c, {"type": "Compose", "items": []})),
    ("not JSON", lambda c: _recipe(c, "{type: PruneHeads")),
    ("an empty file", lambda c: _recipe(c, "")),
    ("a JSON list", lambda c: _recipe(c, [{"type": "PruneHeads", "heads": ["L1H0"]}])),
    ("a folder", lambda c: Intervention.from_json(str(c.folder("recipe-folder")))),
    ("a missing file", lambda c: Intervention.from_json(str(c.scratch / "nope.json"))),
    (
        "a file in latin-1",
        lambda c: Intervention.from_json(
            str(
                _write(
                    c,
                    "r.json",
                    '{"type": "PruneHeads", "heads": ["L1H0"], "mode": "zéro"}',
                    "latin-1",
                )
            )
        ),
    ),
)

# --- circuits ---------------------------------------------------------------------------------

CIRCUIT = {"schema_version": "1.0", "model": "m", "method": "x", "nodes": [], "edges": []}


def _circuit(c, data=None, **changes):
    from interp.export import load_circuit

    data = {**CIRCUIT, **changes} if data is None else data
    return load_circuit(json.dumps(data) if isinstance(data, dict) else data)


def _graphml(c, text):
    from interp.export import from_graphml

    return from_graphml(_write(c, "c.graphml", text))


CIRCUITS = _cases(
    "circuit files",
    ("an unknown schema version", lambda c: _circuit(c, schema_version="1.7")),
    ("schema version as a number", lambda c: _circuit(c, schema_version=1.0)),
    ("an extra top-level key", lambda c: _circuit(c, extra=1)),
    (
        "an extra node key",
        lambda c: _circuit(c, nodes=[{"name": "L0H1", "role": "mover", "colour": "red"}]),
    ),
    ("a node of a bad name", lambda c: _circuit(c, nodes=[{"name": "head one", "role": "mover"}])),
    ("a node without a name", lambda c: _circuit(c, nodes=[{"role": "mover"}])),
    (
        "an edge to an unknown node",
        lambda c: _circuit(
            c,
            nodes=[{"name": "L0H1", "role": "a"}],
            edges=[{"source": "L0H1", "target": "L3H3", "kind": "out"}],
        ),
    ),
    (
        "an edge of an unknown kind",
        lambda c: _circuit(
            c,
            nodes=[{"name": "L0H1", "role": "a"}, {"name": "L1H1", "role": "b"}],
            edges=[{"source": "L0H1", "target": "L1H1", "kind": "magic"}],
        ),
    ),
    (
        "the same node twice",
        lambda c: _circuit(c, nodes=[{"name": "L0H1", "role": "a"}, {"name": "L0H1", "role": "a"}]),
    ),
    (
        "a node score as text",
        lambda c: _circuit(c, nodes=[{"name": "L0H1", "role": "a", "score": "high"}]),
    ),
    ("nodes as an object", lambda c: _circuit(c, nodes={"L0H1": {}})),
    ("missing model", lambda c: _circuit(c, {k: v for k, v in CIRCUIT.items() if k != "model"})),
    ("a JSON list", lambda c: _circuit(c, [CIRCUIT])),
    (
        "a path inside a list",
        lambda c: _circuit(c, [str(_write(c, "c.json", json.dumps(CIRCUIT)))]),
    ),
    (
        "a file with a BOM",
        lambda c: _circuit(c, str(_write(c, "c.json", "\ufeff" + json.dumps(CIRCUIT)))),
        lambda c, v: v.model == "m",
    ),
    ("a folder", lambda c: _circuit(c, str(c.folder("circuit-folder")))),
    ("a missing file", lambda c: _circuit(c, str(c.scratch / "none.json"))),
    (
        "GraphML given to load_circuit",
        lambda c: _circuit(c, str(_write(c, "c.graphml", "<graphml></graphml>"))),
    ),
    ("malformed GraphML", lambda c: _graphml(c, "<graphml><graph><node id='a'></graph>")),
    (
        "GraphML without the circuit's model name",
        lambda c: _graphml(
            c,
            '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">'
            '<graph edgedefault="directed"><node id="head one"/></graph></graphml>',
        ),
    ),
)

FILE_CASES = LOADING + RECIPES + CIRCUITS
