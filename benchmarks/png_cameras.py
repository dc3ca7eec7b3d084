"""Cameras stored as PNG at the policy's size: what decoding them costs each command, and what the
frame cache saves once they are large enough to be kept (frame_cache.PNG_KEPT_FROM).

    python benchmarks/png_cameras.py                  # about 3 minutes on 2 CPU cores

1. PNG decoding alone (`leanvla.data.reader.decode_png`), at 64, 96, 128 and 224 pixels square:
   --decode-frames frames of benchmarks/video_read.py's camera (a panning texture with a moving
   block, and a camera's sensor noise) fitted to each size and written as the dataset writer writes
   them; frames per second on one thread and on the reader's `cores_per_process()`, the fastest of 3
   passes each, the two in turn.
2. A LeRobot-layout dataset with one such camera stored as PNG at --size (--episodes episodes of
   --length frames), read as training reads it (`ChunkDataset` at --size, then --batches batches of
   32), each in a new process, --repeats times each in turn, the fastest counting (benchmarks/
   frame_memory.py's reader): with the frame cache off, as every command read PNG at the policy's
   size before 2026-12-06 (decoded and held in memory); with an empty cache (the first read,
   decoding into the entry); and with the entry kept (a later command, mapping it). The batches
   are asserted equal.
3. The PNG reader against an earlier revision's (--against, default 4a455cd: before it decoded a
   batch's PNGs on threads, one after another; df0a67d is before it read a batch at a time, when it
   held a camera's every PNG and Python's copy of each): each decodes
   the camera into a new memory-mapped .npy, as the frame cache's first read does, in a new
   process, and the same for a dataset of half its episodes (does the memory grow with the
   camera?); the peak anonymous memory and the seconds, --repeats times in turn, the fastest
   counting. The frames are asserted equal.

Writes docs/results/NAME.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from common import child_result, command_line, module_at, write_result
from frame_memory import decoded_into_entry, run_child
from video_read import FPS, KEY, camera_frames

SIZES = (64, 96, 128, 224)


def fitted_frames(n: int, size: int, seed: int) -> np.ndarray:
    """n frames of the panning texture fitted to size x size, with a camera's sensor noise (a
    standard deviation of 2 levels): without it PNG packs a rendered texture into a fraction of what
    a camera's frame takes, and decodes it faster."""
    from leanvla.data.resize import fit_square

    clean = fit_square(camera_frames(n, seed), size, "crop").astype(np.float32)
    noise = np.random.default_rng(seed).normal(0.0, 2.0, clean.shape).astype(np.float32)
    return np.clip(np.rint(clean + noise), 0, 255).astype(np.uint8)


def decode_rates(frames: int, threads: int) -> dict[int, tuple[float, float, float]]:
    """Per size: (frames per second decoded on one thread, and on `threads`, the fastest of 3 passes
    each, in turn; mean PNG kilobytes)."""
    from leanvla.data.reader import decode_png
    from leanvla.data.writer import encode_png

    rates = {}
    with ThreadPoolExecutor(threads) as pool:
        for size in SIZES:
            encoded = [encode_png(frame) for frame in fitted_frames(frames, size, seed=0)]
            seconds: dict[object, list[float]] = {map: [], pool.map: []}
            for _ in range(3):
                for way in seconds:  # the builtin map on one thread, the pool's on `threads`
                    start = time.perf_counter()
                    list(way(decode_png, encoded))
                    seconds[way].append(time.perf_counter() - start)
            kb = sum(map(len, encoded)) / len(encoded) / 1024
            rates[size] = (frames / min(seconds[map]), frames / min(seconds[pool.map]), kb)
    return rates


def png_dataset(root: Path, size: int, episodes: int, length: int) -> Path:
    from leanvla.data.format import image_feature
    from leanvla.data.writer import LeRobotWriter

    features = {
        KEY: image_feature(size, size),
        "observation.state": {"dtype": "float32", "shape": [6], "names": None},
        "action": {"dtype": "float32", "shape": [6], "names": None},
    }
    writer = LeRobotWriter(root, fps=FPS, features=features)
    for episode in range(episodes):
        zeros = np.zeros((length, 6), np.float32)
        images = fitted_frames(length, size, seed=episode)
        writer.add_episode("pick up the cube", {KEY: images, "observation.state": zeros, "action": zeros})
    writer.finalize()
    return root


