import json

import pytest
from typer.testing import CliRunner

from interp.cli import app

runner = CliRunner()


def test_info_on_gguf(stories_path):
    result = runner.invoke(app, ["info", str(stories_path)])
    assert result.exit_code == 0, result.output
    assert "LlamaForCausalLM" in result.output and "n_kv_heads: 4" in result.output


def test_generate_side_by_side_and_recipe_round_trip(stories_path, tmp_path):
    recipe = tmp_path / "r.json"
    args = [
        "generate",
        str(stories_path),
        "Once upon a time",
        "-n",
        "12",
        "--prune",
        "L4H0",
        "--prune",
        "L3H2",
        "--scale",
        "L2H1=3.0",
        "--save-recipe",
        str(recipe),
    ]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "plain:" in first.output and "edited:" in first.output
    assert json.loads(recipe.read_text())["type"] == "Compose"
    again = runner.invoke(
        app,
        [
            "generate",
            str(stories_path),
            "Once upon a time",
            "-n",
            "12",
            "--recipe",
            str(recipe),
            "--backend",
            "transformer_lens",
        ],
    )
    assert again.exit_code == 0, again.output
    edited = [l for l in first.output.splitlines() if l.startswith("edited:")]
    assert edited == [l for l in again.output.splitlines() if l.startswith("edited:")]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--prune", "L9H0"], "layers are 0..4"),
        (["--scale", "L1H1"], "HEAD=ALPHA"),
        (["--scale", "L1H1=nan"], "finite"),
        (["--mode", "delete", "--prune", "L1H1"], "mode must be one of"),
    ],
)
def test_generate_bad_input(stories_path, args, message):
    result = runner.invoke(app, ["generate", str(stories_path), "Once", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_missing_model_is_a_clean_error(tmp_path):
    result = runner.invoke(app, ["info", str(tmp_path / "nope.gguf")])
    assert result.exit_code == 2 and "no GGUF file" in result.output


def test_atlas_command_on_a_tiny_model(tmp_path, monkeypatch):
    import interp.cli.demo as demo
    from interp.testing import tiny_model

    monkeypatch.setattr(
        demo,
        "default_model",
        lambda spec=None: (
            tiny_model("llama"),
            (["the cat saw a red", "the dog was in the"], ["box", "box"]),
            "tiny",
        ),
    )
    result = runner.invoke(app, ["atlas", "tiny", "--out", str(tmp_path / "atlas.html")])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "atlas.html").read_text()
    assert "Head atlas" in page and page.count('data-head="L') == 16
    bad = runner.invoke(app, ["atlas", "tiny", "--out", str(tmp_path / "atlas.txt")])
    assert bad.exit_code == 2 and ".html" in bad.output
