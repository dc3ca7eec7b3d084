"""What a run records of its data: the trained episodes, their positions and their tasks only
(evaluation holds those positions out)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from leanvla.cli import main
from leanvla.data.reader import LeRobotDataset
from leanvla.data.writer import LeRobotWriter
from leanvla.train.build import provenance


def test_provenance_names_the_trained_episodes_positions_and_tasks_only(tiny_dataset):
    dataset = LeRobotDataset(tiny_dataset)
    positions, tasks = dataset.episode_column("metaworld/positions"), dataset.episode_tasks()
    assert tasks[0] == tasks[2] != tasks[4]  # episodes 0-2 are one task, 3-5 the other

    one_task = provenance(dataset, [0, 2])
    assert one_task["episodes"] == [0, 2] and one_task["positions"] == [positions[0], positions[2]]
    assert one_task["instructions"] == [tasks[0]]
    assert one_task["dataset"] == str(tiny_dataset.resolve())

    both = provenance(dataset, [4, 0])
    assert both["positions"] == [positions[4], positions[0]]
    assert both["instructions"] == dataset.tasks  # in the dataset's task order


def dataset_with(root: Path, cameras: dict[str, tuple[int, int]], state_dim: int | None = 4) -> Path:
    """Two short episodes with the given cameras (name -> height, width) and state size."""
    features = {
        f"observation.images.{name}": {
            "dtype": "image",
            "shape": [h, w, 3],
            "names": ["height", "width", "channels"],
        }
        for name, (h, w) in cameras.items()
    }
    if state_dim is not None:
        features["observation.state"] = {"dtype": "float32", "shape": [state_dim], "names": None}
    features["action"] = {"dtype": "float32", "shape": [4], "names": None}
    writer = LeRobotWriter(root, fps=10, features=features)
    for _ in range(2):
        frames = {
            key: np.zeros([5, *f["shape"]], np.uint8 if f["dtype"] == "image" else np.float32)
            for key, f in features.items()
        }
        writer.add_episode("task a", frames)
    writer.finalize()
    return root


def refused(capsys, data: Path, out: Path, *options: str) -> str:
    """`leanvla train` on `data`: exit code 2, one line on stderr (returned), nothing written."""
    code = main(["train", "--data", str(data), "--out", str(out), "--steps", "1", *options])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1, lines
    assert not out.exists()
    return lines[0]


def test_cameras_that_the_data_lacks_are_refused(capsys, data, tmp_path):
    assert "camera 'wrist' is not in" in refused(capsys, data, tmp_path / "r", "--cameras", "wrist")
    assert "--cameras is empty" in refused(capsys, data, tmp_path / "r", "--cameras", ",")
    no_images = dataset_with(tmp_path / "no_images", {})
    assert "has no image features; the policy needs at least one camera" in refused(
        capsys, no_images, tmp_path / "r"
    )


def test_images_that_are_not_square_or_not_one_size_are_refused_before_decoding(capsys, tmp_path):
    wide = dataset_with(tmp_path / "wide", {"cam": (16, 24)})
    line = refused(capsys, wide, tmp_path / "r")
    assert line.endswith(
        "are 16x24 ('observation.images.cam'); leanvla models take square images of one size "
        "for every camera (choose cameras with --cameras)"
    )
    two_sizes = dataset_with(tmp_path / "two_sizes", {"top": (16, 16), "wrist": (8, 8)})
    line = refused(capsys, two_sizes, tmp_path / "r")
    assert "are 16x16 ('observation.images.top'), 8x8 ('observation.images.wrist'); leanvla" in line
    assert main(["train", "--data", str(two_sizes), "--out", str(tmp_path / "top"), "--cameras", "top",
                 "--steps", "1", "--batch-size", "2", "--model.size", "tiny", "--threads", "1",
                 "--chunk-size", "4", "--n-action-steps", "2"]) == 0  # fmt: skip


def test_a_checkpoint_must_match_the_data_it_fine_tunes_on(capsys, data, tiny_run, tmp_path):
    # tiny_run observes corner2 and corner3 at 32 px, and a 4-dim state
    init = ("--init", str(tiny_run))
    assert "observes 'observation.images.corner2', which" in refused(capsys, data, tmp_path / "r", *init)
    same_cameras = {"corner2": (32, 32), "corner3": (32, 32)}
    stateless = dataset_with(tmp_path / "stateless", same_cameras, state_dim=None)
    assert "has no 'observation.state' feature" in refused(capsys, stateless, tmp_path / "r", *init)
    small_state = dataset_with(tmp_path / "small_state", same_cameras, state_dim=5)
    assert "expects 'observation.state' of shape [4] but" in refused(
        capsys, small_state, tmp_path / "r", *init
    )


def test_an_auxiliary_objective_on_a_cnn_checkpoint_is_refused(capsys, data, tmp_path):
    cnn = tmp_path / "cnn"
    assert (
        main(
            [
                "train",
                "--data",
                str(data),
                "--out",
                str(cnn),
                "--model.type",
                "cnn",
                "--steps",
                "1",
                "--batch-size",
                "4",
                "--chunk-size",
                "4",
                "--n-action-steps",
                "2",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    capsys.readouterr()  # the base's training output
    line = refused(capsys, data, tmp_path / "r", "--init", str(cnn / "policy"), "--aux.horizon", "2")
    assert f"--aux needs the reference VLA; {cnn / 'policy'} is a 'cnn' policy" in line
