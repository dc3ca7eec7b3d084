"""Counting pixel values (`image_histogram`, behind every image statistic leanvla writes) two bytes
at a time, and on every core, against counting each channel alone as it did before.

    python benchmarks/pixel_counts.py                      # about a minute on 2 CPU cores
    python benchmarks/pixel_counts.py --against 32a5dcc    # and `leanvla data stats` before and after

Batches as the callers give them: one frame (the recorder and writer count each frame as it comes),
and a training-statistics batch and an episode (`leanvla data stats`, `convert --stats frames`).
Frames are benchmarks/video_read.py's panning texture, cropped or tiled to size. Three ways, in turn
(which goes first rotating), --repeats times each; the fastest run counts, the median beside it:
each channel alone (np.bincount over a strided channel, the code before), two bytes at a time on
one thread (`pixel_value_counts`), and `image_histogram` (the same, split by frames over the cores from
PARALLEL_BYTES on). Asserted: all three give the same counts.
With --against REVISION, also `leanvla data stats` end to end (in a new process) with that
revision's code and the working tree's, in turn, --ab-repeats times each, on datasets of --episodes
episodes of --length frames of one 480 x 640 camera: an mp4 an episode (H.264; AV1 as LeRobot
encodes it) and one H.264 mp4 encoded in one go (a keyframe every 250 frames, not at each
episode's start). Asserted: both write the same meta/stats.json. Writes docs/results/NAME.md.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from common import command_line, result_name, source_at, write_result
from video_read import add_dataset_size_options, camera_frames, data_stats_at_both, data_stats_table

from leanvla.cores import cores_per_process
from leanvla.data.stats import PARALLEL_BYTES, image_histogram, pixel_value_counts

# (name, frames, height, width): who counts such a batch
BATCHES = [
    ("a recorded frame, 64 x 64", 1, 64, 64),
    ("a recorded frame, 480 x 640", 1, 480, 640),
    ("training statistics' batch, 64 frames of 224 x 224", 64, 224, 224),
    ("an episode, 50 frames of 480 x 640", 50, 480, 640),
]


def each_channel_alone(images: np.ndarray) -> np.ndarray:
    """The counting before: np.bincount over each channel's strided values."""
    flat = images.reshape(-1, images.shape[-1])
    return np.stack([np.bincount(flat[:, c], minlength=256) for c in range(flat.shape[1])]).astype(np.int64)


WAYS = {
    "each channel alone": each_channel_alone,
    "two bytes at a time": pixel_value_counts,
    "image_histogram (on every core)": image_histogram,
}


def frames_of(count: int, height: int, width: int) -> np.ndarray:
    """`count` panning-texture frames, cropped (or tiled) to height x width."""
    frames = camera_frames(count, seed=0)
    reps = (1, -(-height // frames.shape[1]), -(-width // frames.shape[2]), 1)
    return np.ascontiguousarray(np.tile(frames, reps)[:, :height, :width])


def measure(images: np.ndarray, repeats: int) -> dict[str, list[float]]:
    counted = {name: way(images) for name, way in WAYS.items()}
    first = counted["each channel alone"]
    assert all(np.array_equal(c, first) for c in counted.values()) and first.sum() == images.size
    calls = max(1, int(2e7 // images.nbytes))  # small batches timed over many calls
    seconds = {name: [] for name in WAYS}
    names = list(WAYS)
    for repeat in range(repeats):
        for name in names[repeat % 3 :] + names[: repeat % 3]:
            start = time.perf_counter()
            for _ in range(calls):
                WAYS[name](images)
            seconds[name].append((time.perf_counter() - start) / calls)
    return seconds


# name: (codec, episodes a file: None for all in one)
END_TO_END = {
    "H.264, an mp4 an episode": ("H.264", 1),
    "AV1 as LeRobot encodes it, an mp4 an episode": ("AV1 (LeRobot's default)", 1),
    "H.264, one mp4 encoded in one go": ("H.264", None),
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--name", type=result_name, default="pixel_counts")
    parser.add_argument("--against", help="git revision whose `leanvla data stats` to time beside this one")
    add_dataset_size_options(parser)
    parser.add_argument("--ab-repeats", type=int, default=2)
    args = parser.parse_args()
    results = {}
    for name, count, height, width in BATCHES:
        images = frames_of(count, height, width)
        results[name] = (images.nbytes, measure(images, args.repeats))
        print(name, {k: round(min(v) * 1e3, 3) for k, v in results[name][1].items()})
    versions = None
    if args.against:
        with source_at(args.against, parser) as old, tempfile.TemporaryDirectory() as tmp:
            versions = data_stats_at_both(END_TO_END, args, old, Path(tmp))
    write_result(f"{args.name}.md", report(args, results, versions))


def report(args, results: dict, versions: dict | None) -> str:
    lines = [
        "# Counting pixel values two bytes at a time, and on every core",
        "",
        f"Command: `{command_line()}`",
        "",
        f"`image_histogram` (per-channel counts of uint8 pixel values) of batches of benchmarks/video_read.py's "
        f"panning texture, three ways in turn, {args.repeats} runs each (a small batch timed over many "
        "calls); the fastest counts (the median in brackets), in milliseconds a batch. Asserted: the same "
        f"counts all three ways. On every core: {cores_per_process()} here, from "
        f"{PARALLEL_BYTES / 1e6:.1f} MB a batch on.",
        "",
        "| batch | MB | "
        + " | ".join(f"{way} (ms)" for way in WAYS)
        + " | time, against each channel alone |",
        "|---|---|" + "---|" * len(WAYS) + "---|",
    ]
    for name, (size, seconds) in results.items():
        best = {way: min(s) for way, s in seconds.items()}
        cells = [f"{best[way] * 1e3:.3f} [{statistics.median(s) * 1e3:.3f}]" for way, s in seconds.items()]
        ratios = ", ".join(f"{best[way] / best['each channel alone']:.2f}x" for way in list(WAYS)[1:])
        lines.append(f"| {name} | {size / 1e6:.2f} | " + " | ".join(cells) + f" | {ratios} |")
    if versions:
        lines += ["", *data_stats_table(args, versions)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
