"""`leanvla data metaworld` now, its workers counting each frame's pixel values as they encode it,
against an earlier revision whose writing process decoded every PNG again for the statistics.

    python benchmarks/record_speed.py                 # about 25 minutes on 2 CPU cores

Each run is a new process recording --episodes episodes of each of --tasks from camera corner2 at
each --shapes (height x width), seed 0, with the command's default workers, timed whole. The two
revisions run in turn, --repeats times each; the fastest run counts, the medians beside it. The earlier revision
(--against, default 9cc52c3) runs from a temporary git worktree. Asserted: both revisions write the
same dataset (every frame's columns, the PNG bytes included, and every episode's metadata and
statistics). Writes docs/results/NAME.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from common import REPO, command_line, leanvla_at, result_name, source_at, write_result

from leanvla.data.reader import LeRobotDataset


def record_run(src: Path, out: Path, args, shape: tuple[int, int]) -> float:
    options = ["--tasks", args.tasks, "--episodes", str(args.episodes), "--cameras", "corner2"]
    options += ["--image-size", str(shape[0]), "--image-width", str(shape[1]), "--seed", "0"]
    return leanvla_at(src, ["data", "metaworld", *options, "--out", str(out)])


def same_dataset(first: Path, second: Path) -> bool:
    a, b = LeRobotDataset(first), LeRobotDataset(second)
    return a.read_table().equals(b.read_table()) and a.episodes.equals(b.episodes)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--against", default="9cc52c3", help="git revision to compare the working tree with")
    parser.add_argument("--tasks", default="reach-v3,drawer-close-v3")
    parser.add_argument("--episodes", type=int, default=10, help="episodes per task")
    parser.add_argument("--shapes", default="64x64,224x224,480x640", help="comma-separated HEIGHTxWIDTH")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--name", type=result_name, default="record_speed")
    args = parser.parse_args()
    try:
        shapes = [tuple(int(n) for n in shape.split("x")) for shape in args.shapes.split(",")]
    except ValueError:
        parser.error(f"--shapes {args.shapes}: give HEIGHTxWIDTH pairs, e.g. 64x64,480x640")
    rows = []
    with source_at(args.against, parser) as earlier, tempfile.TemporaryDirectory() as tmp:
        sources = {args.against: earlier, "now": REPO / "src"}
        for shape in shapes:
            seconds: dict[str, list[float]] = {label: [] for label in sources}
            for repeat in range(args.repeats):
                for label, src in sources.items():
                    print(
                        f"{shape[0]}x{shape[1]}: {label}, run {repeat + 1} of {args.repeats}", file=sys.stderr
                    )
                    out = Path(tmp) / f"{shape[0]}x{shape[1]}-{label}-{repeat}"
                    seconds[label].append(record_run(src, out, args, shape))
            first = Path(tmp) / f"{shape[0]}x{shape[1]}-{args.against}-0"
            assert same_dataset(first, first.with_name(f"{shape[0]}x{shape[1]}-now-0")), shape
            rows.append({"shape": shape, "frames": LeRobotDataset(first).num_frames, **seconds})
    write_result(f"{args.name}.md", report(args, rows))


def report(args, rows: list[dict]) -> str:
    against = args.against
    lines = [
        "# Recording: image statistics counted by the workers, not decoded again",
        "",
        f"Command: `{command_line()}`",
        "",
        f"`leanvla data metaworld --tasks {args.tasks} --episodes {args.episodes} --cameras corner2` at each "
        "camera shape, seed 0, the command's default workers, each run a new process timed whole; the "
        f"two revisions in turn, {args.repeats} runs each, the fastest counting, the medians beside "
        f"(every run's seconds in brackets). {against}: the process writing the dataset decoded each episode's PNGs again for "
        "its image statistics; now the workers count each frame's pixel values as they encode it. "
        "Both write the same dataset (asserted: every column of every frame, the PNG bytes included, "
        "and every episode's metadata and statistics).",
        "",
        f"| camera | frames | {against} s | now s | time, fastest | time, medians | frames/s, {against} | "
        "frames/s, now |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        old, new = min(row[against]), min(row["now"])
        medians = float(np.median(row["now"]) / np.median(row[against]))
        runs = {label: ", ".join(f"{s:.1f}" for s in row[label]) for label in (against, "now")}
        lines.append(
            f"| {row['shape'][0]} x {row['shape'][1]} | {row['frames']} | {old:.1f} [{runs[against]}] | "
            f"{new:.1f} [{runs['now']}] | **{new / old:.2f}x** | {medians:.2f}x | {row['frames'] / old:.0f} | "
            f"{row['frames'] / new:.0f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
