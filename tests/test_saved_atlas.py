"""The atlas drawn from saved results: roles and circuits kept in summary.json, read back, and
the heads each pair of roles shares against chance."""

import json
from itertools import combinations

import pytest
from typer.testing import CliRunner

from interp.atlas import RoleMap, atlas_html
from interp.checks import Check
from interp.cli import app
from interp.errors import InvalidArgumentError, MissingFileError
from interp.report import write_summary
from interp.role_overlap import role_overlap, shared_by_chance_p
from interp.saved_results import read_saved_results

runner = CliRunner()
INFO = {"name": "tiny", "architecture": "LlamaForCausalLM", "n_layers": 2, "n_heads": 4}


def _retrieval():
    check = Check("masking L1H2 drops NIAH 90% -> 10%", "5 random heads: 1 point", (("c", True),))
    return RoleMap(
        "retrieval",
        "retrieval (Wu)",
        {"L1H2": 0.6, "L0H1": 0.2},
        {"drop": 80.0},
        "a note",
        (check,),
    )


def _induction():
    return RoleMap("induction", "induction", {(1, 2): 0.9, "L1H0": 0.5})


def test_a_role_map_survives_json():
    role = _retrieval()
    back = RoleMap.from_dict(json.loads(json.dumps(role.to_dict())))
    assert back == role
    assert back.checks[0].sentence() == role.checks[0].sentence()
    assert RoleMap.from_dict(_induction().to_dict()).heads == {"L1H2": 0.9, "L1H0": 0.5}


def test_the_chance_of_sharing_heads_matches_counting_every_draw():
    n, fixed = 7, {0, 1, 2}
    for k in range(0, 5):
        draws = list(combinations(range(n), k))
        for shared in range(0, 4):
            counted = sum(len(fixed & set(d)) >= shared for d in draws) / len(draws)
            assert shared_by_chance_p(n, 3, k, shared) == pytest.approx(counted, abs=1e-12)
    with pytest.raises(InvalidArgumentError, match="between 0 and the 7 heads"):
        shared_by_chance_p(7, 8, 1, 0)


def test_overlap_rows_name_the_shared_heads_and_skip_empty_roles():
    rows = role_overlap([_retrieval(), _induction(), RoleMap("none", "x", {})], n_heads_total=8)
    (row,) = rows
    assert row["shared"] == ["L1H2"] and row["sizes"] == [2, 2]
    assert row["expected_by_chance"] == pytest.approx(0.5)
    assert row["p_at_least_shared"] == pytest.approx(1 - (6 * 5) / (8 * 7))
    page = atlas_html(INFO, [_retrieval(), _induction()])
    assert "L1H2</td></tr></table>" in page.split("Heads shared between roles")[1]


def _save(folder, name, roles, info=INFO, **kw):
    write_summary(folder / name, name, {}, model=info["name"], roles=roles, model_info=info, **kw)


def test_atlas_from_saved_results(tmp_path):
    _save(tmp_path, "retrieval", [_retrieval()])
    _save(tmp_path, "induction", [_induction()])
    write_summary(tmp_path / "old", "old", {}, model="tiny")  # before summaries kept roles
    saved = read_saved_results(tmp_path)
    assert saved.analyzers == ["induction", "retrieval"] and "old" in saved.skipped
    out = tmp_path / "page" / "atlas.html"
    result = runner.invoke(app, ["atlas", "--from", str(tmp_path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "share 1 (L1H2)" in result.output
    page = out.read_text()
    assert page.count('data-head="L') == 8 and "masking L1H2 drops NIAH" in page
    assert "old left out: written before summaries kept their roles" in page
    record = json.loads((out.parent / "atlas_overlap.json").read_text())
    assert record["overlap"][0]["shared"] == ["L1H2"] and record["n_heads_total"] == 8


def test_saved_results_of_two_models_or_none_are_refused(tmp_path):
    with pytest.raises(MissingFileError, match="no such folder"):
        read_saved_results(tmp_path / "nope")
    write_summary(tmp_path / "old", "old", {}, model="tiny")
    with pytest.raises(MissingFileError, match="old: written before"):
        read_saved_results(tmp_path)
    _save(tmp_path, "retrieval", [_retrieval()])
    _save(tmp_path, "other", [_induction()], info={**INFO, "name": "other"})
    with pytest.raises(InvalidArgumentError, match="keep one model's results per folder"):
        read_saved_results(tmp_path)
    wrong = runner.invoke(
        app, ["atlas", "big", "--from", str(tmp_path / "nope"), "--out", str(tmp_path / "a.html")]
    )
    assert wrong.exit_code == 2 and "no such folder" in wrong.output
    no_model = runner.invoke(app, ["atlas", "--out", str(tmp_path / "a.html")])
    assert no_model.exit_code == 2 and "--from DIR" in no_model.output
