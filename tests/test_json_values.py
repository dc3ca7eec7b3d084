"""What passes for a number, or a whole number, in JSON written by hand: never a bool (Python's
bool is an int), and a whole number never a float (4.0)."""

from __future__ import annotations

import json

from leanvla.json_values import is_number, is_whole


def test_a_number_is_an_int_or_a_float_and_never_a_bool():
    read = json.loads('[3, 2.5, -1e-3, true, false, "3", null, [1]]')
    assert [is_number(v) for v in read] == [True, True, True, False, False, False, False, False]


def test_a_whole_number_is_an_int_of_at_least_the_least_given():
    read = json.loads("[0, 7, -2, 4.0, true, null]")
    assert [is_whole(v) for v in read] == [True, True, True, False, False, False]
    assert [is_whole(v, 0) for v in read] == [True, True, False, False, False, False]
    assert [is_whole(v, 1) for v in read] == [False, True, False, False, False, False]
