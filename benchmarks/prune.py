"""CLP side by side: CKA-pruned vs unpruned vs block-influence-pruned vs dropping the last layers,
from one pretrained base, fine-tuned with the same budget, with all and with 10% of the data.

    python benchmarks/prune.py                          # the full protocol (resumable)
    python benchmarks/prune.py --finetune-steps 200 --eval-episodes 5 --work /tmp/p   # a smoke run

1. Pretrain a deeper reference VLA (8 backbone + 8 expert layers) on five MT10 tasks that are not
   the downstream tasks (push, pick-place, drawer-open, peg-insert-side, window-close).
2. Prune it with each criterion at 50% depth (and CKA at 75% for the speed table), calibrating on
   the downstream data.
3. Speed: training step time and inference latency per chunk, pruned / full, measured back to back.
4. Fine-tune every variant on DEMO5 (all 50 demonstrations per task, and the first 5 = 10%) with
   the same steps, batch, learning rate and seed; evaluate on held-out positions.

Writes docs/results/prune.md and the base's CKA heatmaps beside it. Results accumulate in
WORK/results.json, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
import shutil

from common import (
    PRETRAIN_TASKS,
    RESULTS,
    Results,
    benchmark_parser,
    cached_dataset,
    command_line,
    first_per_task,
    inference_latency_ms,
    measured_throughput,
    recording,
    result_record,
    slug,
    train_timed,
    variants_table,
    write_result,
)

# name -> prune options (None: the unpruned base). Closed-loop variants are the 50% ones.
VARIANTS: dict[str, dict | None] = {
    "unpruned": None,
    "CKA (CLP) 50%": dict(criterion="cka", keep="0.5"),
    "block influence 50%": dict(criterion="block-influence", keep="0.5"),
    "drop last 50%": dict(criterion="drop-last", keep="0.5"),
}
SPEED_ONLY = {"CKA (CLP) 75%": dict(criterion="cka", keep="0.75")}
REGIMES = {"all data": None, "10% of data": 0.1}


def main() -> None:
    parser = benchmark_parser(__doc__, work="outputs/bench/prune")
    parser.add_argument("--layers", type=int, default=8, help="backbone and expert depth of the base")
    parser.add_argument("--pretrain-steps", type=int, default=2000)
    parser.add_argument("--finetune-steps", type=int, default=1000)
    args = parser.parse_args()

    from leanvla.evaluate import EvalConfig, evaluate
    from leanvla.models.checkpoint import load_model
    from leanvla.prune.run import REPORT, PruneConfig, prune
    from leanvla.report import pct
    from leanvla.train.config import ModelOptions, TrainConfig

    work = args.work
    record = recording(args.episodes, args.seed)
    pretrain_data = cached_dataset(tasks=PRETRAIN_TASKS, **record)
    data = cached_dataset(tasks="DEMO5", **record)
    done = Results(work)

    # ---- 1. the pretrained base ----
    base_cfg = TrainConfig(
        data=pretrain_data,
        out=work / "base",
        model=ModelOptions(size="small", layers=args.layers, expert_layers=args.layers),
        steps=args.pretrain_steps,
        seed=args.seed,
    )
    done.setdefault("pretrain_s", train_timed(base_cfg))
    base = base_cfg.out / "policy"

    # ---- 2. prune with each criterion (calibrated on the downstream data) ----
    checkpoints = {}
    for name, options in {**VARIANTS, **SPEED_ONLY}.items():
        if options is None:
            checkpoints[name] = base
            continue
        out = work / "pruned" / slug(name)
        if not (out / REPORT).is_file():
            prune(PruneConfig(policy=base, data=data, out=out, seed=args.seed, overwrite=True, **options))
        checkpoints[name] = out
    reports = {n: json.loads((c / REPORT).read_text()) for n, c in checkpoints.items() if c != base}
    removed = {n: json.dumps({k: s["removed"] for k, s in r["stacks"].items()}) for n, r in reports.items()}

    # ---- 3. speed, measured back to back on the same data ----
    if "speed" not in done:
        speed = {}
        for name, ckpt in checkpoints.items():
            probe = TrainConfig(data=data, out=work / "probe" / slug(name), init=ckpt, seed=args.seed)
            model = load_model(ckpt)[0]
            speed[name] = {
                "layers": [model.cfg.layers, model.cfg.expert_layers],
                "parameters": model.num_parameters(),
                "samples_per_s": measured_throughput(probe),
                "latency_ms": inference_latency_ms(ckpt),
            }
        done["speed"] = speed
        done.save()

    # ---- 4. fine-tune every 50% variant in both regimes, evaluate ----
    for regime, fraction in REGIMES.items():
        episodes = first_per_task(data, work / "ten_percent.json", fraction=fraction) if fraction else None
        for name, ckpt in checkpoints.items():
            if name in SPEED_ONLY or f"{regime} | {name}" in done:
                continue
            twin = next(
                (n for n in checkpoints if n != name and n in removed and removed.get(name) == removed[n]),
                None,
            )
            if twin is not None and f"{regime} | {twin}" in done:  # same layers removed: same model, same run
                done[f"{regime} | {name}"] = {**done[f"{regime} | {twin}"], "same_as": twin}
                done.save()
                continue
            cfg = TrainConfig(
                data=data,
                out=work / "finetune" / slug(regime) / slug(name),
                init=ckpt,
                episodes=episodes,
                steps=args.finetune_steps,
                seed=args.seed,
            )
            seconds = train_timed(cfg)
            result = evaluate(
                EvalConfig(
                    policy=cfg.out, episodes=args.eval_episodes, seed=args.seed, out=cfg.out / "eval.json"
                )
            )
            done[f"{regime} | {name}"] = result_record(result, seconds)
            done.save()

    # ---- the tables ----
    for stack in ("backbone", "expert"):
        shutil.copy(checkpoints["CKA (CLP) 50%"] / f"cka_{stack}.png", RESULTS / f"prune_cka_{stack}.png")
    speed, full = done["speed"], done["speed"]["unpruned"]
    lines = [
        "# Prune (CLP): CKA-guided layer pruning vs the baselines",
        "",
        f"Command: `{command_line()}`",
        "",
        f"Base: reference VLA `small` widths with {args.layers} backbone + {args.layers} expert layers, pretrained "
        f"{args.pretrain_steps} steps on {PRETRAIN_TASKS.replace(',', ', ')} ({args.episodes} demonstrations each, "
        f"corner2 64 px + proprio). Pruned on "
        f"{next(iter(reports.values()))['calibration']['samples']} calibration frames of the downstream data, then every variant "
        f"fine-tuned {args.finetune_steps} steps (batch 64, same seed and learning rate) on DEMO5.",
        "",
        "## Which layers each criterion removes (0-based)",
        "",
        "| variant | backbone removed | expert removed |",
        "|---|---|---|",
    ]
    for name, report in reports.items():
        s = report["stacks"]
        lines.append(f"| {name} | {s['backbone']['removed']} | {s['expert']['removed']} |")
    lines += [
        "",
        "![backbone CKA](prune_cka_backbone.png) ![expert CKA](prune_cka_expert.png)",
        "",
        "## Speed (measured back to back in one run, this 2-core CPU)",
        "",
        "| variant | layers (backbone + expert) | parameters | train samples/s | step time ratio | inference ms/chunk | latency ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, s in speed.items():
        step_ratio = full["samples_per_s"] / s["samples_per_s"]
        lines.append(
            f"| {name} | {s['layers'][0]} + {s['layers'][1]} | {s['parameters'] / 1e6:.2f}M | {s['samples_per_s']:.0f} | "
            f"{step_ratio:.2f}x | {s['latency_ms']:.1f} | {s['latency_ms'] / full['latency_ms']:.2f}x |"
        )
    results = {k: v for k, v in done.items() if " | " in k}
    if results:
        lines += [
            "",
            "## Closed-loop success after the same fine-tuning budget",
            "",
            "Protocol: " + next(iter(results.values()))["protocol"],
            "",
        ]
        rows = []
        for key, r in results.items():
            regime, name = key.split(" | ")
            label = f"{name} (= {r['same_as']}: same layers removed)" if "same_as" in r else name
            rows.append(([regime, label, f"{r['train_s']:.0f}"], r))
        lines += variants_table(["data", "variant", "train s"], rows)
        lines += ["", "## Against the goal (50% depth)", ""]
        cka = speed["CKA (CLP) 50%"]
        lines.append(
            f"- step time {full['samples_per_s'] / cka['samples_per_s']:.2f}x of unpruned (goal <= 0.6x); "
            f"inference latency {cka['latency_ms'] / full['latency_ms']:.2f}x (goal <= 0.7x)"
        )
        for regime in REGIMES:
            a, b = results.get(f"{regime} | CKA (CLP) 50%"), results.get(f"{regime} | unpruned")
            if a and b:
                gap = 100 * (a["mean"] - b["mean"])
                lines.append(
                    f"- {regime}: CKA-pruned {pct(a['mean'])}% vs unpruned {pct(b['mean'])}% "
                    f"({gap:+.1f} points; goal: within 3 points)"
                )
    write_result("prune.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
