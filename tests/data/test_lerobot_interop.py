"""LeRobot's own reader reads the datasets leanvla writes as leanvla reads them, and leanvla reads
those LeRobot's own writer wrote, or added episodes to, as LeRobot does: every frame's features and
task, and the training samples leanvla's ChunkDataset makes (the frames of some episodes, each with
its action chunk and padding) as LeRobot's `delta_timestamps` gives them; the statistics leanvla
writes, which LeRobot's policies normalise with, are the frames' own, and so are those `leanvla data
stats` writes again over what LeRobot left. And `leanvla data convert` makes of a v2.1 dataset what
LeRobot's own conversion script makes of it.
LeRobot 0.4.4 runs in a venv of its own (`make lerobot`, which `make test` runs first) through
tools/lerobot_reads.py, lerobot_writes.py and lerobot_converts.py; without it these tests skip,
saying so."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from leanvla.data import file_digests
from leanvla.data.convert import ConvertConfig, convert
from leanvla.data.reader import LeRobotDataset
from leanvla.data.refresh_stats import StatsConfig, refresh_stats
from leanvla.data.samples import ChunkDataset
from tests.data.helpers import synthetic_dataset, to_v21
from tests.helpers import lerobot_python

REPO = Path(__file__).resolve().parents[2]
CAM = "observation.images.cam"
CHUNK = 4  # the synthetic episodes have 4 to 9 frames: every chunk near an end is padded
EPISODES = [1, 3]  # read apart: neither the first episode nor next to one another
# v2.1 datasets converted to v3: (name, how to_v21 encodes the camera, convert's options, the
# video files' size in MB: None keeps the default, one file for all).
CONVERTED = [
    ("joined H.264 with B-frames", {"bframes": 2}, {}, None),
    ("joined AV1 as LeRobot encodes", {"codec": "libsvtav1"}, {}, None),
    ("joined, a file each over two chunks", {"chunks_size": 3}, {}, 1e-6),
    ("linked", {}, {"videos": "link"}, None),
    ("statistics from the frames", {}, {"stats": "frames"}, None),
]
WRITTEN_BY_LEANVLA = ["recorded", "many data files", *(name for name, *_ in CONVERTED)]
WRITTEN_BY_LEROBOT = {
    "written by LeRobot": [],
    "written by LeRobot, a file each over two chunks": ["--a-file-each"],
}
# Datasets leanvla wrote that LeRobot then added two episodes to, as `lerobot-record --resume` does
# (tools/lerobot_edits.py): {name: the dataset it added them to}.
APPENDED_BY_LEROBOT = {
    "recorded, then LeRobot added two": "recorded",
    "many data files, then LeRobot added two": "many data files",
    "statistics from the frames, then LeRobot added two": "statistics from the frames",
    # Converted again, its mp4s hard-linked to the same v2.1 files (a copy would not be), and
    # `--stats frames` (LeRobot cannot load it else: below): LeRobot must leave the v2.1 files as
    # they were (it starts a file of its own when it resumes).
    "linked, then LeRobot added two": "linked",
}
# Datasets LeRobot's `lerobot-edit-dataset` made of leanvla's: {name: its edit (tools/lerobot_edits.py),
# the datasets named in place of their directories}.
EDITED_BY_LEROBOT = {
    "recorded, episode 1 deleted by LeRobot": {"delete": "recorded", "episodes": [1]},
    "joined AV1, episode 1 deleted by LeRobot": {"delete": "joined AV1 as LeRobot encodes", "episodes": [1]},
    "many data files and another, merged by LeRobot": {"merge": ["many data files", "another"]},
    "many data files, episodes 0, 2 and 3 split off by LeRobot": {
        "split": "many data files",
        "episodes": [0, 2, 3],
    },
    "recorded, a camera removed by LeRobot": {
        "remove": "recorded",
        "features": ["observation.images.corner3"],
    },
    # LeRobot's encoder (SVT-AV1) dies of a floating-point exception on 16 x 16 frames: these are 32.
    "recorded, its cameras made videos by LeRobot": {"to_video": "recorded"},
    # In place, on a copy: the data files rewritten by pandas, PNG cameras and all.
    "recorded, tasks changed by LeRobot": {
        "tasks": "recorded",
        "episode_tasks": {"0": "reach it", "4": "a new task"},
    },
}
# A converted dataset LeRobot added episodes to, which it cannot load then (v2.1 kept no quantiles:
# the test below); not read by LeRobot.
UNLOADABLE = "joined AV1, then LeRobot added two"
# Datasets whose statistics `leanvla data stats` computed again from their frames: {name: the
# dataset it was}: one LeRobot could not load, one LeRobot kept stale statistics of (of the old
# episode numbers), one whose camera statistics LeRobot wrote wrong (lerobot#3682).
RESTATED = {
    "joined AV1, then LeRobot added two, statistics computed again": UNLOADABLE,
    "recorded, episode 1 deleted by LeRobot, statistics computed again": "recorded, episode 1 deleted by LeRobot",
    "written by LeRobot, statistics computed again": "written by LeRobot",
}
# Episodes whose training samples are compared: one leanvla wrote, one LeRobot added; and others.
SAMPLED = {name: [1, 4] for name in [*APPENDED_BY_LEROBOT, UNLOADABLE]}
SAMPLED["joined AV1, episode 1 deleted by LeRobot"] = [0, 2]  # of the three left
SAMPLED["many data files and another, merged by LeRobot"] = [1, 5]  # one of each
SAMPLED["many data files, episodes 0, 2 and 3 split off by LeRobot"] = [0, 2]  # of the three
SAMPLED |= {name: SAMPLED.get(was, EPISODES) for name, was in RESTATED.items()}
NAMES = [*WRITTEN_BY_LEANVLA, *WRITTEN_BY_LEROBOT, *APPENDED_BY_LEROBOT, *EDITED_BY_LEROBOT, *RESTATED]


@pytest.fixture(scope="module")
def lerobot(tmp_path_factory):
    """Runs one of tools/lerobot_*.py with LeRobot's Python (tests.helpers.lerobot_python)."""
    python = lerobot_python()
    # Offline, and the datasets library's caches kept out of the user's home.
    hf_home = tmp_path_factory.mktemp("hf")
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}

    def run(tool: str, *args, fails: bool = False) -> str:
        """Its stderr; it must succeed, or with `fails`, fail."""
        done = subprocess.run(
            [str(python), str(REPO / "tools" / tool), *map(str, args)],
            capture_output=True,
            text=True,
            env=env,
        )
        if fails:
            assert done.returncode != 0, f"{tool} succeeded"
        else:
            assert done.returncode == 0, f"{tool} failed:\n{done.stderr[-3000:]}"
        return done.stderr

    return run


