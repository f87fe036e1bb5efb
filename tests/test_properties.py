"""Properties, not only examples (hypothesis): head specs, prompt batches and padding,
intervention recipes and the circuit schema, over generated inputs, good and bad.

Every property runs twice: in the default suite with a small example budget (`SMALL`), and in
the slow tier (``-m slow``) with a larger one (`LARGE`). The bad-input properties assert the one
contract a user relies on: a typed error under `interp.errors.InterpError` whose message names
what was expected, never a bare exception from deep inside, and never a silent acceptance.
"""

from __future__ import annotations

import json
import math
import string

import pytest
import torch

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from interp.circuit import Circuit, CircuitError  # noqa: E402
from interp.errors import InterpError  # noqa: E402
from interp.heads import Head  # noqa: E402
from interp.interventions import Intervention, PruneHeads, ScaleValues  # noqa: E402
from interp.testing import TINY_WORDS, tiny_model  # noqa: E402

SMALL, LARGE = 15, 200
"""Examples per property: default suite / slow tier."""

MODEL = tiny_model("llama", n_layers=2)
N_LAYERS, N_HEADS = MODEL.n_layers, MODEL.n_heads


def tiers(strategies: dict, prop):
    """Two tests of `prop` over `strategies`: (small budget, default suite; large, slow tier)."""

    def at(n: int):
        return settings(
            max_examples=n,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            derandomize=n == SMALL,  # the default suite draws the same examples every run
        )(given(**strategies)(prop))

    return at(SMALL), pytest.mark.slow(at(LARGE))


# --- head specs ---------------------------------------------------------------------------------


def _head_spec_round_trips(layer, head, form):
    spec = {"name": f"L{layer}H{head}", "pair": (layer, head), "dots": f"{layer}.{head}"}[form]
    parsed = Head.parse(spec)
    assert parsed == Head(layer, head) and Head.parse(str(parsed)) == parsed


test_head_spec_round_trips, test_head_spec_round_trips_large = tiers(
    {
        "layer": st.integers(0, 10_000),
        "head": st.integers(0, 10_000),
        "form": st.sampled_from(["name", "pair", "dots"]),
    },
    _head_spec_round_trips,
)

