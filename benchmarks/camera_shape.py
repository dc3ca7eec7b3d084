"""What a camera that is not the policy's square costs in closed loop.

    python benchmarks/camera_shape.py                  # six policies, about 70 min on 2 CPU cores
    python benchmarks/camera_shape.py --variants square,wide --eval-episodes 20

A robot's camera is rarely square: by default leanvla fits its frames to the policy's square as
SmolVLA does (longer side scaled with antialiasing, shorter padded with black), or with
`--model.image-fit crop` keeps their centred square (leanvla/data/resize.py), in training and at
inference alike. This records the same DEMO5 demonstrations (same seeds, so the same trajectories:
only the pictures differ) with the corner2 camera rendered four ways, trains the reference VLA
(small, regression head) on each for the same steps with the same seed, and runs each in closed
loop, the evaluation rendering the camera as it was recorded and the policy fitting it:

- square:         64 x 64, what every other benchmark records: nothing to fit;
- square-96:      96 x 96, scaled to 64 x 64: the downscale alone;
- wide:           96 x 128 (3:4, as a 480 x 640 camera), scaled to 48 x 64 and padded 8 rows above
                  and below: a wider view of the scene in fewer rows of the policy's square;
- wide16x9:       72 x 128 (16:9, as a 720 x 1280 camera), scaled to 36 x 64 and padded 14 rows
                  above and below: nearly half the square black;
- wide16x9-crop:  the same camera cropped to its centred 72 x 72 and scaled to 64 x 64: the
                  square's every pixel, the view's sides lost (Meta-World's centred square of a
                  wider render is the square camera's picture, so nothing the task needs is lost);
- wide16x9-96:    the same camera padded to a larger policy, 96 x 96 (54 x 96 inside it): the whole
                  view kept, the scene's middle in more pixels than at 64, the bands as wide.

Writes docs/results/NAME.md (default camera_shape).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from common import (
    Results,
    benchmark_parser,
    cached_dataset,
    command_line,
    result_name,
    result_record,
    train_timed,
    variants_table,
    write_result,
)

POLICY_SIZE = 64  # the policy's square, unless a variant asks for a larger one
# name -> (what the camera is, recorded height, recorded width, how the policy fits it, its size)
VARIANTS = {
    "square": ("64 x 64: the policy's own size, nothing fitted", 64, 64, "pad", POLICY_SIZE),
    "square-96": ("96 x 96, scaled to 64 x 64 (the downscale alone)", 96, 96, "pad", POLICY_SIZE),
    "wide": (
        "96 x 128 (3:4), scaled to 48 x 64 and padded to 64 x 64 (a wider view)",
        96,
        128,
        "pad",
        POLICY_SIZE,
    ),
    "wide16x9": ("72 x 128 (16:9), scaled to 36 x 64 and padded to 64 x 64", 72, 128, "pad", POLICY_SIZE),
    "wide16x9-crop": (
        "72 x 128 (16:9), its centred 72 x 72 cropped and scaled to 64 x 64",
        72,
        128,
        "crop",
        POLICY_SIZE,
    ),
    "wide16x9-96": ("72 x 128 (16:9), scaled to 54 x 96 and padded to a 96 x 96 policy", 72, 128, "pad", 96),
}


def recording(name: str, args) -> Path:
    """The DEMO5 recording of variant `name`'s camera (recorded once, then cached)."""
    height, width = VARIANTS[name][1:3]
    shape = {"image_size": height} | ({} if width == height else {"image_width": width})
    return cached_dataset(tasks="DEMO5", episodes=args.episodes, cameras="corner2", seed=args.seed, **shape)


def inference_ms(run: Path) -> float:
    return json.loads((run / "eval.json").read_text())["inference_ms_per_chunk"]


def main() -> None:
    parser = benchmark_parser(__doc__, "outputs/bench/camera_shape")
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help="comma-separated, of: " + ", ".join(VARIANTS)
    )
    parser.add_argument("--steps", type=int, default=3200, help="training steps of every policy (batch 64)")
    parser.add_argument(
        "--name", type=result_name, default="camera_shape", help="result file name (without .md)"
    )
    args = parser.parse_args()
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown or not names:
        parser.error(f"--variants: unknown {unknown or 'none given'}; choose from {', '.join(VARIANTS)}")

    from leanvla.data.reader import LeRobotDataset
    from leanvla.evaluate import EvalConfig, evaluate
    from leanvla.train.config import ModelOptions, TrainConfig

    done = Results(args.work)
    for name in names:
        if name in done:
            continue
        _, height, width, fit, size = VARIANTS[name]
        cfg = TrainConfig(
            data=recording(name, args),
            out=args.work / name,
            model=ModelOptions(size="small", image_size=size, image_fit=fit),
            head="regression",
            steps=args.steps,
            seed=args.seed,
        )
        seconds = train_timed(cfg)
        result = evaluate(
            EvalConfig(policy=cfg.out, episodes=args.eval_episodes, seed=args.seed, out=cfg.out / "eval.json")
        )
        done[name] = result_record(result, seconds, steps=args.steps, camera=[height, width], fit=fit)
        done.save()

    shown_names = [n for n in VARIANTS if n in done]
    actions = [LeRobotDataset(recording(name, args)).read_array("action") for name in shown_names]
    same = all(np.array_equal(actions[0], other) for other in actions[1:])
    lines = [
        "# Cameras that are not the policy's square, in closed loop",
        "",
        f"Command: `{command_line()}`",
        "",
        f"Data: DEMO5, {args.episodes} scripted-expert demonstrations per task, recorded once per camera "
        f"shape with the same seeds (every action of the recordings identical: {same}; only the corner2 "
        "camera's frames differ), plus the 4-d proprio state. Policy: the reference VLA (small, regression "
        f"head) at {POLICY_SIZE} x {POLICY_SIZE} unless the camera says otherwise, {args.steps} steps at "
        f"batch 64, seed {args.seed}, the same for every camera. Evaluation renders the camera at the shape it was recorded at and the policy "
        "fits each frame as in training.",
        "",
        "Protocol: " + done[shown_names[0]]["protocol"],
        "",
    ]
    rows = [
        (
            [
                name,
                VARIANTS[name][0],
                f"{done[name]['train_s'] / 60:.1f}",
                f"{inference_ms(args.work / name):.2f}",
            ],
            done[name],
        )
        for name in shown_names
    ]
    lines += variants_table(["camera", "recorded as", "training min", "ms per chunk"], rows)
    lines += [
        "",
        "training min: the run's wall time for its steps. ms per chunk: the evaluation's mean time in "
        "`Policy.act` per chunk (fitting the frame included), batch 1, one thread in each of two evaluation "
        "processes. Both from each policy's own run, not timed in turn, so a small difference may be the "
        "machine's.",
    ]
    write_result(f"{args.name}.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
