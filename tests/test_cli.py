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
            demo.TINY_FALLBACK,
        ),
    )
    result = runner.invoke(app, ["atlas", "tiny", "--out", str(tmp_path / "atlas.html")])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "atlas.html").read_text()
    assert "Head atlas" in page and page.count('data-head="L') == 16
    bad = runner.invoke(app, ["atlas", "tiny", "--out", str(tmp_path / "atlas.txt")])
    assert bad.exit_code == 2 and ".html" in bad.output


def test_demo_exits_non_zero_when_an_analyzer_fails(tmp_path, monkeypatch):
    import interp.cli.demo as demo
    from interp.testing import tiny_model

    monkeypatch.setattr(
        demo,
        "default_model",
        lambda spec=None: (tiny_model("llama"), (["the cat saw a"], ["box"]), "zoo organism"),
    )

    def broken(model, out):
        raise ValueError("unknown backend None")

    monkeypatch.setattr(demo, "ANALYZER_STEPS", {"entity_tracking": broken})
    result = runner.invoke(app, ["demo", "--out", str(tmp_path / "figs")])
    assert result.exit_code == 1, result.output
    assert "error: analyzer entity_tracking failed: ValueError: unknown backend None" in (
        result.output
    )
    summary = json.loads((tmp_path / "figs" / "summary.json").read_text())  # still written
    assert summary["errors"] == {"entity_tracking": "ValueError: unknown backend None"}


# --- flags refused up front, before the model loads ----------------------------------------------


@pytest.mark.parametrize("command", ["retrieval", "conflict"])
def test_k_of_zero_is_refused_before_loading(command, tmp_path):
    result = runner.invoke(app, [command, "no-such-model", "--out", str(tmp_path), "--k", "0"])
    assert result.exit_code == 2, result.output
    assert "--k must be 1 or more, got 0; leave --k out for" in result.output


def test_check_counts_is_a_typed_error():
    from interp.cli.app import check_counts
    from interp.errors import InvalidArgumentError

    check_counts("--k", [1, None], "the default")
    with pytest.raises(InvalidArgumentError, match="leave --k out for the default"):
        check_counts("--k", [3, 0], "the default")


def test_save_recipe_without_interventions_is_refused(tmp_path):
    recipe = tmp_path / "r.json"
    result = runner.invoke(app, ["generate", "no-such-model", "Once", "--save-recipe", str(recipe)])
    assert result.exit_code == 2, result.output
    assert "none was given: add --prune HEAD, --scale HEAD=ALPHA or --recipe FILE" in result.output
    assert not recipe.exists()


def test_top_k_beyond_the_model_heads_is_refused_with_the_range(tmp_path):
    from interp.testing import tiny_hf_model

    hf, tok = tiny_hf_model("llama")
    hf.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    n_heads = hf.config.num_hidden_layers * hf.config.num_attention_heads
    out = tmp_path / "out"
    args = ["induction", str(tmp_path / "m"), "--out", str(out), "--top-k", str(n_heads + 1)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert f"= {n_heads}; give 1..{n_heads}" in result.output and not out.exists()


def test_retrieval_k_that_leaves_no_random_control_is_refused_up_front():
    from circuits import retrieval
    from interp.errors import InvalidArgumentError
    from interp.testing import tiny_model

    model = tiny_model("llama")
    total = model.n_layers * model.n_heads
    with pytest.raises(InvalidArgumentError, match=f"give 1..{total - 1}"):
        retrieval.Config(k=total).for_model(model)
    with pytest.raises(InvalidArgumentError, match="--k"):
        retrieval.Config(k=0)


def test_conflict_k_above_the_model_heads_is_refused_before_any_forward():
    from circuits import knowledge_conflict as kc
    from interp.errors import InvalidArgumentError
    from interp.testing import tiny_model

    model = tiny_model("llama")
    total = model.n_layers * model.n_heads
    with pytest.raises(InvalidArgumentError, match=f"give k in 1..{total}"):
        kc.run(model, kc.Config(k_grid=(1, total + 1)))


# --- --out checked before anything loads ---------------------------------------------------------

ANALYZER_COMMANDS = [
    ["retrieval", "no-such-model"],
    ["conflict", "no-such-model"],
    ["recall", "no-such-model"],
    ["entity", "no-such-model"],
    ["induction", "no-such-model"],
    ["induction-damage", "--family", "no-such-family"],
    ["kv", "no-such-model"],
    ["demo", "--model", "no-such-model"],
]


@pytest.mark.parametrize("command", ANALYZER_COMMANDS, ids=lambda c: c[0])
def test_out_that_is_a_file_is_refused_before_loading(command, tmp_path, monkeypatch):
    import interp

    monkeypatch.setattr(interp, "load", lambda *a, **k: pytest.fail("model was loaded"))
    target = tmp_path / "results.txt"
    target.write_text("the user's file")
    result = runner.invoke(app, command + ["--out", str(target)])
    assert result.exit_code == 2, result.output
    assert f"--out {target} is a file" in result.output and "give a folder" in result.output
    assert target.read_text() == "the user's file"


@pytest.mark.parametrize("command", ANALYZER_COMMANDS[:2], ids=lambda c: c[0])
def test_out_under_a_file_or_an_unwritable_place_is_refused(command, tmp_path, monkeypatch):
    import tempfile

    import interp

    monkeypatch.setattr(interp, "load", lambda *a, **k: pytest.fail("model was loaded"))
    (tmp_path / "a_file").write_text("x")
    under_file = runner.invoke(app, command + ["--out", str(tmp_path / "a_file" / "out")])
    assert under_file.exit_code == 2 and "is a file, so no folder can be made" in under_file.output

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkdtemp", refuse)  # a read-only place, even for root
    readonly = runner.invoke(app, command + ["--out", str(tmp_path / "new" / "out")])
    assert readonly.exit_code == 2, readonly.output
    assert "cannot be written" in readonly.output and "Permission denied" in readonly.output
    assert not (tmp_path / "new").exists()  # nothing made on the way


def test_atlas_out_that_is_a_folder_is_refused(tmp_path):
    (tmp_path / "page.html").mkdir()
    result = runner.invoke(app, ["atlas", "no-such-model", "--out", str(tmp_path / "page.html")])
    assert result.exit_code == 2 and "is a folder; give the path of an .html page" in result.output
