r"""LoRA-SP side by side with LoRA (peft) at several ranks and with full fine-tuning, adapting one
pretrained base to tasks it never saw.

    python benchmarks/adapt.py                               # the full protocol (resumable)
    python benchmarks/adapt.py --steps 20 --eval-episodes 2 --base-steps 20 --work /tmp/a   # smoke run

1. Pretrain a reference VLA (`small`) on five MT10 tasks (push, pick-place, drawer-open,
   peg-insert-side, window-close), or take --base.
2. Adapt it to DEMO5 (reach, drawer-close, button-press-topdown, door-open, window-open), or --tasks, with each
   variant: same data, steps, batch and seed; adapters on every backbone and expert Linear (--targets).
3. Per variant: trainable parameters, mean active rank (LoRA-SP), training samples/s and peak
   memory (a fresh process per probe, back to back), closed-loop success on held-out positions;
   plus LoRA-SP folded at its mean routing (`leanvla export`), to price the static export.
4. Inference ms per chunk of the LoRA-SP policies on each compute path (dense, gather, auto).

Writes docs/results/<--name>.md (default adapt.md), <name>_active_rank.png and <name>_spectral.png.
Results accumulate in WORK/results.json.

    python benchmarks/adapt.py --replicate --seed 1 --base outputs/bench/pretrained/small-3000-seed0/policy \
        --work outputs/bench/adapt_seed1 --name adapt_seed1

--replicate adapts only the rows the goal is judged on (see `replicated`) on another seed (new recording,
adapter initialisation and evaluation seed; the same base when --base names it), without the speed
probes, the export or the path timings, and writes docs/results/<--name>.md.

--train-io makes the adapter rows train the input and output modules around the stacks in full
(`--lora.train-io`, leanvla's default since 2026-12-02); without it they stay frozen, as in adapt.md:

    python benchmarks/adapt.py --replicate --train-io --seed 1 --base outputs/bench/pretrained/small-3000-seed0/policy \
        --work outputs/bench/adapt_io_seed1 --name adapt_io_seed1
    python benchmarks/adapt.py --train-io --base outputs/bench/pretrained/small-3000-seed0/policy \
        --work outputs/bench/adapt_io --name adapt_io    # every row, probe, export and path timing

A full run over a WORK that a --replicate run on the same seed filled reuses its rows and adds their
speed and memory probes.

--tasks asks whether rank starts to matter with more, and harder, tasks (the paper's multi-task claim):

    python benchmarks/adapt.py --replicate --train-io --tasks DEMO5,ML45-test --steps 2000 --export \
        --also 'LoRA-SP R64 eta 0.8' --also 'LoRA-SP R64 eta 0.6' \
        --base outputs/bench/pretrained/small-3000-seed0/policy --work outputs/bench/adapt_multi10 --name adapt_multi10

(--export folds each LoRA-SP row at its mean routing and evaluates it; --also adds a row of the full
table, here the default spectral weight at eta 0.8 and 0.6. Both only with --replicate, which also plots
success against the rank each token uses, <name>_rank_success.png.)

benchmarks/adapt_seeds.py pools --replicate runs on several seeds and reads the goal off the pooled rows.

Does a vision tower ask for capacity? `small` has none (its images pass a conv stem and a connector,
trained in full with --train-io); --base-vision-layers pretrains the base with that many transformer
layers after the stem, and --targets puts adapters on them too:

    python benchmarks/adapt.py --replicate --train-io --base-vision-layers 2 --targets backbone,expert,vision \
        --work outputs/bench/adapt_vision --name adapt_vision

Every --replicate report ends with each LoRA-SP row's active rank per stack and a per-layer figure.

--state-dropout P drops the proprio state from a fraction P of every row's training samples (`leanvla train
--state-dropout`), which makes the policy read its images: does the vision tower then ask for more?

    python benchmarks/adapt.py --replicate --train-io --base-vision-layers 2 --targets backbone,expert,vision \
        --state-dropout 0.5 --work outputs/bench/adapt_vision_dropout --name adapt_vision_dropout

(benchmarks/adapt_stacks.py trains that run's LoRA-SP row with and without the dropout on another seed.)
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from common import (
    PRETRAIN_TASKS,
    RESULTS,
    Results,
    batch1_call,
    benchmark_parser,
    cached_dataset,
    command_line,
    pretrained_base,
    probe_speed_and_memory,
    recording,
    result_name,
    result_record,
    round_robin_ms,
    shown,
    slug,
    success_with_errors,
    train_timed,
    variants_table,
    write_result,
)

FULL_LR, ADAPTER_LR = 3e-4, 1e-3  # the usual rates: adapters train a few, zero-initialised weights
SMALL_ROUTER = 16  # the bottleneck router variant's --lora.router-rank
STRONGER_SPECTRAL = (1e-2, 1e-1)  # --lora.spectral-weight variants (the default is 1e-3)


def variants(max_rank: int) -> dict[str, dict]:
    """name -> TrainConfig options. The largest sensible LoRA rank is the narrowest target's width."""
    lora = lambda r: dict(adapter="lora", rank=r)  # noqa: E731
    sp = lambda eta: dict(adapter="lora-sp", rank=max_rank, eta=eta)  # noqa: E731
    return {
        "full fine-tuning": dict(adapter="full"),
        "LoRA r8": lora(8),
        "LoRA r32": lora(32),
        f"LoRA r{max_rank}": lora(max_rank),
        f"LoRA-SP R{max_rank} eta 0.6": sp(0.6),
        f"LoRA-SP R{max_rank} eta 0.8": sp(0.8),
        f"LoRA-SP R{max_rank} eta 0.9": sp(0.9),
        f"LoRA-SP R{max_rank} eta 0.8, router rank {SMALL_ROUTER}": dict(sp(0.8), router_rank=SMALL_ROUTER),
        # The spectral loss at its default weight barely moves the energy's entropy (0.996 -> 0.965
        # over training at eta 0.8): does a stronger pull concentrate it, and at what cost?
        **{
            f"LoRA-SP R{max_rank} eta 0.8, spectral weight {weight:g}": dict(sp(0.8), spectral_weight=weight)
            for weight in STRONGER_SPECTRAL
        },
    }


