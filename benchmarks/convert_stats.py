"""`leanvla data convert --stats frames` against the default `--stats kept`: what computing every
episode's statistics from its frames (quantiles included, which LeRobot 0.4.4 needs to add episodes
to a converted dataset) costs over keeping v2.1's; and what `leanvla data stats` costs to do it
afterwards, in place, to a dataset converted with `--stats kept`.

    python benchmarks/convert_stats.py               # about 8 minutes on 2 CPU cores

A LeRobotDataset v2.1 of --episodes episodes of --length frames from one 480 x 640 camera at 30 fps
(benchmarks/video_read.py's panning texture), an episode a file, its camera stored three ways: an
mp4 an episode at libx264's defaults, an mp4 an episode as LeRobot encodes AV1, and PNG frames in
the data files. Each converted in this process with `--stats kept` and `--stats frames` in turn
(which goes first alternating), --repeats times each, then `leanvla data stats` run (in this process)
on a fresh copy of the `kept` one, --repeats times; the fastest run counts, the median beside it.
Asserted: `frames` gives every episode every statistic of every feature, quantiles included, where
`kept` has none; both give the same frames; the state's and action's minimum, maximum and count
are v2.1's; `data stats` afterwards writes exactly the statistics `frames` wrote, meta/stats.json
too. Writes docs/results/NAME.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ["LEANVLA_CACHE"] = "off"  # nothing kept between runs: each conversion decodes afresh

import numpy as np
from common import REPO, command_line, result_name, write_result
from convert_videos import v21_datasets
from video_read import KEY, add_dataset_size_options, camera_frames

sys.path.insert(0, str(REPO))  # tests/data/helpers.py: the v2.1 layout the tests convert

from leanvla.data.convert import ConvertConfig, convert  # noqa: E402
from leanvla.data.format import image_feature  # noqa: E402
from leanvla.data.reader import LeRobotDataset  # noqa: E402
from leanvla.data.refresh_stats import StatsConfig, refresh_stats  # noqa: E402
from leanvla.data.stats import QUANTILES  # noqa: E402
from leanvla.data.writer import LeRobotWriter  # noqa: E402
from tests.data.helpers import to_v21  # noqa: E402

CHOICES = ("kept", "frames")
PNG = "PNG in the data files"


def png_dataset(root: Path, episodes: int, length: int) -> Path:
    """The same camera's frames as PNGs in the data files, as LeRobot v2.1 stored image features."""
    features = {
        KEY: image_feature(480, 640),
        "observation.state": {"dtype": "float32", "shape": [6], "names": None},
        "action": {"dtype": "float32", "shape": [6], "names": None},
    }
    writer = LeRobotWriter(root, fps=30, features=features)
    rng = np.random.default_rng(0)
    for episode in range(episodes):
        values = rng.normal(size=(length, 6)).astype(np.float32)
        frames = camera_frames(length, seed=episode)
        writer.add_episode("pick up the cube", {KEY: frames, "observation.state": values, "action": values})
    writer.finalize()
    return root


def measure(v21: Path, work: Path, repeats: int) -> dict:
    """Each choice's seconds (a list of runs), and what the last run of each wrote."""
    seconds = {choice: [] for choice in CHOICES}
    for repeat in range(repeats):
        for choice in CHOICES if repeat % 2 == 0 else CHOICES[::-1]:  # neither always first
            print(f"{v21.name}: --stats {choice}, run {repeat + 1} of {repeats}", file=sys.stderr)
            out = work / f"{v21.name}-{choice}"
            shutil.rmtree(out, ignore_errors=True)
            start = time.perf_counter()
            convert(ConvertConfig(v21, out=out, stats=choice))
            seconds[choice].append(time.perf_counter() - start)
    kept, frames = (LeRobotDataset(work / f"{v21.name}-{choice}") for choice in CHOICES)
    check(kept, frames)
    seconds["afterwards"] = []
    for repeat in range(repeats):  # each on the dataset as `kept` left it, copied outside the timing
        print(f"{v21.name}: leanvla data stats, run {repeat + 1} of {repeats}", file=sys.stderr)
        restated = work / f"{v21.name}-restated"
        shutil.rmtree(restated, ignore_errors=True)
        shutil.copytree(kept.root, restated)
        start = time.perf_counter()
        refresh_stats(StatsConfig(restated))
        seconds["afterwards"].append(time.perf_counter() - start)
    check_restated(LeRobotDataset(restated), frames)
    columns = [sum(n.startswith("stats/") for n in d.episodes.column_names) for d in (kept, frames)]
    return {"seconds": seconds, "columns": columns}


