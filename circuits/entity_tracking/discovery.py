"""Discovery by exact path patching (`interp.patching.path_patch`), backwards from the logits.

Base run = clean prompt, source run = a corrupt prompt (another sample whose correct segment is
elsewhere, its query label replaced by an absent label). A sender's score is the relative change
in the metric when only its path to the receivers carries the corrupt value; the most negative
heads form the group, and each group's heads receive the next group's paths:

    A value fetchers        -> logits                    (last token)
    B position transmitters -> A's queries               (last token)
    C position detectors    -> B's values                (query label token)
    D structure readers     -> C's values                (earlier occurrence of the label)

    >>> receiver_group("C", {"A": ["L2H0"], "B": []})
    'A'
"""

from __future__ import annotations

from typing import Optional

from interp.data.boxes import BoxDataset
from interp.heads import Head
from interp.patching import Receivers, path_patch
from interp.results import HeadScores, data_hash

from .config import GROUPS, METRIC_NAME, ROLE, Config
from .metrics import metric as make_metric

__all__ = ["receivers", "group_scores", "select_group", "receiver_group", "discover"]

_SITE = {"B": "q", "C": "v", "D": "v"}


def receivers(key: str, previous: list[Head], data: BoxDataset):
    """Where group `key`'s paths end: the logits for A; else the previous group's queries (B)
    or values (C, D) at that group's position in each prompt."""
    if key == "A":
        return "logits"
    positions = {"B": data.last_pos, "C": data.query_pos, "D": data.label_pos}[key]
    return Receivers(previous, _SITE[key], positions=positions.tolist())


def group_scores(
    model,
    data: BoxDataset,
    corrupt_data: BoxDataset,
    key: str,
    previous=(),
    *,
    batch_size: int = 64,
    backend=None,
    metric: str = "prob",
) -> HeadScores:
    """Relative change in the metric (p(correct) or the logit difference) from each sender's
    path into group `key`'s receivers."""
    target = receivers(key, list(previous), data)
    effects = path_patch(
        model,
        list(data.prompts),
        list(corrupt_data.prompts),
        make_metric(model, data, metric),
        receivers=target,
        batch_size=batch_size,
        backend=backend,
    )
    base = effects.meta["base_metric"]
    return HeadScores(
        effects.scores / max(base, 1e-12),
        model=model.name,
        method=f"entity tracking group {key} ({ROLE[key]}): {effects.method}, "
        f"relative {METRIC_NAME[metric]}",
        data_hash=data_hash([list(data.prompts), list(corrupt_data.prompts)]),
        meta={f"base_{metric}": base, "n_prompts": len(data), "group": key, "metric": metric},
    )


def select_group(scores: HeadScores, threshold: float, max_heads: int, exclude=()) -> list[Head]:
    """Heads with relative drop >= threshold (most negative first), at most `max_heads`."""
    exclude = set(exclude)
    ranked = [(float(v), Head(l, h)) for l, h, v in scores.top(scores.n_scored, largest=False)]
    return [h for v, h in ranked if v <= -threshold and h not in exclude][:max_heads]


def receiver_group(key: str, groups: dict) -> Optional[str]:
    """Which group's heads receive group `key`'s paths: the previous group, except that C
    reads into A when B is empty (a model whose value fetchers' queries are positional
    moves the query label's content to the last token through A's values instead)."""
    if key == "A":
        return None
    if key == "C" and not groups.get("B"):
        return "A"
    return "ABCD"["ABCD".index(key) - 1]


def discover(model, data: BoxDataset, corrupt_data: BoxDataset, cfg: Config) -> tuple[dict, dict]:
    """Groups A..D by path patching: ({key: [Head]}, {key: HeadScores}). A group whose receivers
    are missing or all in layer 0 (no earlier head can reach them) is left empty, unscored."""
    groups, scores, chosen = {}, {}, set()
    for key, _, _, _ in GROUPS:
        previous = groups.get(receiver_group(key, groups), []) if key != "A" else []
        if key != "A" and (not previous or max(h.layer for h in previous) == 0):
            groups[key] = []
            continue
        scores[key] = group_scores(
            model,
            data,
            corrupt_data,
            key,
            previous,
            batch_size=cfg.batch_size,
            backend=cfg.backend,
            metric=cfg.metric,
        )
        groups[key] = select_group(scores[key], cfg.threshold, cfg.max_per_group, chosen)
        chosen.update(groups[key])
    return groups, scores
