"""Video decoding given fewer cores than the machine has: FFmpeg's decoder threads, as FFmpeg
chooses them (from the cores of the process's affinity, whatever its CPU quota) against as leanvla
now chooses them (`leanvla.cores.decoder_threads`: FFmpeg's rule on the cores the process may use).

    python benchmarks/decoder_threads.py --against 2decc23     # about 15 minutes on 2 CPU cores

Two datasets of --episodes episodes of 60 frames of one 480 x 640 camera (benchmarks/video_read.py's
panning texture), every episode in one mp4: H.264 (libx264's defaults) and AV1 as LeRobot encodes
it (libsvtav1, a keyframe every 2 frames; decoded by libdav1d). `leanvla data stats DATA --check`,
which decodes every frame and counts its pixels and writes nothing (its statistics written once
before, so that both revisions' must equal them: a run that finds any different fails), with the
code at --against and the working tree's, in turn, --repeats runs each, the fastest counting. The
three ways of giving a process cores are benchmarks/cores.py's: the whole machine, an affinity of
--cores cores, a cgroup CPU quota of --cores cores (needs root and a cgroup filesystem it may
write; skipped, saying why, elsewhere). The decoder threads each revision runs are read under the
same limits, from FFmpeg's decoder as each revision opens it. Writes docs/results/NAME.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from common import REPO, command_line, leanvla_at, result_name, source_at, write_result
from cores import QuotaCgroup, pinned
from video_read import CODECS, KEY, video_dataset

LENGTH = 60
DATASETS = {"H.264": CODECS["H.264"], "AV1 as LeRobot encodes it": CODECS["AV1 (LeRobot's default)"]}

# The thread count FFmpeg's decoder runs, opened as `leanvla.data.video` opens it at a revision: with
# the revision's `decoder_threads` where it has one, else FFmpeg's own choice. 0: the decoder's own
# (libdav1d counts its threads itself).
_DECODER_THREADS = """
import sys
import av
try:
    from leanvla.cores import decoder_threads
except ImportError:
    decoder_threads = lambda: None
with av.open(sys.argv[1]) as container:
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    if (threads := decoder_threads()) is not None:
        stream.codec_context.thread_count = threads
    next(container.decode(stream))
    print(stream.codec_context.thread_count)
"""


def decoder_threads_at(src: Path, mp4: Path, limit: Callable | None) -> int:
    environment = {**os.environ, "PYTHONPATH": str(src)}
    command = [sys.executable, "-c", _DECODER_THREADS, str(mp4)]
    done = subprocess.run(
        command, env=environment, capture_output=True, text=True, preexec_fn=limit, check=True
    )
    return int(done.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--against", required=True, help="git revision to compare the working tree with")
    parser.add_argument("--cores", type=int, default=1, help="the cores a limited process is given")
    parser.add_argument("--episodes", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--name", type=result_name, default="decoder_threads")
    args = parser.parse_args()
    machine = len(os.sched_getaffinity(0))
    if not 1 <= args.cores < machine:
        parser.error(f"--cores {args.cores}: give fewer cores than this process may use ({machine})")

    with source_at(args.against, parser) as earlier, tempfile.TemporaryDirectory() as tmp:
        sources = {args.against: earlier, "now": REPO / "src"}
        tables, skipped = measure(args, sources, Path(tmp))
    write_result(f"{args.name}.md", report(args, machine, tables, skipped))


def measure(args, sources: dict[str, Path], tmp: Path) -> tuple[dict[str, list[dict]], str | None]:
    """Per dataset, per way: each revision's decoder threads, fastest seconds and every run's."""
    ways: dict[str, Callable | None] = {"none": None, "affinity": pinned(args.cores)}
    skipped, quota = None, None
    try:
        quota = QuotaCgroup(args.cores)
        ways["quota"] = quota.enter
    except OSError as exc:
        skipped = f"no CPU quota could be set here ({exc})"
    tables: dict[str, list[dict]] = {}
    try:
        for name, (codec, options) in DATASETS.items():
            print(f"writing {args.episodes * LENGTH} frames as {name} ...", file=sys.stderr)
            root = video_dataset(tmp / codec, codec, options, args.episodes, LENGTH)
            (mp4,) = (root / "videos" / KEY).rglob("*.mp4")
            leanvla_at(sources["now"], ["data", "stats", str(root)], LEANVLA_CACHE="off")  # the camera's
            tables[name] = []
            for way, limit in ways.items():
                row = {"way": way}
                for label, src in sources.items():
                    row[label] = {"threads": decoder_threads_at(src, mp4, limit), "all": []}
                for repeat in range(args.repeats):
                    for label, src in sources.items():
                        print(f"{name}, {way}: {label}, run {repeat + 1} of {args.repeats}", file=sys.stderr)
                        check = ["data", "stats", str(root), "--check"]  # exit code 1 if any differs
                        row[label]["all"].append(leanvla_at(src, check, limit, LEANVLA_CACHE="off"))
                tables[name].append(row)
    finally:
        if quota is not None:
            quota.remove()
    return tables, skipped


def report(args, machine: int, tables: dict[str, list[dict]], skipped: str | None) -> str:
    described = {
        "none": f"none (the whole machine: {machine} cores)",
        "affinity": f"affinity: {args.cores} of {machine} cores",
        "quota": f"quota: {args.cores} core{'s' * (args.cores != 1)} a period",
    }
    against = args.against
    lines = [
        "# Video decoding given fewer cores than the machine has: FFmpeg's decoder threads",
        "",
        f"    {command_line()}",
        "",
        f"`leanvla data stats DATA --check` (every frame decoded and its pixels counted, nothing written) on "
        f"{args.episodes} episodes of {LENGTH} frames of one 480 x 640 camera in one mp4, the code at `{against}` "
        "(FFmpeg's decoder threads, counted by FFmpeg from the affinity) and now "
        "(`leanvla.cores.decoder_threads`: FFmpeg's rule on the cores the process may use), in turn; "
        f"the fastest of {args.repeats} runs each, wall seconds. Decoder threads as FFmpeg reports them "
        "under each limit (0: the decoder counts its own, as libdav1d does). Both revisions found the "
        "statistics written before unchanged in every run (`--check`'s exit code 0).",
    ]
    for name, rows in tables.items():
        lines += [
            "",
            f"**{name}**",
            "",
            f"| cores given | {against}: decoder threads | seconds | now: decoder threads | seconds | now / {against} "
            f"| every run ({against}; now) |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in rows:
            earlier, now = row[against], row["now"]
            every = "; ".join(", ".join(f"{s:.2f}" for s in run["all"]) for run in (earlier, now))
            lines.append(
                f"| {described[row['way']]} | {earlier['threads']} | {min(earlier['all']):.2f} | {now['threads']} | "
                f"{min(now['all']):.2f} | {min(now['all']) / min(earlier['all']):.2f}x | {every} |"
            )
    if skipped:
        lines += ["", f"The quota way was skipped: {skipped}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