@pytest.fixture(scope="module")
def datasets(lerobot, tiny_dataset, tmp_path_factory) -> dict[str, Path]:
    """Each dataset as leanvla writes it: recorded from Meta-World, written across many data files
    and chunks, and converted from v2.1 with mp4 cameras joined or linked (or with statistics from
    the frames); two LeRobot wrote, with a camera in AV1 as it encodes by default and one in PNG,
    in one file each or a file an episode over two chunks (tools/lerobot_writes.py); copies of three
    of leanvla's that LeRobot added episodes to (and of a converted one, UNLOADABLE); what LeRobot's
    `lerobot-edit-dataset` made of some of leanvla's (an episode deleted, two merged, episodes split
    off, a camera removed, PNG cameras made AV1 videos, tasks changed); and copies of
    three, their statistics computed again by `leanvla data stats` (RESTATED)."""
    pytest.importorskip("av", reason="PyAV is in the dev extra; `make test` installs it")
    tmp = tmp_path_factory.mktemp("for_lerobot")
    written = {
        "recorded": tiny_dataset,
        "many data files": synthetic_dataset(
            tmp / "many_files", image_size=8, chunks_size=2, data_files_size_in_mb=1e-6
        ),
    }
    source = synthetic_dataset(tmp / "source", image_size=32)
    v21s = {}
    for number, (name, encoding, options, file_mb) in enumerate(CONVERTED):
        v21 = v21s[name] = to_v21(source, tmp / f"v21_{number}", video_keys=(CAM,), **encoding)
        if file_mb is not None:
            info = json.loads((v21 / "meta/info.json").read_text())
            (v21 / "meta/info.json").write_text(json.dumps({**info, "video_files_size_in_mb": file_mb}))
        written[name] = tmp / f"v30_{number}"
        convert(ConvertConfig(v21, out=written[name], **options))
    assert len(LeRobotDataset(written["many data files"]).data_files) == 4  # two a chunk
    assert len(list((written["joined, a file each over two chunks"] / "videos").rglob("*.mp4"))) == 4
    for number, (name, options) in enumerate(WRITTEN_BY_LEROBOT.items()):
        written[name] = tmp / f"by_lerobot_{number}"
        lerobot("lerobot_writes.py", written[name], *options)
    assert len(LeRobotDataset(written["written by LeRobot, a file each over two chunks"]).data_files) == 4
    another = synthetic_dataset(
        tmp / "another", image_size=8, seed=1, chunks_size=2, data_files_size_in_mb=1e-6
    )
    edits = []
    for name, edit in EDITED_BY_LEROBOT.items():
        written[name] = directory_for(tmp, name)
        sources = {**written, "another": another}
        kind = next(iter(edit))  # the edit's first entry names it and the datasets it edits
        named = edit[kind]
        if kind == "tasks":  # made in place: on a copy
            edits.append({**edit, kind: str(shutil.copytree(sources[named], written[name]))})
            continue
        roots = [str(sources[n]) for n in named] if isinstance(named, list) else str(sources[named])
        edits.append({**edit, kind: roots, "out": str(written[name])})
    for name, added_to in [*APPENDED_BY_LEROBOT.items(), (UNLOADABLE, "joined AV1 as LeRobot encodes")]:
        written[name] = directory_for(tmp, name)
        if added_to == "linked":
            convert(ConvertConfig(v21s[added_to], out=written[name], videos="link", stats="frames"))
        else:
            shutil.copytree(written[added_to], written[name])
    linked_mp4s = {path: path.read_bytes() for path in v21s["linked"].rglob("*.mp4")}
    edit_with_lerobot(lerobot, tmp, edits, appended=[written[n] for n in [*APPENDED_BY_LEROBOT, UNLOADABLE]])
    assert {path: path.read_bytes() for path in v21s["linked"].rglob("*.mp4")} == linked_mp4s
    assert all(path.stat().st_nlink == 3 for path in linked_mp4s)  # the v2.1 file, linked twice still
    for name, was in RESTATED.items():
        written[name] = shutil.copytree(written[was], directory_for(tmp, name))
        refresh_stats(StatsConfig(written[name]))
    assert LeRobotDataset(written["recorded, episode 1 deleted by LeRobot"]).num_episodes == 5
    assert LeRobotDataset(written["many data files and another, merged by LeRobot"]).num_episodes == 8
    split = LeRobotDataset(written["many data files, episodes 0, 2 and 3 split off by LeRobot"])
    assert (
        split.num_episodes == 3 and split.read_array("action")[:, 0].tolist() == [0] * 6 + [2] * 9 + [3] * 5
    )
    removed = LeRobotDataset(written["recorded, a camera removed by LeRobot"])
    assert removed.camera_keys == ["observation.images.corner2"]
    renamed = LeRobotDataset(written["recorded, tasks changed by LeRobot"])
    assert renamed.episode_tasks()[0] == "reach it" and renamed.episode_tasks()[4] == "a new task"
    videos = LeRobotDataset(written["recorded, its cameras made videos by LeRobot"])
    assert {f["dtype"] for f in videos.features.values() if f["dtype"] in ("image", "video")} == {"video"}
    return written