def first_read(root: str, size: int, against: str | None, out: str) -> dict:
    """In a new process: decode the camera into a new memory-mapped .npy at `out`, as the frame
    cache's first read does, with this revision's reader or `against`'s: seconds, peak memory, a
    digest of the frames."""
    from leanvla.data import reader, resize  # noqa: F401  (imported before measuring)

    module = reader if against is None else module_at(against, "src/leanvla/data/reader.py")[0]
    dataset = module.LeRobotDataset(Path(root))
    shape = (dataset.num_frames, size, size, 3)
    return decoded_into_entry(
        out, shape, lambda entry: dataset._decode_images(KEY, False, None, size, "pad", entry)
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=224, help="the camera's and the policy's image side")
    parser.add_argument("--episodes", type=int, default=24)
    parser.add_argument("--length", type=int, default=250, help="frames per episode")
    parser.add_argument("--decode-frames", type=int, default=300)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2, help="reads each way, in turn")
    parser.add_argument("--against", default="4a455cd", help="the revision whose PNG reader is compared")
    parser.add_argument("--name", default="png_cameras", help="writes docs/results/NAME.md")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(first_read(**json.loads(args.child))))
        return

    from leanvla.cores import cores_per_process
    from leanvla.data import frame_cache

    frames = args.episodes * args.length
    frames_mb = frames * args.size * args.size * 3 / 2**20
    print("decoding PNG at each size ...", file=sys.stderr)
    threads = cores_per_process()
    rates = decode_rates(args.decode_frames, threads)
    with tempfile.TemporaryDirectory() as tmp:
        print(f"writing {frames} PNG frames at {args.size} x {args.size} ...", file=sys.stderr)
        root = png_dataset(Path(tmp) / "ds", args.size, args.episodes, args.length)
        data_mb = sum(path.stat().st_size for path in (root / "data").rglob("*.parquet")) / 2**20
        read = {
            "kind": "read",
            "root": str(root),
            "size": args.size,
            "batches": args.batches,
            "batch_size": 32,
        }
        ways = ["cache off: decoded, held in memory", "cache on, empty: first read", "cache on, kept: mapped"]
        reads: dict[str, list[dict]] = {way: [] for way in ways}
        for repeat in range(args.repeats):
            cache = str(Path(tmp) / f"cache-{repeat}")
            for way, where in zip(ways, [None, cache, cache], strict=True):
                print(f"{way} ({repeat + 1}/{args.repeats}) ...", file=sys.stderr)
                reads[way].append(run_child(read, where))
        checksums = {r["checksum"] for runs in reads.values() for r in runs}
        assert len(checksums) == 1, f"the batches differ between ways of reading: {reads}"
        kept = frames * args.size * args.size * 3 >= frame_cache.PNG_KEPT_FROM  # else no entry: a smoke run
        assert [runs[0]["mapped"] for runs in reads.values()] == [False, kept, kept]

        # the same camera's first half too: whether a reader's memory grows with the camera
        half = png_dataset(Path(tmp) / "half", args.size, args.episodes // 2, args.length)
        readers: dict[tuple[int, str], list[dict]] = {}
        for dataset, count in ((half, frames // 2), (root, frames)):
            for repeat in range(args.repeats):
                for label, against in [(args.against, args.against), ("now", None)]:
                    print(
                        f"first read of {count} frames, {label}'s reader ({repeat + 1}/{args.repeats}) ...",
                        file=sys.stderr,
                    )
                    entry = str(Path(tmp) / f"entry-{repeat}.npy")
                    task = {"root": str(dataset), "size": args.size, "against": against, "out": entry}
                    readers.setdefault((count, label), []).append(child_result("png_cameras.py", task, None))
                    Path(entry).unlink()
            digests = {r["digest"] for (n, _), runs in readers.items() if n == count for r in runs}
            assert len(digests) == 1, f"the readers' frames differ: {readers}"
    kept_from_mb = frame_cache.PNG_KEPT_FROM / 2**20
    report_text = report(args, threads, rates, frames, frames_mb, data_mb, kept_from_mb, reads, readers)
    write_result(f"{args.name}.md", report_text)


def each_run(runs: list[dict], field: str) -> str:
    return ", ".join(f"{r[field]:.2f}" for r in runs)


def report(args, threads, rates, frames, frames_mb, data_mb, kept_from_mb, reads: dict, readers: dict) -> str:
    def best(way: str, field: str) -> float:
        return min(r[field] for r in reads[way])

    off, later = "cache off: decoded, held in memory", "cache on, kept: mapped"
    lines = [
        "# Cameras stored as PNG at the policy's size",
        "",
        f"Command: `{command_line()}`",
        "",
        f"## PNG decoding ({args.decode_frames} frames of a panning texture, written as the dataset writer writes them)",
        "",
        f"| size | PNG (KB a frame) | frames/s decoded, one thread | MB/s of pixels | {frames} frames take (s) "
        f"| frames/s on {threads} threads (`cores_per_process()`) | ratio |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {size} x {size} | {kb:.1f} | {one:.0f} | {one * size * size * 3 / 2**20:.0f} | {frames / one:.1f} "
            f"| {on_threads:.0f} | {on_threads / one:.2f}x |"
            for size, (one, on_threads, kb) in rates.items()
        ),
        "",
        f"The frame cache keeps PNG frames at the policy's size from {kept_from_mb:.0f} MB of pixels "
        "(`frame_cache.PNG_KEPT_FROM`); below it they are decoded by each command, in seconds, and "
        "their entry would be larger than the dataset.",
        "",
        f"## Reading {frames} frames at {args.size} x {args.size} ({frames_mb:.0f} MB of pixels, "
        f"{data_mb:.0f} MB of parquet), then {args.batches} batches of 32",
        "",
        f"Each row is a new process, as a command is; the fastest of {args.repeats}, the ways run in turn; "
        "anonymous memory is RssAnon above what the process held before reading (peak sampled every "
        "5 ms). The batches each way drew are asserted equal.",
        "",
        "| frames | build (s) | each run (s) | anonymous memory, peak (MB) | after (MB) | ms per batch |",
        "|---|---|---|---|---|---|",
        *(
            f"| {way} | {best(way, 'build_s'):.2f} | {each_run(runs, 'build_s')} "
            f"| {best(way, 'peak_mb'):.0f} | {best(way, 'after_mb'):.0f} | {best(way, 'batch_ms'):.2f} |"
            for way, runs in reads.items()
        ),
        "",
        f"A later command builds its dataset in {best(later, 'build_s') / best(off, 'build_s'):.3f}x the "
        f"time of decoding the PNGs ({best(off, 'build_s') / best(later, 'build_s'):.0f}x as fast) and "
        f"holds {best(later, 'after_mb'):.0f} MB of anonymous memory where decoding held "
        f"{best(off, 'after_mb'):.0f} MB.",
        "",
        f"## The first read's PNG reader against {args.against}'s",
        "",
        f"This revision's decodes a batch's PNGs on {threads} threads. Each decodes the camera (and, first, a dataset of its first half) into a new memory-mapped .npy, "
        f"as the frame cache's first read does, in a new process; {args.repeats} runs each in turn, the "
        "fastest counting; the frames asserted equal.",
        "",
        "| frames | reader | seconds (fastest) | each run | anonymous memory, peak (MB, smallest) |",
        "|---|---|---|---|---|",
        *(
            f"| {count} ({count * args.size * args.size * 3 / 2**20:.0f} MB) | {label} "
            f"| {min(r['seconds'] for r in runs):.2f} | {each_run(runs, 'seconds')} "
            f"| {min(r['peak_mb'] for r in runs):.0f} |"
            for (count, label), runs in readers.items()
        ),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
