"""Training from the frame cache's memory-mapped entries: the memory a command holds, what a batch
costs, and whether a dataset larger than the memory a process may use still trains.

    python benchmarks/frame_memory.py                 # about 4 minutes on 2 CPU cores

A dataset with one 480 x 640 camera stored as mp4 (H.264, benchmarks/video_read.py's frames, every
episode in one file as LeRobot packs a camera into files of up to 200 MB, or --episodes-per-file in
each) is read as training reads it (`ChunkDataset`, fitted to --size), each time in a new process,
as a command reads it:

1. Each way of holding the frames: the cache off (decoded into memory: every command before the
   cache, and every command with LEANVLA_CACHE=off); the cache on and empty (the first read decodes
   straight into the entry); the cache on and kept (a later command maps the entry). For each: the
   seconds to build the ChunkDataset, the anonymous memory (RssAnon) it added, at its peak (sampled
   every 5 ms) and after; then --batches batches of --batch-size drawn as training draws them, in ms
   per batch. A last process maps the kept entry after its pages were dropped from the page cache
   (posix_fadvise), its first batches reading from disk. The batches are asserted equal throughout.
2. Two processes at once, as torchrun's two ranks on one machine, each having read every frame: the
   memory charged to each (Pss: a page shared by both counts half to each), cache off and kept.
3. Under a memory limit: `leanvla train` for --steps steps in a process whose anonymous memory is
   limited (RLIMIT_DATA, which mapped files do not count against) to what it held after importing
   leanvla and reading the dataset's tables, plus half the frames' size, with the cache off, empty
   and kept.
4. The first read's decoder against an earlier revision's (--against, default 3bab779: before each
   frame went into place as it decoded, when a file's fitted frames were held until its last
   episode was placed): each decodes the camera into a new memory-mapped .npy, as the frame cache's
   first read does, in a new process; the peak anonymous memory and the seconds, --repeats times
   in turn, the fastest counting. The frames are asserted equal.

Writes docs/results/NAME.md.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import command_line, module_at, write_result
from video_read import CODECS, KEY, video_dataset

HERE = Path(__file__).resolve().parent
CHUNK = 10


def status_bytes(field: str) -> int:
    """A field of /proc/self/status (RssAnon, VmData, ...) in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def proportional_set() -> dict[str, int]:
    """Pss_Anon and Pss_File of this process in bytes (/proc/self/smaps_rollup)."""
    out = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("Pss_Anon", "Pss_File"):
            out[name] = int(rest.split()[0]) * 1024
    return out