def directory_for(tmp: Path, name: str) -> Path:
    """The directory in `tmp` of the dataset a test names `name`."""
    return tmp / name.replace(" ", "_").replace(",", "")


def edit_with_lerobot(lerobot, tmp: Path, edits: list[dict], appended: list[Path] = ()) -> None:
    """LeRobot makes `edits` (tools/lerobot_edits.py), and adds two episodes to each dataset of
    `appended`, checking it did, in files of their own."""
    before = [LeRobotDataset(root) for root in appended]
    spec = tmp / "edits.json"
    spec.write_text(json.dumps([*edits, *({"append": str(root)} for root in appended)]))
    lerobot("lerobot_edits.py", spec)
    for earlier in before:
        after = LeRobotDataset(earlier.root)
        assert after.num_episodes == earlier.num_episodes + 2
        assert set(after.data_files) > set(earlier.data_files)


@pytest.fixture(scope="module")
def lerobot_reads(lerobot, datasets, tmp_path_factory) -> dict[str, dict[str, np.ndarray]]:
    """What LeRobot's LeRobotDataset gives for each dataset (tools/lerobot_reads.py)."""
    tmp = tmp_path_factory.mktemp("lerobot_reads")
    files = {name: f"dataset_{number}" for number, name in enumerate(NAMES)}
    spec = [
        {"name": files[name], "root": str(root), "episodes": SAMPLED.get(name, EPISODES), "chunk": CHUNK}
        for name, root in datasets.items()
        if name in files
    ]
    (tmp / "spec.json").write_text(json.dumps(spec))
    lerobot("lerobot_reads.py", tmp / "spec.json", tmp / "out")
    return {name: dict(np.load(tmp / "out" / f"{file}.npz")) for name, file in files.items()}


