"""Bad input to KV policies and to saved results is refused with a typed error that names the
fix, or warned about: each test is one bug the bad-input replay (tests/bad_inputs/kv_cases.py,
saved_cases.py) found silent or confusing."""

import json
import warnings

import pytest
import torch

from interp.cli.demo import atlas_from_saved
from interp.errors import ArgumentTypeError, InvalidArgumentError, MissingFileError
from interp.kv import (
    HeadKVPolicy,
    KVPolicyError,
    KVPolicyWarning,
    full_policy,
    kv_head_scores,
    policy_from,
    random_policy,
    streaming_policy,
)
from interp.results.scores import HeadScores
from interp.saved_results import read_saved_results
from interp.testing import tiny_model

LONG = "once upon a time there was a little girl named"
PADDED = [LONG, "once upon a time there was"]  # the second row is left-padded


@pytest.fixture(scope="module")
def model():
    return tiny_model("llama")  # 2 layers, 8 query heads, 4 kv heads


def _scores(model) -> torch.Tensor:
    return torch.rand(model.n_layers, model.n_heads, generator=torch.Generator().manual_seed(0))


def _quiet(fn, *args, **kw):
    """`fn(...)` with every warning turned into an error: it must not warn."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args, **kw)


# --- building a policy ----------------------------------------------------------------------------


def test_scores_that_score_no_head_warn(model):
    nan = torch.full((2, 8), float("nan"))
    for kw in ({"budget": 0.5}, {"threshold": 0.1}):  # was: layer order / nothing, in silence
        with pytest.warns(KVPolicyWarning, match="no scored head"):
            policy_from(nan, model, **kw)
    partly = _scores(model)
    partly[0] = float("nan")  # unscored heads beside scored ones: no word
    _quiet(policy_from, partly, model, budget=0.5)


def test_scores_of_another_model_warn(model):
    other = HeadScores(_scores(model), model="world-base", method="retrieval")
    with pytest.warns(KVPolicyWarning, match="'world-base', not 'tiny-llama'"):
        policy_from(other, model, budget=0.5)
    _quiet(policy_from, HeadScores(_scores(model), model=model.name, method="r"), model, budget=0.5)


def test_a_budget_that_rounds_to_no_kv_head_warns(model):
    with pytest.warns(KVPolicyWarning, match="rounds to none kept whole"):
        assert policy_from(_scores(model), model, budget=0.01).full == ()
    with pytest.warns(KVPolicyWarning, match="rounds to none"):
        random_policy(model, 0.01, seed=0)
    assert len(_quiet(policy_from, _scores(model), model, budget=0.125).full) == 1
    _quiet(policy_from, _scores(model), model, budget=0)  # none, as asked


@pytest.mark.parametrize("threshold", [float("nan"), "0.5", True])
def test_a_threshold_that_is_not_a_number_is_refused(model, threshold):
    with pytest.raises(ArgumentTypeError, match="threshold must be a finite number"):
        policy_from(_scores(model), model, threshold=threshold)


def test_seeds_are_ints_and_a_seed_that_draws_nothing_warns(model):
    with pytest.raises(ArgumentTypeError, match="seed must be an int"):
        policy_from(_scores(model), model, budget=0.5, ties="random", seed="x")
    with pytest.raises(ArgumentTypeError, match="seed must be an int"):
        policy_from(_scores(model), model, budget=0.5, ties="random", seed=1.5)
    for seed in (None, "x", 2.5):
        with pytest.raises(ArgumentTypeError, match="seed must be an int"):
            random_policy(model, 0.5, seed=seed)
    with pytest.warns(KVPolicyWarning, match="draws nothing with ties='position'"):
        policy_from(_scores(model), model, budget=0.5, seed=3)
    ties = torch.zeros(2, 8)  # all tied: the seed alone orders them, and 0 is the default
    default = _quiet(policy_from, ties, model, budget=0.5, ties="random")
    assert default == policy_from(ties, model, budget=0.5, ties="random", seed=0)


@pytest.mark.parametrize(
    "changes,match",
    [
        ({"sink": -1}, "first positions every streaming kv head keeps"),
        ({"sink": True}, "sink must be an int >= 0"),
        ({"window": 0}, "most recent positions"),
        ({"window": 16.5}, "window must be an int >= 1"),
    ],
)
def test_bad_sink_and_window_say_what_they_are(model, changes, match):
    with pytest.raises((ArgumentTypeError, InvalidArgumentError), match=match) as err:
        policy_from(_scores(model), model, budget=0.5, **changes)
    assert len(str(err.value)) >= 40  # was: "sink must be >= 0, got -1"


def test_kv_head_scores_refuses_zero_kv_heads(model):
    with pytest.raises(InvalidArgumentError, match="n_kv_heads must be >= 1"):
        kv_head_scores(_scores(model), 0)  # was: ZeroDivisionError


@pytest.mark.parametrize("budget", [2.0, "half", True])
def test_a_policy_budget_is_a_share(budget):
    with pytest.raises((ArgumentTypeError, InvalidArgumentError), match="budget must be"):
        HeadKVPolicy(((0, 1),), 2, 4, budget=budget)  # was: kept as given


@pytest.mark.parametrize("full", [None, 3])
def test_full_must_be_a_list_of_pairs(full):
    with pytest.raises(ArgumentTypeError, match="full must be a list or tuple"):
        HeadKVPolicy(full, 2, 4)  # was: TypeError 'NoneType' object is not iterable


# --- policy files ---------------------------------------------------------------------------------


def _policy() -> HeadKVPolicy:
    return HeadKVPolicy(((0, 1), (1, 3)), 2, 4, sink=1, window=2)


@pytest.mark.parametrize("key", ["full", "n_layers", "n_kv_heads"])
def test_a_policy_file_missing_a_key_is_refused(key):
    data = {k: v for k, v in _policy().to_dict().items() if k != key}
    with pytest.raises(InvalidArgumentError, match=f"the KV policy has no {key}"):
        HeadKVPolicy.from_dict(data)  # was: TypeError, or (no full) a streaming policy


def test_a_policy_that_is_not_an_object_is_refused(tmp_path):
    with pytest.raises(InvalidArgumentError, match="a KV policy is a JSON object"):
        HeadKVPolicy.from_dict([_policy().to_dict()])
    path = tmp_path / "list.json"
    path.write_text(json.dumps([_policy().to_dict()]))
    with pytest.raises(InvalidArgumentError, match="a KV policy is a JSON object"):
        HeadKVPolicy.load(path)


def test_load_refuses_bad_files_by_path(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{full: [[0, 1]]")
    with pytest.raises(InvalidArgumentError, match="is not JSON .*HeadKVPolicy.save"):
        HeadKVPolicy.load(bad)  # was: JSONDecodeError
    with pytest.raises(MissingFileError, match="no file"):
        HeadKVPolicy.load(tmp_path / "none.json")  # was: FileNotFoundError
    with pytest.raises(MissingFileError, match="is a folder"):
        HeadKVPolicy.load(tmp_path)  # was: IsADirectoryError


def test_save_makes_its_folder_and_refuses_a_folder(tmp_path):
    path = _policy().save(tmp_path / "new" / "policy.json")  # was: FileNotFoundError
    assert HeadKVPolicy.load(path) == _policy()
    with pytest.raises(InvalidArgumentError, match="is a folder"):
        _policy().save(tmp_path)


# --- generating under a policy --------------------------------------------------------------------


def test_a_policy_of_another_model_with_the_same_layout_warns(model):
    other = HeadKVPolicy(((0, 1),), 2, 4, sink=1, window=2, model="world-base")
    with pytest.warns(KVPolicyWarning, match="built for 'world-base', not 'tiny-llama'"):
        model.generate(LONG, max_new_tokens=2, kv_policy=other)
    _quiet(model.generate, LONG, max_new_tokens=2, kv_policy=streaming_policy(model, window=2))


@pytest.mark.parametrize(
    "policy,fix",
    [({"full": []}, "from_dict"), ("p.json", "HeadKVPolicy.load"), (0.5, "policy_from")],
)
def test_kv_policy_that_is_no_policy_names_how_to_build_one(model, policy, fix):
    with pytest.raises(KVPolicyError, match=f"build one with .*{fix}"):
        model.generate(LONG, max_new_tokens=2, kv_policy=policy)


def test_a_sink_on_left_padding_is_refused(model):
    with pytest.raises(KVPolicyError, match="left-padded row's sink would be padding"):
        model.generate(
            PADDED, max_new_tokens=4, kv_policy=streaming_policy(model, sink=1, window=2)
        )


@pytest.mark.parametrize("policy", ["sink0", "full"])
def test_left_padding_without_a_sink_gives_each_row_its_own_tokens(model, policy):
    kv = streaming_policy(model, sink=0, window=2) if policy == "sink0" else full_policy(model)
    batch = model.generate(PADDED, max_new_tokens=6, kv_policy=kv).new_tokens
    for row, prompt in zip(batch, PADDED):
        assert torch.equal(
            row, model.generate(prompt, max_new_tokens=6, kv_policy=kv).new_tokens[0]
        )


# --- saved results --------------------------------------------------------------------------------

INFO = {"name": "world-base", "n_layers": 4, "n_heads": 8}
ROLE = {"role": "retrieval", "analyzer": "retrieval", "heads": {"L2H1": 0.6}}


def _folder(tmp_path, **summaries):
    for name, summary in summaries.items():
        (tmp_path / name).mkdir()
        data = {"analyzer": name, "model": "world-base", "model_info": INFO, "roles": [ROLE]}
        (tmp_path / name / "summary.json").write_text(json.dumps({**data, **summary}))
    return tmp_path


def test_summaries_of_one_name_but_two_shapes_are_refused(tmp_path):
    folder = _folder(tmp_path, a={}, b={"model_info": {**INFO, "n_layers": 30}})
    with pytest.raises(InvalidArgumentError, match="b is of a 30x8 'world-base'"):
        read_saved_results(folder)  # was: read as one model, b's heads drawn on a's grid


@pytest.mark.parametrize(
    "roles,match",
    [
        ([{**ROLE, "heads": {"L9H0": 1.0}}], "names L9H0, outside the model's 4 layers x 8"),
        ([{**ROLE, "heads": {"L1H0": "high"}}], "heads must map head names to scores"),
        ([{**ROLE, "heads": ["L1H0"]}], "heads must map head names to scores"),
        ([{"analyzer": "a", "heads": {}}], "an object without role"),
        ({"retrieval": ROLE}, "roles must be a list of roles"),
        (["retrieval"], "a role is an object with role, analyzer and heads"),
        ([3], "a role is an object with role, analyzer and heads"),
        ([{**ROLE, "checks": [{"control": "x"}]}], "a check is an object with an effect"),
    ],
)
def test_bad_roles_are_refused_with_the_summary_path(tmp_path, roles, match):
    folder = _folder(tmp_path, r={"roles": roles})
    with pytest.raises(InvalidArgumentError, match=match) as err:
        atlas_from_saved(folder, tmp_path / "atlas.html")  # was: ValueError, KeyError, ...
    assert "summary.json" in str(err.value) and "rerun the analyzer" in str(err.value)


@pytest.mark.parametrize("n_layers", ["four", 0, True])
def test_a_model_shape_that_is_not_counts_is_refused(tmp_path, n_layers):
    folder = _folder(tmp_path, r={"model_info": {**INFO, "n_layers": n_layers}})
    with pytest.raises(InvalidArgumentError, match="must be whole numbers >= 1"):
        read_saved_results(folder)  # was: ValueError from int('four')


def test_from_a_file_says_it_is_a_file(tmp_path):
    folder = _folder(tmp_path, r={})
    with pytest.raises(InvalidArgumentError, match="is a file; give the folder"):
        read_saved_results(folder / "r" / "summary.json")  # was: "no such folder"
