"""What fitting a robot's camera images to a policy's square costs, against reading them as stored.

    python benchmarks/image_fitting.py                 # about a minute on 2 CPU cores
    python benchmarks/image_fitting.py --frames 400 --name image_fitting_400

A LeRobotDataset of PNG frames at common camera resolutions (480 x 640, 720 x 1280, and a square
256 x 256) is written once; then, for each, `LeRobotDataset.read_images` decodes every frame as
stored and decodes and fits it to 64 x 64 and 224 x 224 (leanvla.data.resize: longer side scaled
with antialiasing, shorter padded; or, `--model.image-fit crop`, the centred square cropped and
scaled), timed in turn (round robin), so that a drift in the machine's
speed falls on every variant alike. The frames are smooth random textures shifted a pixel per frame,
so PNG compresses them about as it compresses camera frames, not as it compresses noise. Also
reported: the memory the decoded frames take, as stored and fitted; and what fitting adds at
inference, `Policy.act` at batch 1 on a frame of each size against one already at the policy's.
Writes docs/results/NAME.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from common import command_line, round_robin_ms, write_result

RESOLUTIONS = {"480 x 640": (480, 640), "720 x 1280": (720, 1280), "256 x 256": (256, 256)}
SIZES = (64, 224)
READS = [(None, None)] + [(size, fit) for size in SIZES for fit in ("pad", "crop")]  # (None, None): as stored


def camera_frames(height: int, width: int, n: int, seed: int) -> np.ndarray:
    """n frames of a smooth texture (8 x 8 pixel blocks of random colour) panning a pixel a frame."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (height // 8 + 1, (width + n) // 8 + 1, 3), dtype=np.uint8)
    texture = blocks.repeat(8, 0).repeat(8, 1)[:height]
    return np.stack([texture[:, k : k + width] for k in range(n)])


def write_dataset(root: Path, frames: int, seed: int) -> Path:
    """One episode whose cameras are the RESOLUTIONS, written by leanvla's LeRobotWriter."""
    from leanvla.data.format import image_feature
    from leanvla.data.writer import LeRobotWriter

    features = {
        f"observation.images.{name.replace(' x ', 'x')}": image_feature(h, w)
        for name, (h, w) in RESOLUTIONS.items()
    }
    vector = {"dtype": "float32", "shape": [4], "names": None}
    features |= {"observation.state": vector, "action": vector}
    writer = LeRobotWriter(root, fps=10, features=features)
    data = {
        key: camera_frames(*f["shape"][:2], frames, seed) for key, f in features.items() if "images" in key
    }
    data |= {
        "observation.state": np.zeros((frames, 4), np.float32),
        "action": np.zeros((frames, 4), np.float32),
    }
    writer.add_episode("look around", data)
    writer.finalize()
    return root


