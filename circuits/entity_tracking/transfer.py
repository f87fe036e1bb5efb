"""DCM and CMAP around the path-patching circuit.

DCM (`interp.dcm`) learns which heads at the last token carry each desideratum (the object's
position, the object, the box label) and is compared with the groups. CMAP (`interp.cmap`)
patches each group from a second model (e.g. the fine-tuned one) into the base at the group's
position and reports the share of the accuracy gap it recovers.
"""

from __future__ import annotations

from interp.cmap import CrossPatch, check_compatible, cmap_accuracy, recovered_share
from interp.data.boxes import DESIDERATA, BoxDataset, box_dataset, desiderata
from interp.dcm import dcm
from interp.progress import track

from .ablation import circuit_accuracy
from .config import ROLE, Config
from .metrics import accuracy

__all__ = ["dcm_groups", "group_patches", "cmap_table"]


def dcm_groups(model, cfg: Config, groups: dict) -> tuple[dict, dict]:
    """DCM over all heads at the last token, per desideratum; overlap with the path-patching
    groups."""
    base = box_dataset(
        model,
        cfg.dcm_pairs,
        cfg.n_boxes,
        objects=cfg.objects,
        labels=cfg.labels,
        seed=cfg.seed + 3,
        template=cfg.template,
    )
    results, overlap = {}, {}
    for kind in track(DESIDERATA, "entity: DCM", unit="desideratum"):
        pairs = desiderata(
            model, base, kind, objects=cfg.objects, labels=cfg.labels, seed=cfg.seed + 4
        )
        results[kind] = dcm(
            model,
            list(pairs.base.prompts),
            list(pairs.source.prompts),
            pairs.target_ids,
            positions=pairs.base.last_pos,
            desideratum=kind,
            lam=cfg.dcm_lambda,
            lr=cfg.dcm_lr,
            epochs=cfg.dcm_epochs,
            seed=cfg.seed,
            backend=cfg.backend,
        )
        selected = set(results[kind].heads)
        overlap[kind] = {
            key: sorted(str(h) for h in groups.get(key, []) if h in selected) for key in ROLE
        }
        overlap[kind]["outside_circuit"] = sorted(
            str(h) for h in selected if not any(h in g for g in groups.values())
        )
    return results, overlap


def group_patches(groups: dict, data: BoxDataset) -> dict:
    """{group key: CrossPatch} of each non-empty group at its position in each prompt."""
    where = {"A": data.last_pos, "B": data.last_pos, "C": data.query_pos, "D": data.label_pos}
    return {key: CrossPatch(heads, where[key]) for key, heads in groups.items() if heads}


def cmap_table(
    base,
    source,
    groups: dict,
    data: BoxDataset,
    reference: BoxDataset,
    *,
    batch_size: int = 64,
    backend=None,
    ablation: str = "mean",
) -> dict:
    """CMAP from `source` into `base` per group and for the whole circuit, and the base circuit
    evaluated inside `source` (its other heads mean-ablated with `source`'s own means)."""
    check_compatible(base, source)
    kw = dict(batch_size=batch_size, backend=backend)
    acc_base, acc_src = accuracy(base, data, **kw), accuracy(source, data, **kw)
    patches = group_patches(groups, data)
    rows = []
    for key, patch in track(
        list(patches.items()) + [("circuit", list(patches.values()))], "entity: CMAP", unit="patch"
    ):
        acc = cmap_accuracy(base, source, list(data.prompts), data.answer_ids, patch, **kw)
        n = len(patch.heads) if key != "circuit" else sum(len(p.heads) for p in patch)
        rows.append(
            {
                "group": key,
                "role": ROLE.get(key, "whole circuit"),
                "n_heads": n,
                "accuracy": acc,
                "recovered": recovered_share(acc, acc_base, acc_src),
            }
        )
    heads = [h for hs in groups.values() for h in hs]
    inside = circuit_accuracy(source, heads, data, reference, ablation=ablation, **kw)
    return {
        "base_model": base.name,
        "source_model": source.name,
        "base_accuracy": acc_base,
        "source_accuracy": acc_src,
        "rows": rows,
        "base_circuit_in_source_accuracy": inside,
        "base_circuit_in_source_faithfulness": inside / max(acc_src, 1e-12),
    }
