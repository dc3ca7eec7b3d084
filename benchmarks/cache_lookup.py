"""A later command finding its frames in the frame cache: hashing every source file again to name the
entry, against the digests an earlier command remembered.

    python benchmarks/cache_lookup.py                 # about 5 minutes on 2 CPU cores

A LeRobot-layout dataset with one 480 x 640 camera of --episodes episodes of 300 frames (10 s at
30 fps) stored as mp4, --episodes-per-file in each file (LeRobot packs a camera into files of up to
200 MB). The frames are noise shifting a column a frame, encoded lossless (H.264, QP 0): content
that compresses badly, so the files are large quickly; what they show does not matter here, only
their size, since naming an entry reads every byte. The camera is read once, fitted to 64 x 64, to
fill the cache. Then each way below runs in a new process, as a command reads the camera; --repeats
times each in turn, the fastest counting; the frames are asserted equal between the ways.

1. Every episode (`train`): the digests remembered by the earlier read (now), against hashing every
   file afresh (every later command before 2026-12-06; still the first command after a dataset is
   written, copied or changed), on the cores the process may use (`leanvla.cores`, a file a
   thread, now) and on one thread (before 2026-12-06). With the dataset's pages in the page cache
   (read through first), and with them dropped first (posix_fadvise), as for a dataset read from disk.
2. One episode (`probe --episodes`, or `--val-episodes` in a later command): from the whole
   camera's entry, found through the remembered digests (now), against decoding it alone into an
   empty cache (before: a later command looked for the whole entry only where it had hashed its
   files itself, so it decoded the episode alone).

Writes docs/results/NAME.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import child_result, command_line, write_result
from frame_memory import drop_from_page_cache
from video_read import FPS, HEIGHT, KEY, WIDTH, video_dataset

LENGTH = 300  # frames per episode
LOSSLESS = ("libx264", {"qp": "0", "preset": "ultrafast"})
HASHED_WARM = "hashed afresh, files in the page cache"
HASHED_COLD = "hashed afresh, files read from disk"


def noise_frames(n: int, seed: int) -> np.ndarray:
    """n frames of noise, each shifted a column from the last."""
    rng = np.random.default_rng(seed)
    still = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    return np.stack([np.roll(still, i, axis=1) for i in range(n)])


def read_through(root: Path) -> None:
    """Read every file of the dataset once (its pages then in the page cache)."""
    for path in sorted(path for path in root.rglob("*") if path.is_file()):
        with path.open("rb") as f:
            while f.read(1 << 22):
                pass


def disk_read_seconds(root: Path) -> float:
    """Seconds to read the dataset's files from disk without hashing them: what the disk costs."""
    drop_from_page_cache(root, "*")
    start = time.perf_counter()
    read_through(root)
    return time.perf_counter() - start


def read_camera(root: str, episodes: list[int] | None, threads: int | None = None) -> dict:
    """In a new process: read the camera (of `episodes` alone, when given) fitted to 64 x 64 as
    training reads it, hashing on `threads` threads (None: as a command does); the seconds, a digest
    of the frames, and whether they came mapped."""
    from leanvla.data import frame_cache
    from leanvla.data.reader import LeRobotDataset

    if threads is not None:
        frame_cache.cores_per_process = lambda: threads
    frame_cache._code_and_decoders()  # imports torch and the decoders, as any command has by then
    dataset = LeRobotDataset(Path(root))
    rows = None
    if episodes is not None:
        rows = np.isin(dataset.read_array("episode_index"), episodes)
    start = time.perf_counter()
    frames, index = dataset.camera_frames(KEY, rows=rows, size=64)
    seconds = time.perf_counter() - start
    picked = frames if index is None else frames[index]
    digest = hashlib.blake2b(np.ascontiguousarray(picked).tobytes(), digest_size=16).hexdigest()
    return {"seconds": seconds, "digest": digest, "frames": len(picked), "mapped": index is not None}