@pytest.mark.parametrize("name", NAMES)
def test_lerobot_reads_every_frame_as_leanvla_does(datasets, lerobot_reads, name):
    ours, theirs = LeRobotDataset(datasets[name]), lerobot_reads[name]
    given = [key.split(".", 1)[1] for key in theirs if key.startswith("every.")]
    assert sorted(given) == sorted([*ours.features, "task"])
    for key in ours.features:
        values = ours.read_images(key) if key in ours.camera_keys else ours.read_array(key)
        assert values.shape == theirs[f"every.{key}"].shape, key
        assert np.array_equal(values, theirs[f"every.{key}"]), key  # every pixel, every number
    assert list(theirs["every.task"]) == [ours.tasks[t] for t in ours.read_array("task_index")]


@pytest.mark.parametrize("name", NAMES)
def test_lerobot_gives_the_training_samples_leanvla_makes(datasets, lerobot_reads, name):
    ours, theirs = LeRobotDataset(datasets[name]), lerobot_reads[name]
    samples = ChunkDataset(ours, ours.camera_keys, CHUNK, episodes=SAMPLED.get(name, EPISODES))
    batch = samples.batch(torch.arange(len(samples)))
    assert np.array_equal(batch.actions.numpy(), theirs["chunks.action"])
    assert np.array_equal(batch.action_mask.numpy() == 0, theirs["chunks.action_is_pad"])
    assert theirs["chunks.action_is_pad"].any()  # chunks that run past their episode's end are in
    assert np.array_equal(batch.state.numpy(), theirs["chunks.observation.state"])
    assert np.array_equal(batch.task_index.numpy(), theirs["chunks.task_index"])
    assert np.array_equal(samples.episode_index.numpy(), theirs["chunks.episode_index"])
    for number, key in enumerate(ours.camera_keys):
        frames = batch.images[:, number].permute(0, 2, 3, 1).numpy()  # H x W x C, as stored
        assert np.array_equal(frames, theirs[f"chunks.{key}"]), key


def frame_statistics(dataset: LeRobotDataset, key: str) -> dict[str, np.ndarray]:
    """A feature's mean, std, min and max over every frame, as LeRobot's statistics hold them:
    a camera's per channel, in [0, 1], shaped 3 x 1 x 1 to broadcast over C x H x W."""
    if key in dataset.camera_keys:
        values, shape = dataset.read_images(key).reshape(-1, 3) / 255, (3, 1, 1)
    else:
        values = dataset.read_array(key).reshape(dataset.num_frames, -1).astype(np.float64)
        shape = (values.shape[1],)
    return {stat: getattr(values, stat)(axis=0).reshape(shape) for stat in ("mean", "std", "min", "max")}


