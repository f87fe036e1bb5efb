"""The cost meter counts full-sequence forward equivalents through Model.run_plan."""

import pytest

from interp.analysis import run_with_cost
from interp.cost import Cost, measure_cost
from interp.testing import tiny_model


@pytest.fixture(scope="module")
def model():
    return tiny_model("llama")


@pytest.mark.parametrize("backend", ["nnsight", "transformer_lens"])
def test_each_row_of_a_forward_counts_one(model, backend):
    with measure_cost(model) as meter:
        model.forward(["a b c", "d e f", "g h i"], backend=backend)
    assert meter.cost.forward_passes == 3.0
    assert meter.cost.tokens == 3 * model.to_tokens("a b c").input_ids.shape[1]


def test_decode_steps_count_their_share_of_the_context(model):
    prompt_len = model.to_tokens("a b c d").input_ids.shape[1]
    with measure_cost(model) as meter:
        model.generate("a b c d", max_new_tokens=4)
    decode = sum(1 / (prompt_len + i + 1) for i in range(3))  # 3 cached steps after the prompt
    assert meter.cost.forward_passes == pytest.approx(1 + decode)
    assert meter.cost.tokens == prompt_len + 3


def test_meter_detaches_on_error(model):
    with pytest.raises(RuntimeError):
        with measure_cost(model):
            raise RuntimeError("boom")
    assert model.meters == []


def test_bridge_copy_carries_no_user_hooks(model):
    handle = model.hf.register_forward_pre_hook(lambda *a: None)
    try:
        model.engine("transformer_lens").bridge  # built (or already built) without the hook
    finally:
        handle.remove()
    from interp.backends.transformer_lens import share_weights_copy

    handle = model.hf.register_forward_pre_hook(lambda *a: None)
    try:
        clone = share_weights_copy(model.hf)
    finally:
        handle.remove()
    assert not clone._forward_pre_hooks


def test_run_with_cost_attaches_the_result_floor(model):
    class Result:
        def floor(self):
            return 2.0, "two rows"

    result, cost = run_with_cost(
        lambda m, cfg: (m.forward(["a", "b", "c", "d"]), Result())[1], model, None
    )
    assert isinstance(cost, Cost) and cost.forward_passes == 4.0
    assert cost.ratio == 2.0 and cost.to_dict()["floor_note"] == "two rows"


class _Result:
    """The smallest AnalysisResult: one figure, one number."""

    analyzer = "toy"

    def __init__(self, value):
        self.value = value

    def numbers(self):
        return {"value": self.value}

    def figures(self):
        import plotly.graph_objects as go

        return {"toy_figure": go.Figure()}

    def provenance(self):
        return {"model": "tiny", "data": {}, "seeds": {}}


def test_write_result_replaces_the_summary_and_leaves_no_staging(tmp_path):
    import json

    from interp.report import write_result

    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("the user's file")
    cost = Cost(seconds=1.0, forward_passes=3.0, tokens=12, peak_memory_mb=10.0).with_floor(
        2.0, "toy"
    )
    write_result(_Result(1), out, cost=cost)
    path = write_result(_Result(2), out, cost=cost)
    summary = json.loads(path.read_text())
    assert summary["numbers"]["value"] == 2 and summary["cost"]["ratio_to_floor"] == 1.5
    assert sorted(p.name for p in out.iterdir()) == [
        "notes.txt",
        "plotly.min.js",
        "summary.json",
        "toy_figure.html",
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging folder left behind