def row_config(
    row: dict,
    *,
    data: Path,
    out: Path,
    base: Path,
    targets: str,
    train_io: bool,
    steps: int,
    seed: int,
    state_dropout: float = 0.0,
):
    """The TrainConfig of one row of `variants`: its adapter and options, on the settings every row shares."""
    from leanvla.adapt.config import LoRAOptions
    from leanvla.train.config import TrainConfig

    options = dict(row)
    kind = options.pop("adapter")
    return TrainConfig(
        data=data,
        out=out,
        init=base,
        adapter=kind,
        # Full fine-tuning trains every weight: adapter options would be refused.
        lora=LoRAOptions() if kind == "full" else LoRAOptions(targets=targets, train_io=train_io, **options),
        steps=steps,
        lr=FULL_LR if kind == "full" else ADAPTER_LR,
        seed=seed,
        state_dropout=state_dropout,
    )


def replicated(max_rank: int) -> list[str]:
    """--replicate's rows: full fine-tuning, every LoRA rank (the goal's "best LoRA") and the two
    LoRA-SP variants nearest the goal on seed 0, the stronger spectral weights: 1e-2 (the best
    LoRA-SP) and 1e-1 (a quarter of R active)."""
    return [
        "full fine-tuning",
        "LoRA r8",
        "LoRA r32",
        f"LoRA r{max_rank}",
        *(f"LoRA-SP R{max_rank} eta 0.8, spectral weight {weight:g}" for weight in STRONGER_SPECTRAL),
    ]


