"""The main job of the README: analyse the default model and write figures.

Default model: the zoo's base organism (`world-base`) when it is installed; otherwise a
tiny random Llama built on the spot (so the demo runs on any machine), clearly labelled.
Writes to OUT: head_importance.html (zero-ablation map), attention.html (top heads on a
prompt), plotly.min.js (once, for offline viewing) and summary.json with every number shown.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Optional

__all__ = ["run_demo", "default_model"]

DEFAULT_ZOO_MODEL = "world-base"


def default_model(spec: Optional[str] = None):
    """(Model, (prompts, answers), description) for the demo."""
    import interp
    from interp import zoo

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if spec is None and DEFAULT_ZOO_MODEL in zoo.names():
            spec = DEFAULT_ZOO_MODEL
        if spec is None:
            from interp.testing import tiny_model

            model = tiny_model("llama")
            prompts = ["the cat saw a red", "once upon a time there was a little", "the dog was in the"]
            return model, (prompts, ["box", "girl", "box"]), "tiny random Llama (no zoo model installed)"
        model = interp.load(spec)
    if spec in zoo.names():
        facts = zoo.fact_prompts()[:64]
        return model, ([f["prompt"] for f in facts], [f["answer"] for f in facts]), f"zoo organism {spec}"
    prompts = ["Once upon a time, there was a little", "One day, she saw a big"]
    return model, (prompts, ["girl", "dog"]), f"model {spec}"


def run_demo(out: Path, spec: Optional[str] = None) -> dict:
    from .ablation import head_ablation_scores
    from .plots import save_html
    from .views import attention_view

    start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model, (prompts, answers), description = default_model(spec)
    scores = head_ablation_scores(model, prompts, answers)
    top = scores.top(3)
    save_html(scores.plot(title=f"{model.name}: rise in answer loss when each head is zeroed"),
              out / "head_importance.html")
    heads = [(layer, head) for layer, head, _ in top]
    save_html(attention_view(model, prompts[0], heads, title=f"{model.name}: top heads on a prompt"),
              out / "attention.html")
    summary = {
        "model": model.name, "description": description, "info": model.info(),
        "n_prompts": len(prompts), "base_answer_loss": scores.meta["base_loss"],
        "top_heads": [{"head": f"L{l}H{h}", "loss_rise": round(s, 4)} for l, h, s in top],
        "figures": ["head_importance.html", "attention.html"],
        "command": f"interp demo --out {out}" + (f" --model {spec}" if spec else ""),
        "seconds": round(time.perf_counter() - start, 1),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