class PeakSampler(threading.Thread):
    """The largest RssAnon seen, sampled every 5 ms while running."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.done = status_bytes("RssAnon"), threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.005):
            self.peak = max(self.peak, status_bytes("RssAnon"))

    def stop(self) -> int:
        self.done.set()
        self.join()
        return max(self.peak, status_bytes("RssAnon"))


def drop_from_page_cache(directory: Path, pattern: str = "*.npy") -> None:
    """Evict the pages of the files under `directory` matching `pattern` (by default the cache's
    entries, mapped by no process now) from the page cache, as after a reboot or under memory
    pressure."""
    os.sync()  # written pages are only dropped once they are on disk
    for path in (path for path in directory.rglob(pattern) if path.is_file()):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


# ---- what each child process does (`--child`) ----


def read_and_draw(root: str, size: int, batches: int, batch_size: int) -> dict:
    """Build the ChunkDataset, then draw batches: seconds, memory, ms per batch, a batch checksum."""
    import torch

    from leanvla.data.reader import LeRobotDataset
    from leanvla.data.samples import ChunkDataset

    before = status_bytes("RssAnon")
    sampler = PeakSampler()
    sampler.start()
    start = time.perf_counter()
    data = ChunkDataset(LeRobotDataset(root), [KEY], CHUNK, image_size=size)
    build = time.perf_counter() - start
    peak = sampler.stop()
    after = status_bytes("RssAnon")
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # memory freed but kept by the allocator, given back
    live = status_bytes("RssAnon")
    generator = torch.Generator().manual_seed(0)
    draws = [data.sample_indices(batch_size, generator) for _ in range(batches)]
    times, checksum = [], 0
    for rows in draws:
        start = time.perf_counter()
        batch = data.batch(rows)
        times.append(time.perf_counter() - start)
        checksum = (checksum * 31 + int(batch.images.sum()) + int(batch.frame.sum())) % (1 << 61)
    return {
        "build_s": build,
        "peak_mb": (peak - before) / 2**20,
        "after_mb": (after - before) / 2**20,
        "live_mb": (live - before) / 2**20,
        "first_ms": 1e3 * sum(times[:10]) / len(times[:10]),
        "batch_ms": 1e3 * sum(times) / len(times),
        "mapped": data.mapped,
        "checksum": checksum,
    }


def shared_reads(root: str, size: int, barrier: str, me: int) -> dict:
    """Read every frame, wait for the other process to have too, then report Pss."""
    import numpy as np

    from leanvla.data.reader import LeRobotDataset
    from leanvla.data.samples import ChunkDataset

    data = ChunkDataset(LeRobotDataset(root), [KEY], CHUNK, image_size=size)
    for start in range(0, len(data), 512):
        data.images(np.arange(start, min(start + 512, len(data))))
    meet(Path(barrier), "read", me)
    pss = proportional_set()
    meet(Path(barrier), "measured", me)
    return {"pss_anon_mb": pss["Pss_Anon"] / 2**20, "pss_file_mb": pss["Pss_File"] / 2**20}


def meet(directory: Path, stage: str, me: int) -> None:
    """Wait until both processes have reached `stage` (files in `directory`)."""
    (directory / f"{stage}-{me}").touch()
    deadline = time.monotonic() + 600
    while not all((directory / f"{stage}-{i}").exists() for i in (0, 1)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the other process never reached '{stage}'")
        time.sleep(0.02)


def train_limited(root: str, size: int, steps: int, headroom: int, out: str) -> dict:
    """`leanvla train` with anonymous memory limited to what is held now plus `headroom` bytes."""
    import contextlib
    import io
    import resource

    import leanvla.train.loop  # noqa: F401
    from leanvla.cli import main
    from leanvla.data.reader import LeRobotDataset

    # Before the limit, what is not the frames: the imports, and Arrow's memory pool (which reserves
    # its arenas on first use) reading the dataset's tables.
    warm = LeRobotDataset(root)
    for key in ("episode_index", "task_index", "observation.state", "action"):
        warm.read_array(key)
    limit = status_bytes("VmData") + headroom
    resource.setrlimit(resource.RLIMIT_DATA, (limit, resource.RLIM_INFINITY))
    err = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stderr(err):
        code = main(
            [
                "train", "--data", root, "--out", out, "--model.size", "tiny",
                "--model.image-size", str(size), "--steps", str(steps), "--batch-size", "16",
            ]
        )  # fmt: skip
    lines = [line for line in err.getvalue().splitlines() if line.strip()]
    return {"code": code, "seconds": time.perf_counter() - start, "last": lines[-1] if lines else ""}


def first_read(root: str, size: int, against: str | None, out: str) -> dict:
    """Decode the camera into a new memory-mapped .npy at `out`, as the frame cache's first read does,
    with this revision's decoder or `against`'s: seconds, peak memory, a digest of the frames."""
    import av  # noqa: F401  (imported before measuring, as torch is: they are not the frames)

    from leanvla.data import resize, video  # noqa: F401
    from leanvla.data.reader import LeRobotDataset

    decoder = video if against is None else module_at(against, "src/leanvla/data/video.py")[0]
    dataset = LeRobotDataset(root)
    shape = (dataset.num_frames, size, size, 3)
    return decoded_into_entry(
        out, shape, lambda entry: decoder.read_video_frames(dataset, KEY, size, "pad", out=entry)
    )


def decoded_into_entry(out: str, shape: tuple[int, ...], decode) -> dict:
    """`decode(entry)` filling a new memory-mapped .npy at `out` of `shape`: the seconds, the peak
    anonymous memory it added (MB), a digest of the frames."""
    import hashlib

    import numpy as np

    entry = np.lib.format.open_memmap(out, mode="w+", dtype=np.uint8, shape=shape)
    before = status_bytes("RssAnon")
    sampler = PeakSampler()
    sampler.start()
    start = time.perf_counter()
    decode(entry)
    seconds = time.perf_counter() - start
    peak = sampler.stop()
    digest = hashlib.blake2b(np.ascontiguousarray(entry).data, digest_size=16).hexdigest()
    return {"seconds": seconds, "peak_mb": (peak - before) / 2**20, "digest": digest}


def child(args: argparse.Namespace) -> None:
    task = json.loads(args.child)
    kind = task.pop("kind")
    kinds = {"read": read_and_draw, "shared": shared_reads, "train": train_limited, "first": first_read}
    result = kinds[kind](**task)
    print(json.dumps(result))


# ---- the parent ----


def run_child(task: dict, cache: str | None, background: bool = False):
    """A new process doing `task`, with LEANVLA_CACHE=cache (off when None)."""
    env = {**os.environ, "LEANVLA_CACHE": cache or "off", "PYTHONPATH": str(HERE.parent / "src")}
    command = [sys.executable, str(HERE / "frame_memory.py"), "--child", json.dumps(task)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return process if background else result_of(process)


def result_of(process: subprocess.Popen) -> dict:
    out, err = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"a child process failed:\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--episodes", type=int, default=24)
    parser.add_argument("--length", type=int, default=250, help="frames per episode")
    parser.add_argument("--episodes-per-file", type=int, help="default: every episode in one mp4")
    parser.add_argument("--size", type=int, default=224, help="the policy's image side")
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20, help="training steps under the memory limit")
    parser.add_argument("--against", default="3bab779", help="the revision whose first read is compared")
    parser.add_argument("--repeats", type=int, default=2, help="first reads of each decoder, in turn")
    parser.add_argument("--name", default="frame_memory", help="writes docs/results/NAME.md")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    frames = args.episodes * args.length
    frames_mb = frames * args.size * args.size * 3 / 2**20
    with tempfile.TemporaryDirectory() as tmp:
        codec, options = CODECS["H.264"]
        print(f"writing {frames} frames as mp4 ...", file=sys.stderr)
        root = str(
            video_dataset(
                Path(tmp) / "ds", codec, options, args.episodes, args.length, args.episodes_per_file
            )
        )
        mp4_mb = sum(p.stat().st_size for p in Path(root, "videos").rglob("*.mp4")) / 2**20
        read = {
            "kind": "read",
            "root": root,
            "size": args.size,
            "batches": args.batches,
            "batch_size": args.batch_size,
        }
        cache = str(Path(tmp) / "cache")
        reads = {}
        for label, where in [("cache off: held in memory", None), ("cache on, empty: first read", cache),
                             ("cache on, kept: mapped", cache)]:  # fmt: skip
            print(f"reading: {label} ...", file=sys.stderr)
            reads[label] = run_child(read, where)
        drop_from_page_cache(Path(cache))
        reads["cache on, kept: mapped, pages dropped first"] = run_child(read, cache)
        checksums = {r["checksum"] for r in reads.values()}
        assert len(checksums) == 1, f"the batches differ between ways of reading: {reads}"
        assert [r["mapped"] for r in reads.values()] == [False, True, True, True]

        shared = {}
        for label, where in [("cache off", None), ("cache on, kept", cache)]:
            print(f"two processes at once: {label} ...", file=sys.stderr)
            barrier = Path(tempfile.mkdtemp(dir=tmp))
            pair = [
                run_child({"kind": "shared", "root": root, "size": args.size, "barrier": str(barrier), "me": i}, where, True)
                for i in (0, 1)
            ]  # fmt: skip
            shared[label] = [result_of(p) for p in pair]

        limited = {}
        headroom = int(frames_mb / 2 * 2**20)
        for label, where in [("cache off", None), ("cache on, empty", str(Path(tmp) / "cache-2")),
                             ("cache on, kept", str(Path(tmp) / "cache-2"))]:  # fmt: skip
            print(f"training under the limit: {label} ...", file=sys.stderr)
            out = str(Path(tmp) / f"run-{len(limited)}")
            train = {
                "kind": "train",
                "root": root,
                "size": args.size,
                "steps": args.steps,
                "headroom": headroom,
                "out": out,
            }
            limited[label] = run_child(train, where)

        decoders: dict[str, list[dict]] = {args.against: [], "now": []}
        for repeat in range(args.repeats):
            for label, against in [(args.against, args.against), ("now", None)]:
                print(f"first read, {label}'s decoder ({repeat + 1}/{args.repeats}) ...", file=sys.stderr)
                entry = str(Path(tmp) / f"entry-{label}.npy")
                task = {"kind": "first", "root": root, "size": args.size, "against": against, "out": entry}
                decoders[label].append(run_child(task, None))
                Path(entry).unlink()
        digests = {r["digest"] for runs in decoders.values() for r in runs}
        assert len(digests) == 1, f"the decoders' frames differ: {decoders}"

    report_text = report(args, frames, frames_mb, mp4_mb, reads, shared, limited, decoders)
    write_result(f"{args.name}.md", report_text)


def ratio(decoders: dict[str, list[dict]], top: str, bottom: str, field: str, pick) -> float:
    return pick(r[field] for r in decoders[top]) / pick(r[field] for r in decoders[bottom])


def each(pair: list[dict], field: str) -> str:
    return " / ".join(f"{p[field]:.0f}" for p in pair)


def report(
    args,
    frames: int,
    frames_mb: float,
    mp4_mb: float,
    reads: dict,
    shared: dict,
    limited: dict,
    decoders: dict[str, list[dict]],
) -> str:
    off, kept = reads["cache off: held in memory"], reads["cache on, kept: mapped"]
    per_file = args.episodes_per_file
    packing = "every episode in one file" if per_file is None else f"{per_file} episodes per file"
    lines = [
        "# Training from memory-mapped frames",
        "",
        f"Command: `{command_line()}`",
        "",
        f"One 480 x 640 camera stored as H.264 mp4 ({frames} frames in {args.episodes} episodes of "
        f"{args.length}, {packing}, {mp4_mb:.0f} MB), read as training "
        f"reads it (`ChunkDataset`), fitted to {args.size} x {args.size}: {frames_mb:.0f} MB of frames. "
        "Each row is a new process, as a command is. Anonymous memory is RssAnon above what the process "
        "held before reading (peak sampled every 5 ms); it is what a process must hold itself, where a "
        "mapped entry's pages are the page cache's, shared and given back under pressure. The batches "
        "each way drew are asserted equal.",
        "",
        f"## Reading, then {args.batches} batches of {args.batch_size}",
        "",
        "| frames | build (s) | anonymous memory, peak (MB) | after (MB) | after, freed memory given back (MB) "
        "| ms per batch, first 10 | ms per batch, all |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {label} | {r['build_s']:.2f} | {r['peak_mb']:.0f} | {r['after_mb']:.0f} | {r['live_mb']:.0f} "
            f"| {r['first_ms']:.2f} | {r['batch_ms']:.2f} |"
            for label, r in reads.items()
        ),
        "",
        f"Mapped, a command holds {kept['after_mb']:.0f} MB of anonymous memory for the frames where it "
        f"held {off['after_mb']:.0f} MB; a batch from the map costs {kept['batch_ms'] / off['batch_ms']:.2f}x "
        "one from memory once its pages are in the page cache (each the mean of the batches above, in one "
        "run); read from disk, the first batches cost more. The first read, decoding into the entry, "
        "holds at its peak a batch of full-size frames being fitted (at most 64 MB of them) and the "
        "batch fitted, not the camera nor a file's frames (below). 'Given back': after glibc's `malloc_trim(0)`, "
        "which returns memory the allocator had kept after decoding freed it (the memory a process "
        "needs; without it, the allocator reuses that memory for training's own).",
        "",
        "## Two processes at once (as torchrun's two ranks), each having read every frame",
        "",
        "| frames | Pss anonymous, each (MB) | Pss file-backed, each (MB) | charged to the two together (MB) |",
        "|---|---|---|---|",
        *(
            f"| {label} | {each(pair, 'pss_anon_mb')} | {each(pair, 'pss_file_mb')} "
            f"| {sum(p['pss_anon_mb'] + p['pss_file_mb'] for p in pair):.0f} |"
            for label, pair in shared.items()
        ),
        "",
        "Pss counts a page shared by both processes half to each: mapped, the two share one copy of the "
        "frames; held in memory, each holds its own. The totals include each process's Python, torch "
        "and leanvla.",
        "",
        f"## `leanvla train --steps {args.steps}` with anonymous memory limited to what the process held "
        f"after importing leanvla and reading the dataset's tables + {frames_mb / 2:.0f} MB (half the frames)",
        "",
        "| frames | exit code | seconds | last line printed |",
        "|---|---|---|---|",
        *(
            f"| {label} | {r['code']} | {r['seconds']:.1f} | {r['last'][:300].replace('|', '/')} |"
            for label, r in limited.items()
        ),
        "",
        "The limit is RLIMIT_DATA, which counts a process's private memory and not the files it maps: it "
        "stands for a machine whose memory is smaller than the decoded frames.",
        "",
        f"## The first read's decoder against {args.against}'s",
        "",
        f"Each decodes the camera into a new memory-mapped .npy ({frames_mb:.0f} MB), as the frame cache's "
        f"first read does, in a new process; {args.repeats} times each, in turn, the fastest counting "
        f"(peak: the largest of the runs). At {args.against} a file's fitted frames were held until its "
        "last episode's frames were placed; now each frame goes into place as it decodes, a wanted time "
        "settled once a frame shown at or after it has come. The frames are asserted equal.",
        "",
        "| decoder | seconds | anonymous memory, peak (MB) |",
        "|---|---|---|",
        *(
            f"| {label} | {min(r['seconds'] for r in runs):.2f} | {max(r['peak_mb'] for r in runs):.0f} |"
            for label, runs in decoders.items()
        ),
        "",
        f"Now / {args.against}: {ratio(decoders, 'now', args.against, 'seconds', min):.2f}x the time, "
        f"{ratio(decoders, 'now', args.against, 'peak_mb', max):.2f}x the peak memory.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