@pytest.mark.parametrize("name", [*WRITTEN_BY_LEANVLA, *APPENDED_BY_LEROBOT, *EDITED_BY_LEROBOT, *RESTATED])
def test_lerobot_normalises_with_the_statistics_of_the_frames(datasets, lerobot_reads, name):
    ours, theirs = LeRobotDataset(datasets[name]), lerobot_reads[name]
    # An mp4 camera's are its frames' before encoding, as LeRobot's are (RGB to YUV and back moves
    # pixels, even at lossless H.264): not compared, but where `leanvla data stats` computed them
    # from the frames as they decode. Where LeRobot added episodes, it merged its own statistics of
    # them into leanvla's; its cameras' are wrong (lerobot#3682, below): not compared.
    compared = [k for k, f in ours.features.items() if f["dtype"] != "video" or name in RESTATED]
    if name in APPENDED_BY_LEROBOT:
        compared = [k for k in compared if k not in ours.camera_keys]
    if name in EDITED_BY_LEROBOT:  # renumbered, their statistics merged from the old numbers'
        compared = [k for k in compared if k not in ("episode_index", "index", "task_index")]
    for key in compared:
        for stat, expected in frame_statistics(ours, key).items():
            assert theirs[f"stats.{key}.{stat}"].shape == expected.shape, (key, stat)
            assert np.allclose(theirs[f"stats.{key}.{stat}"], expected, rtol=1e-5, atol=1e-6), (key, stat)
        assert theirs[f"stats.{key}.count"].tolist() == [ours.num_frames], key


def test_leanvla_normalises_with_the_statistics_of_the_frames_whatever_lerobot_wrote(datasets):
    # LeRobot 0.4.4 writes a camera's std near 0 (lerobot#3682: its uint8 pixels, squared,
    # overflow): here 0.001-0.002 for frames whose std is 0.29 (`leanvla data stats` writes the
    # frames' own: RESTATED). leanvla takes the statistics it normalises with from the frames it
    # trains on, never from meta/stats.json.
    ours = LeRobotDataset(datasets["written by LeRobot"])
    samples = ChunkDataset(ours, ours.camera_keys, CHUNK)
    computed = samples.stats()
    for key in [*ours.camera_keys, "observation.state", "action"]:
        for stat, expected in frame_statistics(ours, key).items():
            assert np.allclose(computed[key][stat], expected, rtol=1e-5, atol=1e-6), (key, stat)


