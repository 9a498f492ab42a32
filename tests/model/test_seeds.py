"""Seed lists (`0-9,42`): what they expand to, and a clear refusal of what cannot be used."""
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.seeds import MAX_SEED, SEEDS_PATTERN, SeedsError, decimal_at_most, parse_seeds


def test_ranges_are_inclusive_and_keep_the_order_given():
    assert parse_seeds("0-9,42") == [*range(10), 42]
    assert parse_seeds("42,3-5,0") == [42, 3, 4, 5, 0]
    assert parse_seeds("7") == [7] and parse_seeds("5-5") == [5]


def test_duplicates_are_dropped_where_they_repeat():
    assert parse_seeds("3,0-4,3,2-6") == [3, 0, 1, 2, 4, 5, 6]


def test_spaces_around_items_are_allowed_and_the_largest_seed_is_fine():
    assert parse_seeds(" 1 , 2-3 ") == [1, 2, 3]
    assert parse_seeds(f"{MAX_SEED - 1}-{MAX_SEED}") == [MAX_SEED - 1, MAX_SEED]


@pytest.mark.parametrize("text,words", [
    ("", "no seeds given"),
    ("1,,2", "'' is neither a seed nor a range"),
    ("1,", "'' is neither a seed nor a range"),
    ("a-3", "'a-3' is neither a seed nor a range"),
    ("-3", "'-3' is neither a seed nor a range"),
    ("1-2-3", "'1-2-3' is neither"),
    ("9-0", "range 9-0 is reversed; write 0-9"),
    (f"{MAX_SEED + 1}", f"seed {MAX_SEED + 1} is out of range 0..{MAX_SEED}"),
    ("12345678901", "seed 12345678901 is out of range"),
    ("0" * 20 + "9" * 30, "seed 99999999999999999999... is out of range"),
])
def test_bad_syntax_is_refused_with_a_message_naming_the_item(text, words):
    with pytest.raises(SeedsError, match=re.escape(words)):
        parse_seeds(text)


def test_too_many_seeds_are_refused_before_a_range_is_expanded():
    with pytest.raises(SeedsError, match="range 0-4294967295 has 4294967296 seeds, more than the limit of 100"):
        parse_seeds("0-4294967295", limit=100)
    with pytest.raises(SeedsError, match="more than the limit of 10 seeds"):
        parse_seeds("0-5,10-15", limit=10)
    assert parse_seeds("0-9,0-9", limit=10) == list(range(10))  # counted after duplicates go


def test_leading_zeros_are_the_same_number():
    assert parse_seeds("00000000001,0042-0043,0000000004294967295") == [1, 42, 43, MAX_SEED]


def test_without_spaces_allowed_any_blank_is_refused():
    for text in (" 1", "1 ,2", "1\n", "1\t-2", "1\u00a0"):
        with pytest.raises(SeedsError, match="without spaces"):
            parse_seeds(text, spaces=False)


@pytest.mark.parametrize("text", ["0", "0-9,42", "1,2,3-4", "4294967295", "00000000001", "0004294967295"])
def test_the_schema_pattern_admits_what_parses(text):
    assert re.fullmatch(SEEDS_PATTERN, text)
    parse_seeds(text, spaces=False)


@pytest.mark.parametrize("text", ["", "1,", ",1", "1 - 2", "-1", "1-2-3", "x", "4294967296", "9999999999",
                                  "12345678901", "1\n"])
def test_the_schema_pattern_refuses_what_cannot_parse(text):
    assert not re.fullmatch(SEEDS_PATTERN, text)
    with pytest.raises(SeedsError):
        parse_seeds(text, spaces=False)


def test_a_number_pattern_holds_exactly_the_numbers_up_to_its_limit():
    for limit in (0, 7, 10, 99, 100, 101, 1000, 2020, 30405):
        number = re.compile(decimal_at_most(limit))
        assert [n for n in range(40000) if bool(number.fullmatch(str(n))) != (n <= limit)] == []
        assert number.fullmatch("000" + str(limit)) and not number.fullmatch("000" + str(limit + 1))


@settings(max_examples=300, deadline=None)
@given(st.from_regex(SEEDS_PATTERN, fullmatch=True))
def test_what_the_schema_pattern_admits_is_refused_only_for_what_a_pattern_cannot_say(text):
    """The HTTP contract: a list the pattern admits parses, unless a range is reversed or it
    names more seeds than the limit; those two are the 422s the schema documents."""
    try:
        parse_seeds(text, limit=1000, spaces=False)
    except SeedsError as exc:
        assert re.search(r"is reversed|more than the limit", str(exc)), (text, exc)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.text(alphabet="0123456789-, \n\t+x", max_size=30),
                 st.from_regex(SEEDS_PATTERN, fullmatch=True).map(lambda t: t + "9" * 10)))
def test_what_the_schema_pattern_refuses_does_not_parse(text):
    if not re.fullmatch(SEEDS_PATTERN, text):
        with pytest.raises(SeedsError):
            parse_seeds(text, limit=1000, spaces=False)
