"""What a refusal of a directory that is not a dataset (or a checkpoint) names near it: the one
holding it (`--data DATASET/meta`, `--policy CHECKPOINT/config.json` given), or those one or two
levels below it (a folder of them given: LeRobot's home holds datasets as ORG/NAME, a folder of
runs its checkpoints as RUN/policy)."""

from __future__ import annotations

import os
from pathlib import Path

# Directories looked into below the one given, at most: a home directory holds thousands, and the
# refusal must not take seconds.
LOOKED_INTO = 200
NAMED = 3  # those the refusal names; the rest it counts


def nearby(path: Path, marker: str, what: str) -> str:
    """'; it is inside the WHAT X: pass that' or '; WHATs below it: A, B (and N more)', or '' when
    there is none; each is a directory holding `marker` (a path relative to it)."""
    for above in list(Path(path).absolute().parents)[:3]:
        if (above / marker).is_file():
            return f"; it is inside the {what} {above}: pass that"
    found = _below(Path(path), marker)
    if not found:
        return ""
    named = ", ".join(str(directory) for directory in found[:NAMED])
    more = f" (and {len(found) - NAMED} more)" if len(found) > NAMED else ""
    return f"; {what}s below it: {named}{more}"


def _below(root: Path, marker: str) -> list[Path]:
    """Directories holding `marker` one or two levels below `root`, in name order, looking into at
    most LOOKED_INTO directories."""
    found, looked, level = [], 0, [root]
    for _ in range(2):
        deeper = []
        for directory in level:
            for entry in _subdirectories(directory):
                if looked == LOOKED_INTO:
                    return found
                looked += 1
                if (entry / marker).is_file():
                    found.append(entry)
                else:
                    deeper.append(entry)
        level = deeper
    return found


def _subdirectories(directory: Path) -> list[Path]:
    try:
        with os.scandir(directory) as entries:
            names = sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
    except OSError:  # unreadable, or not a directory: nothing to suggest there
        return []
    return [directory / name for name in names]
