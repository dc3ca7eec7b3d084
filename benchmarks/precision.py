"""bfloat16 autocast (`leanvla train --precision bf16`) against float32, side by side: what a
training step costs, and what the trained policy does in closed loop.

    python benchmarks/precision.py                        # the demo's base policy, this CPU (~15 min)
    python benchmarks/precision.py --size large --device cuda --batch 32 --no-closed-loop --name precision_gpu

Step: one `leanvla train` Trainer per precision (its own step: the draws, the forward pass under
the precision, the objective, backward, clipping, AdamW), built from the same seed on the same
data, stepping in turn (round robin); median ms per step. On CUDA, each one's peak memory over a
step. Their first losses are compared: same weights, same draws, so the gap is bfloat16's rounding.
Closed loop (unless --no-closed-loop): the demo's base policy (DEMO5, `tiny` with 3 + 3 layers,
3200 steps at batch 64) trained at each precision from the same seed, each evaluated on the same
held-out positions. Writes docs/results/NAME.md.
"""

from __future__ import annotations

import argparse

from common import (
    Results,
    benchmark_parser,
    cached_dataset,
    command_line,
    device_name,
    logged_training_seconds,
    recording,
    require_device,
    result_name,
    result_record,
    round_robin_ms,
    synchronised,
    write_result,
)
from pooling import gap_cell, paired_gap

PRECISIONS = ("fp32", "bf16")


def step_costs(args, data) -> dict:
    """Per precision: median ms per training step, peak MiB on CUDA (None on the CPU), first loss."""
    import torch

    from leanvla.train.config import ModelOptions, TrainConfig
    from leanvla.train.distributed import World
    from leanvla.train.log_window import LogWindow
    from leanvla.train.loop import Trainer

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    trainers, first = {}, {}
    for precision in PRECISIONS:
        cfg = TrainConfig(
            data=data,
            out=args.work / "step" / precision,  # nothing is written: the trainers only step
            model=ModelOptions(size=args.size),
            steps=10**6,
            batch_size=args.batch,
            seed=args.seed,
            precision=precision,
        )
        trainers[precision] = Trainer(cfg, World(device=device), resuming=False, progress=False)
        first[precision] = float(trainers[precision].take_step(LogWindow()).loss.detach())
    window = LogWindow()  # summed on the device, never read: no step waits for a read-back
    calls = {p: synchronised(lambda _, t=t: t.take_step(window), args.device) for p, t in trainers.items()}
    ms = round_robin_ms(calls, args.repeats, warmup=3)
    peak = dict.fromkeys(PRECISIONS)
    if device.type == "cuda":
        for precision, trainer in trainers.items():
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            trainer.take_step(window)
            torch.cuda.synchronize()
            peak[precision] = torch.cuda.max_memory_allocated() / 2**20
    return {p: {"ms": ms[p], "peak_mib": peak[p], "first_loss": first[p]} for p in PRECISIONS}


def closed_loop(args, data) -> dict:
    """Per precision: the demo's base policy trained at it, evaluated (result_record, its training
    loop's seconds read off its metrics; kept in WORK/results.json, so a rerun only reports)."""
    from leanvla.demo import DemoPlan
    from leanvla.evaluate import EvalConfig, evaluate
    from leanvla.report import read_metrics
    from leanvla.train.config import ModelOptions, TrainConfig
    from leanvla.train.loop import train_once

    plan, out = DemoPlan(), Results(args.work)
    for precision in PRECISIONS:
        if precision in out:
            continue
        cfg = TrainConfig(
            data=data,
            out=args.work / "base" / precision,
            model=ModelOptions(size=plan.size, **plan.model_overrides),
            steps=plan.steps,
            batch_size=plan.batch_size,
            seed=args.seed,
            precision=precision,
        )
        train_once(cfg)
        seconds = logged_training_seconds(read_metrics(cfg.out / "metrics.jsonl"), cfg.batch_size)
        result = evaluate(
            EvalConfig(
                policy=cfg.out, episodes=args.eval_episodes, seed=0, max_steps=plan.max_steps, workers=2
            )
        )
        out[precision] = result_record(result, seconds)
        out.save()
    return out


def main() -> None:
    parser = benchmark_parser(__doc__, "outputs/bench/precision")
    parser.add_argument("--size", default="tiny", help="VLA size of the step timing")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=30, help="timed steps per precision")
    parser.add_argument("--closed-loop", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--name", type=result_name, default="precision")
    args = parser.parse_args()
    require_device(parser, args.device)

    data = cached_dataset(tasks="DEMO5", workers=2, **recording(args.episodes, args.seed))
    steps = step_costs(args, data)
    loops = closed_loop(args, data) if args.closed_loop else None

    fp32, bf16 = steps["fp32"], steps["bf16"]
    where = device_name(args.device, args.threads)
    lines = [
        f"# bfloat16 autocast against float32 in training ({where})",
        "",
        f"Command: `{command_line()}`",
        "",
        f"Step: `leanvla train`'s Trainer at each precision, `{args.size}` VLA, batch {args.batch}, DEMO5 "
        f"({args.episodes} demonstrations per task), seed {args.seed}; median ms over {args.repeats} steps "
        "taken in turn after 3 untimed rounds. First loss: the first step's, same weights and draws.",
        "",
        "| precision | ms per step | vs fp32 | peak memory | first loss |",
        "|---|---|---|---|---|",
    ]
    for precision, row in steps.items():
        peak = f"{row['peak_mib']:.0f} MiB" if row["peak_mib"] is not None else "not measured (CPU)"
        lines.append(
            f"| {precision} | {row['ms']:.1f} | {row['ms'] / fp32['ms']:.2f}x | {peak} | {row['first_loss']:.5f} |"
        )
    gap = abs(bf16["first_loss"] - fp32["first_loss"]) / fp32["first_loss"]
    lines += ["", f"bfloat16's rounding moves the first loss by a relative {gap:.1e}."]
    if loops is not None:
        lines += [
            "",
            "## Closed loop",
            "",
            f"The demo's base policy trained at each precision; {loops['fp32']['protocol']} Training "
            "time: the training loop's, summed over its logged windows (data loading and saving apart).",
            "",
            "| precision | success | 95% interval | training time |",
            "|---|---|---|---|",
        ]
        for precision, row in loops.items():
            low, high = row["ci"]
            lines.append(
                f"| {precision} | {100 * row['mean']:.1f}% | [{100 * low:.1f}, {100 * high:.1f}] | "
                f"{row['train_s'] / 60:.1f} min |"
            )
        gap = paired_gap([loops], "bf16", "fp32")
        tasks = len(loops["fp32"]["per_task"])
        lines += ["", f"bf16 - fp32, paired over the {tasks} tasks: {gap_cell(gap)} points."]
    write_result(f"{args.name}.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
