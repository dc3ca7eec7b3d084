r"""What LeRobot's own dataset reader gives for datasets; run by LeRobot's Python, not leanvla's.

    .venv-lerobot/bin/python tools/lerobot_reads.py SPEC.json OUT_DIR     # make lerobot installs it

SPEC.json is a list of {"name": ..., "root": ..., "episodes": [...], "chunk": H}. For each dataset,
OUT_DIR/NAME.npz holds what `lerobot.datasets.lerobot_dataset.LeRobotDataset` (LeRobot 0.4.4,
videos decoded with PyAV) gives, its items stacked:
- `every.KEY`: every frame's features, images as uint8 H x W x C (LeRobot gives them as floats,
  /255, channels first: exactly undone); `every.task`, each frame's task string;
- `chunks.KEY`: the frames of `episodes` alone, each with the H actions from it as LeRobot's
  `delta_timestamps` gives them (`chunks.action_is_pad` where they run past the episode);
- `stats.KEY.STAT`: the statistics LeRobot's policies normalise with (`meta.stats`: mean, std,
  min, max and count of each feature).
tests/data/test_lerobot_interop.py compares these with leanvla's own reading. Exit code 2, with one
line, when SPEC.json cannot be read.
"""

from __future__ import annotations

import json
import sys
import types
import warnings
from pathlib import Path

import numpy as np


def lerobot_dataset_class():
    """LeRobot's LeRobotDataset. torchvision's compiled ops are built for another torch than the
    one beside it here (tools/lerobot_requirements.txt); importing it registers them and fails.
    LeRobot's dataset reader uses only torchvision's Python, so where that fails it is imported
    again without the registrations."""
    # Its notices that its image extension did not load and that its video reader is deprecated.
    warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")
    try:
        import torchvision  # noqa: F401
    except RuntimeError:
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
        skipped = "torchvision._meta_registrations"
        sys.modules[skipped] = types.ModuleType(skipped)
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    return LeRobotDataset


def stacked(items: list[dict], prefix: str, cameras: list[str]) -> dict[str, np.ndarray]:
    """Items' features stacked over the items, each name prefixed; cameras back to uint8 H x W x C."""
    out = {}
    for key in items[0]:
        if isinstance(items[0][key], str):
            out[f"{prefix}.{key}"] = np.array([item[key] for item in items])
            continue
        values = np.stack([item[key].numpy() for item in items])
        if key in cameras:
            values = np.round(values * 255).astype(np.uint8).swapaxes(-3, -2).swapaxes(-2, -1)
        out[f"{prefix}.{key}"] = values
    return out


def read(dataset_class, name: str, root: str, episodes: list[int], chunk: int) -> dict[str, np.ndarray]:
    every = dataset_class(f"local/{name}", root=root, video_backend="pyav")
    steps = [k / every.fps for k in range(chunk)]
    chunks = dataset_class(
        f"local/{name}",
        root=root,
        episodes=episodes,
        delta_timestamps={"action": steps},
        video_backend="pyav",
    )
    stats = {
        f"stats.{key}.{stat}": np.asarray(values[stat])
        for key, values in every.meta.stats.items()
        for stat in ("mean", "std", "min", "max", "count")
    }
    return {
        **stacked([every[i] for i in range(len(every))], "every", every.meta.camera_keys),
        **stacked([chunks[i] for i in range(len(chunks))], "chunks", every.meta.camera_keys),
        **stats,
    }


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    spec_path, out = Path(sys.argv[1]), Path(sys.argv[2])
    try:
        spec = json.loads(spec_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        print(
            f"lerobot_reads: cannot read {spec_path} ({exc}); give a JSON list of datasets", file=sys.stderr
        )
        sys.exit(2)
    dataset_class = lerobot_dataset_class()
    out.mkdir(parents=True, exist_ok=True)
    for entry in spec:
        arrays = read(dataset_class, entry["name"], entry["root"], entry["episodes"], entry["chunk"])
        np.savez(out / f"{entry['name']}.npz", **arrays)


if __name__ == "__main__":
    main()
