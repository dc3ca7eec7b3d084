"""`leanvla data convert` with its videos joined (the default) and linked: what each costs to
convert, how many files it leaves, and how fast training then reads the camera.

    python benchmarks/convert_videos.py               # about 7 minutes on 2 CPU cores

For each codec of benchmarks/video_read.py (H.264 at libx264's defaults, and AV1 as LeRobot
encodes by default), a LeRobotDataset v2.1 of --episodes episodes of --length frames from one
480 x 640 camera at 30 fps (video_read's panning texture, so it compresses as a camera does), an
mp4 an episode, laid out as LeRobot v2.1 wrote it (tests/data/helpers.to_v21). Then, in turn,
--repeats times each:
1. converting it (`convert`, in this process): `--videos join` copies each mp4's packets into one
   file (up to video_files_size_in_mb), `--videos link` hard-links each mp4 as a file of its own;
2. reading the camera as training does (`read_images(size=64)`, the frame cache off), every frame;
3. reading --few episodes of it (`read_images(rows=...)`, as `train --episodes` does), and in a
   read of its own (untimed) counting the frames decoded for them.
The layout going first alternates; the fastest run counts, the median beside it. Asserted: both
layouts read to the same frames (the linked files are the v2.1 mp4s themselves). Writes
docs/results/NAME.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

os.environ["LEANVLA_CACHE"] = "off"  # every read decodes: the files' layout is what is measured

import numpy as np
from common import REPO, command_line, result_name, write_result
from video_read import CODECS, KEY, add_dataset_size_options, video_dataset

sys.path.insert(0, str(REPO))  # tests/data/helpers.py: the v2.1 layout the tests convert

from leanvla.data.convert import ConvertConfig, convert  # noqa: E402
from leanvla.data.reader import LeRobotDataset  # noqa: E402
from tests.data.helpers import decoded_frames, to_v21  # noqa: E402

LAYOUTS = ("join", "link")


def measure(v21: Path, work: Path, args) -> dict:
    """Each layout's seconds (lists of --repeats runs) to convert, read whole and read a few
    episodes, with its files and megabytes."""
    seconds = {(layout, what): [] for layout in LAYOUTS for what in ("convert", "whole", "few")}
    files, megabytes, decoded, reference = {}, {}, {}, None
    chosen = np.linspace(0, args.episodes - 1, args.few).round().astype(int)
    few_rows = np.isin(np.repeat(np.arange(args.episodes), args.length), chosen)
    for repeat in range(args.repeats):
        for layout in LAYOUTS if repeat % 2 == 0 else LAYOUTS[::-1]:  # neither always first
            print(f"{v21.name}: {layout}, run {repeat + 1} of {args.repeats}", file=sys.stderr)
            out = work / f"{v21.name}-{layout}"
            shutil.rmtree(out, ignore_errors=True)
            start = time.perf_counter()
            summary = convert(ConvertConfig(v21, out=out, videos=layout))
            seconds[layout, "convert"].append(time.perf_counter() - start)
            mp4s = list((out / "videos").rglob("*.mp4"))
            assert summary["video_files"] == len(mp4s)
            files[layout] = len(mp4s)
            megabytes[layout] = sum(p.stat().st_size for p in mp4s) / 1e6
            start = time.perf_counter()
            whole = LeRobotDataset(out).read_images(KEY, size=64)
            seconds[layout, "whole"].append(time.perf_counter() - start)
            start = time.perf_counter()
            few = LeRobotDataset(out).read_images(KEY, rows=few_rows, size=64)
            seconds[layout, "few"].append(time.perf_counter() - start)
            assert np.array_equal(few, whole[few_rows])
            reference = whole if reference is None else reference
            assert np.array_equal(whole, reference), layout
            with decoded_frames() as count:  # a read of its own: counting costs time
                LeRobotDataset(out).read_images(KEY, rows=few_rows, size=64)
            decoded[layout] = count[0]
    return {
        "seconds": seconds,
        "files": files,
        "megabytes": megabytes,
        "decoded": decoded,
        "few": int(few_rows.sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_dataset_size_options(parser)
    parser.add_argument("--few", type=int, default=3, help="episodes read apart")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--name", type=result_name, default="convert_videos")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, v21 in v21_datasets(work, args.episodes, args.length):
            results[name] = measure(v21, work, args)
    write_result(f"{args.name}.md", report(args, results))


def v21_datasets(work: Path, episodes: int, length: int) -> Iterator[tuple[str, Path]]:
    """For each codec, (its name, a LeRobotDataset v2.1 in `work` of `episodes` episodes of `length`
    frames from one 480 x 640 camera, an mp4 an episode)."""
    for name, (codec, options) in CODECS.items():
        print(f"{name}: writing the v2.1 dataset", file=sys.stderr)
        v3 = video_dataset(work / f"{codec}-source", codec, options, episodes, length, episodes_per_file=1)
        yield name, to_v21(v3, work / codec)


def report(args, results: dict) -> str:
    frames = args.episodes * args.length
    lines = [
        "# Converting a v2.1 dataset's videos: joined or linked",
        "",
        f"Command: `{command_line()}`",
        "",
        f"A LeRobotDataset v2.1 of {args.episodes} episodes of {args.length} frames ({frames} frames) from one "
        "480 x 640 camera at 30 fps, an mp4 an episode, per codec; converted by `leanvla data convert` "
        "(in process) with `--videos join` (the default: each mp4's packets copied into one file of up to "
        "video_files_size_in_mb, as LeRobot lays v3 out) and `--videos link` (each mp4 hard-linked as a v3 "
        "file of its own); then the camera read as training reads it, fitted to 64 x 64 with the frame "
        f"cache off: every frame, and {args.few} episodes spread over the dataset (`rows=`, as "
        f"`train --episodes` reads them). The two layouts in turn (which goes first alternating), {args.repeats} runs each, the fastest "
        "counting (the median in brackets); the frames decoded for the few episodes counted in a read of "
        "its own. Asserted: both read to the same frames (the linked files are "
        "the v2.1 mp4s themselves).",
        "",
        "| codec | layout | video files | MB | convert (s) | read every frame (s) | frames/s | "
        f"read {args.few} episodes (s) | frames decoded for them |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        for layout in LAYOUTS:
            cells = []
            for what in ("convert", "whole", "few"):
                runs = result["seconds"][layout, what]
                digits = 3 if what == "convert" else 2
                cells.append(f"{min(runs):.{digits}f} [{statistics.median(runs):.{digits}f}]")
            rate = frames / min(result["seconds"][layout, "whole"])
            lines.append(
                f"| {name} | {layout} | {result['files'][layout]} | {result['megabytes'][layout]:.1f} | "
                f"{cells[0]} | {cells[1]} | {rate:.0f} | {cells[2]} | {result['decoded'][layout]} of {result['few']} |"
            )
    lines += ["", "Joined / linked, by the fastest runs (by the medians):", ""]
    lines += ["| codec | convert | read every frame | read a few |", "|---|---|---|---|"]
    for name, result in results.items():
        cells = []
        for what in ("convert", "whole", "few"):
            joined, linked = result["seconds"]["join", what], result["seconds"]["link", what]
            fastest = min(joined) / min(linked)
            medians = statistics.median(joined) / statistics.median(linked)
            cells.append(f"{fastest:.2f}x ({medians:.2f}x)")
        lines.append(f"| {name} | {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
