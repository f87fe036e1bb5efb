"""A repeated-data family: members trained on one corpus mixture with a share of rows drawn
from a small repeated pool (``repeat_fraction``), at several seeds; fraction 0 is the control.

- `family_members`: the trained members, from the zoo (a name prefix) or a folder;
- `heldout_rows`: unique rows of the family's corpus that no member trained on (the test loss);
- `repeated_rows`: the rows a member of that seed saw many times;
- `lm_loss`: mean next-token loss per row.

    >>> [m["fraction"] for m in family_members("rep2l")]          # doctest: +SKIP
    [0.0, 0.0, 0.0, 0.25, 0.25, 0.25, 0.5, 0.5, 0.5]
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Union

import numpy as np
import torch

from circuits.induction.scoring import next_token_nll, token_batch
from interp import zoo
from interp.errors import InvalidArgumentError
from interp.zoo.recipes import Recipe
from interp.zoo.train import (
    _RepeatPool as RepeatPool,
)  # the zoo's public name is on its way (issue 18)
from interp.zoo.world import World

__all__ = [
    "FamilyNotFoundError",
    "family_members",
    "check_shared_corpus",
    "heldout_rows",
    "repeated_rows",
    "lm_loss",
]

SHARED_KEYS = ("world_seed", "mixture", "seq_len")
"""Recipe keys every member of a family must share, so that their test losses compare."""


class FamilyNotFoundError(InvalidArgumentError):
    """No trained member of the requested repeated-data family was found."""


def _folder_members(path: Path) -> list[dict]:
    """Members of a folder: one sub-folder each, an HF model folder with its metrics.json card
    (or ``<member>/model``), with optional ``<member>/ckpts/*.pt`` checkpoints."""
    members = []
    for sub in sorted(p for p in path.iterdir() if p.is_dir()):
        folder = sub / "model" if (sub / "model" / "config.json").is_file() else sub
        card = folder / "metrics.json"
        if not (folder / "config.json").is_file() or not card.is_file():
            continue
        recipe = json.loads(card.read_text())["recipe"]
        ckpts = (
            sorted(str(c) for c in (sub / "ckpts").glob("*.pt")) if (sub / "ckpts").is_dir() else []
        )
        members.append(
            {"name": recipe["name"], "spec": str(folder), "recipe": recipe, "checkpoints": ckpts}
        )
    return members


def _zoo_members(prefix: str) -> tuple[list[dict], str]:
    members = [
        {"name": name, "spec": name, "recipe": zoo.get_recipe(name).to_dict(), "checkpoints": []}
        for name in zoo.names()
        if name.startswith(prefix)
    ]
    planned = sorted(n for n in zoo.RECIPES if n.startswith(prefix))
    where = (
        f"the zoo (shipped: {', '.join(zoo.names()) or 'none'}; recipes with this prefix: "
        f"{', '.join(planned) or 'none'})"
    )
    return members, where


def family_members(family: Union[str, os.PathLike]) -> list[dict]:
    """Trained members of a repeated-data family: a zoo name prefix (``rep2l``) or a folder.

    Each member: name, spec (what `load_checkpoint` takes), recipe, checkpoints, fraction, seed.
    """
    path = Path(family)
    if path.is_dir():
        members, where = _folder_members(path), f"folder {path}"
    else:
        members, where = _zoo_members(str(family))
    members = [m for m in members if "repeat_fraction" in m["recipe"]]
    if not members:
        raise FamilyNotFoundError(
            f"no trained member of family {str(family)!r} in {where}; "
            f"train them with `interp zoo train NAME` "
            f"or pass a folder of member model folders (each with its metrics.json card)"
        )
    for m in members:
        m["fraction"] = float(m["recipe"]["repeat_fraction"])
        m["seed"] = int(m["recipe"]["seed"])
    return members


def check_shared_corpus(members: list[dict]) -> None:
    """Refuse a family whose members do not share world, mixture and row length."""
    ref = members[0]["recipe"]
    for m in members[1:]:
        for key in SHARED_KEYS:
            if m["recipe"][key] != ref[key]:
                raise InvalidArgumentError(
                    f"member {m['name']} has {key}={m['recipe'][key]!r} "
                    f"but {members[0]['name']} has "
                    f"{ref[key]!r}; a family must share its corpus to compare test losses"
                )


def heldout_rows(recipe: dict, n_rows: int = 64, seed: int = 0) -> torch.Tensor:
    """Unique held-out rows of the family's corpus mixture (an RNG stream training never uses)."""
    rng = np.random.default_rng([int(recipe["world_seed"]), 0x7E57, int(seed)])
    rows, _ = World(recipe["world_seed"]).make_batch(
        rng, recipe["mixture"], n_rows, recipe["seq_len"]
    )
    return torch.from_numpy(rows)


def repeated_rows(recipe: dict, pool: int) -> torch.Tensor:
    """The repeated pool of a member with this seed (what repeated members saw many times)."""
    r = Recipe(**{**recipe, "repeat_pool": pool})
    return torch.from_numpy(RepeatPool(World(r.world_seed), r).rows)


def lm_loss(model, ids: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """Mean next-token loss of each row [n]."""
    out = []
    for start in range(0, len(ids), batch_size):
        chunk = ids[start : start + batch_size]
        with torch.no_grad():
            logits = model.forward(token_batch(chunk, model.device), use_interventions=False)
        out.append(next_token_nll(logits, chunk).mean(1))
    return torch.cat(out)
