"""``interp retrieval``: the retrieval analyzer (Wu et al. 2024) on one model.

    interp retrieval world-base --out figures/retrieval [--haystack FILE|self] [--lengths 48,80]
        [--depths 0,0.5,1] [--needle S --question Q --answer A] [--k K] [--no-curve] [--quiet]

Writes the figures and summary.json through `interp.report.write_result`, plus
``retrieval_scores.json`` (the primary mode's `HeadScores`, reloadable with
`interp.results.HeadScores.from_json`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from circuits import registry, retrieval
from interp.analysis import run_with_cost
from interp.data.niah import PAPER_NEEDLE, PAPER_TEMPLATE, Needle
from interp.errors import InvalidArgumentError
from interp.jsonio import read_user_file
from interp.progress import quiet
from interp.report import check_out, command_line, write_result

from ..errors import MissingFileError
from .app import app, check_counts, load_model, parse_numbers, user_errors

__all__ = ["retrieval_cmd", "build_config"]


def _haystack(model, haystack: Optional[str]) -> Optional[str]:
    if haystack == "self":
        return retrieval.self_haystack(model)
    if haystack is None:
        return None
    return read_user_file(haystack, MissingFileError, "haystack (or pass --haystack self)")


def build_config(
    model,
    *,
    haystack=None,
    lengths=None,
    depths=None,
    needle=None,
    question=None,
    answer=None,
    template=None,
    **fields,
) -> retrieval.Config:
    """The Config of the command's flags: a given haystack (file or 'self') without a given
    needle uses the paper's needle and template; `fields` are Config fields as they are."""
    text = _haystack(model, haystack)
    given = [needle, question, answer]
    if any(given) and not all(given):
        raise InvalidArgumentError("give --needle, --question and --answer together")
    needles = (
        (Needle(needle, question, answer),)
        if all(given)
        else ((PAPER_NEEDLE,) if text is not None else None)
    )
    if template is None:
        template = (
            PAPER_TEMPLATE if (text is not None and not all(given)) else None
        )  # None: the model's
    kwargs = dict(
        lengths=parse_numbers(lengths, "--lengths", int),
        haystack=text,
        needles=needles,
        template=template,
        **fields,
    )
    if depths is not None:
        kwargs["depths"] = parse_numbers(depths, "--depths")
    return retrieval.Config(**kwargs)


@app.command("retrieval")
def retrieval_cmd(
    model: str = typer.Argument(..., help="HF id, local folder, .gguf file or zoo name."),
    out: Path = typer.Option(..., "--out", help="Folder for the figures and summary.json."),
    haystack: Optional[str] = typer.Option(
        None,
        "--haystack",
        help="Haystack text file, or 'self' for the model's own "
        "greedy stories (default: the zoo's filler for zoo models, English essays otherwise).",
    ),
    lengths: Optional[str] = typer.Option(
        None, "--lengths", help="Context lengths, e.g. 48,80,112."
    ),
    depths: Optional[str] = typer.Option(None, "--depths", help="Needle depths, e.g. 0,0.5,1."),
    needle: Optional[str] = typer.Option(
        None, "--needle", help="Needle sentence (with --question, --answer)."
    ),
    question: Optional[str] = typer.Option(None, "--question"),
    answer: Optional[str] = typer.Option(
        None, "--answer", help="Answer: verbatim part of the needle."
    ),
    template: Optional[str] = typer.Option(
        None, "--template", help="Prompt template with {context} and {question}."
    ),
    mode: str = typer.Option("teacher_forced", "--mode", help="teacher_forced or decode."),
    n_needles: int = typer.Option(4, "--n-needles", help="Zoo needles (when no --needle)."),
    k: Optional[int] = typer.Option(None, "--k", help="Heads to prune (default: those above 0.1)."),
    prune_mode: str = typer.Option("uniform", "--prune-mode", help="uniform (paper) or zero."),
    prune_metric: str = typer.Option(
        "teacher_forced",
        "--prune-metric",
        help="teacher_forced (one forward per prompt and head set) or decode "
        "(the paper's greedy text; a decode loop per head set).",
    ),
    draws: int = typer.Option(5, "--draws", help="Random-head draws for the pruning check."),
    seed: int = typer.Option(0, "--seed"),
    batch_size: int = typer.Option(16, "--batch-size"),
    backend: str = typer.Option("nnsight", "--backend"),
    no_prune: bool = typer.Option(False, "--no-prune", help="Skip the pruning check."),
    no_curve: Optional[bool] = typer.Option(
        None,
        "--no-curve/--curve",
        help="Skip (or run) the pruning curve "
        "over k (default: run it below 50M parameters; on larger models "
        "the check at k alone fits the budget).",
    ),
    silent: bool = typer.Option(False, "--quiet", help="No progress bars."),
):
    """Retrieval heads (Wu et al. 2024): scores, NIAH accuracy, and the pruning check."""
    with user_errors(), quiet(silent):
        check_out(out)
        check_counts("--k", [k], "the heads above the 0.1 threshold")
        m = load_model(model, backend)
        cfg = build_config(
            m,
            haystack=haystack,
            lengths=lengths,
            depths=depths,
            needle=needle,
            question=question,
            answer=answer,
            template=template,
            mode=mode,
            n_needles=n_needles,
            seed=seed,
            batch_size=batch_size,
            k=k,
            prune_mode=prune_mode,
            prune_metric=prune_metric,
            n_draws=draws,
            prune=not no_prune,
            curve=None if no_curve is None else not no_curve,
        )
        result, cost = run_with_cost(registry.get("retrieval").run, m, cfg)
        path = write_result(result, out, command=command_line(), cost=cost, model_info=m.info())
    typer.echo(result.report())
    typer.echo(f"wrote {path}")
