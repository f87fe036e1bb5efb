"""``interp entity``: the entity-tracking circuit of one model (Prakash et al. 2024): path
patching, minimality, faithfulness against random circuits, DCM, and CMAP from a second model.

    interp entity world-base --out figures/entity [--finetuned world-tracking-ft] [--quiet]

Writes the figures (circuit.html, group_A.html ...) and summary.json through
`interp.report.write_result`, with circuit.json (the circuit, `interp.circuit.Circuit`) beside them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from circuits import entity_tracking, registry
from interp.analysis import run_with_cost
from interp.progress import quiet
from interp.report import check_out, command_line, write_result

from .app import app, load_model, user_errors

__all__ = ["entity_cmd"]


@app.command("entity")
def entity_cmd(
    model: str = typer.Argument(..., help="zoo name, HF folder/id or .gguf"),
    finetuned: Optional[str] = typer.Option(None, "--finetuned", help="second model for CMAP"),
    out: Path = typer.Option(Path("figures/entity"), "--out", help="output folder"),
    n_prompts: int = typer.Option(300, help="path-patching prompts"),
    n_eval: int = typer.Option(300, help="held-out prompts for accuracy and faithfulness"),
    n_boxes: Optional[int] = typer.Option(
        None, help="boxes per prompt (default: 4 on zoo world models, else 7 " "as the paper)"
    ),
    dcm_pairs: int = typer.Option(1000, help="DCM pairs per desideratum (0 skips DCM)"),
    threshold: float = typer.Option(0.05, help="min relative drop in the metric per head"),
    metric: str = typer.Option(
        "prob",
        help="path-patching metric: prob (p(correct), the paper's) or logit_diff "
        "(correct - other objects; for models sure of their answers)",
    ),
    max_per_group: int = typer.Option(8),
    ablation: str = typer.Option("mean", help="'mean' (PruneHeads.with_means) or 'position-mean'"),
    random_pool: str = typer.Option(
        "outside",
        help="where random circuits are drawn: 'outside' the circuit, "
        "'inside' it, or 'others' (every head)",
    ),
    seed: int = typer.Option(0),
    greedy: bool = typer.Option(
        False,
        "--greedy",
        help="also search the smallest head set keeping 90% of the "
        "accuracy (about n_heads^2/2 accuracy evaluations)",
    ),
    learned: bool = typer.Option(
        False,
        "--learned",
        help="also learn a gate per head, prune the learned set while "
        "validation prompts keep 90%, and measure it held out (over an hour for 96 heads "
        "on 2 CPU cores)",
    ),
    backend: str = typer.Option("nnsight"),
    silent: bool = typer.Option(False, "--quiet", help="No progress bars."),
):
    """Entity-tracking circuit (Prakash et al. 2024): path patching, faithfulness, DCM, CMAP."""
    with user_errors(), quiet(silent):
        check_out(out)
        cfg = entity_tracking.Config(
            n_prompts=n_prompts,
            n_eval=n_eval,
            n_boxes=n_boxes,
            dcm_pairs=dcm_pairs,
            threshold=threshold,
            max_per_group=max_per_group,
            seed=seed,
            ablation=ablation,
            greedy=greedy,
            metric=metric,
            learned=learned,
            random_pool=random_pool,
            finetuned=finetuned,
        )
        m = load_model(model, backend)
        ft = load_model(finetuned, backend) if finetuned else None
        result, cost = run_with_cost(registry.get("entity_tracking").run, m, cfg, finetuned=ft)
        path = write_result(result, out, command=command_line(), cost=cost, model_info=m.info())
    typer.echo(result.report())
    typer.echo(f"wrote {path}")
