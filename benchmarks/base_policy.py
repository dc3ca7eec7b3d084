r"""Base policy on MT10 from images + proprio: the reference VLA vs a plain CNN behaviour-cloning
policy trained on the same data for the same wall time, evaluated on held-out positions.

    python benchmarks/base_policy.py --name base_policy_one_camera  # MT10, one camera, the first protocol (107 min)
    python benchmarks/base_policy.py --cameras corner2,corner3 --vla-head regression --state-dropout 0.5 --minutes 50 \
        --work outputs/bench/base_policy_headline       # the headline table: the best VLA recipe found, vs the CNN
    python benchmarks/base_policy.py --tasks DEMO5 --minutes 10 --eval-episodes 20
    python benchmarks/base_policy.py --cameras corner2,corner3 --models vla --work outputs/bench/base_policy_two_cameras --name base_policy_two_cameras
    python benchmarks/base_policy.py --cameras corner2,corner3 --models vla --vla-flow-target action --vla-flow-noise 0 \
        --work outputs/bench/base_policy_flow_action --name base_policy_flow_action
    python benchmarks/base_policy.py --cameras corner2,corner3 --models vla --vla-head regression --vla-flat-token \
        --work outputs/bench/base_policy_flat_token --name base_policy_flat_token

Writes docs/results/NAME.md (--name, default base_policy) with per-task success and 95% intervals,
training throughput, inference latency per chunk and parameters, and a loss-curve figure beside it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import (
    RESULTS,
    cached_dataset,
    command_line,
    inference_latency_ms,
    logged_training_seconds,
    result_name,
    steps_for_budget,
    write_result,
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", default="MT10")
    parser.add_argument("--episodes", type=int, default=50, help="demonstrations per task")
    parser.add_argument("--cameras", default="corner2")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--minutes", type=float, default=40.0, help="training wall time given to each model")
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="train every model for exactly this many steps instead of --minutes (to match an earlier run's count)",
    )
    parser.add_argument("--vla-size", default="small")
    parser.add_argument(
        "--vla-head", default="flow", choices=["flow", "regression"], help="the VLA's action head"
    )
    parser.add_argument(
        "--vla-flow-target",
        default=None,
        choices=["velocity", "action"],
        help="what the VLA's flow head predicts (default velocity)",
    )
    parser.add_argument(
        "--vla-flow-noise",
        type=float,
        default=None,
        help="evaluate the VLA's flow head from this noise scale (0 = deterministic; default as trained)",
    )
    parser.add_argument(
        "--vla-vision-patch", type=int, default=None, help="override the VLA's stem patch size"
    )
    parser.add_argument(
        "--vla-vision-channels",
        default=None,
        help="override the VLA's stem channels, comma-separated (32,64,128)",
    )
    parser.add_argument(
        "--vla-flat-token",
        action="store_true",
        help="give the VLA a flatten-and-project token per camera (the CNN's image readout)",
    )
    parser.add_argument(
        "--state-noise",
        type=float,
        default=0.0,
        help="std of the noise on the normalised proprio state in training, for every model (0 = off)",
    )
    parser.add_argument(
        "--state-dropout",
        type=float,
        default=0.0,
        help="probability of replacing a training sample's proprio state by the mean, for every model (0 = off)",
    )
    parser.add_argument("--eval-episodes", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("outputs/bench/base_policy"))
    parser.add_argument(
        "--name", type=result_name, default="base_policy", help="result file name (without .md)"
    )
    parser.add_argument("--models", default="vla,cnn", help="which of vla, cnn to train and evaluate")
    args = parser.parse_args()
    models = args.models.split(",")
    if args.vla_flow_noise is not None and args.vla_head != "flow":
        parser.error("--vla-flow-noise needs --vla-head flow")
    if args.steps is not None and args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    if not set(models) <= {"vla", "cnn"}:  # checked before minutes of recording, not after
        parser.error(f"--models must name vla and/or cnn, got '{args.models}'")
    try:
        vision_channels = (
            [int(c) for c in args.vla_vision_channels.split(",")] if args.vla_vision_channels else None
        )
    except ValueError:
        parser.error(
            f"--vla-vision-channels must be comma-separated integers, got '{args.vla_vision_channels}'"
        )

    from leanvla.errors import UserError
    from leanvla.evaluate import EvalConfig, evaluate
    from leanvla.models.checkpoint import load_model
    from leanvla.models.config import vla_config
    from leanvla.report import plot_loss, protocol_line, read_metrics, success_table
    from leanvla.train.config import ModelOptions, TrainConfig, check_state_augmentation
    from leanvla.train.loop import train_once

    vla_options = ModelOptions(
        type="vla",
        size=args.vla_size,
        vision_patch=args.vla_vision_patch,
        vision_channels=vision_channels,
        flow_target=args.vla_flow_target,
        vision_flat_token=True if args.vla_flat_token else None,
    )
    sampling = {} if args.vla_flow_noise is None else {"flow_noise": args.vla_flow_noise}
    try:  # a stem, a noise scale or a state option that cannot work fails here, not after minutes of recording
        vla_config(args.vla_size, image_size=args.image_size, **vla_options.overrides(), **sampling)
        check_state_augmentation(args.state_noise, args.state_dropout)
    except UserError as error:
        parser.error(str(error))
    data = cached_dataset(
        tasks=args.tasks,
        episodes=args.episodes,
        cameras=args.cameras,
        image_size=args.image_size,
        seed=args.seed,
    )
    runs = {
        "reference VLA": TrainConfig(
            data=data,
            out=args.work / f"vla-{args.tasks}",
            model=vla_options,
            head=args.vla_head,
            seed=args.seed,
            state_noise=args.state_noise,
            state_dropout=args.state_dropout,
        ),
        "plain CNN": TrainConfig(
            data=data,
            out=args.work / f"cnn-{args.tasks}",
            model=ModelOptions(type="cnn"),
            seed=args.seed,
            state_noise=args.state_noise,
            state_dropout=args.state_dropout,
        ),
    }
    runs = {label: cfg for label, cfg in runs.items() if cfg.model.type in models}
    summary = {}
    for label, cfg in runs.items():
        budget_file = cfg.out.with_name(cfg.out.name + ".steps.json")
        if budget_file.is_file():  # resuming: keep the step count measured the first time
            cfg.steps = json.loads(budget_file.read_text())["steps"]
            if args.steps and args.steps != cfg.steps:
                parser.error(
                    f"--steps {args.steps}: {cfg.out} was started with {cfg.steps} steps; "
                    "give that count to resume it, or a new --work"
                )
        else:
            cfg.steps = args.steps or steps_for_budget(cfg, args.minutes)
            budget_file.parent.mkdir(parents=True, exist_ok=True)
            budget_file.write_text(json.dumps({"steps": cfg.steps}))
        train_once(cfg)  # or resume; its time is read back from the run's log below
        metrics = read_metrics(cfg.out / "metrics.jsonl")
        result = evaluate(
            EvalConfig(
                policy=cfg.out,
                episodes=args.eval_episodes,
                seed=args.seed,
                out=cfg.out / "eval.json",
                **(sampling if cfg.model.type == "vla" else {}),
            )
        )
        model, _, _, _ = load_model(cfg.out)
        summary[label] = {
            "result": result,
            "steps": cfg.steps,
            "train_s": logged_training_seconds(metrics, cfg.batch_size),  # also right when resumed
            "samples_per_s": sum(m["samples_per_s"] for m in metrics[1:]) / max(1, len(metrics) - 1),
            "latency_ms": inference_latency_ms(cfg.out / "policy"),
            "params": model.num_parameters(),
            "metrics": metrics,
        }
    figure = RESULTS / f"{args.name}_loss.png"
    plot_loss(
        {label: s["metrics"] for label, s in summary.items()},
        figure,
        "training loss (each model's own objective)",
    )

    vla_settings = ""  # named only where they differ from the reference VLA's
    if vla_options.overrides() or args.vla_head != "flow" or sampling:
        vla_settings = f"VLA: size {args.vla_size}, {args.vla_head} head, overridden: {vla_options.overrides() or 'nothing'}"
        if sampling:
            vla_settings += f", evaluated from flow noise x {args.vla_flow_noise:g}"
        vla_settings += ". "
    lines = [
        f"# Base policy: {' vs '.join(runs)} on {args.tasks}",
        "",
        f"Command: `{command_line()}`",
        "",
        f"Data: {args.episodes} scripted-expert demonstrations per task, cameras {args.cameras} at {args.image_size} px, "
        "plus the 4-d proprio state (never the 39-d privileged state). "
        + vla_settings
        + (
            f"Training adds noise of std {args.state_noise:g} to the normalised proprio state. "
            if args.state_noise
            else ""
        )
        + (
            f"Training replaces the proprio state by its mean in a fraction {args.state_dropout:g} of samples. "
            if args.state_dropout
            else ""
        )
        + "Every model trains on the same dataset with the same seed, "
        + (
            f"for the same number of optimizer steps ({args.steps}, fixed by --steps)."
            if args.steps
            else f"for the same wall-clock budget ({args.minutes:g} min each on this machine: the step count is the budget times the throughput each model measured in a short probe run)."
        ),
        "",
        "Protocol: " + protocol_line(next(iter(summary.values()))["result"]),
    ]
    lines += ["", success_table({label: s["result"] for label, s in summary.items()}), ""]
    lines += ["| | " + " | ".join(runs) + " |", "|---|" + "---|" * len(runs)]
    rows = [
        ("parameters", lambda s: f"{s['params'] / 1e6:.2f}M"),
        ("optimizer steps (batch 64)", lambda s: str(s["steps"])),
        ("training wall time (s)", lambda s: f"{s['train_s']:.0f}"),
        ("training throughput (samples/s)", lambda s: f"{s['samples_per_s']:.0f}"),
        ("inference latency per chunk, batch 1, 2 threads (ms)", lambda s: f"{s['latency_ms']:.1f}"),
    ]
    for name, cell in rows:
        lines.append(f"| {name} | " + " | ".join(cell(summary[label]) for label in runs) + " |")
    lines += ["", f"![loss]({figure.name})", ""]
    write_result(f"{args.name}.md", "\n".join(lines))
    print(json.dumps({label: s["result"]["mean_success"] for label, s in summary.items()}))


if __name__ == "__main__":
    main()