def goal_lines(done: dict, names: list[str]) -> list[str]:
    """The goal read off the rows `names`: best LoRA-SP against the best LoRA and full fine-tuning,
    its active rank, and the best LoRA-SP within the rank goal."""
    from leanvla.report import pct

    full = done["full fine-tuning"]
    lora_best = max((done[n] for n in names if n.startswith("LoRA r")), key=lambda r: r["mean"])
    sp = {n: done[n] for n in names if n.startswith("LoRA-SP")}
    sp_best_name = max(sp, key=lambda n: sp[n]["mean"])
    sp_best = sp[sp_best_name]
    return [
        f"- best LoRA-SP ({sp_best_name}) {pct(sp_best['mean'])}% vs best LoRA {pct(lora_best['mean'])}% "
        f"({100 * (sp_best['mean'] - lora_best['mean']):+.1f} points; goal >= 0)",
        f"- vs full fine-tuning {pct(full['mean'])}% ({100 * (sp_best['mean'] - full['mean']):+.1f} points; goal: within 2)",
        f"- mean active rank {sp_best['active_rank']:.1f} of R = {sp_best['rank']} "
        f"({100 * sp_best['active_rank'] / sp_best['rank']:.0f}%; goal <= 50%)",
        within_rank_goal(sp, lora_best, full),
    ]


def adapter_cells(name: str, r: dict) -> list[str]:
    """A row's first table cells: variant, trainable parameters, mean active rank (LoRA-SP)."""
    active = f"{r['active_rank']:.1f} of {r['rank']}" if r.get("active_rank") is not None else ""
    return [name, f"{r['trainable'] / 1e6:.3f}M" if r.get("trainable") else "0", active]


def active_rank_by_stack(log: Path) -> dict[str, float]:
    """Stack (backbone, expert, vision) -> mean over its layers of each layer's active rank in the
    last quarter of training, from a LoRA-SP run's active-rank log."""
    from leanvla.adapt.report import last_quarter_means

    stacks: dict[str, list[float]] = {}
    for layer, rank in last_quarter_means(log).items():
        stacks.setdefault(layer.split(".")[0], []).append(rank)
    return {stack: sum(ranks) / len(ranks) for stack, ranks in stacks.items()}


def capacity_section(by_stack: dict[str, dict[str, float]], done: dict, name: str) -> list[str]:
    """Which stacks ask for capacity: each LoRA-SP row's active rank per stack, and one row's layers."""
    stacks = list(next(iter(by_stack.values())))
    first = next(iter(by_stack))
    rank = done[first]["rank"]
    return [
        "## Which stacks ask for capacity",
        "",
        f"Mean active rank of R = {rank} over each stack's adapted layers, last quarter of training "
        "(the issue cites LoRA-SP's paper as finding that the vision tower asks for capacity).",
        "",
        "| LoRA-SP row | " + " | ".join(stacks) + " |",
        "|---|" + "---|" * len(stacks),
        *(
            f"| {row} | " + " | ".join(f"{ranks[s]:.1f}" for s in stacks) + " |"
            for row, ranks in by_stack.items()
        ),
        "",
        f"Per layer, {first}:",
        "",
        f"![LoRA-SP active rank per layer]({name}_active_rank.png)",
    ]


