"""The data contract a policy's weights were trained for: what it observes and what it outputs.

Every policy's config starts with these fields (the VLA's and the CNN baseline's alike), so a
checkpoint says exactly what it consumes; `leanvla train` fills them from the dataset.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from leanvla.errors import UserError
from leanvla.json_values import check_fields


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
        check_fields(cls, values, where)
