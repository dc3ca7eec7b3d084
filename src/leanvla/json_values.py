"""Values read from JSON that may have been written by hand or by another tool (a checkpoint's
config, a run's train_config.json, a dataset's info.json), checked for the kind that is wanted:
Python reads `true` as a bool, which is an int, and `4.0` as a float, so each check says what it
takes. `check_fields` checks a dict against a dataclass's annotations, so a value of the wrong
kind is one line naming it, not a TypeError where it is first used."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path

from leanvla.errors import UserError


def read_json(path: Path | str, what: str = "", remedy: str = ""):
    """The JSON value in `path`. One that cannot be read or does not parse (edited by hand,
    truncated) is one line: 'cannot read [WHAT ]PATH: why[; REMEDY]'."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(
            f"cannot read {what + ' ' if what else ''}{path}: {exc}{'; ' + remedy if remedy else ''}"
        ) from exc


def is_number(value) -> bool:
    """An int or a float, not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_whole(value, least: int | None = None) -> bool:
    """An int (not a bool, nor a float such as 4.0), of at least `least` where one is given."""
    return isinstance(value, int) and not isinstance(value, bool) and (least is None or value >= least)


def check_fields(cls: type, values: dict, where: str) -> None:
    """Each of `values` that names a field of the dataclass `cls` is of the field's annotated kind:
    one line naming it ("8" for 8, "yes" for true), before anything is built from it."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in values and not fits(values[f.name], hints[f.name]):
            raise UserError(f"{where}: '{f.name}' must be {f.type}, got {json.dumps(values[f.name])}")


def fits(value, hint) -> bool:
    """`value`, read from JSON, is of the annotated type (an int passes for a float, a bool for neither)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(fits(value, arg) for arg in args)
    if origin is typing.Literal:
        return value in args
    if origin is list:
        return isinstance(value, list) and all(fits(v, args[0]) for v in value)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is float:
        return is_number(value)
    if hint is int:
        return is_whole(value)
    return isinstance(value, hint)
