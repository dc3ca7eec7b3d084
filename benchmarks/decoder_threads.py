"""Video decoding given fewer cores than the machine has: FFmpeg's decoder threads, as FFmpeg
chooses them (from the cores of the process's affinity, whatever its CPU quota) against as leanvla
now chooses them (`leanvla.cores.decoder_threads`: FFmpeg's rule on the cores the process may use).

    python benchmarks/decoder_threads.py --against e3a5cc9     # about 20 minutes on 2 CPU cores

Two datasets of --episodes episodes of 60 frames of one 480 x 640 camera (benchmarks/video_read.py's
panning texture), every episode in one mp4: H.264 (libx264's defaults) and AV1 as LeRobot encodes
it (libsvtav1, a keyframe every 2 frames; decoded by libdav1d). With the code at --against and the
working tree's, in turn, --repeats runs each, the fastest counting, in new processes: the mp4
decoded alone to RGB, opened as each revision's `leanvla.data.video` opens it (the decoder threads
it runs, as FFmpeg reports them, and the seconds); then `leanvla data stats DATA --check`, which
decodes every frame, counts its pixels and writes nothing (the statistics written once before, so
that both revisions' must equal them: a run that finds any different fails). The three ways of
giving a process cores are benchmarks/cores.py's: the whole machine, an affinity of --cores cores,
a cgroup CPU quota of --cores cores (needs root and a cgroup filesystem it may write; skipped,
saying why, elsewhere). Writes docs/results/NAME.md.
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
from cores import described_ways, limited_ways, machine_cores
from video_read import CODECS, KEY, video_dataset

LENGTH = 60
DATASETS = {"H.264": CODECS["H.264"], "AV1 as LeRobot encodes it": CODECS["AV1 (LeRobot's default)"]}

# The mp4 decoded whole to RGB, as `leanvla.data.video` opens it at a revision: with the revision's
# `decoder_threads` where it has one, else FFmpeg's own choice. Prints the thread count the decoder
# runs (0: the decoder counts its own, as libdav1d does) and the seconds decoding took.
_DECODING_ALONE = """
import sys
import time
import av
try:
    from leanvla.cores import decoder_threads
except ImportError:
    decoder_threads = lambda: None
start = time.perf_counter()
with av.open(sys.argv[1]) as container:
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    if (threads := decoder_threads()) is not None:
        stream.codec_context.thread_count = threads
    for frame in container.decode(stream):
        frame.to_ndarray(format="rgb24")
    print(stream.codec_context.thread_count, time.perf_counter() - start)
"""


def decoding_alone_at(src: Path, mp4: Path, limit: Callable | None) -> tuple[int, float]:
    """The decoder threads a revision runs under `limit`, and the seconds it takes to decode `mp4`."""
    environment = {**os.environ, "PYTHONPATH": str(src)}
    command = [sys.executable, "-c", _DECODING_ALONE, str(mp4)]
    done = subprocess.run(
        command, env=environment, capture_output=True, text=True, preexec_fn=limit, check=True
    )
    threads, seconds = done.stdout.split()[-2:]
    return int(threads), float(seconds)


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
    machine = machine_cores(parser, args.cores)

    with source_at(args.against, parser) as earlier, tempfile.TemporaryDirectory() as tmp:
        sources = {args.against: earlier, "now": REPO / "src"}
        tables, skipped = measure(args, sources, Path(tmp))
    write_result(f"{args.name}.md", report(args, machine, tables, skipped))


def measure(args, sources: dict[str, Path], tmp: Path) -> tuple[dict[str, list[dict]], str | None]:
    """Per dataset, per way: each revision's decoder threads, fastest seconds and every run's."""
    ways, quota, skipped = limited_ways(args.cores)
    tables: dict[str, list[dict]] = {}
    try:
        for name, (codec, options) in DATASETS.items():
            print(f"writing {args.episodes * LENGTH} frames as {name} ...", file=sys.stderr)
            root = video_dataset(tmp / codec, codec, options, args.episodes, LENGTH)
            (mp4,) = (root / "videos" / KEY).rglob("*.mp4")
            leanvla_at(sources["now"], ["data", "stats", str(root)], LEANVLA_CACHE="off")  # the camera's
            tables[name] = []
            for way, limit in ways.items():
                row = {"way": way, **{label: {"threads": set(), "all": [], "alone": []} for label in sources}}
                for repeat in range(args.repeats):
                    for label, src in sources.items():
                        print(f"{name}, {way}: {label}, run {repeat + 1} of {args.repeats}", file=sys.stderr)
                        threads, seconds = decoding_alone_at(src, mp4, limit)
                        row[label]["threads"].add(threads)
                        row[label]["alone"].append(seconds)
                        check = ["data", "stats", str(root), "--check"]  # exit code 1 if any differs
                        row[label]["all"].append(leanvla_at(src, check, limit, LEANVLA_CACHE="off"))
                for label in sources:
                    (row[label]["threads"],) = row[label]["threads"]  # the same in every run
                tables[name].append(row)
    finally:
        if quota is not None:
            quota.remove()
    return tables, skipped


def report(args, machine: int, tables: dict[str, list[dict]], skipped: str | None) -> str:
    described = described_ways(args.cores, machine)
    against = args.against
    lines = [
        "# Video decoding given fewer cores than the machine has: FFmpeg's decoder threads",
        "",
        f"    {command_line()}",
        "",
        f"{args.episodes} episodes of {LENGTH} frames of one 480 x 640 camera in one mp4, with the code at "
        f"`{against}` (FFmpeg's decoder threads, counted by FFmpeg from the affinity) and now "
        "(`leanvla.cores.decoder_threads`: FFmpeg's rule on the cores the process may use), in turn, "
        f"{args.repeats} runs each, the fastest counting: the mp4 decoded alone to RGB, as leanvla opens it "
        "(seconds inside the process), then `leanvla data stats DATA --check` (every frame decoded and its "
        "pixels counted, nothing written; wall seconds). Decoder threads as FFmpeg reports them under each "
        "limit (0: the decoder counts its own, as libdav1d does). Both revisions found the statistics "
        "written before unchanged in every run (`--check`'s exit code 0).",
    ]
    for name, rows in tables.items():
        lines += [
            "",
            f"**{name}**",
            "",
            f"| cores given | decoder threads, {against}; now | decoding alone, {against} (s) | now (s) | ratio "
            f"| `data stats --check`, {against} (s) | now (s) | ratio | every run of the command ({against}; now) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for row in rows:
            earlier, now = row[against], row["now"]
            every = "; ".join(", ".join(f"{s:.2f}" for s in run["all"]) for run in (earlier, now))
            cells = [described[row["way"]], f"{earlier['threads']}; {now['threads']}"]
            for key in ("alone", "all"):
                before, after = min(earlier[key]), min(now[key])
                cells += [f"{before:.2f}", f"{after:.2f}", f"{after / before:.2f}x"]
            lines.append("| " + " | ".join([*cells, every]) + " |")
    if skipped:
        lines += ["", f"The quota way was skipped: {skipped}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
