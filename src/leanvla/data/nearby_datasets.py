"""LeRobotDatasets near a directory that is not one, for the refusal to name: the dataset holding
it (`--data DATASET/meta` or `DATASET/data` given), or those below it (a folder of datasets given,
as LeRobot's home holds them: HF_LEROBOT_HOME/ORG/NAME)."""

from __future__ import annotations

import os
from pathlib import Path

from leanvla.data import format as fmt

# Directories looked into below the one given, at most: a home directory holds thousands, and the
# refusal must not take seconds.
LOOKED_INTO = 200
NAMED = 3  # datasets the refusal names; the rest it counts


def nearby_datasets(root: Path) -> str:
    """'; it is inside the dataset X' or '; datasets below it: A, B (and N more)', or '' when none."""
    for above in list(Path(root).absolute().parents)[:3]:
        if (above / fmt.INFO_PATH).is_file():
            return f"; it is inside the dataset {above}: pass that"
    found = _below(Path(root))
    if not found:
        return ""
    named = ", ".join(str(path) for path in found[:NAMED])
    more = f" (and {len(found) - NAMED} more)" if len(found) > NAMED else ""
    return f"; datasets below it: {named}{more}"


def _below(root: Path) -> list[Path]:
    """Datasets one or two levels below `root`, in name order, looking into at most LOOKED_INTO
    directories."""
    found, looked, level = [], 0, [root]
    for _ in range(2):
        deeper = []
        for directory in level:
            for entry in _subdirectories(directory):
                if looked == LOOKED_INTO:
                    return found
                looked += 1
                if (entry / fmt.INFO_PATH).is_file():
                    found.append(entry)
                else:
                    deeper.append(entry)
        level = deeper
    return found


def _subdirectories(directory: Path) -> list[Path]:
    try:
        with os.scandir(directory) as entries:
            names = sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
    except OSError:  # unreadable: nothing to suggest there
        return []
    return [directory / name for name in names]