def acting_ms(frames: int, repeats: int, seed: int) -> dict[str, float]:
    """Median ms of `Policy.act` at batch 1 (the small reference VLA at 64 x 64, one camera, one
    thread, as in closed loop) on a frame of each of RESOLUTIONS and on one already 64 x 64, in turn."""
    import torch

    from leanvla.data.normalize import Normalizer
    from leanvla.data.stats import vector_stats
    from leanvla.models.checkpoint import make_meta
    from leanvla.models.config import vla_config
    from leanvla.models.policy import Policy
    from leanvla.models.vla import VLA

    torch.manual_seed(seed)
    camera = "observation.images.cam"
    cfg = vla_config("small", cameras=[camera], image_size=64, head="regression")
    vector = vector_stats(np.random.default_rng(seed).normal(size=(50, 4)))
    stats = {"observation.state": vector, "action": vector}
    stats[camera] = {"mean": np.full((3, 1, 1), 0.5), "std": np.full((3, 1, 1), 0.25)}
    meta = make_meta("vla", cfg.to_dict(), ["look around"], "observation.state", "action", 10)
    policy = Policy(VLA(cfg).eval(), Normalizer(stats, "observation.state", "action", [camera]), meta)
    state, task = torch.zeros(1, 4), torch.zeros(1, dtype=torch.long)
    shapes = {"64 x 64 (no fitting)": (64, 64), **RESOLUTIONS}
    images = {
        name: torch.from_numpy(camera_frames(h, w, frames, seed)).permute(0, 3, 1, 2)[:, None]
        for name, (h, w) in shapes.items()
    }  # as a camera's H x W x 3 frames arrive: channels last in memory
    calls = {
        name: lambda i, x=x: policy.act(x[i % len(x) : i % len(x) + 1], state, task)
        for name, x in images.items()
    }
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return round_robin_ms(calls, repeats, warmup=5)
    finally:
        torch.set_num_threads(threads)  # the page's footer records the decoding's thread count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=100, help="frames per camera (default 100)")
    parser.add_argument("--repeats", type=int, default=3, help="timed reads of each variant (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--name", default="image_fitting", help="docs/results/NAME.md (default image_fitting)"
    )
    args = parser.parse_args()
    if args.frames < 1 or args.repeats < 1:
        parser.error("--frames and --repeats must be >= 1")

    from leanvla.data.reader import LeRobotDataset

    os.environ["LEANVLA_CACHE"] = "off"  # what decoding costs: a cached read would time the cache
    work = Path(tempfile.mkdtemp(prefix="leanvla_image_fitting_"))
    try:
        dataset = LeRobotDataset(write_dataset(work / "ds", args.frames, args.seed))
        calls, shapes = {}, {}
        for name, (height, width) in RESOLUTIONS.items():
            key = f"observation.images.{name.replace(' x ', 'x')}"
            for size, fit in READS:
                calls[name, size, fit] = lambda _, key=key, size=size, fit=fit: dataset.read_images(
                    key, size=size, fit=fit or "pad"
                )
                shapes[name, size, fit] = (height, width) if size is None else (size, size)
        print(f"timing {len(calls)} reads of {args.frames} frames in turn ...")
        ms = round_robin_ms(calls, args.repeats, warmup=1)
    finally:
        shutil.rmtree(work)

    lines = [
        f"# Fitting camera images to a policy's square: the cost against reading them as stored ({args.frames} frames)",
        "",
        f"Command: `{command_line()}`",
        "",
        f"One LeRobotDataset episode of {args.frames} PNG frames per camera (smooth textures panning a pixel "
        "a frame), written by leanvla's LeRobotWriter. Each read decodes every frame of one camera "
        "(`LeRobotDataset.read_images`); 'padded to N' also scales it, longer side first with antialiasing, "
        "and pads it to N x N, 'cropped to N' crops its centred square and scales that to N x N, a few "
        "frames at a time (leanvla/data/resize.py). Median of "
        f"{args.repeats} reads of each, taken in turn after one untimed round. Memory: the decoded "
        "frames' array, per 1000 frames.",
        "",
        "| camera | read | ms per frame | x as stored | MiB per 1000 frames |",
        "|---|---|---|---|---|",
    ]
    for name in RESOLUTIONS:
        stored = ms[name, None, None]
        for size, fit in READS:
            h, w = shapes[name, size, fit]
            label = "as stored" if size is None else f"{'padded' if fit == 'pad' else 'cropped'} to {size}"
            took = ms[name, size, fit]
            lines.append(
                f"| {name} | {label} | {took / args.frames:.2f} | {took / stored:.2f}x | "
                f"{h * w * 3 * 1000 / 2**20:.0f} |"
            )
    lines += ["", "## Reading", ""]
    for name in RESOLUTIONS:
        for fit, what in (("pad", "decoding and padding"), ("crop", "decoding and cropping")):
            ratios = ", ".join(f"{ms[name, s, fit] / ms[name, None, None]:.2f}x at {s}" for s in SIZES)
            lines.append(f"- {name}: {what} takes {ratios} the time of decoding alone.")
    print(f"timing Policy.act on {len(RESOLUTIONS) + 1} frame shapes in turn ...")
    acts = args.repeats * args.frames
    acting = acting_ms(args.frames, acts, args.seed)
    plain = acting["64 x 64 (no fitting)"]
    lines += [
        "",
        "## At inference",
        "",
        "`Policy.act` at batch 1 on one camera's frame, which it fits to its 64 x 64 before the model "
        "runs: the small reference VLA with a regression head, one thread, as in closed loop. Median of "
        f"{acts} calls each, taken in turn, each call on the next of the "
        "frames above.",
        "",
        "| frame | ms per chunk | x a 64 x 64 frame |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {value:.2f} | {value / plain:.2f}x |" for name, value in acting.items()]
    write_result(f"{args.name}.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
