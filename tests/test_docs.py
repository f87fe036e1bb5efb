"""The examples in the docstrings of the core modules run as written."""

import doctest
import importlib

import pytest

MODULES = [
    "interp.heads",
    "interp.interventions",
    "interp.circuit",
    "interp.testing",
    "interp.tokens",
    "interp.weights",
    "interp.results",
    "interp.results.checks",
    "interp.results.serialise",
    "interp.results.scores",
    "interp.results.hashing",
]


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
