"""meta/info.json, read and checked entry by entry before anything is taken from it: a file edited by
hand, or written by another tool, is one line naming the entry (an fps of "10", a feature without
a dtype and a path template naming another placeholder were tracebacks, or passed unremarked)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from leanvla.errors import UserError, require
from leanvla.json_values import is_number, is_whole

# The entries every reader of a dataset (v2.x or v3.x) takes.
REQUIRED = ("fps", "features", "data_path", "total_episodes", "total_frames")

# Each path template's placeholders: v3.x keeps many episodes a file, v2.x an episode a file.
V3_TEMPLATES = {
    "data_path": ("chunk_index", "file_index"),
    "video_path": ("video_key", "chunk_index", "file_index"),
}
V2_TEMPLATES = {
    "data_path": ("episode_chunk", "episode_index"),
    "video_path": ("episode_chunk", "video_key", "episode_index"),
}


def read_info(path: Path) -> dict:
    """The JSON object in `path`, which the caller has found to exist."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON ({exc}); the dataset is corrupt") from exc
    require(isinstance(info, dict), f"{path} must hold a JSON object, not {type(info).__name__}")
    return info


def version_remedy(version: str, root: Path) -> str:
    """What to do with a dataset of a codebase_version leanvla does not read (it reads v3.x)."""
    if version in ("v2.0", "v2.1"):
        return f"convert it with `leanvla data convert {root} --out DIR`"
    if version.startswith(("v1.", "v0.")):
        return "convert it to v2.0 with lerobot's convert_dataset_v1_to_v2, then with `leanvla data convert`"
    return "write it as v3.0, or see whether a newer leanvla reads that version"


def check_info(info: dict, path: Path, templates: dict[str, tuple[str, ...]]) -> None:
    """The REQUIRED entries, each of its kind, and each of `templates` (an entry's name -> the
    placeholders it may name) a path template that fills in; a `video_path` of null is left to
    the default."""
    for key in REQUIRED:
        require(key in info, f"{path} has no '{key}' entry; the dataset metadata is incomplete")
    fps = info["fps"]
    require(
        is_number(fps) and fps > 0 and math.isfinite(fps),
        f"{path}: fps must be a positive number of frames per second, got {json.dumps(fps)}",
    )
    for key in ("total_episodes", "total_frames"):
        value = info[key]
        require(is_whole(value, 0), f"{path}: {key} must be a whole number, got {json.dumps(value)}")
    features = info["features"]
    require(
        isinstance(features, dict),
        f"{path}: features must be an object of each feature's dtype and shape, got {json.dumps(features)[:80]}",
    )
    for name, feature in features.items():
        require(
            isinstance(feature, dict) and isinstance(feature.get("dtype"), str),
            f"{path}: feature '{name}' must be an object with a 'dtype' (a string), got {json.dumps(feature)[:80]}",
        )
        shape = feature.get("shape")
        require(
            isinstance(shape, list) and shape and all(is_whole(n, 1) for n in shape),
            f"{path}: feature '{name}' must have a 'shape' of whole numbers >= 1, got {json.dumps(shape)}",
        )
    for key, names in templates.items():
        template = info.get(key)
        if template is None and key != "data_path":
            continue
        problem = "not a string"
        if isinstance(template, str):
            try:
                template.format(**dict.fromkeys(names, 0))
                continue
            except (KeyError, IndexError, ValueError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
        raise UserError(
            f"{path}: {key} {json.dumps(template)} is not a path template ({problem}); it may name "
            f"{', '.join('{' + n + '}' for n in names)}"
        )
