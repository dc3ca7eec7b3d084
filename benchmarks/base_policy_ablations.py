r"""What the base policy's success depends on: cameras, model type and size, data amount,
training length, chunking, learning rate, vision stem, action head and its sampling noise. Each variant trains on the same recorded DEMO5 dataset
with the same seed and is evaluated with the same protocol; results accumulate in a JSON file so
the script resumes. Variants run in the order listed (most informative first).

    python benchmarks/base_policy_ablations.py                     # every variant (~3.5 h)
    python benchmarks/base_policy_ablations.py --only vla-c2,cnn-c2
    python benchmarks/base_policy_ablations.py \\
        --only vla-c2,vla-c2-deep-stem,vla-c2-vit,vla-c2-regression,vla-c2-flow-action,vla-c2-flow-noise-0,vla-c2-flow-action-noise-0,vla-c2-flow-noise-0.5 \\
        --work outputs/bench/ablations_vision --name base_policy_ablations_vision     # vision vs head (~60 min)

Writes docs/results/<--name>.md (default base_policy_ablations.md).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path

from common import (
    cached_dataset,
    command_line,
    first_per_task,
    result_name,
    result_record,
    train_timed,
    variants_table,
    write_result,
)

# name -> (what it tests, TrainConfig options). Cameras are recorded once (both), chosen per run.
# "per_task" trains on the first N demonstrations of each task (the data-amount variant).
VARIANTS: dict[str, tuple[str, dict]] = {
    "vla-c2": ("VLA small, corner2 only (the demo's settings)", dict(cameras="corner2", steps=3200)),
    "cnn-c2": ("plain CNN, corner2 only", dict(cameras="corner2", steps=3200, model="cnn")),
    "vla-c2c3": (
        "VLA small, corner2 + corner3 (two views: depth)",
        dict(cameras="corner2,corner3", steps=3200),
    ),
    "cnn-c2c3": ("plain CNN, corner2 + corner3", dict(cameras="corner2,corner3", steps=3200, model="cnn")),
    "vla-c2-half-data": (
        "VLA small, corner2, 25 demonstrations per task",
        dict(cameras="corner2", steps=3200, per_task=25),
    ),
    "vla-c2-tiny": ("VLA tiny, corner2", dict(cameras="corner2", steps=3200, model="tiny")),
    "vla-c2-tiny-deep": (
        "VLA tiny with 4 backbone + 4 expert layers (deep enough to prune), corner2",
        dict(cameras="corner2", steps=3200, model="tiny", layers=4, expert_layers=4),
    ),
    "vla-c2-long": ("VLA small, corner2, twice the steps", dict(cameras="corner2", steps=6400)),
    "vla-c2-chunk8": (
        "VLA small, corner2, chunk 8 executing 4",
        dict(cameras="corner2", steps=3200, chunk_size=8, n_action_steps=4),
    ),
    "vla-c2-lr1e-3": ("VLA small, corner2, learning rate 1e-3", dict(cameras="corner2", steps=3200, lr=1e-3)),
    "vla-c2-ema": ("VLA small, corner2, EMA 0.999", dict(cameras="corner2", steps=3200, ema=0.999)),
    "vla-c2-deep-stem": (
        "VLA small, corner2, a CNN-like vision stem: patch 2, then 3x3 stride-2 convs 32-64-128 "
        "(3 stages instead of patch 4 + one conv; same 4 x 4 tokens)",
        dict(cameras="corner2", steps=3200, vision_patch=2, vision_channels=[32, 64, 128]),
    ),
    "vla-c2-vit": (
        "VLA small, corner2, 2 transformer layers on the patch tokens (a small ViT on the stem)",
        dict(cameras="corner2", steps=3200, vision_layers=2),
    ),
    "vla-c2-regression": (
        "VLA small, corner2, a regression head: the expert regresses the chunk (MSE), the CNN's objective",
        dict(cameras="corner2", steps=3200, head="regression"),
    ),
    "vla-c2-flow-action": (
        "VLA small, corner2, flow head predicting the clean chunk (x-prediction) instead of the "
        "velocity: same flow path and sampler, its loss the action error at every flow time alike",
        dict(cameras="corner2", steps=3200, flow_target="action"),
    ),
    "vla-c2-flow-noise-0": (
        "the vla-c2 model, sampled deterministically: flow noise 0 (every chunk integrates from the "
        "noise's mean, as a regression head would answer)",
        dict(trained_as="vla-c2", flow_noise=0.0),
    ),
    "vla-c2-flow-action-noise-0": (
        "the vla-c2-flow-action model, sampled deterministically (flow noise 0)",
        dict(trained_as="vla-c2-flow-action", flow_noise=0.0),
    ),
    "vla-c2-flow-noise-0.5": (
        "the vla-c2 model, sampled from half-scale noise",
        dict(trained_as="vla-c2", flow_noise=0.5),
    ),
}


# Variant options of the evaluation (EvalConfig): how the trained policy samples its actions.
SAMPLING = ("flow_noise",)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default=None, help="comma-separated variant names")
    parser.add_argument("--report-only", action="store_true", help="rewrite the table from stored results")
    parser.add_argument("--episodes", type=int, default=50, help="demonstrations per task")
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("outputs/bench/ablations"))
    parser.add_argument(
        "--name", type=result_name, default="base_policy_ablations", help="result file name (without .md)"
    )
    args = parser.parse_args()

    from leanvla.decode.options import DecodingOptions
    from leanvla.evaluate import EvalConfig, evaluate
    from leanvla.train.config import ModelOptions, TrainConfig

    # Variant options that shape the VLA (ModelOptions' overrides), not the training run (TrainConfig).
    model_shape = {f.name for f in fields(ModelOptions)} - {"type", "size"}

    data = cached_dataset(
        tasks="DEMO5",
        episodes=args.episodes,
        cameras="corner2,corner3",
        image_size=64,
        seed=args.seed,
    )
    store = args.work / "results.json"
    done = json.loads(store.read_text()) if store.is_file() else {}
    names = [] if args.report_only else args.only.split(",") if args.only else list(VARIANTS)
    for name in names:
        if name in done:
            continue
        _, options = VARIANTS[name]
        options = dict(options)
        sampling = {k: options.pop(k) for k in SAMPLING if k in options}
        trained_as = options.pop("trained_as", None)
        if trained_as is not None:  # evaluation only: another variant's model, sampled differently
            if trained_as not in done:
                parser.error(f"variant {name} evaluates {trained_as}'s model: run {trained_as} first")
            policy, seconds, steps = (
                args.work / trained_as,
                done[trained_as]["train_s"],
                done[trained_as]["steps"],
            )
        else:
            model = options.pop("model", "small")
            if "per_task" in options:
                per_task = options.pop("per_task")
                options["episodes"] = first_per_task(
                    data, args.work / f"first{per_task}.json", count=per_task
                )
            shape = {k: options.pop(k) for k in model_shape if k in options}
            model_opts = ModelOptions(type="cnn") if model == "cnn" else ModelOptions(size=model, **shape)
            cfg = TrainConfig(data=data, out=args.work / name, model=model_opts, seed=args.seed, **options)
            policy, seconds, steps = cfg.out, train_timed(cfg), cfg.steps
        (args.work / name).mkdir(parents=True, exist_ok=True)
        result = evaluate(
            EvalConfig(
                policy=policy,
                episodes=args.eval_episodes,
                seed=args.seed,
                out=args.work / name / "eval.json",
                decoding=DecodingOptions(**sampling),
            )
        )
        done[name] = result_record(result, seconds, steps=steps)
        store.write_text(json.dumps(done, indent=2))

    tasks = list(next(iter(done.values()))["per_task"])
    command = command_line().replace(" --report-only", "")
    if args.only:  # the results may come from several calls: name every variant the table shows
        command = command.replace(
            f"--only {args.only}", "--only " + ",".join(n for n in VARIANTS if n in done)
        )
    lines = [
        "# Base policy ablations (DEMO5)",
        "",
        f"Command: `{command}` "
        + (
            f"(all {len(VARIANTS)} variants)"
            if len(done) == len(VARIANTS)
            else f"({len(done)} of the script's {len(VARIANTS)} variants; any other resumes from here)"
        ),
        "",
        f"Data: {args.episodes} demonstrations per task of {', '.join(tasks)}, recorded once with cameras corner2 and corner3 at 64 px; "
        "each variant observes the cameras it names plus the 4-d proprio state. Same seed everywhere. "
        "'train s' is wall time on a 2-core machine, inflated where other jobs ran beside a variant: compare steps, not seconds.",
        "",
        "Protocol: " + next(iter(done.values()))["protocol"],
        "",
    ]
    rows = [
        ([name, VARIANTS[name][0], str(done[name]["steps"]), f"{done[name]['train_s']:.0f}"], done[name])
        for name in VARIANTS
        if name in done
    ]
    lines += variants_table(["variant", "what it tests", "steps", "train s"], rows)
    write_result(f"{args.name}.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
