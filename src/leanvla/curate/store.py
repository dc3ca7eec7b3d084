"""The gradient store: one projected gradient per demonstration on disk, memory-mapped.

    DIR/index.json   what the rows are (episode, task, role), P, and the settings that made them
    DIR/phi.npy      N x P float32, written row by row
    DIR/done.npy     N uint8, set after a row is flushed (a killed collection resumes there)

Rows are written by whichever process owns them (data-parallel collection gives process r the
rows r, r + W, ...); distinct rows never overlap, so the processes share the files safely.
Stored gradients are reusable: scoring with another damping, rank or fraction reads them again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from leanvla.atomic import write_json_atomic
from leanvla.errors import UserError
from leanvla.json_values import read_json

INDEX, PHI, DONE = "index.json", "phi.npy", "done.npy"
DAMAGED = "delete the store, or pass --overwrite, to collect the gradients again"


@dataclass(frozen=True)
class Row:
    episode: int
    task: int
    role: str  # "train" (scored) or "val" (builds a task's query)


class GradientStore:
    def __init__(self, root: Path, rows: list[Row], dim: int, settings: dict):
        """Open the store at `root`, creating it, or resuming one made with the same rows and settings."""
        self.root = Path(root)
        self.rows = rows
        index = {"dim": dim, "settings": settings, "rows": [[r.episode, r.task, r.role] for r in rows]}
        if (self.root / INDEX).is_file():
            existing = read_json(self.root / INDEX, remedy=DAMAGED)
            if existing != index:
                raise UserError(
                    f"{self.root} holds gradients collected with {_difference(existing, index)}; pass "
                    "--overwrite to collect them again, or choose another --out"
                )
            self.phi = np.load(self.root / PHI, mmap_mode="r+")
            self.done = np.load(self.root / DONE, mmap_mode="r+")
        else:
            self.root.mkdir(parents=True, exist_ok=True)
            self.phi = np.lib.format.open_memmap(self.root / PHI, "w+", np.float32, (len(rows), dim))
            self.done = np.lib.format.open_memmap(self.root / DONE, "w+", np.uint8, (len(rows),))
            self.phi.flush()
            self.done.flush()
            write_json_atomic(self.root / INDEX, index)  # last: an index means the files exist

    @classmethod
    def open(cls, root: Path) -> GradientStore:
        """An existing store, as written."""
        index = read_json(Path(root) / INDEX, remedy=DAMAGED)
        rows = [Row(int(e), int(t), str(role)) for e, t, role in index["rows"]]
        return cls(root, rows, index["dim"], index["settings"])

    def pending(self, rank: int = 0, world_size: int = 1) -> list[int]:
        """Positions this process still has to collect."""
        return [i for i in range(rank, len(self.rows), world_size) if not self.done[i]]

    def write(self, position: int, phi: torch.Tensor) -> None:
        self.phi[position] = phi.detach().float().cpu().numpy()
        self.phi.flush()  # the row reaches the file before it is marked done
        self.done[position] = 1
        self.done.flush()

    @property
    def complete(self) -> bool:
        return bool(self.done.all())

    def matrix(self, role: str) -> tuple[torch.Tensor, list[Row]]:
        """The rows of one role as an n x P tensor (read from the map) and their descriptions."""
        positions = [i for i, r in enumerate(self.rows) if r.role == role]
        return torch.from_numpy(np.asarray(self.phi[positions])), [self.rows[i] for i in positions]


# The settings that are digests of the files the gradients came from (curate.run.input_digests),
# and the flag naming each.
INPUT_FILES = {"policy_files": "--policy", "data_files": "--data", "val_data_files": "--val-data"}


def _difference(existing, index: dict) -> str:
    """What first sets a store's index apart from the one asked for: a setting, the rows, P, or
    the files they came from."""
    existing = existing if isinstance(existing, dict) else {}  # a damaged index differs in everything
    before = existing.get("settings") if isinstance(existing.get("settings"), dict) else {}
    now = index["settings"]
    for key in now:
        if key not in INPUT_FILES and before.get(key) != now[key]:
            return f"{key}={before.get(key)!r}, not {now[key]!r}"
    if existing.get("rows") != index["rows"]:
        return "other demonstrations (another --data, --episodes, --val-data or --val-per-task)"
    if existing.get("dim") != index["dim"]:
        return f"P={existing.get('dim')!r}, not {index['dim']!r} (the policy at --policy has changed)"
    for key, flag in INPUT_FILES.items():
        if before.get(key) != now.get(key):
            if before.get(key) is None:
                return "no record of the files they came from (an earlier leanvla)"
            changed = "trained again?" if key == "policy_files" else "recorded or edited again?"
            return f"{flag} as it was then: its files have changed since ({changed})"
    return "other settings"
