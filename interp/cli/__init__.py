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
from .app import app

__all__ = ["app", "main"]

app.add_typer(zoo_app, name="zoo", help="Model zoo: small LMs trained here with known behaviours.")


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
