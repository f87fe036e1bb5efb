"""The main job of the README: run every analyzer on the default model and write `figures/`.

Default model: the zoo's base organism (`world-base`) when it is installed; otherwise a tiny
random Llama built on the spot (then only the generic head map runs, clearly labelled). Any
other model (``--model smollm2-135m``) runs every analyzer with its built-in English data, as
each analyzer's own command does with no flags (tens of minutes on a CPU for a 135M model;
``interp atlas --from DIR`` draws the atlas of runs already made instead).
Writes, under OUT:
- one folder per analyzer (its HTML figures and summary.json, as its own CLI writes them),
- head_importance.html and attention.html (zero-ablation map, top heads on a prompt),
- atlas.html: the head atlas, every role every analyzer found, with the causal checks,
- summary.json: every analyzer's headline numbers, errors (an analyzer that fails is reported,
  not hidden), timings and the command;
- plotly.min.js once at the top (pages in sub-folders point to it), so all pages work offline.
"""

from __future__ import annotations

import json
import time
import traceback
import warnings
from pathlib import Path
from typing import Callable, Optional

import typer
from tqdm.auto import tqdm

import interp
from circuits import registry
from interp import zoo
from interp.ablation import head_ablation_scores
from interp.atlas import atlas_html, write_atlas
from interp.errors import InvalidArgumentError
from interp.plots import save_html
from interp.report import OutputPathError, check_out, jsonable, write_result, write_text_atomic
from interp.role_overlap import overlap_lines, role_overlap
from interp.saved_results import read_saved_results
from interp.testing import tiny_model
from interp.views import attention_view

from .app import app, fail, user_errors

__all__ = ["run_demo", "default_model", "ANALYZER_STEPS", "demo", "atlas", "atlas_from_saved"]

DEFAULT_ZOO_MODEL = "world-base"
TINY_FALLBACK = "tiny random Llama (no zoo model installed)"  # random weights: no analyzer runs


def default_model(spec: Optional[str] = None):
    """(Model, (prompts, answers), description) for the demo."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if spec is None and DEFAULT_ZOO_MODEL in zoo.names():
            spec = DEFAULT_ZOO_MODEL
        if spec is None:
            model = tiny_model("llama")
            prompts = [
                "the cat saw a red",
                "once upon a time there was a little",
                "the dog was in the",
            ]
            return (
                model,
                (prompts, ["box", "girl", "box"]),
                TINY_FALLBACK,
            )
        model = interp.load(spec)
    if spec in zoo.names():
        facts = zoo.fact_prompts()[:64]
        return (
            model,
            ([f["prompt"] for f in facts], [f["answer"] for f in facts]),
            f"zoo organism {spec}",
        )
    prompts = ["Once upon a time, there was a little", "One day, she saw a big"]
    return model, (prompts, ["girl", "dog"]), f"model {spec}"


# --- each analyzer: run it, write its outputs, return (numbers, roles, circuits) -------------


def _registered(name: str) -> Callable:
    """The demo step of a registered analyzer: its demo config, the one writer (figures, data
    files and summary.json, swapped in whole), its roles."""

    def step(model, out: Path):
        entry = registry.get(name)
        result = entry.run(model, entry.default_config(model))
        write_result(result, out, model_info=model.info())
        return result.numbers(), result.roles(), result.circuits()

    return step


DEMO_ANALYZERS = (
    "retrieval",
    "knowledge_conflict",
    "factual_recall",
    "entity_tracking",
    "induction",
)
ANALYZER_STEPS: dict[str, Callable] = {name: _registered(name) for name in DEMO_ANALYZERS}


def _share_plotly(out: Path) -> None:
    """Keep one plotly.min.js at the top of OUT; pages in sub-folders point to it."""
    top = out / "plotly.min.js"
    for copy in out.glob("*/plotly.min.js"):
        if not top.exists():
            copy.replace(top)
        else:
            copy.unlink()
    for page in out.glob("*/*.html"):
        text = page.read_text(encoding="utf-8")
        if 'src="plotly.min.js"' in text:
            page.write_text(
                text.replace('src="plotly.min.js"', 'src="../plotly.min.js"'), encoding="utf-8"
            )


def _run_analyzers(model, out: Path, steps, progress) -> tuple[dict, list, list, dict]:
    numbers, roles, circuits, errors = {}, [], [], {}
    for name in progress(list(steps)):
        start = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                nums, rls, crc = steps[name](model, out / name)
            numbers[name] = {"seconds": round(time.perf_counter() - start, 1), **_headline(nums)}
            roles += rls
            circuits += crc
        except Exception as err:  # an analyzer that fails is reported in the summary, not hidden
            errors[name] = f"{type(err).__name__}: {err}"
            numbers[name] = {"error": errors[name], "trace": traceback.format_exc(limit=3)}
    return numbers, roles, circuits, errors


def _headline(numbers: dict) -> dict:
    """The small, top-level part of an analyzer's numbers (its must-show block when it has one)."""
    keep = (
        "must_show",
        "verdict",
        "note",
        "share_above",
        "faithfulness",
        "accuracy",
        "prune",
        "mode_agreement",
        "control_no_needle_accuracy",
        "memory_heads",
        "context_heads",
        "in_context_heads",
        "induction_heads",
        "loss",
        "causal",
        "tl_agreement",
    )
    return {k: v for k, v in numbers.items() if k in keep}


