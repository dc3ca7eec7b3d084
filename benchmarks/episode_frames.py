"""`leanvla data stats` (and `convert --stats frames`), which decodes every episode's frames and
counts their pixels, with the code at a revision and the working tree's, on three ways of storing
a camera as mp4.

    python benchmarks/episode_frames.py --against f25d004     # about 45 minutes on 2 CPU cores, 10 of them encoding AV1
    python benchmarks/episode_frames.py --against a5bf6f8 --ab-repeats 3 --name episode_stats_overlap     # 43 minutes
    python benchmarks/episode_frames.py --against f25d004 --only h-264-an-mp4-an-episode --ab-repeats 3 --name episode_stats_one_a_file     # 10 minutes
    python benchmarks/episode_frames.py --against e15751d --ab-repeats 3 --name episode_frames_views     # 38 minutes

The first measured each mp4 decoded once, in one pass over its episodes, against an episode at a
time as before (f25d004). Read an episode at a time, a file of many episodes was passed over (its
packets' times) once per episode, and where its keyframes are far apart decoded from the keyframe
before each episode: time growing as the square of the episodes a file holds. The second measured
an episode's pixels counted while the next episode decodes, with a bounded array of indices for
np.bincount, against counting between decodes (a5bf6f8); the third, the mp4-an-episode layout alone
against f25d004 again, where the first found 1.0-1.2x; the fourth, decoded frames handed on as
views of the decoder's batch rather than copied twice more (e15751d). Datasets of --episodes
episodes of --length frames of one 480 x 640 camera (benchmarks/video_read.py's panning texture):
every episode in one H.264 mp4 encoded in one go (libx264's keyframe every 250 frames, not at each
episode's start), every episode in one AV1 mp4 as LeRobot stores them (a keyframe every 2 frames,
so at each episode's start: the passes alone), and an H.264 mp4 an episode (as a converted v2.1
dataset keeps them: one episode a file, nothing for the first to gain). `leanvla data stats` with
the code at --against and the working tree's, in turn, each command's time and peak memory.
Writes docs/results/NAME.md.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import command_line, result_name, slug, source_at, write_result
from video_read import add_dataset_size_options, data_stats_at_both, data_stats_table

# name: (codec, episodes a file: None for all in one)
DATASETS = {
    "H.264, every episode in one mp4 encoded in one go": ("H.264", None),
    "AV1 as LeRobot encodes it, every episode in one mp4": ("AV1 (LeRobot's default)", None),
    "H.264, an mp4 an episode": ("H.264", 1),
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--against", required=True, help="git revision whose `leanvla data stats` to time beside this one"
    )
    parser.add_argument("--ab-repeats", type=int, default=2)
    parser.add_argument(
        "--only",
        nargs="+",
        choices=[slug(name) for name in DATASETS],
        help="these of the datasets (all by default)",
    )
    parser.add_argument("--name", type=result_name, default="episode_frames")
    add_dataset_size_options(parser)
    parser.set_defaults(episodes=300, length=60)
    args = parser.parse_args()
    with source_at(args.against, parser) as old, tempfile.TemporaryDirectory() as tmp:
        datasets = {name: how for name, how in DATASETS.items() if not args.only or slug(name) in args.only}
        versions = data_stats_at_both(datasets, args, old, Path(tmp))
    lines = [
        "# `leanvla data stats` against an earlier revision",
        "",
        f"Command: `{command_line()}`",
        "",
        *data_stats_table(args, versions),
    ]
    write_result(f"{args.name}.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
