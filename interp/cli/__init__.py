"""The ``interp`` command line: one commands module per analyzer over one typer app.

    interp info MODEL
    interp generate MODEL "PROMPT" --prune L1H0 --scale L2H3=2.0 [--recipe recipe.json]
    interp demo --out figures/
    interp retrieval | conflict | recall | entity | induction | induction-damage MODEL --out DIR
    interp kv MODEL --out DIR   (retrieval heads applied to KV-cache compression)
    interp zoo list | train NAME | card NAME

The CLI sits above both the core (`interp`) and the analyzers (`circuits`): nothing below it
imports it.
"""

from __future__ import annotations

import importlib

from interp.zoo.cli import app as zoo_app

from . import (  # noqa: F401  (registers their commands)
    conflict,
    core,
    demo,
    entity,
    induction,
    kv,
    recall,
    retrieval,
)
from .app import app, fail, load_model

__all__ = ["app", "main"]

app.add_typer(zoo_app, name="zoo", help="Model zoo: small LMs trained here with known behaviours.")

_fail, _load = fail, load_model  # the analyzers' own register() still use these until they move


def _register_legacy() -> None:
    """Analyzers that still add their own subcommand through `register(app)` (until they move
    to a commands module here)."""
    from circuits import ANALYZERS  # transitional: goes with the last legacy register()

    for name in ANALYZERS:
        register = getattr(importlib.import_module(f"circuits.{name}"), "register", None)
        if register is not None:
            register(app)


_register_legacy()


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
