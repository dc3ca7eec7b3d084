"""The kinds of value that JSON written by hand, or by another tool, may hold where a number is
wanted: Python reads `true` as a bool, which is an int, and `4.0` as a float, so each check says
what it takes."""

from __future__ import annotations


def is_number(value) -> bool:
    """An int or a float, not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_whole(value, least: int | None = None) -> bool:
    """An int (not a bool, nor a float such as 4.0), of at least `least` where one is given."""
    return isinstance(value, int) and not isinstance(value, bool) and (least is None or value >= least)
