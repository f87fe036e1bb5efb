"""``interp conflict``: memory vs context heads by path patching, and PH3 pruning (Jin et al. 2024).

interp conflict world-base --out figures/conflict [--k 1 --k 3] [--order path] [--quiet]
interp conflict MODEL --items items.jsonl [--templates t.json] --out DIR
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from circuits import knowledge_conflict as kc
from circuits import registry
from interp.analysis import run_with_cost
from interp.data.conflict import load_items, load_templates
from interp.progress import quiet
from interp.report import check_out, command_line, write_result

from .app import app, check_counts, load_model, user_errors

__all__ = ["conflict_cmd", "parse_formats"]


def parse_formats(text: str) -> Optional[tuple[str, ...]]:
    """'statement,qa' -> ('statement', 'qa'); '' -> None (the model's first two formats)."""
    return tuple(text.split(",")) if text else None


@app.command("conflict")
def conflict_cmd(
    model: str = typer.Argument(..., help="HF id, local folder, .gguf file or zoo name."),
    out: Path = typer.Option(
        Path("figures/conflict"), "--out", help="Folder for figures and summary.json."
    ),
    items: Optional[Path] = typer.Option(
        None,
        "--items",
        help=(
            "JSONL items (subject, memory_answer, context_answer); default: built in "
            "(the zoo world for zoo models, English facts otherwise)."
        ),
    ),
    templates: Optional[Path] = typer.Option(
        None, "--templates", help="JSON list of templates (default: built in)."
    ),
    formats: str = typer.Option(
        "",
        "--formats",
        help="Locating format, transfer format (default: the "
        "model's first two: statement,spaced for zoo models, statement,qa otherwise).",
    ),
    k: List[int] = typer.Option([], "--k", help="Candidate k (repeatable); default 1 3 5 7 9 15."),
    source: str = typer.Option(
        "corrupted", "--source", help="Path-patching reference: corrupted | clean."
    ),
    metric: str = typer.Option("logit_diff", "--metric", help="logit_diff | prob_diff."),
    n_per_subject: int = typer.Option(3, "--n-per-subject", help="Zoo items per subject."),
    n_random: int = typer.Option(5, "--n-random", help="Random-head control draws."),
    seed: int = typer.Option(0, "--seed"),
    order: str = typer.Option(
        "validation",
        "--order",
        help="Which located heads to prune first: "
        "validation (each head's pruning effect on the validation split) | "
        "path (path-patching rank, as the paper).",
    ),
    shortlist: Optional[int] = typer.Option(
        None,
        "--shortlist",
        help="Heads to path-patch exactly, the top by attribution patching; default: every "
        "head on zoo models, 32 on large ones; 0 = every head.",
    ),
    silent: bool = typer.Option(False, "--quiet", help="No progress bars."),
):
    """Memory vs context heads by path patching, and PH3 pruning (Jin et al. 2024)."""
    with user_errors(), quiet(silent):
        check_out(out)
        check_counts("--k", k, "the default grid 1 3 5 7 9 15")
        check_counts("--n-random", [n_random], "5 random draws")
        check_counts("--n-per-subject", [n_per_subject], "3 items per subject")
        m = load_model(model)
        cfg = kc.Config(
            formats=parse_formats(formats),
            n_per_subject=n_per_subject,
            source=source,
            metric=metric,
            k_grid=tuple(k) or None,
            n_random=n_random,
            seed=seed,
            order=order,
            shortlist=shortlist,
        )
        user_items = load_items(items) if items is not None else None
        user_templates = load_templates(templates) if templates else None
        result, cost = run_with_cost(
            registry.get("knowledge_conflict").run,
            m,
            cfg,
            items=user_items,
            templates=user_templates,
        )
        path = write_result(result, out, command=command_line(), cost=cost, model_info=m.info())
    typer.echo(result.report())
    typer.echo(f"wrote {path}")
