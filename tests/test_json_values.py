"""What passes for a number, or a whole number, in JSON written by hand: never a bool (Python's
bool is an int), and a whole number never a float (4.0); a file that does not parse is one line."""

from __future__ import annotations

import json

import pytest

from leanvla.errors import UserError
from leanvla.json_values import is_number, is_whole, read_json


def test_a_number_is_an_int_or_a_float_and_never_a_bool():
    read = json.loads('[3, 2.5, -1e-3, true, false, "3", null, [1]]')
    assert [is_number(v) for v in read] == [True, True, True, False, False, False, False, False]


def test_a_whole_number_is_an_int_of_at_least_the_least_given():
    read = json.loads("[0, 7, -2, 4.0, true, null]")
    assert [is_whole(v) for v in read] == [True, True, True, False, False, False]
    assert [is_whole(v, 0) for v in read] == [True, True, False, False, False, False]
    assert [is_whole(v, 1) for v in read] == [False, True, False, False, False, False]


def test_a_json_file_that_cannot_be_read_is_one_line_naming_it(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"a": [1, 2.5, true]}')
    assert read_json(path) == {"a": [1, 2.5, True]}
    path.write_text('{"a": ')
    with pytest.raises(UserError) as truncated:
        read_json(path, "labels file", "mend it")
    assert str(truncated.value) == (
        f"cannot read labels file {path}: Expecting value: line 1 column 7 (char 6); mend it"
    )
    with pytest.raises(UserError) as missing:
        read_json(tmp_path / "none.json")
    assert str(missing.value) == (
        f"cannot read {tmp_path / 'none.json'}: [Errno 2] No such file or directory: '{tmp_path / 'none.json'}'"
    )