def check_restated(restated: LeRobotDataset, frames: LeRobotDataset) -> None:
    """`leanvla data stats` on the `kept` conversion wrote what `--stats frames` wrote."""
    columns = [n for n in frames.episodes.column_names if n.startswith("stats/")]
    assert sorted(columns) == sorted(n for n in restated.episodes.column_names if n.startswith("stats/"))
    for column in columns:
        assert restated.episode_column(column) == frames.episode_column(column), column
    stats = "meta/stats.json"
    assert (restated.root / stats).read_text() == (frames.root / stats).read_text()


def check(kept: LeRobotDataset, frames: LeRobotDataset) -> None:
    """`frames` holds every statistic of every feature for every episode, quantiles included;
    `kept` holds v2.1's, without quantiles; the frames are the same."""
    for key in frames.features:
        for name in ("min", "max", "mean", "std", "count", *QUANTILES):
            values = frames.episode_column(f"stats/{key}/{name}")
            assert len(values) == frames.num_episodes and None not in values, (key, name)
        assert not any(n.startswith(f"stats/{key}/q") for n in kept.episodes.column_names), key
    for key in ("observation.state", "action"):
        for name in ("min", "max", "count"):
            column = f"stats/{key}/{name}"
            assert np.allclose(kept.episode_column(column), frames.episode_column(column)), column
    assert np.array_equal(kept.read_images(KEY, size=64), frames.read_images(KEY, size=64))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_dataset_size_options(parser)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--name", type=result_name, default="convert_stats")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, v21 in v21_datasets(work, args.episodes, args.length):
            results[name] = measure(v21, work, args.repeats)
        print(f"{PNG}: writing the v2.1 dataset", file=sys.stderr)
        v3 = png_dataset(work / "png-source", args.episodes, args.length)
        results[PNG] = measure(to_v21(v3, work / "png"), work, args.repeats)
    write_result(f"{args.name}.md", report(args, results))


def report(args, results: dict) -> str:
    frames = args.episodes * args.length
    lines = [
        "# Converting a v2.1 dataset with every episode's statistics from its frames",
        "",
        f"Command: `{command_line()}`",
        "",
        f"A LeRobotDataset v2.1 of {args.episodes} episodes of {args.length} frames ({frames} frames) from one "
        "480 x 640 camera at 30 fps, an episode a file, the camera stored as an mp4 an episode (H.264; AV1 "
        "as LeRobot encodes it) or as PNGs in the data files; converted by `leanvla data convert` (in "
        "process, the videos joined) with `--stats kept` (the default: v2.1's statistics, no quantiles) "
        "and `--stats frames` (every episode's computed from its frames, quantiles included: every frame "
        f"decoded) in turn, which goes first alternating, {args.repeats} runs each; the fastest counts (the "
        "median in brackets). Asserted: `frames` gives every episode every statistic of every feature "
        "where `kept` has no quantiles, the same frames, and v2.1's minimum, maximum and count of the "
        "state and action. Then `leanvla data stats` (in process) on a fresh copy of the `kept` conversion, "
        f"{args.repeats} runs: asserted to write exactly the statistics `--stats frames` wrote, meta/stats.json "
        "too.",
        "",
        "| camera stored as | --stats kept (s) | --stats frames (s) | frames / kept | frames counted a second | "
        "`leanvla data stats` afterwards (s) | statistics columns (kept, frames) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        kept, counted, afterwards = (result["seconds"][run] for run in (*CHOICES, "afterwards"))
        rate = frames / max(min(counted) - min(kept), 1e-9)
        lines.append(
            f"| {name} | {min(kept):.2f} [{statistics.median(kept):.2f}] | "
            f"{min(counted):.2f} [{statistics.median(counted):.2f}] | {min(counted) / min(kept):.1f}x "
            f"({statistics.median(counted) / statistics.median(kept):.1f}x) | {rate:.0f} | "
            f"{min(afterwards):.2f} [{statistics.median(afterwards):.2f}] | {result['columns'][0]}, {result['columns'][1]} |"
        )
    lines += [
        "",
        "Frames counted a second: the frames over what `frames` took beyond `kept` (fastest runs).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