def replication_report(
    done: dict, names: list[str], exported: list[str], base: Path, args, by_stack: dict
) -> list[str]:
    """--replicate's report: the goal's rows on another seed (and, with --export, the LoRA-SP rows
    folded at their mean routing), the goal read off the trained rows, and where LoRA-SP put its rank."""
    rows = [
        ([*adapter_cells(n, done[n]), f"{done[n]['train_s']:.0f}" if n in names else ""], done[n])
        for n in names + exported
    ]
    return [
        "# Adapt, replicated: the goal's rows"
        + (" with the modules outside the stacks trained" if args.train_io else " on another seed")
        + (f", adapting to {args.tasks}" if args.tasks != "DEMO5" else ""),
        "",
        f"Command: `{command_line()}`",
        "",
        f"Base: `{shown(base)}`. Adapted to {args.tasks} ({args.episodes} demonstrations per task, recorded with seed "
        f"{args.seed}) for {args.steps} steps at batch 64, adapter initialisation and evaluation seed {args.seed}; "
        + (
            "every adapter row also trains in full the input and output modules outside the layer stacks, which "
            "adapters on the stacks leave frozen (`--lora.train-io`: the vision stem and connector, the state "
            "projection, the expert's action, time and condition projections); "
            if args.train_io
            else ""
        )
        + (
            f"adapters on every Linear of the {args.targets.replace(',', ', ')} stacks (adapt.md: backbone and expert); "
            if args.targets != "backbone,expert"
            else ""
        )
        + (
            f"every row, full fine-tuning included, trains with the proprio state dropped from {args.state_dropout:g} "
            "of its samples (`--state-dropout`; evaluation always sees it); "
            if args.state_dropout
            else ""
        )
        + "every other setting as in [adapt.md](adapt.md), where training speed, memory, the static export and the "
        "inference paths are measured (not repeated here)."
        + (
            " Rows ending in 'exported (mean routing)' are the LoRA-SP rows above them folded at their mean routing "
            "(`leanvla export`), a plain weight update: what the per-input routing adds on these tasks."
            if exported
            else ""
        ),
        "",
        "Protocol: " + done[names[0]]["protocol"],
        "",
        *variants_table(["variant", "trainable params", "mean active rank", "train s"], rows),
        "",
        "## Against the goal",
        "",
        *goal_lines(done, names),
        "",
        "## Success against the rank each token uses",
        "",
        f"![success against rank per token]({args.name}_rank_success.png)",
        "",
        "LoRA at its fixed rank, each LoRA-SP row at its mean active rank over the adapted layers, with 95% "
        "intervals; the band is full fine-tuning's interval. Compare points at the same x: a routed rank pays "
        "only if it sits above the fixed rank it uses on average.",
        *(["", *capacity_section(by_stack, done, args.name)] if by_stack else []),
    ]


def narrowest_target(base: Path, stacks: str) -> int:
    from leanvla.adapt.config import LoRAOptions
    from leanvla.adapt.inject import adapter_targets
    from leanvla.errors import UserError
    from leanvla.models.checkpoint import load_model

    model = load_model(base)[0]
    targets = adapter_targets(model, LoRAOptions(targets=stacks))
    # The library reads its default targets as "every stack the model has"; here each must be there.
    empty = [s for s in stacks.split(",") if s not in targets.values()]
    if empty:
        raise UserError(f"--targets names the '{empty[0]}' stack, which {shown(base)} has no layers in")
    return min(min(model.get_submodule(n).in_features, model.get_submodule(n).out_features) for n in targets)


def plot_spectral_sweep(runs: dict[str, Path], out: Path) -> None:
    """Mean active rank and the spectral loss (normalised energy entropy) over training, one line
    per spectral weight, from each run's metrics.jsonl."""
    from leanvla.report import pyplot, save_figure

    plt = pyplot()

    from leanvla.report import read_metrics

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for label, run in runs.items():
        metrics = [m for m in read_metrics(run / "metrics.jsonl") if m.get("spectral") is not None]
        steps = [m["step"] for m in metrics]
        axes[0].plot(steps, [m["active_rank"] for m in metrics], label=label)
        axes[1].plot(steps, [m["spectral"] for m in metrics], label=label)
    axes[0].set_ylabel("mean active rank (of R)")
    axes[1].set_ylabel("spectral loss: energy entropy / log R")
    for ax in axes:
        ax.set_xlabel("training step")
        ax.legend(fontsize=8)
    save_figure(fig, out, dpi=110)


