"""The data contract a policy's weights were trained for: what it observes and what it outputs.

Every policy's config starts with these fields (the VLA's and the CNN baseline's alike), so a
checkpoint says exactly what it consumes; `leanvla train` fills them from the dataset.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass, field, fields

from leanvla.errors import UserError
from leanvla.json_values import is_number, is_whole


@dataclass
class DataContract:
    cameras: list[str] = field(default_factory=lambda: ["observation.images.corner2"])
    """Image features the policy observes, in order."""
    image_size: int = 64
    """Side of the square input images, pixels (a dataset's cameras of another shape are fitted to it:
    leanvla.data.resize)."""
    image_fit: str = "pad"
    """How a camera of another shape becomes that square: 'pad' (scaled whole, padded with black) or
    'crop' (its centred square, scaled); the same in training and in `Policy.act`."""
    state_dim: int = 4
    """Proprio state dimension (Meta-World: hand xyz + gripper)."""
    action_dim: int = 4
    """Action dimension."""
    chunk_size: int = 16
    """Actions predicted per inference (the action chunk H)."""
    n_action_steps: int = 8
    """Actions of each chunk executed before predicting again (receding horizon)."""

    @classmethod
    def check_values(cls, values: dict, where: str) -> None:
        """One line for a config (a checkpoint's, edited by hand) that lacks a contract field or holds
        a value of the wrong kind ("8" for 8), before anything is built from it or reads it."""
        absent = [f.name for f in fields(DataContract) if f.name not in values]
        if absent:
            raise UserError(f"{where} has no '{absent[0]}'; every policy's config records what it observes")
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            if f.name in values and not _fits(values[f.name], hints[f.name]):
                raise UserError(f"{where}: '{f.name}' must be {f.type}, got {json.dumps(values[f.name])}")


def _fits(value, hint) -> bool:
    """`value`, read from JSON, is of the annotated type (an int passes for a float, a bool for neither)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arg) for arg in args)
    if origin is list:
        return isinstance(value, list) and all(_fits(v, args[0]) for v in value)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is float:
        return is_number(value)
    if hint is int:
        return is_whole(value)
    return isinstance(value, hint)
