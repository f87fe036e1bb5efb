"""Repeated-data damage study (circuits.induction_damage): families from folders, held-out and
repeated rows, the protocol (numbers, figures, provenance, floor, cost), CLI."""

import json
import warnings

import pytest
import torch

from circuits import induction_damage as dmg
from circuits.induction import InductionConfig

warnings.filterwarnings("ignore")

# ------------------------------------------------------------------------- repeated-data study


def _member(root, fraction, seed):
    from interp.zoo.recipes import get_recipe, with_overrides
    from interp.zoo.train import build_model
    from interp.zoo.world import World

    name = f"rep2l-f{int(fraction * 100):02d}-s{seed}"
    r = with_overrides(
        get_recipe(name), n_layers=1, d_model=32, n_heads=2, n_kv_heads=1, d_ff=64, seq_len=64
    )
    world = World(r.world_seed)
    tok = world.build_tokenizer()
    torch.manual_seed(seed + int(fraction * 100))
    folder = root / name / "model"
    build_model(r, len(world.vocab), tok).save_pretrained(folder)
    tok.save_pretrained(folder)
    (folder / "metrics.json").write_text(json.dumps({"recipe": r.to_dict()}))
    return folder


def test_damage_study_on_a_folder_family(tmp_path):
    for f in (0.0, 0.5):
        for s in (0, 1):
            _member(tmp_path, f, s)
    cfg = InductionConfig(n=2, span_lengths=(4, 6), offsets=(0,), n_boot=50)
    res = dmg.damage_study(tmp_path, cfg, test_rows=8)
    agg = res.by_fraction()
    assert sorted(agg) == [0.0, 0.5] and agg[0.5]["test_loss"]["seeds"] == [0, 1]
    m = res.members[0]
    assert m["test_loss"] > 0 and m["repeated_pool_loss"] > 0 and "best_induction_score" in m
    assert "f=0.5" in res.findings()
    fig = res.figure()
    assert "measured" in fig.layout.title.text and len(fig.data) == 6 * 3
    with pytest.raises(dmg.FamilyNotFoundError, match="no trained member"):
        dmg.damage_study(tmp_path / "empty_family_that_is_missing_", cfg)


def test_heldout_rows_differ_from_the_repeated_pool():
    from interp.zoo.recipes import get_recipe

    r = get_recipe("rep2l-f50-s0").to_dict()
    test, pool = dmg.heldout_rows(r, 16), dmg.repeated_rows(r, 16)
    assert not {tuple(x) for x in test.tolist()} & {tuple(x) for x in pool.tolist()}
    assert torch.equal(test, dmg.heldout_rows(r, 16))


@pytest.mark.slow
def test_damage_study_on_a_trained_miniature_family(tmp_path):
    from interp.zoo import train

    for name in ("rep2l-f00-s0", "rep2l-f50-s0"):
        train(
            name,
            out_dir=tmp_path / name,
            steps=4,
            progress=False,
            resume=False,
            n_layers=1,
            d_model=32,
            n_heads=2,
            n_kv_heads=1,
            d_ff=64,
            seq_len=64,
            batch_size=4,
            eval_every=0,
            ckpt_every=2,
            warmup=1,
        )
        (tmp_path / name / "train_state.pt").unlink()
    res = dmg.damage_study(
        tmp_path, InductionConfig(n=2, span_lengths=(4, 6), offsets=(0,), n_boot=50), test_rows=8
    )
    assert [m["fraction"] for m in res.members] == [0.0, 0.5]


def test_cli_damage_missing_family(tmp_path):
    from typer.testing import CliRunner

    from interp.cli import app

    result = CliRunner().invoke(
        app, ["induction-damage", "--family", "no-such-family", "--out", str(tmp_path)]
    )
    assert result.exit_code == 2 and "no trained member" in result.output


def test_damage_result_follows_the_protocol(tmp_path):
    for f in (0.0, 0.5):
        _member(tmp_path, f, 0)
    scoring = InductionConfig(n=2, span_lengths=(4, 6), offsets=(0,), n_boot=50)
    cfg = dmg.Config(family=tmp_path, induction=scoring, test_rows=8)
    assert cfg.induction.causal is False
    res = dmg.run(None, cfg)
    assert res.analyzer == "induction-damage" and set(res.numbers()) >= {
        "members",
        "by_fraction",
        "findings",
    }
    assert (
        list(res.figures()) == ["damage_vs_repetition"]
        and res.roles() == []
        and res.circuits() == []
    )
    prov = res.provenance()
    assert prov["model"] == str(tmp_path) and prov["seeds"]["members"] == [0]
    floor, how = res.floor()
    # 2 members x (2 rows per (length, offset) x 2 lengths + 8 test rows + repeated-pool rows)
    assert floor == 2 * (4 + 8 + res.data["repeated_pool"]) and "members" in how
    assert res.cost is not None and res.cost.forward_passes == pytest.approx(floor)
    assert res.conclusion() in res.report()
    with pytest.raises(ValueError, match="test_rows"):
        dmg.Config(test_rows=0)


def test_cli_damage_on_a_folder_family(tmp_path):
    from typer.testing import CliRunner

    from interp.cli import app

    for f in (0.0, 0.5):
        _member(tmp_path / "family", f, 0)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "induction-damage",
            "--family",
            str(tmp_path / "family"),
            "--out",
            str(out),
            "--n",
            "2",
            "--lengths",
            "4,6",
            "--offsets",
            "0",
            "--test-rows",
            "8",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["analyzer"] == "induction-damage" and len(summary["numbers"]["members"]) == 2
    assert summary["cost"]["ratio_to_floor"] == pytest.approx(1.0)
    assert (out / "damage_vs_repetition.html").exists() and "wrote" in result.output
