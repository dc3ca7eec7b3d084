"""Datasets named as LeRobot names them. `LeRobotDataset("lerobot/pusht")` reads
$HF_LEROBOT_HOME/lerobot/pusht, where LeRobot downloads and records; `--data lerobot/pusht` said
"does not exist" unless run from that directory. A dataset option given a repo id that is no
directory here is read from there instead (anything here of that name comes first)."""

from __future__ import annotations

import os
import typing
from dataclasses import fields
from pathlib import Path
from typing import Annotated


class _DatasetMarker:
    """Marks an option whose value is a dataset directory (see DatasetDir)."""


DATASET = _DatasetMarker()
# The type of an option naming a dataset to read: a directory, or a LeRobot repo id.
DatasetDir = Annotated[Path, DATASET]


def lerobot_home() -> Path:
    """Where LeRobot keeps datasets: $HF_LEROBOT_HOME, else $HF_HOME/lerobot, else
    $XDG_CACHE_HOME/huggingface/lerobot, else ~/.cache/huggingface/lerobot; as LeRobot 0.4 and
    huggingface_hub work it out (tests compare the two)."""
    cache = os.getenv("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache"))
    hf_home = os.path.expandvars(os.path.expanduser(os.getenv("HF_HOME", os.path.join(cache, "huggingface"))))
    return Path(os.getenv("HF_LEROBOT_HOME", Path(hf_home) / "lerobot")).expanduser()


def is_repo_id(path: Path) -> bool:
    """Whether `path`, as given, could be a Hub repo id: OWNER/NAME, relative, neither part a dot
    or dots."""
    parts = Path(path).parts
    return (
        not Path(path).is_absolute()
        and len(parts) == 2
        and not any(part in (".", "..") or part.startswith("~") for part in parts)
    )


def in_lerobot_home(path: Path) -> Path | None:
    """The directory in LeRobot's home that `path` names as a repo id, where nothing here has that
    name; else None. (Whether it holds a whole dataset, the reader says, naming what is missing.)"""
    if Path(path).exists() or not is_repo_id(path):
        return None
    found = lerobot_home() / path
    return found if found.is_dir() else None


def where_looked(path: Path) -> str:
    """' here, nor in LeRobot's home (H/OWNER/NAME ...)' for a repo id: what a refusal of a
    dataset that does not exist adds; '' for any other path."""
    if not is_repo_id(path):
        return ""
    return f" here, nor in LeRobot's home ({lerobot_home() / path}; $HF_LEROBOT_HOME sets it)"


def find_datasets(cfg) -> list[tuple[Path, Path]]:
    """Each of `cfg`'s DatasetDir options that names a dataset in LeRobot's home is set to that
    directory; returns (as given, found) for each."""
    hints = typing.get_type_hints(type(cfg), include_extras=True)
    found_here = []
    for field in fields(cfg):
        value = getattr(cfg, field.name)
        if value is not None and _names_a_dataset(hints[field.name]):
            found = in_lerobot_home(value)
            if found is not None:
                setattr(cfg, field.name, found)
                found_here.append((value, found))
    return found_here


def _names_a_dataset(hint) -> bool:
    """Whether a field's type is DatasetDir, or DatasetDir | None."""
    if DATASET in getattr(hint, "__metadata__", ()):
        return True
    return any(_names_a_dataset(arg) for arg in typing.get_args(hint) if arg is not type(None))
