"""Does the capacity LoRA-SP holds open in a stack follow how much the policy reads that stack's input?

    python benchmarks/adapt_stacks.py --seed 1 --work outputs/bench/adapt_stacks_seed1 --name adapt_stacks_seed1 \
        --vision-spectral-weight 0 0.001 0.003 0.005

adapt.py found (seed 0) that on a base with a vision tower the vision layers keep 9.5 of 64 vectors,
and 23.5 once the proprio state is dropped from half the training samples, after which that policy
read its images (docs/RESULTS.md: on seed 1 it did not, and its vision layers fell to 1.4). This
trains the same LoRA-SP row (R = the narrowest target's width, eta 0.8, spectral weight 1e-2, I/O
modules trained, adapters on the backbone, expert and vision stacks) twice on another --seed
(recording, adapter initialisation, batch order), with the state always seen and with it dropped
from --state-dropout of the samples; with --vision-spectral-weight, once more with the dropout for
each weight given, at that spectral weight on the vision stack alone (`--lora.group-spectral-weight`),
which tells whether the spectral loss is what closes the vision routers, and from which weight. It
reports each stack's mean active rank over the last quarter of training and each vision layer's,
and plots the vision stack's active rank over training, one line per run (where the collapse
happens). No closed loop: the question is where the routers put their capacity
(benchmarks/generalization.py measures what the policies read).

Writes docs/results/<--name>.md; runs and results in WORK (finished runs are reused).
"""

from __future__ import annotations

from pathlib import Path

from adapt import active_rank_by_stack, narrowest_target, row_config, variants
from common import (
    RESULTS,
    Results,
    benchmark_parser,
    cached_dataset,
    command_line,
    pretrained_base,
    recording,
    result_name,
    shown,
    train_timed,
    write_result,
)

VISION_LAYERS = 2
TARGETS = "backbone,expert,vision"