_BAD_SPECS = st.one_of(
    st.text(alphabet=string.printable, max_size=12).filter(
        lambda s: not any(c.isdigit() for c in s)  # no digits: no reading of it is a head
    ),
    st.tuples(
        st.floats(allow_nan=True).filter(lambda x: not (math.isfinite(x) and x == int(x))),
        st.integers(0, 9),
    ),
    st.tuples(st.booleans(), st.integers(0, 9)),
    st.tuples(st.integers(-1000, -1), st.integers(0, 9)),
    st.none(),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _bad_head_spec_is_a_typed_error(spec):
    with pytest.raises(InterpError, match="expected|must be|cannot|negative|>= 0"):
        Head.parse(spec)


test_bad_head_spec_is_a_typed_error, test_bad_head_spec_is_a_typed_error_large = tiers(
    {"spec": _BAD_SPECS}, _bad_head_spec_is_a_typed_error
)


def _out_of_range_head_names_the_range(layer, head):
    if layer < N_LAYERS and head < N_HEADS:
        return
    with pytest.raises(InterpError, match=r"\d"):
        MODEL.heads([(layer, head)])


test_out_of_range_head_names_the_range, test_out_of_range_head_names_the_range_large = tiers(
    {"layer": st.integers(0, 50), "head": st.integers(0, 50)}, _out_of_range_head_names_the_range
)


# --- prompts: lengths, padding, batches ----------------------------------------------------------

_WORDS = [w for w in TINY_WORDS if w.isalpha()]
_PROMPT = st.lists(st.sampled_from(_WORDS), min_size=1, max_size=12).map(" ".join)


def _batched_prompt_equals_its_own_run(prompts):
    """Left padding changes nothing: each row's last-position logits in a batch of prompts of
    other lengths equal the prompt run alone."""
    batch = MODEL.forward(prompts)[:, -1]
    for i, prompt in enumerate(prompts):
        alone = MODEL.forward([prompt])[0, -1]
        assert torch.allclose(batch[i], alone, atol=1e-4), (prompts, i)
    assert MODEL.active_interventions == ()


test_batched_prompt_equals_its_own_run, test_batched_prompt_equals_its_own_run_large = tiers(
    {"prompts": st.lists(_PROMPT, min_size=1, max_size=4)}, _batched_prompt_equals_its_own_run
)


# --- intervention recipes ------------------------------------------------------------------------

_HEAD = st.builds(Head, st.integers(0, N_LAYERS - 1), st.integers(0, N_HEADS - 1))
_PART = st.one_of(
    st.builds(
        PruneHeads,
        st.lists(_HEAD, min_size=1, max_size=3, unique=True),
        mode=st.sampled_from(["zero", "uniform"]),
    ),
    st.builds(
        ScaleValues,
        _HEAD,
        st.floats(-4, 4, allow_nan=False).filter(lambda a: abs(a) > 1e-3),
    ),
)
_RECIPE = st.lists(_PART, min_size=1, max_size=4).map(
    lambda parts: parts[0] if len(parts) == 1 else sum(parts[1:], parts[0])
)


def _recipe_round_trips_with_the_same_logits(recipe, prompt):
    again = Intervention.from_json(recipe.to_json())
    assert again == recipe
    try:
        want = MODEL.forward([prompt], interventions=recipe)
    except InterpError as err:  # the same part twice in one recipe is refused, typed
        assert "twice" in str(err) or "same" in str(err), err
        return
    got = MODEL.forward([prompt], interventions=again)
    assert torch.equal(want, got)
    assert MODEL.active_interventions == ()


test_recipe_round_trips_with_the_same_logits, test_recipe_round_trips_large = tiers(
    {"recipe": _RECIPE, "prompt": _PROMPT}, _recipe_round_trips_with_the_same_logits
)

_MUTATIONS = ("drop_type", "unknown_type", "extra_key", "drop_field", "alpha_text", "alpha_bool")


def _mutated_recipe_is_refused(recipe, mutation):
    data = recipe.to_dict()
    parts = data["items"] if data["type"] == "Compose" else [data]
    part = parts[0]
    if mutation == "drop_type":
        part.pop("type")
    elif mutation == "unknown_type":
        part["type"] = "PruneHeadz"
    elif mutation == "extra_key":
        part["colour"] = "red"
    elif mutation == "drop_field":
        part.pop("heads" if "heads" in part else "head")
    elif part["type"] == "ScaleValues":
        part["alpha"] = "two" if mutation == "alpha_text" else True
    else:
        return  # the alpha mutations apply to ScaleValues only
    with pytest.raises(InterpError):
        Intervention.from_json(json.dumps(data))


test_mutated_recipe_is_refused, test_mutated_recipe_is_refused_large = tiers(
    {"recipe": _RECIPE, "mutation": st.sampled_from(_MUTATIONS)}, _mutated_recipe_is_refused
)


# --- the circuit schema --------------------------------------------------------------------------


@st.composite
def _circuits(draw):
    heads = draw(
        st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), unique=True, max_size=6)
    )
    circuit = Circuit(
        draw(st.sampled_from(["m", "world-base"])), draw(st.sampled_from(["x", "path"]))
    )
    for layer, head in heads:
        score = draw(st.none() | st.floats(-10, 10, allow_nan=False))
        circuit = circuit.add_node(
            f"L{layer}H{head}", draw(st.sampled_from(["", "mover", "s"])), score
        )
    names = circuit.node_names + ["logits"]
    for _ in range(draw(st.integers(0, 4)) if circuit.node_names else 0):
        source = draw(st.sampled_from(circuit.node_names))
        target = draw(st.sampled_from(names))
        circuit = circuit.add_edge(source, target, weight=draw(st.none() | st.floats(-5, 5)))
    return circuit


def _circuit_round_trips(circuit):
    assert Circuit.from_json(circuit.to_json()) == circuit


test_circuit_round_trips, test_circuit_round_trips_large = tiers(
    {"circuit": _circuits()}, _circuit_round_trips
)

_CIRCUIT_MUTATIONS = ("version", "top_key", "node_key", "edge_key", "node_name", "edge_end")


def _mutated_circuit_is_refused_or_read_as_the_schema_says(circuit, mutation, version):
    data = circuit.to_dict()
    if mutation == "version":
        data["schema_version"] = version
    elif mutation == "top_key":
        data["colour"] = 1
    elif mutation == "node_key" and data["nodes"]:
        data["nodes"][0]["rol"] = "mover"
    elif mutation == "edge_key" and data["edges"]:
        data["edges"][0]["wieght"] = 1.0
    elif mutation == "node_name" and data["nodes"]:
        data["nodes"][0]["name"] = "head seven"
    elif mutation == "edge_end" and data["edges"]:
        data["edges"][0]["target"] = "L99H99x"
    else:
        assert Circuit.from_dict(data) == circuit  # nothing mutated: read back as it was
        return
    if mutation == "version" and version == "1.0":
        assert Circuit.from_dict(data) == circuit  # the one version this interp reads
        return
    with pytest.raises(CircuitError):
        Circuit.from_dict(data)


test_mutated_circuit_is_refused, test_mutated_circuit_is_refused_large = tiers(
    {
        "circuit": _circuits(),
        "mutation": st.sampled_from(_CIRCUIT_MUTATIONS),
        "version": st.text(alphabet="0123456789.x", min_size=1, max_size=5),
    },
    _mutated_circuit_is_refused_or_read_as_the_schema_says,
)
