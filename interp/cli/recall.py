"""``interp recall``: factual-recall heads by head attribution and value scaling (Yu, Merullo,
Pavlick 2023), with the chosen scalings saved as recipes ``interp generate --recipe`` applies.

    interp recall world-base --out figures/recall [--alpha-step 0.5] [--quiet]
    interp recall MODEL --items items.jsonl [--counts counts.csv] [--format qa] --out DIR
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from circuits import factual_recall as fr
from circuits import registry
from interp.analysis import run_with_cost
from interp.data.conflict import load_counts, load_items, load_templates
from interp.progress import quiet
from interp.report import check_out, command_line, write_result

from .app import app, check_counts, load_model, user_errors

__all__ = ["recall_cmd", "sweep_alphas"]


def sweep_alphas(step: float) -> dict:
    """Config fields for coarser sweeps: both ranges at `step` (0 keeps the paper's defaults)."""
    if not step:
        return {}
    return {
        "memory_alphas": fr.alpha_grid(-5, 5, step),
        "context_alphas": fr.alpha_grid(-10, 10, step),
    }


@app.command("recall")
def recall_cmd(
    model: str = typer.Argument(..., help="HF id, local folder, .gguf file or zoo name."),
    out: Path = typer.Option(
        Path("figures/recall"), "--out", help="Folder for figures, recipes, summary.json."
    ),
    items: Optional[Path] = typer.Option(
        None,
        "--items",
        help=(
            "JSONL items (subject, memory_answer, context_answer); default: built in "
            "(the zoo world for zoo models, English facts otherwise)."
        ),
    ),
    counts: Optional[Path] = typer.Option(
        None, "--counts", help="Subject frequency table (JSON or CSV)."
    ),
    templates: Optional[Path] = typer.Option(None, "--templates", help="JSON list of templates."),
    fmt: Optional[str] = typer.Option(
        None,
        "--format",
        help="Template name (qa, statement, or one of "
        "--templates); default: statement on zoo models, qa otherwise.",
    ),
    n_per_subject: int = typer.Option(3, "--n-per-subject"),
    max_new_tokens: int = typer.Option(4, "--max-new-tokens"),
    n_random: int = typer.Option(5, "--n-random"),
    alpha_step: float = typer.Option(
        0.0, "--alpha-step", help="Coarser sweeps: step for both ranges (0 = paper defaults)."
    ),
    seed: int = typer.Option(0, "--seed"),
    silent: bool = typer.Option(False, "--quiet", help="No progress bars."),
):
    """Factual-recall heads: head attribution and value scaling (Yu, Merullo, Pavlick 2023)."""
    with user_errors(), quiet(silent):
        check_out(out)
        check_counts("--n-random", [n_random], "5 random draws")
        check_counts("--n-per-subject", [n_per_subject], "3 items per subject")
        m = load_model(model)
        cfg = fr.Config(
            format=fmt,
            n_per_subject=n_per_subject,
            max_new_tokens=max_new_tokens,
            n_random=n_random,
            seed=seed,
            **sweep_alphas(alpha_step),
        )
        user_items = load_items(items) if items is not None else None
        result, cost = run_with_cost(
            registry.get("factual_recall").run,
            m,
            cfg,
            items=user_items,
            templates=load_templates(templates) if templates else None,
            counts=load_counts(counts) if counts is not None else None,
        )
        path = write_result(result, out, command=command_line(), cost=cost, model_info=m.info())
    typer.echo(result.report())
    typer.echo(f"wrote {path}")
