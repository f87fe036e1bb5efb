"""``interp induction`` and ``interp induction-damage``: the induction analyzer on one model (with
its checkpoints), and the repeated-data damage study on a family of models.

    interp induction world-base --out figures/induction [--checkpoints a.pt,b.pt] [--quiet]
    interp induction-damage --family rep2l --out figures/induction-damage [--quiet]
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import List, Optional

import typer

from circuits import induction, induction_damage, registry
from interp.analysis import run_with_cost
from interp.errors import MissingFileError
from interp.progress import quiet
from interp.report import check_out, command_line, write_result

from .app import app, check_counts, parse_numbers, user_errors

__all__ = ["induction_cmd", "damage_cmd"]


def _checkpoint_specs(items: List[str]) -> list[str]:
    return [c for item in items for c in item.split(",") if c]


@app.command("induction")
def induction_cmd(
    model: str = typer.Argument(
        ..., help="HF id, local folder, .gguf file, zoo name, or a zoo *.pt state."
    ),
    out: Path = typer.Option(
        Path("figures/induction"), "--out", help="Folder for figures and summary.json."
    ),
    checkpoints: List[str] = typer.Option(
        [],
        "--checkpoints",
        help="Checkpoints to track (repeatable or " "comma-separated), in training order.",
    ),
    n: Optional[int] = typer.Option(
        None,
        "--n",
        help="Sequences per (span length, offset) (default: 16; 4 on "
        "models of 50M parameters or more).",
    ),
    lengths: str = typer.Option("8,13,21", "--lengths", help="Span lengths, comma-separated."),
    offsets: str = typer.Option("0,17", "--offsets", help="Prefix lengths before the first copy."),
    seed: int = typer.Option(0, "--seed"),
    top_k: int = typer.Option(2, "--top-k", help="Heads ablated in the causal check."),
    n_random: int = typer.Option(20, "--n-random", help="Random head sets ablated for comparison."),
    threshold: float = typer.Option(0.4, "--threshold"),
    ablation: str = typer.Option(
        "mean", "--ablation", help=f"How heads are ablated: " f"{', '.join(induction.ABLATIONS)}."
    ),
    rank_by: str = typer.Option(
        "effect",
        "--rank-by",
        help="Top heads of the causal check: 'effect' (prefix-"
        "matching heads the copy needs most, chosen on other sequences) or 'pattern'.",
    ),
    compare_tl: bool = typer.Option(
        True, "--compare-tl/--no-compare-tl", help="Compare with transformer-lens head_detector."
    ),
    sweep: str = typer.Option(
        "auto",
        "--sweep",
        help="Single-head ablation sweep: 'exact' (every head), "
        "'attribution' (estimated, the --shortlist best ablated exactly) or 'auto' "
        "(exact below 50M parameters).",
    ),
    shortlist: int = typer.Option(
        12, "--shortlist", help="Heads the attribution sweep ablates exactly."
    ),
    silent: bool = typer.Option(False, "--quiet", help="No progress bars."),
):
    """Induction heads of MODEL (scores, roles, copy loss, causal check), optionally over checkpoints."""  # noqa: E501
    with user_errors(), quiet(silent):
        check_out(out)
        check_counts("--n", [n], "the default number of sequences")
        check_counts("--n-random", [n_random], "20 random head sets")
        cfg = induction.Config(
            n=n,
            span_lengths=parse_numbers(lengths, "--lengths", int),
            offsets=parse_numbers(offsets, "--offsets", int),
            seed=seed,
            top_k=top_k,
            n_random=n_random,
            threshold=threshold,
            ablation=ablation,
            rank_by=rank_by,
            sweep=sweep,
            shortlist=shortlist,
        )
        specs = _checkpoint_specs(checkpoints)
        missing = [s for s in specs if s.endswith(".pt") and not Path(s).is_file()]
        if missing:  # before the analysis, not after it
            raise MissingFileError(
                f"--checkpoints: no training state at {', '.join(missing)}; give saved .pt "
                "files, model folders or ids (see interp induction --help)"
            )
        m, _, _ = induction.load_checkpoint(model)
        cfg = replace(cfg, token_ids=induction.world_content_tokens(model))
        result, cost = run_with_cost(registry.get("induction").run, m, cfg, compare_tl=compare_tl)
        if specs:
            result = replace(result, trajectory=induction.track(specs + [model], cfg))
        path = write_result(result, out, command=command_line(), cost=cost, model_info=m.info())
    typer.echo(result.report())
    typer.echo(f"wrote {path}")


@app.command("induction-damage")
def damage_cmd(
    family: str = typer.Option(
        ..., "--family", help="Zoo family prefix (e.g. rep2l) or a folder of member models."
    ),
    out: Path = typer.Option(Path("figures/induction-damage"), "--out"),
    n: int = typer.Option(8, "--n", help="Sequences per (span length, offset)."),
    lengths: str = typer.Option("8,13,21", "--lengths"),
    offsets: str = typer.Option("0,17", "--offsets"),
    seed: int = typer.Option(0, "--seed"),
    test_rows: int = typer.Option(
        64, "--test-rows", help="Unique held-out rows for the test loss."
    ),
    trajectories: bool = typer.Option(
        True, "--trajectories/--no-trajectories", help="Also score saved training checkpoints."
    ),
    silent: bool = typer.Option(False, "--quiet", help="No progress bars."),
):
    """Repeated-data damage: test loss, induction and copying vs repeated fraction (seed spread).

    The study loads one model per member (and per checkpoint), so its cost is metered on each
    and summed by the study itself rather than by `run_with_cost`, which meters one model."""
    with user_errors(), quiet(silent):
        check_out(out)
        check_counts("--n", [n], "the default number of sequences")
        scoring = induction.Config(
            n=n,
            span_lengths=parse_numbers(lengths, "--lengths", int),
            offsets=parse_numbers(offsets, "--offsets", int),
            seed=seed,
            causal=False,
        )
        cfg = induction_damage.Config(
            family=family, induction=scoring, test_rows=test_rows, trajectories=trajectories
        )
        result = registry.get("induction_damage").run(None, cfg)
        cost = result.cost.with_floor(*result.floor()) if result.cost is not None else None
        path = write_result(result, out, command=command_line(), cost=cost)
    typer.echo(result.report())
    typer.echo(f"wrote {path}")
