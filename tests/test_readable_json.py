"""Readable JSON: the same data as json.dumps, on fewer lines, each within the width where it can be."""

from __future__ import annotations

import json
import random

import pytest

from leanvla.readable_json import readable_json


def random_value(rng: random.Random, depth: int = 0):
    """A nested JSON value: objects (with keys json turns into text), lists, text, numbers, null."""
    kind = rng.choice(
        ["dict", "list"] if depth == 0 else ["dict", "list", "scalar", "scalar"] if depth < 4 else ["scalar"]
    )
    if kind == "dict":
        keys = [
            rng.choice(["a", "shape", "observation.images.wrist", "把方块", 7, 2.5, True, None])
            for _ in range(rng.randint(0, 5))
        ]
        return {key: random_value(rng, depth + 1) for key in keys}
    if kind == "list":  # a tuple as often: json writes both as lists
        items = [random_value(rng, depth + 1) for _ in range(rng.randint(0, 6))]
        return tuple(items) if rng.random() < 0.5 else items
    return rng.choice([0, -3, 1.25, 1e-9, True, False, None, "", "x" * rng.randint(1, 60), "Würfel"])


VALUES = [random_value(random.Random(seed)) for seed in range(200)]


@pytest.mark.parametrize("indent", [2, 4])
def test_at_width_zero_it_is_json_dumps_indented(indent):
    for value in VALUES:
        assert readable_json(value, width=0, indent=indent) == json.dumps(
            value, indent=indent, ensure_ascii=False
        )


@pytest.mark.parametrize("width", [1, 20, 40, 100, 10_000])
def test_it_reads_back_as_json_dumps_does(width):
    for value in VALUES:
        assert json.loads(readable_json(value, width=width)) == json.loads(json.dumps(value))


@pytest.mark.parametrize("width", [20, 40, 100])
def test_a_line_past_the_width_holds_nothing_that_could_have_been_split(width):
    for value in VALUES:
        for line in readable_json(value, width=width).splitlines():
            if len(line) > width and not line.endswith(("{", "[")):  # not a long key opening its value
                shown = value_on(line)
                assert not (isinstance(shown, (dict, list)) and shown), line


def value_on(line: str):
    """The value a line shows: a list's item, or an object's after its key (which may hold `": `)."""
    text = line.strip().removesuffix(",")
    if text.startswith('"'):
        _, end = json.JSONDecoder().raw_decode(text)
        if text[end : end + 2] == ": ":
            return json.loads(text[end + 2 :])
    return json.loads(text)


def test_what_fits_stays_on_one_line():
    summary = {"episodes": 9, "features": {"action": {"dtype": "float32", "shape": [4]}}}
    assert readable_json(summary) == json.dumps(summary)
    wide = {"tasks": ["reach the goal position"] * 4, "shape": [64, 64, 3]}
    assert readable_json(wide, width=60).splitlines() == [
        "{",
        '  "tasks": [',
        '    "reach the goal position",',
        '    "reach the goal position",',
        '    "reach the goal position",',
        '    "reach the goal position"',
        "  ],",
        '  "shape": [64, 64, 3]',
        "}",
    ]


def test_keys_and_text_are_written_as_json_reads_them():
    value = {7: "Greif den Würfel", False: None, None: [], 2.5: {}, "把方块": [1]}
    text = readable_json(value, width=0)
    assert '"7": "Greif den Würfel"' in text and '"false": null' in text and '"null": []' in text
    assert '"2.5": {}' in text and '"把方块": [' in text
    assert json.loads(text) == json.loads(json.dumps(value))
