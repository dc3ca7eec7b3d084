r"""CapVector side by side: plain SFT vs auxiliary-objective fine-tuning vs plain SFT + orthogonal
penalty from the meta model (base + capability vector), on target tasks the vector never saw.

    python benchmarks/merge.py                               # the full protocol (resumable)
    python benchmarks/merge.py --base-steps 20 --vector-steps 20 --steps 20 --eval-episodes 2 --work /tmp/m

1. The shared pretrained base (`small`, five MT10 tasks; see common.pretrained_base).
2. Capability vector: fine-tune the base on a small task set (button-press, handle-press,
   plate-slide) twice, plainly and with the auxiliary objective (future image features + state;
   with --aux-env-state also the environment state, with --aux-pixels also the future frame's pixels);
   tau = aux - sft; the meta model is base + lambda tau (`leanvla merge`).
3. Targets: DEMO5, each task's last 5 demonstrations held out for validation loss. Variants:
   (a) plain SFT from the base, (b) auxiliary fine-tuning from the base, (c) plain SFT + orthogonal
   penalty from the meta model; ablations: lambda 0.5 / 1.5, and (c) without the penalty.
4. Per variant: closed-loop success on held-out positions, seconds per step, and the steps and wall
   time to reach (a)'s final validation loss.
5. What a step's parts cost: a plain step's forward and backward, with the auxiliary objective, and
   the penalty alone, timed in turn.
6. What fine-tuning did to the merged vector: each meta-model row's update against tau (the share of
   the merged vector it undid; its alignment, the penalty's measure), with and without the penalty.

Writes docs/results/<--name>.md (default merge.md). Results accumulate in WORK/results.json.

--aux-env-state adds the environment-state target to the auxiliary objective (`--aux.env-state`: the
objects' and goal's poses, which only the images reveal), in the vector's auxiliary run and in (b):

    python benchmarks/merge.py --aux-env-state --work outputs/bench/merge_env --name merge_env

--aux-pixels makes the objective also decode the future frame (`--aux.pixels`), a reconstruction
objective at 1.25-1.29x a plain step (the other targets: 1.04-1.20x), so that CapVector has a
price to save:

    python benchmarks/merge.py --aux-pixels --work outputs/bench/merge_pixels --name merge_pixels

Fewer target demonstrations (each DEMO5 task's first N; the same validation set), where an
auxiliary objective has more to regularise:

    python benchmarks/merge.py --target-demos 10 --base outputs/bench/pretrained/small-3000-seed0/policy \
        --work outputs/bench/merge_demos10 --name merge_demos10

--head discrete gives the base, and so every fine-tuning, the discrete action head (`train --head
discrete` as it is by default: one bidirectional block, decoded by mask-predict in 10 iterations):
CapVector's paper adapts a discrete diffusion VLA.

    python benchmarks/merge.py --head discrete --work outputs/bench/merge_discrete --name merge_discrete

--state-dropout P drops the proprio state in a fraction P of every fine-tuning's samples (the
vector's two runs and every target row; `leanvla train --state-dropout`), so that the policy must
read its images, where an image-side auxiliary target has something to teach:

    python benchmarks/merge.py --state-dropout 0.5 --aux-env-state --work outputs/bench/merge_dropout \
        --name merge_dropout

Another seed on the same pretrained base (new recordings, initialisation and evaluation seed; seeds
2-4 likewise, into outputs/bench/merge_seedN), and the seeds pooled by merge_seeds.py:

    python benchmarks/merge.py --seed 1 --base outputs/bench/pretrained/small-3000-seed0/policy \
        --work outputs/bench/merge_seed1 --name merge_seed1
    python benchmarks/merge_seeds.py --work outputs/bench/merge --work outputs/bench/merge_seed1 \
        --work outputs/bench/merge_seed2 --work outputs/bench/merge_seed3 --work outputs/bench/merge_seed4 \
        --name merge_pooled
"""

from __future__ import annotations

from pathlib import Path

from common import (
    Results,
    benchmark_parser,
    cached_dataset,
    command_line,
    pretrained_base,
    recording,
    result_name,
    result_record,
    shown,
    signed_points,
    slug,
    split_per_task,
    train_timed,
    variants_table,
    write_result,
)
from merge_step import AUX, step_parts_ms