def main() -> None:
    parser = benchmark_parser(__doc__, work="outputs/bench/adapt_stacks", closed_loop=False)
    parser.add_argument("--steps", type=int, default=1000, help="adaptation steps, as adapt.py")
    parser.add_argument("--state-dropout", type=float, default=0.5)
    parser.add_argument(
        "--vision-spectral-weight",
        type=float,
        nargs="+",
        default=[],
        metavar="W",
        help="also train the dropout run with the vision stack's spectral weight at each of these "
        "values (the others keep 1e-2): does the spectral loss close the vision routers, and from which weight?",
    )
    parser.add_argument(
        "--name", type=result_name, default="adapt_stacks", help="result file name (without .md)"
    )
    args = parser.parse_args()
    from leanvla.adapt.report import ACTIVE_RANK, last_quarter_means
    from leanvla.errors import UserError
    from leanvla.train.config import check_state_augmentation

    try:
        check_state_augmentation(0.0, args.state_dropout)
    except UserError as exc:
        parser.error(str(exc))
    if args.state_dropout == 0:
        parser.error("--state-dropout 0 would train the same run twice; give the fraction to drop, e.g. 0.5")
    for weight in args.vision_spectral_weight:
        if weight < 0:
            parser.error(f"--vision-spectral-weight must be >= 0, got {weight:g}")

    # The shared base is pretrained on seed 0 whatever --seed is, as in adapt.py's replications.
    base = pretrained_base(vision_layers=VISION_LAYERS)
    max_rank = narrowest_target(base, TARGETS)
    row = f"LoRA-SP R{max_rank} eta 0.8, spectral weight 0.01"  # adapt.py's best LoRA-SP row
    data = cached_dataset(tasks="DEMO5", **recording(args.episodes, args.seed))
    done = Results(args.work)
    # label -> (run directory, state dropout, row options)
    plans = {
        f"state dropout {dropout:g}": (f"state-dropout-{dropout:g}", dropout, variants(max_rank)[row])
        for dropout in (0.0, args.state_dropout)
    }
    for weight in args.vision_spectral_weight:
        plans[f"state dropout {args.state_dropout:g}, vision spectral weight {weight:g}"] = (
            f"state-dropout-{args.state_dropout:g}-vision-spectral-{weight:g}",
            args.state_dropout,
            {**variants(max_rank)[row], "group_spectral_weight": f"vision={weight!r}"},
        )
    runs = {}
    for label, (directory, dropout, options) in plans.items():
        runs[label] = out = args.work / "runs" / directory
        if label in done:
            continue
        seconds = train_timed(
            row_config(
                options,
                data=data,
                out=out,
                base=base,
                targets=TARGETS,
                train_io=True,
                steps=args.steps,
                seed=args.seed,
                state_dropout=dropout,
            )
        )
        done[label] = dict(
            train_s=seconds,
            by_stack=active_rank_by_stack(out / ACTIVE_RANK),
            vision_layers={
                layer: rank
                for layer, rank in last_quarter_means(out / ACTIVE_RANK).items()
                if layer.startswith("vision.")
            },
        )
        done.save()

    labels = list(runs)
    stacks = list(done[labels[0]]["by_stack"])
    figure = f"{args.name}_vision.png"
    plot_vision_rank(runs, max_rank, RESULTS / figure)
    lines = [
        "# Adapt: which stacks LoRA-SP gives capacity, with and without the proprio state dropped",
        "",
        f"Command: `{command_line()}`",
        "",
        f"Base: `{shown(base)}` (the reference VLA with {VISION_LAYERS} vision transformer layers). {row}, "
        f"adapters on the {TARGETS.replace(',', ', ')} stacks, I/O modules trained, {args.steps} steps on DEMO5 "
        f"({args.episodes} demonstrations per task recorded with seed {args.seed}), seed {args.seed}; the runs "
        f"differ only in the fraction of training samples whose proprio state is dropped"
        + (", and in the runs after the second, the vision stack's spectral weight" if len(runs) > 2 else "")
        + ". Mean active rank over the last quarter of training.",
        "",
        "| run | " + " | ".join(stacks) + " | train s |",
        "|---|" + "---|" * (len(stacks) + 1),
        *(
            f"| {label} | "
            + " | ".join(f"{done[label]['by_stack'][s]:.1f}" for s in stacks)
            + f" | {done[label]['train_s']:.0f} |"
            for label in labels
        ),
        "",
        "Each vision layer:",
        "",
        "| layer | " + " | ".join(labels) + " |",
        "|---|" + "---|" * len(labels),
        *(
            f"| {layer} | "
            + " | ".join(f"{done[label]['vision_layers'][layer]:.1f}" for label in labels)
            + " |"
            for layer in done[labels[0]]["vision_layers"]
        ),
        "",
        f"![vision stack's active rank over training]({figure})",
        "",
        "The vision stack's active rank over training: the mean over its adapted layers at each logged step "
        "(from each run's active_rank.jsonl).",
    ]
    write_result(f"{args.name}.md", "\n".join(lines) + "\n")


def plot_vision_rank(runs: dict[str, Path], rank: int, out: Path) -> None:
    """The vision stack's mean active rank at each logged step, one line per run."""
    from leanvla.adapt.report import ACTIVE_RANK, read_active_rank
    from leanvla.report import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for label, run in runs.items():
        steps, names, rows = read_active_rank(run / ACTIVE_RANK)
        vision = [i for i, name in enumerate(names) if name.startswith("vision.")]
        ax.plot(steps, [sum(row[i] for i in vision) / len(vision) for row in rows], label=label)
    ax.set_ylim(0, rank)
    ax.set_xlabel("training step")
    ax.set_ylabel(f"vision stack: mean active rank (of R = {rank})")
    ax.legend(fontsize=7)
    save_figure(fig, out, dpi=110)


if __name__ == "__main__":
    main()
