"""``interp zoo ...`` commands: list, train, card, eval."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from .errors import CorruptCheckpointError, UnknownZooModel
from .evaluate import evaluate, summary_line
from .recipes import RECIPES
from .shelf import card, load, names, path
from .train import train

app = typer.Typer(
    help="Model zoo: small LMs trained on a synthetic world language.", no_args_is_help=True
)


@app.command("list")
def list_cmd(
    all_recipes: bool = typer.Option(
        False, "--all", help="Also list trainable, unshipped recipes."
    ),
):
    """List the shipped organisms (and their headline metrics)."""
    shipped = names()
    for n in shipped:
        try:
            m = card(n)["metrics"]
            typer.echo(f"{n:24s} {summary_line(m)}")
        except Exception as e:  # noqa: BLE001
            typer.echo(f"{n:24s} (card unreadable: {e})")
    if all_recipes:
        for n in sorted(set(RECIPES) - set(shipped)):
            typer.echo(f"{n:24s} (recipe only, not shipped)")


@app.command("train")
def train_cmd(
    name: str = typer.Argument(..., help="Organism / recipe name (see `interp zoo list --all`)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Override the recipe's seed."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Override the number of steps."),
    out: Optional[Path] = typer.Option(
        None, "--out", help="Run directory (default ./runs/zoo/NAME)."
    ),
    fresh: bool = typer.Option(
        False, "--fresh", help="Ignore an existing training state and start over."
    ),
    install: bool = typer.Option(
        False, "--install", help="Copy the result into the package's zoo."
    ),
    device: Optional[str] = typer.Option(
        None, "--device", help="Train on this torch device (e.g. cuda)."
    ),
    workers: int = typer.Option(
        0, "--workers", help="Processes that build batches ahead (0: inline)."
    ),
    time_budget: Optional[float] = typer.Option(
        None,
        "--time-budget",
        help="Seconds of training: caps the steps at what fits (decided in the warm-up).",
    ),
):
    """Train NAME (resumes from the last saved state in the run directory)."""
    try:
        p = train(
            name,
            seed=seed,
            out_dir=out,
            steps=steps,
            resume=not fresh,
            progress=True,
            install=install,
            device=device,
            workers=workers,
            time_budget_s=time_budget,
        )
    except UnknownZooModel as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2)
    except CorruptCheckpointError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1)
    typer.echo(str(p))


@app.command("card")
def card_cmd(
    name: str,
    as_json: bool = typer.Option(False, "--json", help="Print metrics.json instead of card.md."),
):
    """Show the card of a shipped organism."""
    try:
        p = path(name)
    except UnknownZooModel as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2)
    if as_json:
        typer.echo(json.dumps(card(name), indent=1))
    else:
        typer.echo((p / "card.md").read_text())


@app.command("path")
def path_cmd(name: str):
    """Print the HF folder of a shipped organism."""
    try:
        typer.echo(str(path(name)))
    except UnknownZooModel as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2)


@app.command("eval")
def eval_cmd(name: str, n: int = typer.Option(300, help="Prompts per behaviour."), seed: int = 0):
    """Re-measure the behaviour metrics of a shipped organism."""
    try:
        model, tok = load(name)
    except UnknownZooModel as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2)
    m = evaluate(model, tok, n=n, seed=seed)
    typer.echo(json.dumps({k: v for k, v in m.items() if k != "fact_recall_by_country"}, indent=1))


if __name__ == "__main__":
    app()