def plot_rank_success(done: dict, names: list[str], out: Path) -> None:
    """Success against the rank each token uses: LoRA at its fixed rank, each LoRA-SP row at its mean
    active rank (95% intervals), full fine-tuning as a band. Read it at equal x: does routing a rank
    per input beat giving every input that rank?"""
    from leanvla.report import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4))
    full = done["full fine-tuning"]
    ax.axhspan(100 * full["ci"][0], 100 * full["ci"][1], color="0.85", label="full fine-tuning, 95% CI")
    ax.axhline(100 * full["mean"], color="0.5", lw=1)

    def points(rows: list[str], rank_of, **style) -> None:
        x = [rank_of(done[n]) for n in rows]
        y, err = success_with_errors([done[n] for n in rows])
        ax.errorbar(x, y, yerr=err, capsize=3, **style)
        for i, (n, x_, y_) in enumerate(zip(rows, x, y)):
            # "LoRA r8" -> "r8", "LoRA-SP R64 eta 0.8, spectral weight 0.01" -> "eta 0.8, spectral 0.01"
            label = re.sub(r"^LoRA(-SP R\d+)? ", "", n).replace("spectral weight", "spectral")
            # Alternately above and below: neighbouring LoRA-SP rows sit close together.
            ax.annotate(
                label, (x_, y_), fontsize=7, xytext=(4, 5 if i % 2 == 0 else -11), textcoords="offset points"
            )

    lora = sorted((n for n in names if n.startswith("LoRA r")), key=lambda n: done[n]["rank"])
    points(lora, lambda r: r["rank"], fmt="o-", color="tab:blue", label="LoRA (fixed rank)")
    routed = sorted(
        (n for n in names if n.startswith("LoRA-SP") and done[n].get("active_rank") is not None),
        key=lambda n: done[n]["active_rank"],
    )
    points(
        routed, lambda r: r["active_rank"], fmt="s", color="tab:orange", label="LoRA-SP (mean active rank)"
    )
    ax.set_xlabel("rank per token (LoRA: r; LoRA-SP: mean active vectors)")
    ax.set_ylabel("closed-loop success (%)")
    ax.legend(fontsize=8, loc="lower right")
    save_figure(fig, out, dpi=110)


def within_rank_goal(sp: dict, lora_best: dict, full: dict) -> str:
    """The goal line for the LoRA-SP variants whose mean active rank is at most half of R: the
    best-succeeding of them against the best LoRA and full fine-tuning (the overall best may not be one)."""
    from leanvla.report import pct

    half = {
        n: r
        for n, r in sp.items()
        if r.get("active_rank") is not None and r["active_rank"] <= 0.5 * r["rank"]
    }
    if not half:
        return "- no LoRA-SP variant keeps its mean active rank at or below 50% of R"
    name = max(half, key=lambda n: half[n]["mean"])
    r = half[name]
    return (
        f"- best LoRA-SP at or below 50% of R active: {name}, {r['active_rank']:.1f} of {r['rank']} active, "
        f"{pct(r['mean'])}% ({100 * (r['mean'] - lora_best['mean']):+.1f} points vs best LoRA, "
        f"{100 * (r['mean'] - full['mean']):+.1f} vs full fine-tuning)"
    )


