"""The examples in the docstrings of every module of interp/ and circuits/ run as written."""

import doctest
import importlib
import pkgutil

import pytest


def _modules() -> list[str]:
    """Every module of the two packages: each docstring example is a promise to a reader."""
    names = []
    for package in ("interp", "circuits"):
        root = importlib.import_module(package)
        names.append(package)
        found = pkgutil.walk_packages(root.__path__, package + ".")
        names += [m.name for m in found if not m.name.endswith(".__main__")]  # runs the CLI
    return sorted(names)


MODULES = _modules()


def test_every_module_is_found():
    assert {"interp.heads", "circuits.kv_compression", "circuits.retrieval.config"} <= set(MODULES)
    assert len(MODULES) > 100


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_readme_commands_exist():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "bash scripts/setup.sh && .venv/bin/interp demo --out figures/" in readme
    assert 'bash scripts/setup.sh && .venv/bin/python -m pytest -m "not slow" -q' in readme
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert 'bash scripts/setup.sh && .venv/bin/python -m pytest -m "not slow" -q' in ci
