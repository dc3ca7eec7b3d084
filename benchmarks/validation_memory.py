"""The memory `train --val-episodes` holds for its validation samples: now (each batch's frames
read and normalised as it is evaluated) against an earlier revision (every sample's observation
built once and held, normalised to float32, for the whole of training).

    python benchmarks/validation_memory.py            # about 6 minutes on 2 CPU cores

A dataset of --episodes episodes of --length frames with one 480 x 640 camera stored as mp4
(benchmarks/video_read.py's panning texture) trains a tiny VLA at --size px for --steps steps,
validating on the last --held-out episodes every --steps // 2 steps, with each --val-samples.
Each revision's `leanvla train` runs in a new process, --repeats times in turn, the fastest and
the smallest peak resident memory (VmHWM) counting; the frame cache is filled once before, so
both read the camera from it. Asserted: both log the very same val_loss at every evaluation and
write byte-identical weights. Writes docs/results/NAME.md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from common import REPO, command_line, leanvla_run_at, result_name, source_at, write_result
from video_read import CODECS, video_dataset


def train_args(data: Path, out: Path, held_out: Path, args, samples: int) -> list[str]:
    every = max(1, args.steps // 2)
    return [
        "train", "--data", str(data), "--out", str(out), "--model.size", "tiny",
        "--model.image-size", str(args.size), "--steps", str(args.steps), "--batch-size", "8",
        "--val-episodes", str(held_out), "--val-every", str(every), "--val-samples", str(samples),
        "--log-every", str(every),
    ]  # fmt: skip


def validation_losses(run: Path) -> list[float]:
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [line["val_loss"] for line in lines if "val_loss" in line]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--against", default="280a4a7", help="the earlier revision (default: before the change)"
    )
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--length", type=int, default=150, help="frames per episode")
    parser.add_argument("--held-out", type=int, default=2, help="the last episodes, validated on")
    parser.add_argument("--size", type=int, default=224, help="the policy's image size in px")
    parser.add_argument("--samples", default="256,1024", help="--val-samples values, comma-separated")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--name", type=result_name, default="validation_memory")
    args = parser.parse_args()
    samples = [int(s) for s in args.samples.split(",")]

    with tempfile.TemporaryDirectory() as tmp, source_at(args.against, parser) as old_src:
        tmp = Path(tmp)
        data = video_dataset(tmp / "data", *CODECS["H.264"], args.episodes, args.length)
        held_out = tmp / "held_out.json"
        held_out.write_text(json.dumps(list(range(args.episodes - args.held_out, args.episodes))))
        train_episodes = tmp / "train.json"
        train_episodes.write_text(json.dumps(list(range(args.episodes - args.held_out))))
        env = {"LEANVLA_CACHE": str(tmp / "cache")}
        sources = {"now": REPO / "src", args.against: old_src}
        warm = train_args(data, tmp / "warm", held_out, args, samples[0])
        leanvla_run_at(REPO / "src", [*warm, "--episodes", str(train_episodes)], **env)  # fills the cache
        rows = []
        for count in samples:
            best, losses, weights = {}, {}, {}
            for repeat in range(args.repeats):
                for label, src in sources.items():
                    out = tmp / f"{label}-{count}-{repeat}"
                    argv = [*train_args(data, out, held_out, args, count), "--episodes", str(train_episodes)]
                    run = leanvla_run_at(src, argv, **env)
                    seconds, peak = best.get(label, (float("inf"), float("inf")))
                    best[label] = (min(seconds, run.seconds), min(peak, run.peak_mb))
                    losses[label] = validation_losses(out)
                    weights[label] = (out / "policy" / "model.safetensors").read_bytes()
            assert losses["now"] == losses[args.against] and len(losses["now"]) == 2, losses
            assert weights["now"] == weights[args.against]
            (old_s, old_mb), (now_s, now_mb) = best[args.against], best["now"]
            images_mb = count * 3 * args.size**2 * 4 / 2**20  # float32, one camera
            rows.append(
                f"| {count} | {old_mb:.0f} | {now_mb:.0f} | {old_mb - now_mb:.0f} | {images_mb:.0f} | "
                f"{old_s:.1f} | {now_s:.1f} | {', '.join(f'{v:.6f}' for v in losses['now'])} |"
            )

    every = max(1, args.steps // 2)
    text = f"""# Validation samples: read batch by batch, not held

`{command_line()}`

`leanvla train --val-episodes` at {args.against} built every validation sample's observation once,
its images normalised to float32, and held them for the whole of training; now each batch of 64 is
read (from the frame cache's map) and normalised as it is evaluated.

Protocol: a dataset of {args.episodes} episodes of {args.length} frames, one 480 x 640 camera stored as
mp4 (H.264), fitted to {args.size} x {args.size}; a tiny VLA trains on the first
{args.episodes - args.held_out} for {args.steps} steps (batch 8), validating on the last {args.held_out} every
{every} steps. Each revision's `leanvla train` runs in a new process, {args.repeats} times in turn; the
smallest peak resident memory (VmHWM) and the fastest wall time count. The frame cache was filled
before, so both read the camera from it.

| --val-samples | peak MB at {args.against} | peak MB now | less now | the held images alone | s at {args.against} | s now | val_loss (both) |
|---:|---:|---:|---:|---:|---:|---:|---|
{chr(10).join(rows)}

Asserted: both revisions log the very same val_loss at each evaluation and write byte-identical
weights (the samples, noise and flow times are drawn as before; each batch is the same). What it
costs: each evaluation reads and normalises its frames again, where they were read once; the
seconds are the whole command's, with its {args.steps // every} evaluations.
"""
    write_result(f"{args.name}.md", text)


if __name__ == "__main__":
    main()