def main() -> None:
    parser = benchmark_parser(__doc__, work="outputs/bench/adapt")
    parser.add_argument(
        "--base", type=Path, default=None, help="a trained policy to adapt (default: pretrain one)"
    )
    parser.add_argument("--base-steps", type=int, default=3000)
    parser.add_argument("--steps", type=int, default=1000, help="adaptation steps, every variant")
    parser.add_argument(
        "--tasks",
        default="DEMO5",
        help="the tasks to adapt to: v3 names and/or suites, none the base was pretrained on",
    )
    parser.add_argument(
        "--replicate",
        action="store_true",
        help="only the rows the goal is judged on, with a short report (another --seed)",
    )
    parser.add_argument("--name", type=result_name, default="adapt", help="result file name (without .md)")
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="VARIANT",
        help="with --replicate: also run this variant of the full table (repeatable), e.g. 'LoRA-SP R64 eta 0.8'",
    )
    parser.add_argument(
        "--export",
        action="store_true",
        help="with --replicate: also fold each LoRA-SP row at its mean routing and evaluate it",
    )
    parser.add_argument(
        "--train-io",
        action="store_true",
        help="adapter rows also train in full the input and output modules outside the stacks (--lora.train-io)",
    )
    parser.add_argument(
        "--targets",
        default="backbone,expert",
        help="the layer stacks every adapter row adapts (--lora.targets); 'backbone,expert,vision' needs a "
        "base with vision transformer layers",
    )
    parser.add_argument(
        "--base-vision-layers",
        type=int,
        default=0,
        help="pretrain the base with this many vision transformer layers after its conv stem (`small` has none)",
    )
    parser.add_argument(
        "--state-dropout",
        type=float,
        default=0.0,
        help="every row drops the proprio state from this fraction of its training samples (--state-dropout)",
    )
    args = parser.parse_args()
    if args.base is not None and args.base_vision_layers:
        parser.error("--base-vision-layers shapes the base this script pretrains; it cannot change --base")
    if (args.also or args.export) and not args.replicate:
        parser.error(
            "--also and --export add to a --replicate run; the full run has every row and its export"
        )
    from leanvla.data.metaworld_tasks import resolve_tasks

    seen = set(resolve_tasks(args.tasks)) & set(resolve_tasks(PRETRAIN_TASKS))
    if seen:
        parser.error(
            f"--tasks {args.tasks}: the base was pretrained on {', '.join(sorted(seen))}; adapt to unseen tasks"
        )

    from leanvla.adapt.config import LoRAOptions
    from leanvla.adapt.export import ExportConfig, export_checkpoint
    from leanvla.adapt.report import ACTIVE_RANK, plot_active_rank
    from leanvla.errors import UserError
    from leanvla.evaluate import EvalConfig, evaluate
    from leanvla.report import pct, read_metrics
    from leanvla.train.config import TrainConfig, check_state_augmentation

    try:
        check_state_augmentation(0.0, args.state_dropout)
    except UserError as exc:
        parser.error(str(exc))

    work = args.work
    record = recording(args.episodes, args.seed)
    done = Results(work)

    # ---- 1. the base ----
    base = args.base or pretrained_base(
        args.base_steps, args.seed, args.episodes, vision_layers=args.base_vision_layers
    )
    try:
        max_rank = narrowest_target(base, args.targets)
    except UserError as exc:  # e.g. --targets names the vision stack of a base without one
        parser.error(str(exc))
    table = variants(max_rank)
    unknown = [n for n in args.also if n not in table]
    if unknown:  # before recording the target data, which takes minutes
        parser.error(f"--also {unknown[0]!r} is not a variant; the variants are: {', '.join(table)}")
    data = cached_dataset(tasks=args.tasks, **record)

    # ---- 2. adapt with every variant, probe speed and memory, evaluate ----
    def config(name: str, out: Path) -> TrainConfig:
        return row_config(
            table[name],
            data=data,
            out=out,
            base=base,
            targets=args.targets,
            train_io=args.train_io,
            steps=args.steps,
            seed=args.seed,
            state_dropout=args.state_dropout,
        )

    def evaluate_policy(policy: Path, out: Path) -> dict:
        return evaluate(EvalConfig(policy=policy, episodes=args.eval_episodes, seed=args.seed, out=out))

    goal_rows = replicated(max_rank)
    names = goal_rows + [n for n in args.also if n not in goal_rows] if args.replicate else list(table)
    for name in names:
        # Speed and memory are measured on seed 0 only (they do not depend on it): a row a --replicate
        # run left in WORK gets its probe here.
        probe = {}
        if not args.replicate and "samples_per_s" not in done.get(name, {}):
            samples_per_s, peak_mib = probe_speed_and_memory(config(name, work / "probe" / slug(name)))
            probe = dict(samples_per_s=samples_per_s, peak_mib=peak_mib)
        if name in done:
            if probe:
                done[name] = {**done[name], **probe}
                done.save()
            continue
        cfg = config(name, work / "runs" / slug(name))
        seconds = train_timed(cfg)
        from leanvla.adapt.inject import trainable_parameters
        from leanvla.models.checkpoint import load_model

        model = load_model(cfg.out)[0]
        metrics = read_metrics(cfg.out / "metrics.jsonl")
        tail = metrics[-max(1, len(metrics) // 4) :]
        active = [m["active_rank"] for m in tail if "active_rank" in m]
        result = evaluate_policy(cfg.out, cfg.out / "eval.json")
        done[name] = result_record(
            result,
            seconds,
            trainable=trainable_parameters(model)
            if cfg.adapter != "full"
            else sum(p.numel() for p in model.parameters()),
            active_rank=sum(active) / len(active) if active else None,
            rank=table[name].get("rank"),
            **probe,
            final_loss=sum(m["loss"] for m in tail) / len(tail),
        )
        done.save()

    # ---- 3. LoRA-SP folded at its mean routing: what the static export costs ----
    def folded(name: str) -> str:
        """Export the LoRA-SP run `name` at its mean routing, evaluate it; its key in `done`."""
        key = f"{name}, exported (mean routing)"
        if key not in done:
            out = work / "exported" / slug(name)
            export_checkpoint(
                ExportConfig(policy=work / "runs" / slug(name), out=out, seed=args.seed, overwrite=True)
            )
            done[key] = result_record(
                evaluate_policy(out, out / "eval.json"), 0.0, trainable=0, rank=max_rank
            )
            done.save()
        return key

    if args.replicate:
        exported = [folded(n) for n in names if n.startswith("LoRA-SP")] if args.export else []
        plot_rank_success(done, names, RESULTS / f"{args.name}_rank_success.png")
        logs = {n: work / "runs" / slug(n) / ACTIVE_RANK for n in names if n.startswith("LoRA-SP")}
        by_stack = {n: active_rank_by_stack(log) for n, log in logs.items() if log.is_file()}
        if by_stack:
            plot_active_rank(logs[next(iter(by_stack))], RESULTS / f"{args.name}_active_rank.png")
        write_result(
            f"{args.name}.md",
            "\n".join(replication_report(done, names, exported, base, args, by_stack)) + "\n",
        )
        return

    exported_name = f"LoRA-SP R{max_rank} eta 0.8"
    export_key = folded(exported_name)

    # ---- 4. inference cost, and does computing only the active vectors pay? each trained adapter, each path ----
    routed = [exported_name, f"{exported_name}, router rank {SMALL_ROUTER}"]
    if "paths" not in done:
        from leanvla.adapt.inject import lora_sp_layers
        from leanvla.adapt.lora_sp import PATHS

        def use(path: str):
            def prepare(model) -> None:
                for layer in lora_sp_layers(model).values():
                    layer.path = path

            return prepare

        import torch

        # Every policy and path timed in turn, frame by frame, so the machine's drift falls on all alike.
        torch.set_num_threads(2)
        calls = {
            (name, p): batch1_call(work / "runs" / slug(name), prepare=use(p))
            for name in routed
            for p in PATHS
        }
        ms = round_robin_ms({**calls, "base": batch1_call(base)}, repeats=30)
        done["paths"] = {name: {p: ms[name, p] for p in PATHS} for name in routed}
        done["paths"]["base"] = ms["base"]
        done.save()

    # ---- the tables ----
    rank_log = work / "runs" / slug(exported_name) / ACTIVE_RANK
    plot_active_rank(rank_log, RESULTS / f"{args.name}_active_rank.png")
    plot_spectral_sweep(
        {
            f"spectral weight {weight:g}": work / "runs" / slug(name)
            for weight, name in [
                (LoRAOptions().spectral_weight, exported_name),
                *((w, f"{exported_name}, spectral weight {w:g}") for w in STRONGER_SPECTRAL),
            ]
        },
        RESULTS / f"{args.name}_spectral.png",
    )
    shutil.copy(work / "runs" / slug(exported_name) / "metrics.jsonl", work / "lora_sp_metrics.jsonl")
    full = done["full fine-tuning"]
    lines = [
        "# Adapt: LoRA-SP vs LoRA vs full fine-tuning",
        "",
        f"Command: `{command_line()}`",
        "",
        f"Base: `{shown(base)}` (reference VLA; pretrained on {PRETRAIN_TASKS.replace(',', ', ')} unless --base was given). "
        f"Adapted to {args.tasks} ({args.episodes} demonstrations per task, corner2 64 px + proprio) for {args.steps} steps at "
        f"batch 64, seed {args.seed}; learning rate {FULL_LR:g} for full fine-tuning, {ADAPTER_LR:g} for adapters. "
        + (
            f"Every row trains with the proprio state dropped from {args.state_dropout:g} of its samples (--state-dropout). "
            if args.state_dropout
            else ""
        )
        + f"Adapters sit on every Linear of the {args.targets.replace(',', ', ')} stacks"
        + (
            ", and the input and output modules outside those stacks train in full (--lora.train-io)"
            if args.train_io
            else ", with everything else frozen (--lora.no-train-io)"
        )
        + f"; the largest LoRA rank is {max_rank}, the width of "
        "the narrowest target (the key/value projections). LoRA-SP starts at eta 1 and follows a cosine to its eta "
        "over the first half of training, with the spectral loss at weight 1e-3 unless the row names another. Its router is one d_in x R Linear "
        f"unless the row says router rank {SMALL_ROUTER} (a d_in -> {SMALL_ROUTER} -> R bottleneck).",
        "",
        "Samples/s and peak memory come from a 40-step probe of each variant in a fresh process, run back to back "
        "(CPU peak RSS, which includes the decoded dataset every variant shares).",
        "",
        "## Closed-loop success",
        "",
        "Protocol: " + full["protocol"],
        "",
    ]
    rows = []
    for name in [*table, export_key]:
        r = done[name]
        rows.append(
            (
                [
                    *adapter_cells(name, r),
                    f"{r['samples_per_s']:.0f}" if "samples_per_s" in r else "",
                    f"{r['peak_mib']:.0f}" if "peak_mib" in r else "",
                    f"{r['train_s']:.0f}",
                ],
                r,
            )
        )
    lines += variants_table(
        ["variant", "trainable params", "mean active rank", "train samples/s", "peak MiB", "train s"], rows
    )
    lines += [
        "",
        f"![LoRA-SP active rank per layer]({args.name}_active_rank.png)",
        "",
        f"Active rank per layer over training for {exported_name} (`{rank_log}`).",
        "",
        f"![LoRA-SP spectral weight sweep]({args.name}_spectral.png)",
        "",
        f"{exported_name} at each spectral weight: mean active rank over the adapted layers, and the spectral loss "
        "(the entropy of each token's score energy over log R: 1 = spread evenly, 0 = on one vector), over training.",
        "",
        "## Against the goal",
        "",
        *goal_lines(done, list(table)),
        f"- static export of {exported_name}: {pct(done[export_key]['mean'])}% vs {pct(done[exported_name]['mean'])}% "
        "with routing",
        "",
        "",
        "## Inference cost: each LoRA-SP path (ms per chunk, batch 1, this CPU)",
        "",
        "Median over 30 calls, every policy and path timed in turn on each call (round-robin, one process). "
        f"The base without adapters: {done['paths']['base']:.1f} ms. Dense: every vector computed and masked; gather: "
        "only the union of the vectors the call's tokens keep; auto (the default): gather when that union is at most "
        "a quarter of R. Where gathering pays, one layer at a time and by width: "
        "[adapt_paths.md](adapt_paths.md) (`python benchmarks/adapt_paths.py`).",
        "",
        "| variant | dense | gather | auto |",
        "|---|---|---|---|",
        *(
            "| {name} | {dense:.1f} | {gather:.1f} | {auto:.1f} |".format(name=name, **done["paths"][name])
            for name in routed
        ),
        "",
        "GPU step time and memory for the largest reference size: not measured (no GPU was lent to this task).",
    ]
    write_result(f"{args.name}.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