def run_child(root: Path, episodes: list[int] | None, cache: Path, threads: int | None = None) -> dict:
    task = {"root": str(root), "episodes": episodes, "threads": threads}
    return child_result("cache_lookup.py", task, str(cache))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--episodes", type=int, default=45)
    parser.add_argument("--episodes-per-file", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each way, in turn")
    parser.add_argument("--name", default="cache_lookup", help="writes docs/results/NAME.md")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        task = json.loads(args.child)
        print(json.dumps(read_camera(task["root"], task["episodes"], task["threads"])))
        return
    if not 1 <= args.episodes_per_file <= args.episodes:
        parser.error("--episodes-per-file must be between 1 and --episodes")

    from leanvla.cores import cores_per_process
    from leanvla.data import file_digests

    one = [args.episodes // 2]
    with tempfile.TemporaryDirectory() as tmp:
        print(f"writing {args.episodes * LENGTH} frames as lossless mp4 ...", file=sys.stderr)
        root = video_dataset(
            Path(tmp) / "ds", *LOSSLESS, args.episodes, LENGTH, args.episodes_per_file, noise_frames
        )
        mp4s = sorted((root / "videos").rglob("*.mp4"))
        mp4_mb = sum(path.stat().st_size for path in mp4s) / 2**20
        time.sleep(file_digests.SETTLED_S)  # a dataset is older than this when a command reads it
        cache = Path(tmp) / "cache"
        print("filling the cache ...", file=sys.stderr)
        filled = run_child(root, None, cache)

        ways = {
            "hashed afresh on one thread, files in the page cache": ("every", "afresh", False, 1),
            HASHED_WARM: ("every", "afresh", False, None),
            "remembered, files in the page cache": ("every", "remembered", False, None),
            "hashed afresh on one thread, files read from disk": ("every", "afresh", True, 1),
            HASHED_COLD: ("every", "afresh", True, None),
            "remembered, files read from disk": ("every", "remembered", True, None),
            "one episode decoded alone (before)": ("one", "alone", False, None),
            "one episode from the whole entry (now)": ("one", "remembered", False, None),
        }
        runs: dict[str, list[dict]] = {label: [] for label in ways}
        for repeat in range(args.repeats):
            for label, (which, how, from_disk, threads) in ways.items():
                print(f"{label} ({repeat + 1}/{args.repeats}) ...", file=sys.stderr)
                where = cache
                if how == "afresh":
                    file_digests.forget_remembered(cache / "digests")
                elif how == "alone":
                    where = Path(tmp) / f"empty-{repeat}"
                if from_disk:
                    drop_from_page_cache(root, "*")
                else:  # an earlier way may have dropped them
                    read_through(root)
                runs[label].append(run_child(root, one if which == "one" else None, where, threads))
        for which, reference in (("every", filled), ("one", runs["one episode decoded alone (before)"][0])):
            digests = {r["digest"] for label, (w, *_) in ways.items() if w == which for r in runs[label]}
            assert digests == {reference["digest"]}, f"the frames differ between ways: {runs}"
        assert all(r["mapped"] for label in runs for r in runs[label])
        disk = min(disk_read_seconds(root) for _ in range(args.repeats))

    write_result(f"{args.name}.md", report(args, mp4_mb, len(mp4s), filled, runs, disk, cores_per_process()))


def fastest(runs: list[dict]) -> float:
    return min(r["seconds"] for r in runs)


def each_run(runs: list[dict]) -> str:
    return ", ".join(f"{r['seconds']:.3f}" for r in runs)


def report(
    args, mp4_mb: float, files: int, filled: dict, runs: dict[str, list[dict]], disk: float, threads: int
) -> str:
    def ratio(slow: str, fast: str, digits: int = 0) -> str:
        return f"{fastest(runs[slow]) / fastest(runs[fast]):.{digits}f}x"

    def hashing(label: str, remembered: str) -> float:  # the seconds hashing added to the read
        return fastest(runs[label]) - fastest(runs[remembered])

    warm_hash = hashing(HASHED_WARM, "remembered, files in the page cache")
    cold_hash = hashing(HASHED_COLD, "remembered, files read from disk")
    warm_one = hashing(
        "hashed afresh on one thread, files in the page cache", "remembered, files in the page cache"
    )
    cold_one = hashing(
        "hashed afresh on one thread, files read from disk", "remembered, files read from disk"
    )
    lines = [
        "# A later command finding its frames: hashing every file, or the remembered digests",
        "",
        f"Command: `{command_line()}`",
        "",
        f"One {HEIGHT} x {WIDTH} camera at {FPS} fps stored as lossless H.264 (noise, so that the files "
        f"are large): {args.episodes} episodes of {LENGTH} frames, {args.episodes_per_file} per file, "
        f"{files} files, {mp4_mb:.0f} MB. The camera was read once fitted to 64 x 64 "
        f"({filled['seconds']:.1f} s, decoding into the cache). Each row is a new process reading the "
        f"camera as training does (`LeRobotDataset.camera_frames`, fitted to 64 x 64); seconds are the "
        f"fastest of {args.repeats}, the ways run in turn; the frames are asserted equal between the "
        "ways. Before 2026-12-06 every later command hashed every file, one after another; a file's "
        f"digest is now remembered in the cache and known again by the file's times, and files are "
        f"hashed side by side, a file a thread, on the cores the process may use ({threads} here).",
        "",
        "| read | frames | seconds (fastest) | each run |",
        "|---|---|---|---|",
        *(f"| {label} | {r[0]['frames']} | {fastest(r):.3f} | {each_run(r)} |" for label, r in runs.items()),
        "",
        f"- Every episode: remembered digests are {ratio(HASHED_WARM, 'remembered, files in the page cache')} "
        f"as fast as hashing with the files in the page cache, "
        f"{ratio(HASHED_COLD, 'remembered, files read from disk')} with the files read from disk. On "
        f"{threads} threads hashing cost {warm_hash:.2f} s ({mp4_mb / warm_hash:.0f} MB/s) from the page "
        f"cache and {cold_hash:.2f} s ({mp4_mb / cold_hash:.0f} MB/s) from disk; on one thread "
        f"{warm_one:.2f} s ({mp4_mb / warm_one:.0f} MB/s) and {cold_one:.2f} s ({mp4_mb / cold_one:.0f} MB/s): "
        f"the whole read took {ratio(HASHED_WARM, 'hashed afresh on one thread, files in the page cache', 2)} "
        f"and {ratio(HASHED_COLD, 'hashed afresh on one thread, files read from disk', 2)} the time of one "
        f"thread's. This machine's disk reads the files alone in {disk:.2f} s ({mp4_mb / disk:.0f} MB/s, "
        f"the fastest of {args.repeats}): where hashing is faster than that, the disk is the cost, as on "
        "a network filesystem. Either grows with the dataset; a read from remembered digests does not.",
        f"- One episode: from the whole camera's entry {ratio('one episode decoded alone (before)', 'one episode from the whole entry (now)')} "
        "as fast as decoding it alone (which hashes the files holding it, then seeks and decodes; a "
        "second read of the same episode came from its own entry before too, after hashing those files).",
        "- The first command after a dataset is written, copied or changed still hashes its files, and "
        "a file written in the last 2 s is not remembered (its times may not yet show a second write).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
