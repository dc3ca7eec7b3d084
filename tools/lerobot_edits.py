r"""Datasets changed by LeRobot's own tools; run by LeRobot's Python, not leanvla's.

    .venv-lerobot/bin/python tools/lerobot_edits.py EDITS.json     # make lerobot installs it

EDITS.json is a list of edits, made in order in one run (LeRobot takes seconds to import):
- {"append": ROOT}: the dataset at ROOT opened as `lerobot-record --resume` opens it
  (`LeRobotDataset(root)`, then `start_image_writer`) and two episodes added to it (5 and 6
  frames; tasks "task b" and "a task LeRobot added"): random frames of its own features, actions
  (episode, frame, 0, ...), through `add_frame`, `save_episode` and `finalize`;
- {"delete": ROOT, "episodes": [...], "out": OUT}: a new dataset at OUT without those episodes, by
  `lerobot-edit-dataset`'s delete_episodes (a video's kept episodes are decoded and encoded again);
- {"merge": [ROOT, ...], "out": OUT}: the datasets one after another as a new dataset at OUT, by
  `lerobot-edit-dataset`'s merge_datasets;
- {"split": ROOT, "episodes": [...], "out": OUT}: those episodes split off as a new dataset at
  OUT, by `lerobot-edit-dataset`'s split_dataset (the rest, its other split, at OUT's sibling
  OUT.rest);
- {"remove": ROOT, "features": [...], "out": OUT}: a new dataset at OUT without those features,
  by `lerobot-edit-dataset`'s remove_feature;
- {"to_video": ROOT, "out": OUT}: a new dataset at OUT whose image (PNG) features are videos, by
  `lerobot-edit-dataset`'s convert_image_to_video_dataset at its defaults (AV1, a keyframe every
  2 frames, crf 30);
- {"tasks": ROOT, "episode_tasks": {"EPISODE": TASK, ...}}: those episodes' tasks changed in place
  (the data files' task_index, the episodes' tasks, meta/tasks.parquet), by
  `lerobot-edit-dataset`'s modify_tasks.
tests/data/test_lerobot_interop.py reads the results with leanvla and with LeRobot and compares the
two. Exit code 2, with one line, when EDITS.json cannot be read.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from lerobot_reads import lerobot_dataset_class
from lerobot_writes import add_episodes

APPENDED = [(5, "task b"), (6, "a task LeRobot added")]  # task b: one synthetic_dataset has


def edit(LeRobotDataset, entry: dict) -> None:
    from lerobot.datasets.dataset_tools import (
        convert_image_to_video_dataset,
        delete_episodes,
        merge_datasets,
        modify_tasks,
        remove_feature,
        split_dataset,
    )

    if "append" in entry:
        dataset = LeRobotDataset("local/appended", root=entry["append"])
        dataset.start_image_writer(num_processes=0, num_threads=2)  # as lerobot-record --resume does
        add_episodes(dataset, APPENDED, seed=1)
        dataset.finalize()
    elif "delete" in entry:
        dataset = LeRobotDataset("local/source", root=entry["delete"])
        delete_episodes(dataset, entry["episodes"], output_dir=entry["out"], repo_id="local/deleted")
    elif "split" in entry:
        dataset = LeRobotDataset("local/source", root=entry["split"])
        chosen = sorted(entry["episodes"])
        rest = [e for e in range(dataset.meta.total_episodes) if e not in chosen]
        out = Path(entry["out"])
        parts = split_dataset(dataset, {out.name: chosen, f"{out.name}.rest": rest}, output_dir=out.parent)
        assert Path(parts[out.name].root) == out, parts[out.name].root
    elif "remove" in entry:
        dataset = LeRobotDataset("local/source", root=entry["remove"])
        remove_feature(dataset, entry["features"], output_dir=entry["out"], repo_id="local/removed")
    elif "to_video" in entry:
        dataset = LeRobotDataset("local/source", root=entry["to_video"])
        convert_image_to_video_dataset(dataset, Path(entry["out"]), repo_id="local/videos", num_workers=2)
    elif "tasks" in entry:
        dataset = LeRobotDataset("local/source", root=entry["tasks"])
        modify_tasks(dataset, episode_tasks={int(e): task for e, task in entry["episode_tasks"].items()})
    else:
        sources = [LeRobotDataset(f"local/source_{n}", root=root) for n, root in enumerate(entry["merge"])]
        merge_datasets(sources, "local/merged", output_dir=entry["out"])


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    path = Path(sys.argv[1])
    try:
        edits = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        print(f"lerobot_edits: cannot read {path} ({exc}); give a JSON list of edits", file=sys.stderr)
        sys.exit(2)
    LeRobotDataset = lerobot_dataset_class()
    for entry in edits:
        edit(LeRobotDataset, entry)


if __name__ == "__main__":
    main()