VECTOR_TASKS = "button-press-v3,handle-press-v3,plate-slide-v3"
ORTH_WEIGHT = 0.1
HELD_OUT = 5  # each target task's last demonstrations, for the validation loss
PLAIN, AUX_ROW, META_ROW, NO_ORTH = (
    "(a) plain SFT from base",
    "(b) auxiliary fine-tuning from base",
    "(c) meta model (lambda 1) + SFT + orth",
    "ablation: meta (lambda 1) + SFT, no orth",
)
# name -> (start: "base" or a meta-model scale, aux objective on?, orthogonal penalty on?)
VARIANTS: dict[str, tuple[str | float, bool, bool]] = {
    PLAIN: ("base", False, False),
    AUX_ROW: ("base", True, False),
    META_ROW: (1.0, False, True),
    "ablation: meta (lambda 0.5) + SFT + orth": (0.5, False, True),
    "ablation: meta (lambda 1.5) + SFT + orth": (1.5, False, True),
    NO_ORTH: (1.0, False, False),
}
META_ROWS = {name: start for name, (start, _, _) in VARIANTS.items() if start != "base"}  # -> lambda


def time_step_parts(meta: Path, aux_run: Path, seed: int) -> dict[str, float]:
    """merge_step.step_parts_ms on the meta model, with a fresh auxiliary head of the shape `aux_run`
    trained and the merged vector: timed apart because the rows' own ms/step drift by +-20% between
    runs doing the same work."""
    import torch
    from safetensors.torch import load_file

    from leanvla.merge.run import VECTOR
    from leanvla.models.checkpoint import load_model, read_meta, resolve_checkpoint

    torch.set_num_threads(2)
    model = load_model(meta)[0]
    head = read_meta(resolve_checkpoint(aux_run))["model"]
    model.add_aux_head(head["aux_horizon"], head["aux_env_dim"], head.get("aux_pixels", False))
    return step_parts_ms(model, load_file(str(meta / VECTOR)), seed)


def equal_step_saving(plain: float, auxiliary: float, penalty: float) -> str:
    """What (c) saves of (b)'s step at equal steps, said as the reports say it: the objective's cost
    minus the penalty's, as a share of (b)'s forward and backward."""
    saving = (auxiliary - plain - penalty) / auxiliary
    return f"{100 * saving:.0f}%" + (
        " (less than nothing: the penalty costs more than the objective)" if saving < 0 else ""
    )


def steps_to_target(run: dict, name: str) -> int | None:
    """The first logged step at which `name`'s validation loss is <= (a)'s final one; None if never."""
    target = run[PLAIN]["val_loss"][-1][1]
    return next((step for step, loss in run[name]["val_loss"] if loss <= target), None)


def wall_to_target(run: dict, name: str) -> float | None:
    """Seconds of training until `name` reaches the target loss; None if it never does."""
    steps = steps_to_target(run, name)
    return None if steps is None else steps * run[name]["s_per_step"]


