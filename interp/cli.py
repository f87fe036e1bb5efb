"""The `interp` command line.

    interp info MODEL
    interp generate MODEL "PROMPT" --prune L1H0 --scale L2H3=2.0 [--recipe recipe.json]
    interp demo --out figures/
    interp zoo list | train NAME | card NAME
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(help="interp: find and steer the heads that do the work in a causal LM.",
                  no_args_is_help=True, add_completion=False)

try:
    from .zoo.cli import app as zoo_app

    app.add_typer(zoo_app, name="zoo", help="Model zoo: small LMs trained here with known behaviours.")
except ImportError:  # pragma: no cover - the zoo ships with the package
    pass


def _register_analyzers() -> None:
    """Each analyzer module in `circuits` adds its own subcommand through `register(app)`."""
    import importlib

    from circuits import ANALYZERS

    for name in ANALYZERS:
        try:
            module = importlib.import_module(f"circuits.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"circuits.{name}":
                raise
            continue
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


def _load(spec: str, backend: str = "nnsight"):
    import interp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return interp.load(spec, backend=backend)


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


@app.command()
def info(model: str = typer.Argument(..., help="HF id, local folder, .gguf file or zoo name.")):
    """Architecture, layers, heads and the head sites of a model."""
    try:
        m = _load(model)
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))
    for key, value in m.info().items():
        typer.echo(f"{key:>12}: {', '.join(value) if isinstance(value, list) else value}")


def parse_scale(text: str):
    """'L5H1=2.0' -> ScaleValues('L5H1', 2.0)."""
    from .interventions import ScaleValues

    if "=" not in text:
        raise ValueError(f"--scale takes HEAD=ALPHA, e.g. L5H1=2.0; got {text!r}")
    head, alpha = text.split("=", 1)
    return ScaleValues(head, float(alpha))


def build_recipe(prune: List[str], scale: List[str], recipe: Optional[Path], mode: str):
    """The interventions named on the command line, combined (None when there are none)."""
    from .interventions import Intervention, PruneHeads

    parts = []
    if recipe is not None:
        parts.append(Intervention.from_json(str(recipe)))
    if prune:
        parts.append(PruneHeads(prune, mode=mode))
    parts.extend(parse_scale(s) for s in scale)
    if not parts:
        return None
    combined = parts[0]
    for part in parts[1:]:
        combined = combined + part
    return combined


@app.command()
def generate(
    model: str = typer.Argument(..., help="HF id, local folder, .gguf file or zoo name."),
    prompt: str = typer.Argument(..., help="Prompt text."),
    prune: List[str] = typer.Option([], "--prune", help="Head to prune, e.g. L10H7 (repeatable)."),
    scale: List[str] = typer.Option([], "--scale", help="HEAD=ALPHA value scaling, e.g. L5H1=2.0 (repeatable)."),
    recipe: Optional[Path] = typer.Option(None, "--recipe", help="Intervention recipe JSON file."),
    mode: str = typer.Option("zero", "--mode", help="Pruning mode: zero, mean or uniform."),
    max_new_tokens: int = typer.Option(32, "--max-new-tokens", "-n"),
    backend: str = typer.Option("nnsight", "--backend", help="transformer_lens or nnsight."),
    save_recipe: Optional[Path] = typer.Option(None, "--save-recipe", help="Write the combined recipe as JSON."),
):
    """Generate with and without interventions, side by side."""
    try:
        m = _load(model, backend)
        interventions = build_recipe(prune, scale, recipe, mode)
        plain = m.generate(prompt, max_new_tokens, use_interventions=False)
        edited = m.generate(prompt, max_new_tokens, interventions=interventions) if interventions else None
    except (FileNotFoundError, ValueError, TypeError) as err:
        _fail(str(err))
    typer.echo(f"model:    {m.name} ({m.architecture}, {m.n_layers} layers x {m.n_heads} heads)")
    typer.echo(f"prompt:   {prompt}")
    typer.echo(f"plain:    {plain.texts[0]}")
    if edited is not None:
        typer.echo(f"edited:   {edited.texts[0]}")
        typer.echo(f"recipe:   {json.dumps(interventions.to_dict())}")
        if save_recipe is not None:
            interventions.to_json(save_recipe)
            typer.echo(f"saved:    {save_recipe}")


@app.command()
def demo(
    out: Path = typer.Option(Path("figures"), "--out", help="Folder for the figures."),
    model: Optional[str] = typer.Option(None, "--model", help="Model (default: the zoo's base model)."),
):
    """The main job: analyse the default model and write figures (HTML) and summary.json."""
    from .demo import run_demo

    try:
        summary = run_demo(out, model)
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))
    typer.echo(json.dumps(summary, indent=2))


@app.command()
def atlas(
    model: str = typer.Argument(..., help="Zoo name (the analyzers' data come from the zoo world), or any model."),
    out: Path = typer.Option(Path("figures/atlas.html"), "--out", help="Path of the atlas page."),
):
    """Run every analyzer on MODEL and write the head atlas (one self-contained HTML page)."""
    import shutil

    from .demo import run_demo

    if out.suffix != ".html":
        _fail(f"--out must be an .html path, got {out}")
    work = out.parent / f"{out.stem}_analyzers"
    try:
        summary = run_demo(work, model)
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(work / "atlas.html", out)
    typer.echo(f"atlas: {out} (analyzer outputs in {work}); roles: {json.dumps(summary['roles_found'])}")


_register_analyzers()


def main():  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
