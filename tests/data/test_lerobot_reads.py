"""LeRobot's own reader reads the datasets leanvla writes as leanvla reads them: every frame's
features and task, the training samples leanvla's ChunkDataset makes (the frames of some episodes,
each with its action chunk and padding) as LeRobot's `delta_timestamps` gives them, and the
statistics LeRobot's policies normalise with as the frames' own.
LeRobot 0.4.4 runs in a venv of its own (`make lerobot`, which `make test` runs first) through
tools/lerobot_reads.py; without it these tests skip, saying so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from leanvla.data.convert import ConvertConfig, convert
from leanvla.data.reader import LeRobotDataset
from leanvla.data.samples import ChunkDataset
from tests.data.helpers import synthetic_dataset, to_v21

REPO = Path(__file__).resolve().parents[2]
CAM = "observation.images.cam"
CHUNK = 4  # the synthetic episodes have 4 to 9 frames: every chunk near an end is padded
EPISODES = [1, 3]  # read apart: neither the first episode nor next to one another
# v2.1 datasets converted to v3: (name, how to_v21 encodes the camera, convert's --videos, the
# video files' size in MB: None keeps the default, one file for all).
CONVERTED = [
    ("joined H.264 with B-frames", {"bframes": 2}, "join", None),
    ("joined AV1 as LeRobot encodes", {"codec": "libsvtav1"}, "join", None),
    ("joined, a file each over two chunks", {"chunks_size": 3}, "join", 1e-6),
    ("linked", {}, "link", None),
]
NAMES = ["recorded", "many data files", *(name for name, *_ in CONVERTED)]


def lerobot_python() -> Path:
    """LEANVLA_LEROBOT_PYTHON, else the .venv-lerobot beside the venv running the tests."""
    named = os.environ.get("LEANVLA_LEROBOT_PYTHON")
    return Path(named) if named else Path(sys.prefix).parent / ".venv-lerobot" / "bin" / "python"


@pytest.fixture(scope="module")
def datasets(tiny_dataset, tmp_path_factory) -> dict[str, Path]:
    """Each dataset as leanvla writes it: recorded from Meta-World, written across many data files
    and chunks, and converted from v2.1 with mp4 cameras joined or linked."""
    pytest.importorskip("av", reason="PyAV is in the dev extra; `make test` installs it")
    tmp = tmp_path_factory.mktemp("for_lerobot")
    written = {
        "recorded": tiny_dataset,
        "many data files": synthetic_dataset(
            tmp / "many_files", image_size=8, chunks_size=2, data_files_size_in_mb=1e-6
        ),
    }
    source = synthetic_dataset(tmp / "source", image_size=32)
    for number, (name, encoding, videos, file_mb) in enumerate(CONVERTED):
        v21 = to_v21(source, tmp / f"v21_{number}", video_keys=(CAM,), **encoding)
        if file_mb is not None:
            info = json.loads((v21 / "meta/info.json").read_text())
            (v21 / "meta/info.json").write_text(json.dumps({**info, "video_files_size_in_mb": file_mb}))
        written[name] = tmp / f"v30_{number}"
        convert(ConvertConfig(v21, out=written[name], videos=videos))
    return written


@pytest.fixture(scope="module")
def lerobot_reads(datasets, tmp_path_factory) -> dict[str, dict[str, np.ndarray]]:
    """What LeRobot's LeRobotDataset gives for each dataset (tools/lerobot_reads.py)."""
    python = lerobot_python()
    if not python.exists():
        if "LEANVLA_LEROBOT_PYTHON" in os.environ:
            pytest.fail(f"LEANVLA_LEROBOT_PYTHON names {python}, which does not exist")
        pytest.skip(
            f"LeRobot's own reader is not installed at {python}: run `make lerobot` (`make test` does)"
        )
    tmp = tmp_path_factory.mktemp("lerobot_reads")
    files = {name: f"dataset_{number}" for number, name in enumerate(datasets)}
    spec = [
        {"name": files[name], "root": str(root), "episodes": EPISODES, "chunk": CHUNK}
        for name, root in datasets.items()
    ]
    (tmp / "spec.json").write_text(json.dumps(spec))
    # Offline, and the datasets library's caches kept out of the user's home.
    env = {**os.environ, "HF_HOME": str(tmp / "hf"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run(
        [str(python), str(REPO / "tools/lerobot_reads.py"), str(tmp / "spec.json"), str(tmp / "out")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, f"LeRobot could not read them:\n{done.stderr[-3000:]}"
    return {name: dict(np.load(tmp / "out" / f"{file}.npz")) for name, file in files.items()}


@pytest.mark.parametrize("name", NAMES)
def test_lerobot_reads_every_frame_as_leanvla_does(datasets, lerobot_reads, name):
    ours, theirs = LeRobotDataset(datasets[name]), lerobot_reads[name]
    assert sorted(k.split(".", 1)[1] for k in theirs if k.startswith("every.")) == sorted(
        [*ours.features, "task"]
    )
    for key in ours.features:
        values = ours.read_images(key) if key in ours.camera_keys else ours.read_array(key)
        assert values.shape == theirs[f"every.{key}"].shape, key
        assert np.array_equal(values, theirs[f"every.{key}"]), key  # every pixel, every number
    assert list(theirs["every.task"]) == [ours.tasks[t] for t in ours.read_array("task_index")]


@pytest.mark.parametrize("name", NAMES)
def test_lerobot_gives_the_training_samples_leanvla_makes(datasets, lerobot_reads, name):
    ours, theirs = LeRobotDataset(datasets[name]), lerobot_reads[name]
    samples = ChunkDataset(ours, ours.camera_keys, CHUNK, episodes=EPISODES)
    batch = samples.batch(torch.arange(len(samples)))
    assert np.array_equal(batch.actions.numpy(), theirs["chunks.action"])
    assert np.array_equal(batch.action_mask.numpy() == 0, theirs["chunks.action_is_pad"])
    assert theirs["chunks.action_is_pad"].any()  # chunks that run past their episode's end are in
    assert np.array_equal(batch.state.numpy(), theirs["chunks.observation.state"])
    assert np.array_equal(batch.task_index.numpy(), theirs["chunks.task_index"])
    assert np.array_equal(samples.episode_index.numpy(), theirs["chunks.episode_index"])
    for number, key in enumerate(ours.camera_keys):
        assert np.array_equal(batch.images[:, number].permute(0, 2, 3, 1).numpy(), theirs[f"chunks.{key}"]), (
            key
        )


@pytest.mark.parametrize("name", NAMES)
def test_lerobot_normalises_with_the_statistics_of_the_frames(datasets, lerobot_reads, name):
    ours, theirs = LeRobotDataset(datasets[name]), lerobot_reads[name]
    # An mp4 camera's are its frames' before encoding, as LeRobot's are (RGB to YUV and back moves
    # pixels, even at lossless H.264): not compared.
    for key in [k for k, feature in ours.features.items() if feature["dtype"] != "video"]:
        if key in ours.camera_keys:  # per channel, in [0, 1], shaped to broadcast over C x H x W
            values, shape = ours.read_images(key).reshape(-1, 3) / 255, (3, 1, 1)
        else:
            values = ours.read_array(key).reshape(ours.num_frames, -1).astype(np.float64)
            shape = (values.shape[1],)
        for stat in ("mean", "std", "min", "max"):
            assert theirs[f"stats.{key}.{stat}"].shape == shape, (key, stat)
            expected = getattr(values, stat)(axis=0).reshape(shape)
            assert np.allclose(theirs[f"stats.{key}.{stat}"], expected, rtol=1e-5, atol=1e-6), (key, stat)
        assert theirs[f"stats.{key}.count"].tolist() == [ours.num_frames], key
