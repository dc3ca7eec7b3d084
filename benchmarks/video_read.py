"""Reading a robot's mp4 cameras: how fast leanvla decodes and fits them, and what finding each
episode's frames by bisection saves over comparing every pair of times.

    python benchmarks/video_read.py                   # about 8 minutes on 2 CPU cores

1. A LeRobot-layout dataset is written with one 480 x 640 camera at 30 fps stored as mp4, once per
   codec: H.264 (libx264, 4:2:0, its default quality) and AV1 as LeRobot encodes by default
   (libsvtav1, 4:2:0, CRF 30, a keyframe every 2 frames). The frames pan across a smooth texture with
   a block moving over it, so they compress as a camera's do, not as noise. Each dataset is then
   read as training reads it (`LeRobotDataset.read_images`, fitted to 64 x 64): with the frame
   cache off, twice in turn, the faster counting; then with an empty cache, once (decoding and
   keeping the frames) and twice more (from the cache), the frames asserted equal throughout; and
   the entry named as a later command names it (the files' digests remembered) and as the first
   command after a dataset changes does (hashing them).
2. The decoder against an earlier revision's (--against, default 3bab779: before each frame went
   into place as it decoded, when a file's fitted frames were held until its last episode was
   placed), `read_video_frames` on each codec's dataset, fitted to 64 x 64: --repeats calls of each
   in turn, the fastest counting; their frames are asserted equal.
3. A few episodes read (`read_images(rows=...)`, as `train --episodes` reads them; cache off):
   decoding the whole camera and keeping their rows, as leanvla did before (and as a reader that
   cannot seek must), against decoding only the stretches around them, reached by seeking. One
   episode of --read-episodes, then --few episodes; --repeats reads of each in turn, the fastest
   counting; the frames asserted equal. H.264 at libx264's default has a keyframe every 250
   frames, LeRobot's AV1 one every 2, so seeking lands further before the episode in H.264.
4. The lookup alone, on presentation times of a file holding --episodes episodes of --length frames
   (LeRobot packs many episodes into each mp4): the every-pair comparison leanvla used before
   2026-12-05, `np.abs(times[None] - wanted[:, None]).argmin(1)` per episode, against
   `leanvla.data.video.nearest_frames`; their answers are asserted equal.

Writes docs/results/NAME.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
from common import REPO, Run, command_line, leanvla_run_at, module_at, slug, write_result

sys.path.insert(0, str(REPO))  # tests/data/helpers.py: the encoder's scheduling put back

from tests.data.helpers import scheduling_kept  # noqa: E402

HEIGHT, WIDTH, FPS, KEY = 480, 640, 30, "observation.images.wrist"
# name: (FFmpeg encoder, its options); LeRobot encodes with the second by default.
CODECS = {
    "H.264": ("libx264", {}),
    "AV1 (LeRobot's default)": ("libsvtav1", {"crf": "30", "g": "2"}),
}


def camera_frame_stream(n: int, seed: int) -> Iterator[np.ndarray]:
    """n frames panning 2 pixels a frame across a smooth random texture, a bright block moving over
    it, one at a time: writing a dataset holds one frame, not all (16 GB for 18000 frames)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (HEIGHT // 16 + 1, (WIDTH + 2 * n) // 16 + 1, 3)).astype(np.uint8)
    texture = np.repeat(np.repeat(coarse, 16, 0), 16, 1)[:HEIGHT, : WIDTH + 2 * n]
    for i in range(n):
        frame = texture[:, 2 * i : 2 * i + WIDTH].copy()
        top, left = (40 + 3 * i) % (HEIGHT - 60), (60 + 5 * i) % (WIDTH - 80)
        frame[top : top + 60, left : left + 80] = 255
        yield frame


def camera_frames(n: int, seed: int) -> np.ndarray:
    """`camera_frame_stream`'s frames as one array."""
    frames = np.empty((n, HEIGHT, WIDTH, 3), np.uint8)
    for i, frame in enumerate(camera_frame_stream(n, seed)):
        frames[i] = frame
    return frames


def add_dataset_size_options(parser: argparse.ArgumentParser) -> None:
    """--episodes and --length: the size of the datasets of one 480 x 640 camera that the
    benchmarks converting or counting them write (`video_dataset`, convert_videos.v21_datasets)."""
    parser.add_argument("--episodes", type=int, default=60)
    parser.add_argument("--length", type=int, default=50, help="frames per episode")


def video_dataset(
    root: Path,
    codec: str,
    options: dict,
    episodes: int,
    length: int,
    episodes_per_file: int | None = None,
    frames_of: Callable[[int, int], Iterable[np.ndarray]] = camera_frame_stream,
) -> Path:
    """A LeRobotDataset v3 whose one camera is stored as mp4 as LeRobot writes it: every episode in
    one file, or `episodes_per_file` in each (each file's times starting at 0); each file's frames
    `frames_of(count, seed=file)`, an array or a stream of them."""
    import av
    import pyarrow as pa
    import pyarrow.parquet as pq

    from leanvla.data.format import VIDEO_PATH
    from leanvla.data.writer import LeRobotWriter

    features = {
        "observation.state": {"dtype": "float32", "shape": [6], "names": None},
        "action": {"dtype": "float32", "shape": [6], "names": None},
    }
    writer = LeRobotWriter(root, fps=FPS, features=features)
    for _ in range(episodes):
        zeros = np.zeros((length, 6), np.float32)
        writer.add_episode("pick up the cube", {"observation.state": zeros, "action": zeros})
    writer.finalize()
    per_file = episodes_per_file or episodes
    for file in range(-(-episodes // per_file)):
        frames = frames_of(min(per_file, episodes - file * per_file) * length, seed=file)
        path = root / VIDEO_PATH.format(video_key=KEY, chunk_index=0, file_index=file)
        path.parent.mkdir(parents=True, exist_ok=True)
        with scheduling_kept(), av.open(str(path), "w") as container:
            stream = container.add_stream(codec, rate=FPS, options=options)
            stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    info_path = root / "meta/info.json"
    info = json.loads(info_path.read_text())
    info["features"][KEY] = {
        "dtype": "video",
        "shape": [HEIGHT, WIDTH, 3],
        "names": ["height", "width", "channels"],
    }
    info["video_path"] = VIDEO_PATH
    info_path.write_text(json.dumps(info, indent=2))
    (episodes_path,) = (root / "meta/episodes").rglob("*.parquet")
    table = pq.read_table(episodes_path)
    start = np.arange(episodes) % per_file * length / FPS
    for name, values in (
        ("chunk_index", [0] * episodes),
        ("file_index", (np.arange(episodes) // per_file).tolist()),
        ("from_timestamp", start.tolist()),
        ("to_timestamp", (start + length / FPS).tolist()),
    ):
        table = table.append_column(f"videos/{KEY}/{name}", pa.array(values))
    pq.write_table(table, episodes_path)
    return root


def data_stats_at_both(
    datasets: dict[str, tuple[str, int | None]], args, old: Path, work: Path
) -> dict[str, dict[str, list[Run]]]:
    """`leanvla data stats` (a new process, the frame cache off) with the code at `args.against`
    (its src/ at `old`) and the working tree's, in turn, `args.ab_repeats` runs each, on each of
    `datasets` (name: (codec of CODECS, episodes an mp4: None for all in one), `args.episodes` of
    `args.length` frames, written under `work`): each version's runs (seconds, peak memory). Asserted:
    both write the same meta/stats.json."""
    from leanvla.data.reader import LeRobotDataset

    results = {}
    for name, (codec, per_file) in datasets.items():
        print(f"{name}: writing the dataset", file=sys.stderr)
        root = video_dataset(work / slug(name), *CODECS[codec], args.episodes, args.length, per_file)
        runs = {args.against: [], "working tree": []}
        written = {}
        for repeat in range(args.ab_repeats):
            versions = [(args.against, old), ("working tree", REPO / "src")]
            for label, src in versions if repeat % 2 == 0 else versions[::-1]:
                print(f"{name}: leanvla data stats at {label}, run {repeat + 1}", file=sys.stderr)
                runs[label].append(leanvla_run_at(src, ["data", "stats", str(root)], LEANVLA_CACHE="off"))
                written[label] = (root / "meta/stats.json").read_text()
        assert written[args.against] == written["working tree"], name
        assert LeRobotDataset(root).num_frames == args.episodes * args.length
        results[name] = runs
    return results


def data_stats_table(args, versions: dict[str, dict[str, list[Run]]]) -> list[str]:
    """The lines of a markdown table of `data_stats_at_both`'s seconds and peak memory, with what it ran."""
    lines = [
        f"`leanvla data stats` (a new process, the frame cache off) on {args.episodes} episodes of "
        f"{args.length} frames ({args.episodes * args.length} frames) of one 480 x 640 camera, with the code at "
        f"{args.against} and the working tree's in turn (which goes first alternating), {args.ab_repeats} runs "
        "each; the fastest counts (the median in brackets). Asserted: both write the same meta/stats.json. "
        "Peak memory: the process's largest resident set, the most of its runs.",
        "",
        f"| camera stored as | {args.against} (s) | working tree (s) | time, against {args.against} | "
        f"peak memory, {args.against} (MB) | peak memory, working tree (MB) |",
        "|---|---|---|---|---|---|",
    ]
    for name, runs in versions.items():
        old, new = ([run.seconds for run in runs[label]] for label in (args.against, "working tree"))
        old_mb, new_mb = (max(run.peak_mb for run in runs[label]) for label in (args.against, "working tree"))
        lines.append(
            f"| {name} | {min(old):.2f} [{statistics.median(old):.2f}] | "
            f"{min(new):.2f} [{statistics.median(new):.2f}] | {min(new) / min(old):.2f}x | "
            f"{old_mb:.0f} | {new_mb:.0f} |"
        )
    return lines


class Reads(NamedTuple):
    """One codec's dataset read as training reads it (fitted to 64 x 64), in seconds."""

    codec: str
    mp4_mb: float
    decoded: float  # with the frame cache off: what every command paid before it
    first: float  # the first read with the cache on: decoding, then keeping the frames
    cached: float  # a later read: from the cache
    naming: float  # of that, naming the entry (the files' digests remembered by the first read)
    hashing: float  # naming it with no digest remembered: hashing the mp4 and the metadata
    entry_mb: float


def timed_read(root: Path, frames: int) -> tuple[float, np.ndarray]:
    """(Seconds, frames) of one read as a new command makes it: no file's digest known yet."""
    from leanvla.data import file_digests
    from leanvla.data.reader import LeRobotDataset

    file_digests.forget_in_process()
    start = time.perf_counter()
    fitted = LeRobotDataset(root).read_images(KEY, size=64)
    seconds = time.perf_counter() - start
    assert fitted.shape == (frames, 64, 64, 3)
    return seconds, fitted


def naming_seconds(root: Path, remembered: bool) -> float:
    """Seconds a new command takes to name the camera's entry: with the files' digests remembered
    by an earlier command, or hashing every file afresh (the first command after a dataset is
    written, copied or changed)."""
    from leanvla.data import file_digests, frame_cache
    from leanvla.data.reader import LeRobotDataset

    dataset = LeRobotDataset(root)
    file_digests.forget_in_process()
    if not remembered:
        file_digests.forget_remembered(frame_cache.digests_dir())
    start = time.perf_counter()
    frame_cache.entry_name(dataset, KEY, 64, "pad")
    return time.perf_counter() - start


def read_times(episodes: int, length: int) -> list[Reads]:
    """Each codec's dataset read with the frame cache off (twice in turn, the faster counting), then
    with an empty cache: the first read, and the faster of two more; the frames asserted equal."""

    rows, frames = [], episodes * length
    with tempfile.TemporaryDirectory() as tmp:
        for name, (codec, options) in CODECS.items():
            root = video_dataset(Path(tmp) / codec, codec, options, episodes, length)
            mp4_mb = sum(p.stat().st_size for p in (root / "videos").rglob("*.mp4")) / 2**20
            os.environ["LEANVLA_CACHE"] = "off"
            decoded, reference = min((timed_read(root, frames) for _ in range(2)), key=lambda read: read[0])
            os.environ["LEANVLA_CACHE"] = str(Path(tmp) / f"cache-{codec}")
            first, kept = timed_read(root, frames)
            cached, again = min((timed_read(root, frames) for _ in range(2)), key=lambda read: read[0])
            assert np.array_equal(kept, reference) and np.array_equal(again, reference)
            naming, hashing = (naming_seconds(root, remembered) for remembered in (True, False))
            entry_mb = sum(p.stat().st_size for p in Path(tmp, f"cache-{codec}").glob("frames/*.npy")) / 2**20
            rows.append(Reads(name, mp4_mb, decoded, first, cached, naming, hashing, entry_mb))
    return rows


def decoder_times(
    episodes: int, length: int, against: str, repeats: int, few: list[list[int]]
) -> tuple[str, list[tuple[str, float, float]], list[Part]]:
    """(The earlier revision's label, per codec: (codec, its decoder's fastest seconds, this one's);
    per codec and selection: a few episodes read whole then picked, and alone)."""
    from leanvla.data import video
    from leanvla.data.reader import LeRobotDataset

    earlier, label = module_at(against, "src/leanvla/data/video.py")
    rows, parts = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (codec, options) in CODECS.items():
            root = video_dataset(Path(tmp) / codec, codec, options, episodes, length)
            dataset = LeRobotDataset(root)
            seconds: dict[str, list[float]] = {"earlier": [], "now": []}
            for _ in range(repeats):
                for which, module in (("earlier", earlier), ("now", video)):
                    start = time.perf_counter()
                    frames = module.read_video_frames(dataset, KEY, 64, "pad")
                    seconds[which].append(time.perf_counter() - start)
                    if which == "earlier":
                        reference = frames
                assert np.array_equal(frames, reference)
            rows.append((name, min(seconds["earlier"]), min(seconds["now"])))
            parts += part_times(name, root, few, repeats)
    return label, rows, parts


class Part(NamedTuple):
    """A few episodes of one codec's camera read with the cache off, in seconds (fastest)."""

    codec: str
    episodes: list[int]
    frames: int
    whole: float  # every frame decoded, then the episodes' rows kept
    alone: float  # only the stretches around the episodes decoded, found by seeking
    decoded_alone: int  # frames the decoder gave on the way


def part_times(codec: str, root: Path, few: list[list[int]], repeats: int) -> list[Part]:
    from leanvla.data import video
    from leanvla.data.reader import LeRobotDataset

    os.environ["LEANVLA_CACHE"] = "off"
    episode = LeRobotDataset(root).read_array("episode_index")
    real, decoded = video._decoded_from, [0]

    def counted(*args):
        for frame in real(*args):
            decoded[0] += 1
            yield frame

    parts = []
    for episodes in few:
        rows = np.isin(episode, episodes)
        seconds: dict[str, list[float]] = {"whole": [], "alone": []}
        for _ in range(repeats):
            start = time.perf_counter()
            whole = video.read_video_frames(LeRobotDataset(root), KEY, 64, "pad")[rows]
            seconds["whole"].append(time.perf_counter() - start)
            decoded[0], video._decoded_from = 0, counted
            try:
                start = time.perf_counter()
                alone = LeRobotDataset(root).read_images(KEY, rows=rows, size=64)
                seconds["alone"].append(time.perf_counter() - start)
            finally:
                video._decoded_from = real
            assert np.array_equal(alone, whole)
        parts.append(
            Part(codec, episodes, int(rows.sum()), min(seconds["whole"]), min(seconds["alone"]), decoded[0])
        )
    return parts


def lookup_times(episodes: int, length: int) -> tuple[float, float, float]:
    """(ms for every episode's frames by every pair, ms by bisection, MB of one episode's pair matrix)."""
    from leanvla.data.video import nearest_frames

    times = np.arange(episodes * length) / FPS
    wanted = [e * length / FPS + np.arange(length) / FPS for e in range(episodes)]
    start = time.perf_counter()
    pairs = [np.abs(times[None, :] - w[:, None]).argmin(axis=1) for w in wanted]
    every_pair = time.perf_counter() - start
    start = time.perf_counter()
    bisected = [nearest_frames(times, w) for w in wanted]
    bisection = time.perf_counter() - start
    assert all(np.array_equal(a, b) for a, b in zip(pairs, bisected))
    return every_pair * 1e3, bisection * 1e3, length * len(times) * 8 / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--read-episodes", type=int, default=10, help="episodes in each read dataset")
    parser.add_argument("--read-length", type=int, default=300, help="frames per episode there")
    parser.add_argument("--episodes", type=int, default=50, help="episodes in the lookup's file")
    parser.add_argument("--length", type=int, default=600, help="frames per episode there")
    parser.add_argument("--against", default="3bab779", help="the revision whose decoder is compared")
    parser.add_argument("--repeats", type=int, default=3, help="calls of each decoder, in turn")
    parser.add_argument(
        "--few", default="5;1,4,6,8", help="episodes read alone: lists of indices, ';' between selections"
    )
    parser.add_argument("--name", default="video_read", help="writes docs/results/NAME.md")
    args = parser.parse_args()

    reads = read_times(args.read_episodes, args.read_length)
    few = [[int(e) for e in selection.split(",")] for selection in args.few.split(";")]
    earlier, decoders, parts = decoder_times(
        args.read_episodes, args.read_length, args.against, args.repeats, few
    )
    pairs_ms, bisect_ms, matrix_mb = lookup_times(args.episodes, args.length)
    frames = args.read_episodes * args.read_length
    scale = 2 * 50 * 600 / frames  # to two cameras of 50 episodes of 600 frames
    lines = [
        "# Reading mp4 cameras",
        "",
        f"Command: `{command_line()}`",
        "",
        f"## Decoding and fitting ({frames} frames of one {HEIGHT} x {WIDTH} camera at {FPS} fps, to 64 x 64)",
        "",
        "Each dataset read as training reads it (`LeRobotDataset.read_images(size=64)`): with the frame "
        "cache off, as every command read it before the cache (twice in turn, the faster counting); then "
        "with an empty cache, the first read (decoding, then keeping the frames) and the faster of two "
        "later ones, whose frames are asserted equal to the decoded ones. Naming the entry is part of "
        "every read with the cache on: a later command finds the digests of the files the first read "
        "hashed remembered in the cache; the first command after a dataset is written, copied or "
        "changed hashes the mp4 and the metadata (the last column but one; benchmarks/cache_lookup.py "
        "measures it on 1.8 GB).",
        "",
        "| codec | mp4 (MB) | frames/s decoded | decoded (s) | first read, cache on (s) "
        "| later reads (s) | decoded / later | of which naming the entry (s) | naming it, hashing afresh (s) "
        "| cache entry (MB) |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *(
            f"| {r.codec} | {r.mp4_mb:.2f} | {frames / r.decoded:.0f} | {r.decoded:.2f} | {r.first:.2f} "
            f"| {r.cached:.3f} | {r.decoded / r.cached:.0f}x | {r.naming:.3f} | {r.hashing:.3f} "
            f"| {r.entry_mb:.0f} |"
            for r in reads
        ),
        "",
        "At these rates a dataset of 50 episodes of 600 frames from two such cameras loads in "
        + " or ".join(f"{scale * r.decoded:.0f} s ({r.codec.split()[0]})" for r in reads)
        + " when it decodes; from the cache in "
        + " or ".join(f"{scale * r.cached:.1f} s" for r in reads)
        + f", the cache holding {scale * reads[0].entry_mb:.0f} MB for it.",
        "",
        f"## The decoder against {earlier}'s ({frames} frames, fitted to 64 x 64)",
        "",
        f"`read_video_frames` as it was at {earlier} (a file's fitted frames held until its last "
        "episode's frames were placed) and as it is (each frame put into place as it decodes), "
        f"called in turn {args.repeats} times each on the same dataset, the fastest counting; the "
        "frames asserted equal. benchmarks/frame_memory.py compares their peak memory.",
        "",
        f"| codec | {earlier} (s) | now (s) | now / {earlier} |",
        "|---|---|---|---|",
        *(f"| {codec} | {before:.2f} | {now:.2f} | {now / before:.2f} |" for codec, before, now in decoders),
        "",
        f"## A few episodes (of {args.read_episodes} of {args.read_length} frames in one file, fitted to 64 x 64; cache off)",
        "",
        "`read_images(rows=...)` of the episodes' frames, as `train --episodes` reads them: decoding the "
        "whole camera and keeping their rows (what leanvla did before, and what a reader that cannot seek "
        "must), against decoding only the stretches around them, each reached by seeking to the keyframe "
        f"before it; {args.repeats} reads of each in turn, the fastest counting; the frames asserted equal. "
        "H.264 at libx264's default has a keyframe every 250 frames, LeRobot's AV1 one every 2.",
        "",
        "| codec | episodes | their frames | whole, then their rows (s) | alone (s) | frames decoded alone "
        "| alone / whole |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {p.codec} | {', '.join(map(str, p.episodes))} | {p.frames} | {p.whole:.2f} | {p.alone:.2f} "
            f"| {p.decoded_alone} of {frames} | {p.alone / p.whole:.2f} |"
            for p in parts
        ),
        "",
        f"## Finding each episode's frames ({args.episodes} episodes of {args.length} frames in one file)",
        "",
        "| lookup | ms for all episodes | largest temporary |",
        "|---|---|---|",
        f"| every pair of times (before 2026-12-05) | {pairs_ms:.0f} | {matrix_mb:.0f} MB per episode |",
        f"| bisection (`nearest_frames`) | {bisect_ms:.1f} | a few arrays of {args.length} |",
        "",
        f"The same frames either way; bisection is {pairs_ms / bisect_ms:.0f}x as fast here, and the "
        "gap grows with the file: the pair matrix is episode length x file length.",
    ]
    write_result(f"{args.name}.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