def main() -> None:
    parser = benchmark_parser(__doc__, work="outputs/bench/merge")
    parser.add_argument(
        "--base", type=Path, default=None, help="a trained policy to start from (default: pretrain one)"
    )
    parser.add_argument("--base-steps", type=int, default=3000)
    parser.add_argument("--vector-steps", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=1000, help="target fine-tuning steps, every variant")
    parser.add_argument(
        "--target-demos",
        type=int,
        default=None,
        help="train every target variant on each DEMO5 task's first N demonstrations "
        "(default: all but the 5 held out); the validation set stays the same",
    )
    parser.add_argument(
        "--state-dropout",
        type=float,
        default=0.0,
        help="drop the proprio state in this fraction of every fine-tuning's samples (default 0)",
    )
    parser.add_argument(
        "--head",
        choices=("flow", "discrete"),
        default="flow",
        help="the pretrained base's action head, and so every fine-tuning's (CapVector's paper adapts "
        "a discrete diffusion VLA); with --base, the base's own",
    )
    parser.add_argument("--name", type=result_name, default="merge", help="result file name (without .md)")
    parser.add_argument(
        "--aux-env-state",
        action="store_true",
        help="the auxiliary objective also predicts the environment state (--aux.env-state)",
    )
    parser.add_argument(
        "--aux-pixels",
        action="store_true",
        help="the auxiliary objective also decodes the future frame's pixels (--aux.pixels)",
    )
    args = parser.parse_args()
    target_demos = args.episodes - HELD_OUT if args.target_demos is None else args.target_demos
    if not 1 <= target_demos <= args.episodes - HELD_OUT:
        parser.error(
            f"--target-demos {target_demos} is outside 1..{args.episodes - HELD_OUT} "
            f"(--episodes {args.episodes} minus the {HELD_OUT} held out for validation)"
        )

    from leanvla.evaluate import EvalConfig, evaluate
    from leanvla.merge.run import VECTOR, MergeConfig, merge, undone_percent, update_along_vector
    from leanvla.report import pct, read_metrics
    from leanvla.train.config import AuxOptions, OrthOptions, TrainConfig

    work = args.work
    aux_options = AuxOptions(**AUX, env_state=args.aux_env_state, pixels=args.aux_pixels)
    aux_said = f"future image features + state {AUX['horizon']} frames ahead"
    aux_said += " + the present environment state" if args.aux_env_state else ""
    aux_said += " + the future frame's pixels" if args.aux_pixels else ""
    record = recording(args.episodes, args.seed)
    done = Results(work)
    for key, value, setting in (  # a work directory's runs share these; resuming must not mix them
        ("aux_objective", aux_said, "the auxiliary objective"),
        ("target_demos", target_demos, "--target-demos"),
        ("state_dropout", args.state_dropout, "--state-dropout"),
        ("head", args.head, "--head"),
    ):
        if done.setdefault(key, value) != value:
            parser.error(
                f"{shown(work)} holds runs with {setting} {done[key]!r}, not {value!r}; give another --work for this one"
            )

    if args.base is not None:
        from leanvla.models.checkpoint import read_meta, resolve_checkpoint

        base_head = read_meta(resolve_checkpoint(args.base))["model"].get("head", "flow")
        if base_head != args.head:
            parser.error(f"--base {shown(args.base)} has the {base_head} head, not --head {args.head}")
    base = args.base or pretrained_base(args.base_steps, args.seed, args.episodes, head=args.head)

    # ---- 2. the capability vector and the meta models ----
    vector_data = cached_dataset(tasks=VECTOR_TASKS, **record)
    small = dict(
        data=vector_data, init=base, steps=args.vector_steps, seed=args.seed, state_dropout=args.state_dropout
    )
    sft = TrainConfig(out=work / "vector" / "sft", **small)
    aux = TrainConfig(out=work / "vector" / "aux", aux=aux_options, **small)
    done.setdefault("vector_sft_s", train_timed(sft))
    done.setdefault("vector_aux_s", train_timed(aux))
    done.save()
    metas = {}
    for scale in sorted(set(META_ROWS.values())):
        out = work / "meta" / f"lambda-{scale:g}"
        if not (out / VECTOR).is_file():
            merge(MergeConfig(base=base, sft=sft.out, aux=aux.out, out=out, scale=scale, overwrite=True))
        metas[scale] = out
    vector_file = metas[1.0] / VECTOR

    # ---- 3. target fine-tuning, every variant from the same data, steps and seed ----
    data = cached_dataset(tasks="DEMO5", **record)
    train_eps, val_eps = split_per_task(data, work, held_out=HELD_OUT, keep=target_demos)
    for name, (start, with_aux, with_orth) in VARIANTS.items():
        if name in done:
            continue
        cfg = TrainConfig(
            data=data,
            out=work / "runs" / slug(name),
            init=base if start == "base" else metas[start],
            episodes=train_eps,
            val_episodes=val_eps,
            val_every=50,
            log_every=25,
            steps=args.steps,
            seed=args.seed,
            state_dropout=args.state_dropout,
            aux=aux_options if with_aux else AuxOptions(),
            orth=OrthOptions(vector=vector_file, weight=ORTH_WEIGHT) if with_orth else OrthOptions(),
        )
        seconds = train_timed(cfg)
        result = evaluate(
            EvalConfig(policy=cfg.out, episodes=args.eval_episodes, seed=args.seed, out=cfg.out / "eval.json")
        )
        metrics = read_metrics(cfg.out / "metrics.jsonl")
        done[name] = result_record(
            result,
            seconds,
            s_per_step=seconds / args.steps,
            val_loss=[(m["step"], m["val_loss"]) for m in metrics if "val_loss" in m],
        )
        done.save()

    if "step_ms" not in done:  # runs from before the auxiliary step was timed apart have penalty_ms only
        done["step_ms"] = time_step_parts(metas[1.0], aux.out, args.seed)
        done.pop("penalty_ms", None)
        done.save()
    for name, scale in META_ROWS.items():  # from the checkpoints, in seconds; runs from before lack it
        if "along_merged" not in done[name]:
            done[name]["along_merged"] = update_along_vector(metas[scale], work / "runs" / slug(name))
            done.save()

    # ---- the tables ----
    plain = done[PLAIN]
    target = plain["val_loss"][-1][1]
    rows = []
    for name in VARIANTS:
        r = done[name]
        reached = r["steps_to_target"] = steps_to_target(done, name)
        rows.append(
            (
                [
                    name,
                    f"{r['s_per_step'] * 1000:.0f}",
                    str(reached) if reached else f"> {args.steps}",
                    f"{reached * r['s_per_step']:.0f}" if reached else "",
                    f"{r['val_loss'][-1][1]:.4f}",
                ],
                r,
            )
        )
    b, c = done[AUX_ROW], done[META_ROW]
    ms = done["step_ms"]
    along_rows = []
    for name in META_ROWS:
        a = done[name]["along_merged"]
        along_rows.append(
            f"| {name} | {a['norm_ratio']:.1f}x | {undone_percent(a):.1f}% "
            f"| {a['mean_squared_cosine']:.1e} | {a['most_aligned'][0]} ({a['most_aligned'][1]:+.2f}) |"
        )
    wall_c, wall_b = wall_to_target(done, META_ROW), wall_to_target(done, AUX_ROW)

    def wall_line() -> str:
        missed = [n for n, w in (("(c)", wall_c), ("(b)", wall_b)) if w is None]
        if missed:
            return f"- wall time to the target loss: {' and '.join(missed)} did not reach it in {args.steps} steps (goal: (c) <= 0.7x (b))"
        return f"- wall time to the target loss: (c) {wall_c:.0f} s vs (b) {wall_b:.0f} s ({wall_c / wall_b:.2f}x; goal <= 0.7x)"

    lines = [
        "# Merge (CapVector): capability vector + orthogonal penalty vs plain and auxiliary fine-tuning",
        "",
        f"Command: `{command_line()}`",
        "",
        f"Base: `{shown(base)}` (reference VLA `small`, {args.head} head"
        + (f", pretrained {args.base_steps} steps" if args.base is None else "")
        + "). Capability vector from "
        f"{VECTOR_TASKS.replace(',', ', ')} ({args.vector_steps} steps each, plain vs auxiliary objective: "
        f"{aux_said}, weight {AUX['weight']}); vector training took "
        f"{done['vector_sft_s']:.0f} s plain and {done['vector_aux_s']:.0f} s auxiliary. Targets: DEMO5, {target_demos} "
        f"demonstrations per task for training, the last {HELD_OUT} for validation loss; {args.steps} steps at batch 64, "
        f"seed {args.seed}; orthogonal penalty weight {ORTH_WEIGHT}"
        + (
            f"; every fine-tuning (the vector's two runs included) drops the proprio state in "
            f"{args.state_dropout:g} of its samples"
            if args.state_dropout
            else ""
        )
        + ".",
        "",
        f"Steps to target: first logged step (every 50) whose validation loss is <= (a)'s final one ({target:.4f}).",
        "",
        "Protocol: " + plain["protocol"],
        "",
    ]
    lines += variants_table(["variant", "ms/step", "steps to target", "s to target", "final val loss"], rows)
    lines += [
        "",
        "## Against the goal",
        "",
        f"- (c) {pct(c['mean'])}% vs (b) {pct(b['mean'])}% ({signed_points(c['mean'] - b['mean'])} points; goal: within 2)",
        f"- (c) vs (a) {pct(plain['mean'])}%: {signed_points(c['mean'] - plain['mean'])} points (goal > 0)",
        wall_line(),
        f"- time per step: (c) {c['s_per_step'] * 1000:.0f} ms vs (b) {b['s_per_step'] * 1000:.0f} ms vs (a) "
        f"{plain['s_per_step'] * 1000:.0f} ms (these drift by +-20% between rows doing the same work: "
        "read the costs timed apart, below)",
        "",
        "## What a step's parts cost",
        "",
        "Forward and backward at batch 64 on the lambda 1 meta model (given an auxiliary head of the shape "
        "the vector's auxiliary run trained), timed in turn, median of 30 (random inputs: the cost depends "
        "on the shapes alone):",
        "",
        f"- a plain step's action error: {ms['plain']:.1f} ms",
        f"- with the auxiliary objective (its targets' vision forward included): {ms['auxiliary']:.1f} ms, "
        f"{ms['auxiliary'] / ms['plain']:.2f}x plain: what (b) pays every step",
        f"- the orthogonal penalty over every matrix tau covers: {ms['penalty']:.1f} ms, "
        f"{100 * ms['penalty'] / ms['plain']:.0f}% of plain: what (c) pays instead",
        "",
        f"At equal steps (c) saves at most {equal_step_saving(ms['plain'], ms['auxiliary'], ms['penalty'])} "
        "of (b)'s compute; the goal's 0.7x needs fewer steps as well.",
        "",
        "## What fine-tuning did to the merged vector",
        "",
        "Each meta-model row's update (its final weights minus the meta model's) against the merged vector "
        "lambda tau: its size against lambda tau's; the share of lambda tau it undid (minus its projection "
        "on lambda tau); the penalty's own measure, cos^2 per matrix averaged over the matrices (a random update's expectation: "
        f"{done[META_ROW]['along_merged']['random_squared_cosine']:.1e}); and the most aligned matrix.",
        "",
        "| variant | update size / lambda tau's | share of lambda tau undone | mean cos^2 per matrix "
        "| most aligned matrix (cos) |",
        "|---|---|---|---|---|",
        *along_rows,
    ]
    write_result(f"{args.name}.md", "\n".join(lines) + "\n")
    done.save()


if __name__ == "__main__":
    main()
