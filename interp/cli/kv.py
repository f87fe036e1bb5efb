"""``interp kv MODEL --out DIR``: retrieval heads applied at inference (head-aware KV compression).

Finds retrieval heads (or reads them from ``--scores FILE``, a HeadScores JSON), then runs NIAH at
several context lengths and depths under the full cache, the retrieval-head policy at each budget,
random heads at the same budgets and sink + window for every head (`circuits.kv_compression`).
Writes ``kv_compression.html`` (accuracy vs KV memory, one curve per policy), ``summary.json``
(every point, the curve, the headline, ``cost``) ``retrieval_scores.json`` (the scores used) and
``policies/`` (the retrieval policy of each budget as JSON, ready for
``model.generate(kv_policy=HeadKVPolicy.load(path))``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from circuits import kv_compression as K
from interp.analysis import run_with_cost
from interp.kv import policy_from
from interp.progress import quiet as quiet_progress
from interp.report import check_out, command_line, write_result
from interp.results import HeadScores

from .app import app, check_counts, load_model, parse_numbers, user_errors

__all__ = ["kv"]


@app.command()
def kv(
    model: str = typer.Argument(..., help="Zoo name, HF folder, .gguf file or hub id."),
    out: Path = typer.Option(
        ..., "--out", help="Folder for the figure, summary.json and policies/."
    ),
    lengths: Optional[str] = typer.Option(
        None, help="Context lengths, e.g. 1024,2048,4096 (default: up to 4k within the window)."
    ),
    depths: Optional[str] = typer.Option(None, help="Needle depths in [0, 1], e.g. 0.1,0.5,0.9."),
    budgets: Optional[str] = typer.Option(
        None,
        help="Shares of kv heads kept whole (default 0.1,0.25,0.5,0.75,0.9; on large models "
        "0.25,0.75).",
    ),
    n_random: Optional[int] = typer.Option(
        None,
        "--n-random",
        help="Random-head draws per budget (default 5; on large models 3).",
    ),
    group: Optional[str] = typer.Option(
        None, help="Query heads -> kv head score: max or mean (default max)."
    ),
    sink: Optional[int] = typer.Option(
        None, help="First positions every streaming head keeps (default 4)."
    ),
    window: Optional[int] = typer.Option(
        None,
        help=(
            "Recent positions every streaming head keeps "
            "(default: a quarter of the shortest length, <= 256)."
        ),
    ),
    scores: Optional[Path] = typer.Option(
        None, help="Retrieval HeadScores JSON to use instead of scoring."
    ),
    seed: Optional[int] = typer.Option(None, help="Seed of the random policies (default 0)."),
    controls: Optional[str] = typer.Option(
        None,
        help="Control policies beside random heads, e.g. layer_order,random_ties: the first kv "
        "heads in layer order (no scores), and the scored heads with the rest of the budget "
        "drawn at random from the tied ones (--n-random draws).",
    ),
    memory_probe: Optional[bool] = typer.Option(
        None,
        "--memory-probe/--no-memory-probe",
        help="Measure peak memory on the first prompt of each (length, policy) under the torch "
        "profiler (slow on CPU; default: on for the zoo's models, off on large ones); without it "
        "the theoretical and cached KV bytes are still recorded.",
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """NIAH accuracy vs KV memory: retrieval heads kept whole vs random heads vs sink + window."""
    with user_errors():
        check_out(out)
        check_counts("--n-random", [n_random], "5 random draws per budget")
        m = load_model(model)
        cfg = K.with_defaults(
            K.Config(),
            lengths=parse_numbers(lengths, "--lengths", int),
            depths=parse_numbers(depths, "--depths"),
            budgets=parse_numbers(budgets, "--budgets"),
            n_random=n_random,
            group=group,
            sink=sink,
            window=window,
            seed=seed,
            memory_probe=memory_probe,
            controls=parse_numbers(controls, "--controls", str),
        )
        given = None if scores is None else HeadScores.from_json(scores)
        with quiet_progress(quiet):
            result, cost = run_with_cost(lambda mm, c: K.run(mm, c, scores=given), m, cfg)

        def data_files(folder: Path) -> None:
            """The scores used and one KV policy per budget (``policies/``), beside the
            figures."""
            if isinstance(result.scores, HeadScores):
                result.scores.to_json(folder / "retrieval_scores.json")
            (folder / "policies").mkdir()
            for budget in result.config.budgets:
                policy_from(
                    result.scores,
                    m,
                    budget=budget,
                    group=cfg.group,
                    sink=cfg.sink,
                    window=cfg.window_for(m),
                ).save(folder / "policies" / f"retrieval_budget_{budget:.2f}.json")

        summary = write_result(
            result,
            out,
            command=command_line(),
            cost=cost,
            files=data_files,
            model_info=m.info(),
        )
    typer.echo(result.report())
    typer.echo(
        f"wrote {summary} "
        f"(cost: {cost.seconds:.0f} s, {cost.forward_passes:.0f} forward equivalents)"
    )