def test_frames_leanvla_kept_are_not_read_once_lerobot_added_episodes(
    lerobot, datasets, tmp_path, monkeypatch
):
    # The frame cache names an entry by the digests of the files its frames come from; a digest is
    # remembered by a file's size, inode and times. Here every one is remembered at once, however
    # recently written: LeRobot rewrites meta/info.json and adds files within the second.
    monkeypatch.setenv("LEANVLA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(file_digests, "SETTLED_S", 0.0)
    root = shutil.copytree(datasets["joined H.264 with B-frames"], tmp_path / "dataset")
    kept = LeRobotDataset(root).read_images(CAM, size=16)
    entries = set((tmp_path / "cache" / "frames").glob("*.npy"))
    assert len(entries) == 1
    edit_with_lerobot(lerobot, tmp_path, [], appended=[root])
    read = LeRobotDataset(root).read_images(CAM, size=16)
    assert set((tmp_path / "cache" / "frames").glob("*.npy")) > entries  # decoded again, kept anew
    monkeypatch.setenv("LEANVLA_CACHE", "off")
    assert np.array_equal(read, LeRobotDataset(root).read_images(CAM, size=16))
    assert len(read) == LeRobotDataset(root).num_frames > len(kept)
    assert np.array_equal(read[: len(kept)], kept)


def test_leanvla_reads_a_converted_dataset_lerobot_added_episodes_to_which_lerobot_cannot(
    lerobot, datasets, tmp_path
):
    # LeRobot 0.4.4 adds episodes to a dataset converted from v2.1 (by its own converter or by
    # leanvla's, which write the same columns) with statistics columns the converted episodes do
    # not have (quantiles: v2.1 kept none), and cannot load the episodes metadata afterwards
    # ("column names don't match"); `--stats frames` gives them the quantiles (the dataset
    # "statistics from the frames, then LeRobot added two" above), and `leanvla data stats` all
    # the episodes' afterwards (RESTATED). Should a later LeRobot write the columns it found, or
    # read these, this fails: the README then says so no more.
    original = LeRobotDataset(datasets["joined AV1 as LeRobot encodes"])
    root = datasets[UNLOADABLE]
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps([{"name": "d", "root": str(root), "episodes": [0], "chunk": CHUNK}]))
    assert "column names don't match" in lerobot("lerobot_reads.py", spec, tmp_path / "out", fails=True)
    columns = [
        set(pq.read_schema(path).names) for path in sorted((root / "meta/episodes").rglob("*.parquet"))
    ]
    assert len(columns) == 2 and columns[0] < columns[1]
    assert {c.rsplit("/", 1)[-1] for c in columns[1] - columns[0]} == {"q01", "q10", "q50", "q90", "q99"}
    ours = LeRobotDataset(root)
    for key in original.features:  # what was there is read as it was read before
        read = LeRobotDataset.read_images if key in original.camera_keys else LeRobotDataset.read_array
        assert np.array_equal(read(ours, key)[: original.num_frames], read(original, key)), key
    added = ours.read_array("action")[original.num_frames :, :2]
    episodes, frames = ours.read_array("episode_index"), ours.read_array("frame_index")
    assert np.array_equal(added, np.stack([episodes, frames], 1)[original.num_frames :])
    assert ours.episode_tasks()[-2:] == ["task b", "a task LeRobot added"]


def file_names(root: Path) -> list[str]:
    """Every file of a dataset, metadata included, by its path inside it."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    "encoding",
    [{"bframes": 2}, {"codec": "libsvtav1"}],
    ids=["H.264 with B-frames", "AV1 as LeRobot encodes"],
)
def test_data_convert_makes_what_lerobots_own_converter_makes(lerobot, tmp_path, encoding):
    pytest.importorskip("av", reason="PyAV is in the dev extra; `make test` installs it")
    source = synthetic_dataset(tmp_path / "v30", image_size=32)
    v21 = to_v21(source, tmp_path / "v21", video_keys=(CAM,), **encoding)
    convert(ConvertConfig(v21, out=tmp_path / "ours"))
    lerobot("lerobot_converts.py", v21, tmp_path / "theirs")
    ours, theirs = LeRobotDataset(tmp_path / "ours"), LeRobotDataset(tmp_path / "theirs")
    assert file_names(ours.root) == file_names(theirs.root)  # their bytes differ: each writes its own way
    for key in ours.features:
        read = LeRobotDataset.read_images if key in ours.camera_keys else LeRobotDataset.read_array
        assert np.array_equal(read(ours, key), read(theirs, key)), key
    assert sorted(ours.episodes.column_names) == sorted(theirs.episodes.column_names)
    for column in ours.episodes.column_names:
        mine, lerobots = ours.episodes.column(column).to_pylist(), theirs.episodes.column(column).to_pylist()
        if column.endswith("_timestamp") or column.startswith("stats/"):  # floats summed either way
            mine, lerobots = np.asarray(mine, dtype=np.float64), np.asarray(lerobots, dtype=np.float64)
            assert np.allclose(mine, lerobots), column
        else:
            assert mine == lerobots, column
    assert ours.tasks == theirs.tasks
    # LeRobot's script adds the frame rate to each feature that is not a video; nothing reads it.
    features = {k: {n: v for n, v in f.items() if n != "fps"} for k, f in theirs.info["features"].items()}
    assert {**theirs.info, "features": features} == ours.info
