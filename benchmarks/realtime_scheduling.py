"""What SVT-AV1 left behind in the benchmarks until 2026-12-07: as root, it sets the thread that
encodes to real-time scheduling (SCHED_FIFO, priority 99) and leaves it so, and every command a
benchmark started after writing an AV1 dataset ran so too. How much that changes a command's time.

    python benchmarks/realtime_scheduling.py          # about 8 minutes on 2 CPU cores

1. A few AV1 frames encoded with PyAV's libsvtav1 as benchmarks/video_read.py encoded them before
   (no `scheduling_kept`): this process's scheduling policy and priority before and after.
2. Two datasets of --episodes episodes of 60 frames of one 480 x 640 camera, every episode in one
   mp4 (H.264; AV1 as LeRobot encodes it), written with the scheduling put back. `leanvla data stats
   DATA --check` (every frame decoded and its pixels counted, nothing written) in a new process, as
   an ordinary process and at SCHED_FIFO 99 (set in the new process before it starts), in turn,
   --repeats runs each. Writes docs/results/NAME.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from common import REPO, command_line, leanvla_at, result_name, write_result
from video_read import CODECS, video_dataset

REAL_TIME = (os.SCHED_FIFO, os.sched_param(99))
DATASETS = {"H.264": CODECS["H.264"], "AV1 as LeRobot encodes it": CODECS["AV1 (LeRobot's default)"]}
NAMES = {os.SCHED_OTHER: "SCHED_OTHER", os.SCHED_FIFO: "SCHED_FIFO", os.SCHED_RR: "SCHED_RR"}


def scheduling() -> str:
    """This thread's scheduling policy and priority, as the report shows them."""
    return f"{NAMES.get(os.sched_getscheduler(0), os.sched_getscheduler(0))} {os.sched_getparam(0).sched_priority}"


def encoding_unguarded(path: Path) -> tuple[str, str]:
    """This process's scheduling before and after encoding 8 frames with libsvtav1, put back after."""
    import av

    before, kept = scheduling(), (os.sched_getscheduler(0), os.sched_getparam(0))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libsvtav1", rate=30, options={"crf": "30", "g": "2"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(8):
            frame = np.full((48, 64, 3), 30 * i, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    after = scheduling()
    os.sched_setscheduler(0, *kept)
    return before, after


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--episodes", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--name", type=result_name, default="realtime_scheduling")
    args = parser.parse_args()
    src = REPO / "src"
    with tempfile.TemporaryDirectory() as tmp:
        before, after = encoding_unguarded(Path(tmp) / "probe.mp4")
        rows = {}
        for name, (codec, options) in DATASETS.items():
            print(f"writing {args.episodes * 60} frames as {name} ...", file=sys.stderr)
            root = video_dataset(Path(tmp) / codec, codec, options, args.episodes, 60)
            leanvla_at(src, ["data", "stats", str(root)], LEANVLA_CACHE="off")  # so that --check finds none
            runs = {"ordinary": [], "real-time": []}
            for repeat in range(args.repeats):
                for way, limit in (
                    ("ordinary", None),
                    ("real-time", lambda: os.sched_setscheduler(0, *REAL_TIME)),
                ):
                    print(f"{name}: {way}, run {repeat + 1} of {args.repeats}", file=sys.stderr)
                    check = ["data", "stats", str(root), "--check"]
                    runs[way].append(leanvla_at(src, check, limit, LEANVLA_CACHE="off"))
            rows[name] = runs
    lines = [
        "# Commands run at real-time priority after an AV1 encode",
        "",
        f"    {command_line()}",
        "",
        f"This process's scheduling before encoding 8 AV1 frames with libsvtav1: {before}; after: **{after}**.",
        "",
        f"`leanvla data stats DATA --check` on {args.episodes} episodes of 60 frames of one 480 x 640 camera in one "
        f"mp4, in a new process, ordinary and at SCHED_FIFO 99, in turn, {args.repeats} runs each; wall seconds:",
        "",
        "| camera stored as | ordinary: fastest | real-time: fastest | real-time / ordinary "
        "| every run (ordinary; real-time) |",
        "|---|---|---|---|---|",
    ]
    for name, runs in rows.items():
        ordinary, real_time = min(runs["ordinary"]), min(runs["real-time"])
        every = "; ".join(", ".join(f"{s:.2f}" for s in runs[way]) for way in ("ordinary", "real-time"))
        lines.append(f"| {name} | {ordinary:.2f} | {real_time:.2f} | {real_time / ordinary:.2f}x | {every} |")
    write_result(f"{args.name}.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
