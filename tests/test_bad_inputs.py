"""Every bad input of tests/bad_inputs, replayed: none may pass in silence or fail with a
confusing error, and none may leave a hook, an applied intervention or a changed forward
behind. `scripts/replay_bad_inputs.py` prints the same replay as counts per family."""

import pytest
from bad_inputs import (
    ACCEPTED,
    API_CASES,
    CLI_CASES,
    FILE_CASES,
    KV_CASES,
    SAVED_CASES,
    Context,
    replay,
)


@pytest.fixture(scope="module")
def ctx():
    context = Context()
    context.tiny, context.world  # fingerprints before the first case
    yield context
    assert context.zoo_untouched(), "a case changed the zoo's files"


def _check(case, ctx):
    outcome = replay(case, ctx)
    assert not outcome.leaked, f"{case.id} left a hook, an intervention or a changed forward"
    assert outcome.kind in ACCEPTED, f"{case.id} was {outcome.kind}: {outcome.detail}"


@pytest.mark.parametrize("case", API_CASES + FILE_CASES, ids=lambda c: c.id)
def test_bad_input_is_refused_warned_or_right(case, ctx):
    _check(case, ctx)


@pytest.mark.parametrize("case", KV_CASES, ids=lambda c: c.id)
def test_bad_kv_policy_input_is_refused_warned_or_right(case, ctx):
    _check(case, ctx)


@pytest.mark.parametrize("case", SAVED_CASES, ids=lambda c: c.id)
def test_bad_saved_results_are_refused_warned_or_right(case, ctx):
    _check(case, ctx)


@pytest.mark.parametrize("case", CLI_CASES, ids=lambda c: c.id)
def test_bad_command_line_is_refused_warned_or_right(case, ctx):
    _check(case, ctx)


def test_the_replay_tells_silent_and_confusing_apart(ctx):
    """The classifier itself: a wrong result with no word is silent, a builtin error from
    inside is confusing, a short InterpError is confusing, a leftover intervention is a leak."""
    from bad_inputs import Case

    from interp import PruneHeads
    from interp.errors import InvalidArgumentError

    def leave_applied(c):
        c.tiny.apply(PruneHeads(["L1H0"]))

    kinds = {
        "silent": Case("t", "wrong, quietly", lambda c: 1, lambda c, v: v == 2),
        "confusing": Case("t", "builtin", lambda c: [][1]),
        "typed": Case(
            "t", "typed", lambda c: (_ for _ in ()).throw(InvalidArgumentError("x" * 40))
        ),
        "correct": Case("t", "right", lambda c: 2, lambda c, v: v == 2),
    }
    for kind, case in kinds.items():
        assert replay(case, ctx).kind == kind
    short = Case("t", "short", lambda c: (_ for _ in ()).throw(InvalidArgumentError("bad")))
    assert replay(short, ctx).kind == "confusing"
    assert replay(Case("t", "leak", leave_applied), ctx).leaked
    assert ctx.clean()  # the leak check removed it
