"""``interp info`` and ``interp generate``: a model's heads, and generation with and without
interventions side by side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from interp.errors import InvalidArgumentError
from interp.interventions import Intervention, PruneHeads, ScaleValues

from .app import app, load_model, user_errors

__all__ = ["info", "generate", "parse_scale", "build_recipe"]


@app.command()
def info(model: str = typer.Argument(..., help="HF id, local folder, .gguf file or zoo name.")):
    """Architecture, layers, heads and the head sites of a model."""
    with user_errors():
        m = load_model(model)
    for key, value in m.info().items():
        typer.echo(f"{key:>12}: {', '.join(value) if isinstance(value, list) else value}")


def parse_scale(text: str):
    """'L5H1=2.0' -> ScaleValues('L5H1', 2.0)."""
    if "=" not in text:
        raise InvalidArgumentError(f"--scale takes HEAD=ALPHA, e.g. L5H1=2.0; got {text!r}")
    head, alpha = text.split("=", 1)
    try:
        value = float(alpha)
    except ValueError:
        raise InvalidArgumentError(
            f"--scale {text!r}: ALPHA must be a number, e.g. {head}=2.0"
        ) from None
    return ScaleValues(head, value)


def build_recipe(prune: List[str], scale: List[str], recipe: Optional[Path], mode: str):
    """The interventions named on the command line, combined (None when there are none)."""
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
    scale: List[str] = typer.Option(
        [], "--scale", help="HEAD=ALPHA value scaling, e.g. L5H1=2.0 (repeatable)."
    ),
    recipe: Optional[Path] = typer.Option(None, "--recipe", help="Intervention recipe JSON file."),
    mode: str = typer.Option("zero", "--mode", help="Pruning mode: zero, mean or uniform."),
    max_new_tokens: int = typer.Option(32, "--max-new-tokens", "-n"),
    backend: str = typer.Option("nnsight", "--backend", help="transformer_lens or nnsight."),
    save_recipe: Optional[Path] = typer.Option(
        None, "--save-recipe", help="Write the combined recipe as JSON."
    ),
):
    """Generate with and without interventions, side by side."""
    with user_errors():
        if save_recipe is not None and not (prune or scale or recipe):
            raise InvalidArgumentError(
                f"--save-recipe {save_recipe} writes the interventions of this run, but none "
                "was given: add --prune HEAD, --scale HEAD=ALPHA or --recipe FILE (or drop "
                "--save-recipe)"
            )
        m = load_model(model, backend)
        interventions = build_recipe(prune, scale, recipe, mode)
        plain = m.generate(prompt, max_new_tokens, use_interventions=False)
        edited = (
            m.generate(prompt, max_new_tokens, interventions=interventions)
            if interventions
            else None
        )
    typer.echo(f"model:    {m.name} ({m.architecture}, {m.n_layers} layers x {m.n_heads} heads)")
    typer.echo(f"prompt:   {prompt}")
    typer.echo(f"plain:    {plain.texts[0]}")
    if edited is not None:
        typer.echo(f"edited:   {edited.texts[0]}")
        typer.echo(f"recipe:   {json.dumps(interventions.to_dict())}")
        if save_recipe is not None:
            interventions.to_json(save_recipe)
            typer.echo(f"saved:    {save_recipe}")
