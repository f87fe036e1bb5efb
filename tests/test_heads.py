import pytest

from interp import Head, HeadIndexError, parse_heads
from interp.heads import check_heads


@pytest.mark.parametrize(
    "spec", ["L10H7", "l10h7", (10, 7), [10, 7], "10.7", "a10.h7", "10-7", Head(10, 7)]
)
def test_parse_spellings(spec):
    assert Head.parse(spec) == Head(10, 7)


def test_str_and_order():
    assert str(Head(3, 1)) == "L3H1"
    assert sorted([Head(1, 2), Head(0, 5), Head(1, 0)]) == [Head(0, 5), Head(1, 0), Head(1, 2)]


@pytest.mark.parametrize("bad", ["L1", "head 3", "1.2.3", "", (1,), None, 3.5])
def test_parse_rejects(bad):
    with pytest.raises((ValueError, TypeError)):
        Head.parse(bad)


def test_negative_rejected():
    with pytest.raises(HeadIndexError):
        Head(-1, 0)


def test_parse_heads_dedups_and_keeps_order():
    assert parse_heads(["L1H1", (0, 2), "1.1"]) == (Head(1, 1), Head(0, 2))
    assert parse_heads("L0H0") == (Head(0, 0),)
    assert parse_heads((2, 3)) == (Head(2, 3),)


def test_out_of_range_message_states_range():
    with pytest.raises(HeadIndexError, match=r"layers are 0\.\.3 and heads 0\.\.7"):
        check_heads([Head(4, 0)], n_layers=4, n_heads=8)
    with pytest.raises(HeadIndexError, match="L3H7"):
        check_heads([Head(0, 8)], n_layers=4, n_heads=8)