def run_demo(out: Path, spec: Optional[str] = None, analyzers: Optional[list[str]] = None) -> dict:
    start = time.perf_counter()
    out = check_out(out)
    out.mkdir(parents=True, exist_ok=True)
    model, (prompts, answers), description = default_model(spec)
    scores = head_ablation_scores(model, prompts, answers)
    top = scores.top(3)
    save_html(
        scores.plot(title=f"{model.name}: rise in answer loss when each head is zeroed"),
        out / "head_importance.html",
    )
    save_html(
        attention_view(
            model,
            prompts[0],
            [(l, h) for l, h, _ in top],
            title=f"{model.name}: top heads on a prompt",
        ),
        out / "attention.html",
    )
    trained = description != TINY_FALLBACK
    steps = (
        {k: v for k, v in ANALYZER_STEPS.items() if analyzers is None or k in analyzers}
        if trained
        else {}
    )
    progress = lambda items: tqdm(items, desc="analyzers", unit="analyzer")  # noqa: E731
    numbers, roles, circuits, errors = _run_analyzers(model, out, steps, progress)
    notes = [f"{name}: {msg}" for name, msg in errors.items()]
    if not trained:
        notes.append(
            "no zoo model is installed: the analyzers need a trained model, so only "
            "the generic head map ran on random weights"
        )
    write_atlas(
        out / "atlas.html", model.info(), roles, circuits, notes=notes or ["all analyzers ran"]
    )
    _share_plotly(out)
    summary = {
        "model": model.name,
        "description": description,
        "info": model.info(),
        "head_importance": {
            "n_prompts": len(prompts),
            "base_answer_loss": scores.meta["base_loss"],
            "top_heads": [{"head": f"L{l}H{h}", "loss_rise": round(s, 4)} for l, h, s in top],
        },
        "analyzers": numbers,
        "errors": errors,
        "roles_found": {r.role: sorted(r.heads) for r in roles},
        "figures": sorted(str(p.relative_to(out)) for p in out.rglob("*.html")),
        "command": f"interp demo --out {out}" + (f" --model {spec}" if spec else ""),
        "seconds": round(time.perf_counter() - start, 1),
    }
    write_text_atomic(out / "summary.json", json.dumps(jsonable(summary), indent=2) + "\n")
    return summary


@app.command()
def demo(
    out: Path = typer.Option(Path("figures"), "--out", help="Folder for the figures."),
    model: Optional[str] = typer.Option(
        None, "--model", help="Model (default: the zoo's base model)."
    ),
):
    """The main job: analyse the default model and write figures (HTML) and summary.json."""
    with user_errors():
        summary = run_demo(out, model)
    typer.echo(json.dumps(summary, indent=2))
    _fail_on_analyzer_errors(summary)


def _fail_on_analyzer_errors(summary: dict) -> None:
    """Exit with status 1 when an analyzer failed. Its error is in summary.json and the other
    analyzers' outputs are written, but the main job did not do all of its work."""
    for name, message in summary["errors"].items():
        typer.secho(f"error: analyzer {name} failed: {message}", fg=typer.colors.RED, err=True)
    if summary["errors"]:
        raise typer.Exit(code=1)


def atlas_from_saved(folder: Path, out: Path, model: Optional[str] = None) -> dict:
    """Draw the atlas of the results saved under FOLDER (one analyzer per sub-folder) into
    OUT, with the heads each pair of roles shares against chance beside it in
    ``<out stem>_overlap.json``; no analyzer is rerun. Returns that overlap record."""
    saved = read_saved_results(folder)
    name = saved.model_info.get("name")
    if model is not None and model != name:
        raise InvalidArgumentError(
            f"--from {folder} holds results of {name!r}, not {model!r}; give that model's "
            "name or leave MODEL out"
        )
    notes = [f"drawn from the saved results in {folder}: {', '.join(saved.analyzers)}"]
    notes += [f"{k} left out: {why}" for k, why in saved.skipped.items()]
    page = atlas_html(saved.model_info, saved.roles, saved.circuits, notes=notes)
    rows = role_overlap(saved.roles, saved.n_heads_total)
    record = {
        "model": name,
        "from": str(folder),
        "analyzers": saved.analyzers,
        "skipped": saved.skipped,
        "n_heads_total": saved.n_heads_total,
        "roles": {r.role: sorted(r.heads) for r in saved.roles},
        "overlap": rows,
        "sentences": overlap_lines(rows),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, page)
    overlap_path = out.with_name(f"{out.stem}_overlap.json")
    write_text_atomic(overlap_path, json.dumps(jsonable(record), indent=2) + "\n")
    return record


@app.command()
def atlas(
    model: Optional[str] = typer.Argument(
        None,
        help="Zoo name (the analyzers' data come from the zoo world), or any model; with "
        "--from, optional (checked against the saved results).",
    ),
    out: Path = typer.Option(Path("figures/atlas.html"), "--out", help="Path of the atlas page."),
    saved: Optional[Path] = typer.Option(
        None,
        "--from",
        help="Draw the atlas from saved results (a folder with one analyzer's --out per "
        "sub-folder, e.g. results/smollm2-135m) instead of running the analyzers.",
    ),
):
    """Run every analyzer on MODEL and write the head atlas (one self-contained HTML page);
    with --from DIR, draw it from results saved under DIR instead."""
    if out.suffix != ".html":
        fail(f"--out must be an .html path, got {out}")
    with user_errors():
        if out.is_dir():
            raise OutputPathError(f"--out {out} is a folder; give the path of an .html page")
        if saved is not None:
            check_out(out.parent)
            record = atlas_from_saved(saved, out, model)
            typer.echo(f"atlas: {out} (from {saved}: {', '.join(record['analyzers'])})")
            for line in record["sentences"]:
                typer.echo(f"  {line}")
            return
        if model is None:
            raise InvalidArgumentError(
                "interp atlas needs MODEL (to run the analyzers) or --from DIR (saved results)"
            )
        work = out.parent / f"{out.stem}_analyzers"
        check_out(work)
        summary = run_demo(work, model)
    write_text_atomic(out, (work / "atlas.html").read_text(encoding="utf-8"))
    typer.echo(
        f"atlas: {out} (analyzer outputs in {work}); roles: {json.dumps(summary['roles_found'])}"
    )
    _fail_on_analyzer_errors(summary)
