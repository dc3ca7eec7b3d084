r"""Fit or generalisation? What trained policies read, and where their actions go wrong.

    python benchmarks/generalization.py     # the MT10 policies of base_policy.py's runs (about 3 min each)
    python benchmarks/generalization.py --policy "mine=outputs/run@0" --policy "CNN=outputs/cnn"
    python benchmarks/generalization.py --tasks DEMO5 --cameras corner2 --name adapt_vision_reads \
        --policy "LoRA-SP=outputs/bench/adapt_vision/runs/lora-sp-r64-eta-0-8-spectral-weight-0-01"   # adapted policies

The MT10 runs of base_policy.py left the plain CNN 15 points ahead of the best reference VLA while
both end training at about the same loss. For each policy this measures the mean
|predicted - demonstrated| action error (environment units, batch 1 as in closed loop):
- on frames of its training demonstrations and on new demonstrations from unseen positions (fit
  against generalisation along the demonstrator's own states);
- on the new demonstrations with the images, or the proprio state, taken from another frame of
  the same task (how much the policy reads each input);
- on the states its own closed-loop episodes reach, against Meta-World's scripted expert queried
  at those states (what the demonstrations never showed it).
Closed-loop success is read from each run's own eval.json. Writes docs/results/generalization.md
and its figure; the numbers as JSON go to outputs/bench/generalization.json.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from statistics import mean

from common import (
    REPO,
    RESULTS,
    action_errors,
    cached_dataset,
    command_line,
    demonstration_chunks,
    result_name,
    shown,
    write_result,
)

WORK = REPO / "outputs" / "bench"  # the measurements as JSON
NEW_EVERY = 6  # every 6th frame of the new demonstrations


def train_every(args) -> int:
    """Frame stride over the training recording that gives about as many chunks as the new one."""
    return NEW_EVERY * args.episodes // args.new_episodes


DEFAULT_POLICIES = [
    "plain CNN=outputs/bench/base_policy_cnn_two_cameras/cnn-MT10",
    "VLA, regression head=outputs/bench/base_policy_regression/vla-MT10",
    "VLA, flow x-prediction, noise 0=outputs/bench/base_policy_flow_action/vla-MT10@0",
    "VLA, flow x-prediction, noise 0, state noise 0.5 in training=outputs/bench/base_policy_state_noise/vla-MT10@0",
    "VLA, flow x-prediction, noise 0, state noise 0.15 in training="
    "outputs/bench/base_policy_state_noise_0.15/vla-MT10@0",
    "VLA, regression head, flat token per camera=outputs/bench/base_policy_flat_token/vla-MT10",
    "VLA, regression head, state dropout 0.5 in training=outputs/bench/base_policy_state_dropout/vla-MT10",
]


def parse_policy(spec: str) -> tuple[str, Path, float | None]:
    """'LABEL=DIR' or 'LABEL=DIR@NOISE' (a flow head sampled from noise x NOISE)."""
    label, sep, rest = spec.partition("=")
    if not sep or not label or not rest:
        raise argparse.ArgumentTypeError(f"--policy takes LABEL=DIR or LABEL=DIR@NOISE, got '{spec}'")
    directory, at, noise = rest.partition("@")
    try:
        return label, Path(directory), float(noise) if at else None
    except ValueError:
        raise argparse.ArgumentTypeError(f"the noise scale after '@' in '{spec}' is not a number") from None


def per_task_means(errors: list[float], chunks: list[tuple], tasks: list[str]) -> dict[str, float]:
    by_task = defaultdict(list)
    for error, (_, _, task, _) in zip(errors, chunks, strict=True):
        by_task[tasks[int(task)]].append(error)
    return {t: mean(by_task[t]) for t in tasks if by_task[t]}


def on_policy_errors(policy, directory: Path, tasks: list[str], episodes: int, seed: int) -> dict:
    """task -> |first action - the scripted expert's action| at every chunk start of the policy's own
    closed-loop episodes (the evaluation's first `episodes` positions), and how many it solved."""
    import numpy as np

    from leanvla.data.metaworld_env import OneEnvAtATime
    from leanvla.evaluate import render_shape
    from leanvla.models.checkpoint import read_provenance
    from leanvla.rollout import TrainingPositions, run_episode

    provenance = read_provenance(directory)
    train = TrainingPositions(provenance.get("positions"))
    cameras = tuple(c.removeprefix("observation.images.") for c in policy.cameras)
    shape = render_shape(policy.meta, provenance)  # as `leanvla eval` renders them
    found, envs = {}, OneEnvAtATime()
    for task in tasks:
        env = envs.get(task, cameras, shape, max_steps=200)
        expert, per_episode, solved = env.expert(), [], 0
        for k in range(episodes):
            errors = []

            def compare(obs, chunk, expert=expert, errors=errors):
                wanted = np.clip(expert.get_action(obs), -1.0, 1.0)
                errors.append(float(np.abs(np.clip(chunk[0], -1.0, 1.0) - wanted).mean()))

            solved += run_episode(
                policy, env, k, seed, train, policy.n_action_steps, on_chunk=compare
            ).success
            per_episode.append(errors)
        found[task] = {"per_episode": per_episode, "solved": solved, "episodes": episodes}
    envs.close()
    return found


def swapped(chunks: list[tuple], part: int) -> list[tuple]:
    """The chunks with input `part` (0 images, 1 state) taken from another chunk of the same task: the
    next one of that task but half the task's chunks away, so never the chunk's own nor a neighbour."""
    by_task: dict[int, list[int]] = {}
    for i, chunk in enumerate(chunks):
        by_task.setdefault(int(chunk[2]), []).append(i)
    donor = {}
    for members in by_task.values():
        for j, i in enumerate(members):
            donor[i] = members[(j + len(members) // 2) % len(members)]
    return [
        tuple(chunks[donor[i]][k] if k == part else x for k, x in enumerate(chunk))
        for i, chunk in enumerate(chunks)
    ]


CONDITIONS = {  # first-action error columns of the figure: where each policy errs
    "held_out_first": "demonstrations at new positions",
    "held_out_first_swapped_images": "... images from another frame",
    "held_out_first_swapped_state": "... state from another frame",
    "on_policy": "its own closed-loop states (vs the expert)",
}


def plot(measured: dict, out: Path) -> None:
    import numpy as np

    from leanvla.report import pyplot, save_figure

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(10, 5))
    width = 0.8 / len(measured)
    x = np.arange(len(CONDITIONS))
    for i, (label, m) in enumerate(measured.items()):
        offset = x + (i - (len(measured) - 1) / 2) * width
        ax.bar(offset, [m[key] for key in CONDITIONS], width, label=label)
    ax.set_xticks(x, list(CONDITIONS.values()), fontsize=8)
    ax.set_ylabel("mean |first action error|")
    ax.set_title("What each policy reads, and where it errs (MT10, first action of each chunk)")
    ax.legend(fontsize=8, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.08))  # below: no bar hidden
    save_figure(fig, out, dpi=110)


def measure(policy, directory: Path, args, train_data: Path, new_data: Path) -> dict:
    """Every error this script reports, for one policy."""
    from leanvla.data.metaworld_tasks import task_for_instruction

    tasks = [task_for_instruction(i) for i in policy.instructions]  # as eval.json names them
    splits = {
        "train": demonstration_chunks(train_data, policy, args.executed, every=train_every(args)),
        "held_out": demonstration_chunks(new_data, policy, args.executed, every=NEW_EVERY),
        "held_out_first": demonstration_chunks(new_data, policy, 1, every=NEW_EVERY),
    }
    m = {"policy": shown(directory)}
    for split, chunks in splits.items():
        errors = action_errors(policy, chunks)
        m[split] = mean(errors)
        m[f"{split}_chunks"] = len(chunks)
        m[f"{split}_per_task"] = per_task_means(errors, chunks, tasks)
    for part, name in ((0, "images"), (1, "state")):
        m[f"held_out_first_swapped_{name}"] = mean(
            action_errors(policy, swapped(splits["held_out_first"], part))
        )
    own = on_policy_errors(policy, directory, tasks, args.rollouts, args.eval_seed)
    everything = {t: [e for ep in r["per_episode"] for e in ep] for t, r in own.items()}
    m["on_policy_per_task"] = {t: mean(e) for t, e in everything.items()}
    m["on_policy"] = mean([e for errors in everything.values() for e in errors])
    m["on_policy_first_chunk"] = mean([ep[0] for r in own.values() for ep in r["per_episode"]])
    m["on_policy_solved"] = sum(r["solved"] for r in own.values()) / sum(r["episodes"] for r in own.values())
    loss = last_quarter_loss(directory / "metrics.jsonl")
    if loss is not None:
        m["training_loss_last_quarter"] = loss
    eval_file = directory / "eval.json"
    if eval_file.is_file():
        result = json.loads(eval_file.read_text())
        m["success"] = result["mean_success"]
        m["success_ci95"] = result["mean_ci95"]
        m["success_per_task"] = {t: r["success_rate"] for t, r in result["per_task"].items()}
        m["success_episodes_per_task"] = result["protocol"]["episodes_per_task"]
    return m


def last_quarter_loss(path: Path) -> float | None:
    """Mean training loss over the last quarter of a run's logged steps (None without its log)."""
    from leanvla.report import read_metrics

    if not path.is_file():
        return None
    losses = [m["loss"] for m in read_metrics(path) if "loss" in m]
    tail = losses[-max(1, len(losses) // 4) :]
    return mean(tail) if tail else None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--policy", action="append", type=parse_policy, help="LABEL=DIR[@NOISE], repeatable")
    parser.add_argument("--tasks", default="MT10")
    parser.add_argument("--cameras", default="corner2,corner3")
    parser.add_argument(
        "--episodes", type=int, default=50, help="the training recording's demonstrations per task"
    )
    parser.add_argument("--new-episodes", type=int, default=5, help="new demonstrations per task")
    parser.add_argument("--new-seed", type=int, default=100, help="recording seed of the new demonstrations")
    parser.add_argument("--seed", type=int, default=0, help="the training recording's seed")
    parser.add_argument("--executed", type=int, default=8, help="actions compared per chunk")
    parser.add_argument(
        "--rollouts", type=int, default=5, help="closed-loop episodes per task for the on-policy error"
    )
    parser.add_argument("--eval-seed", type=int, default=0, help="the closed-loop episodes' evaluation seed")
    parser.add_argument("--name", type=result_name, default="generalization")
    args = parser.parse_args()
    policies = args.policy or [parse_policy(spec) for spec in DEFAULT_POLICIES]
    for label, directory, _ in policies:
        if not directory.is_dir():
            parser.error(
                f"policy '{label}': {directory} is not a directory; train it first (see its --policy)"
            )
    if args.seed == args.new_seed:
        parser.error("--new-seed equals --seed: the new demonstrations would repeat the training positions")

    from leanvla.models.checkpoint import load_policy

    recording = dict(tasks=args.tasks, cameras=args.cameras, image_size=64)
    train_data = cached_dataset(**recording, episodes=args.episodes, seed=args.seed)
    new_data = cached_dataset(**recording, episodes=args.new_episodes, seed=args.new_seed)
    measured = {}
    for label, directory, noise in policies:
        policy = load_policy(directory)
        if noise is not None:
            policy.model.cfg.flow_noise = noise
        measured[label] = m = {**measure(policy, directory, args, train_data, new_data), "flow_noise": noise}
        print(
            f"{label}: " + ", ".join(f"{key} {m[key]:.4f}" for key in ("train", "held_out", *CONDITIONS)),
            flush=True,
        )

    figure = RESULTS / f"{args.name}.png"
    plot(measured, figure)
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / f"{args.name}.json").write_text(json.dumps(measured, indent=2))
    write_result(f"{args.name}.md", report(args, measured, train_data, new_data, figure))


def success_line(measured: dict) -> str:
    """Where the success column comes from, with the evaluations' episodes per task."""
    episodes = sorted({str(m["success_episodes_per_task"]) for m in measured.values() if "success" in m})
    if not episodes:
        return "- Success: not evaluated (none of these runs has an eval.json)."
    return f"- Success: each run's own closed-loop evaluation (its eval.json, {' or '.join(episodes)} episodes per task)."


def report(args, measured: dict, train_data: Path, new_data: Path, figure: Path) -> str:
    first = next(iter(measured.values()))
    tasks = list(first["held_out_per_task"])
    lines = [
        "# Fit or generalisation: what trained policies read, and where they err",
        "",
        f"`{command_line()}`",
        "",
        f"- Training demonstrations: {shown(train_data)}, every {train_every(args)}th frame "
        f"({first['train_chunks']} chunks).",
        f"- New demonstrations of the same tasks from unseen positions: {shown(new_data)} ({args.new_episodes} per "
        f"task, recording seed {args.new_seed}), every {NEW_EVERY}th frame ({first['held_out_chunks']} chunks).",
        f"- Errors are mean |predicted - demonstrated| in environment units (actions lie in [-1, 1]), predicted "
        f"at batch 1 as in closed loop, flow heads from a fixed noise seed; over the {args.executed} executed "
        "actions of a chunk, or over its first action only.",
        "- *Swapped*: the first-action error on the new demonstrations when the images, or the proprio state, "
        "come from another frame of the same task (half the task's frames away) and the rest stays: how much "
        "each input moves the prediction.",
        f"- *Own closed-loop states*: the policy runs the first {args.rollouts} evaluation episodes per task "
        f"(evaluation seed {args.eval_seed}, the positions `leanvla eval` uses first), and at every chunk start "
        "its first action is compared with what Meta-World's scripted expert (the demonstrator) does from that "
        "state; *at reset* is the first chunk of each episode only.",
        success_line(measured),
        "",
        "| policy | training demos, 8 steps | new positions, 8 steps | new, first action | ... images swapped "
        "| ... state swapped | own closed-loop states | ... at reset | training loss, last quarter | success % [95% CI] |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, m in measured.items():
        success = "not evaluated"
        if "success" in m:
            low, high = m["success_ci95"]
            success = f"{100 * m['success']:.1f} [{100 * low:.1f}, {100 * high:.1f}]"
        loss = f"{m['training_loss_last_quarter']:.3f}" if "training_loss_last_quarter" in m else "no log"
        cells = [m[k] for k in ("train", "held_out", *CONDITIONS, "on_policy_first_chunk")]
        lines.append(f"| {label} | " + " | ".join(f"{c:.3f}" for c in cells) + f" | {loss} | {success} |")
    lines += [
        "",
        "Per task: error at new positions over 8 steps / on the policy's own closed-loop states (first action) "
        "/ closed-loop success:",
        "",
        "| task | " + " | ".join(measured) + " |",
        "|---|" + "---|" * len(measured),
    ]
    for t in tasks:
        cells = []
        for m in measured.values():
            success = f" / {100 * m['success_per_task'][t]:.0f}%" if "success_per_task" in m else ""
            cells.append(f"{m['held_out_per_task'][t]:.3f} / {m['on_policy_per_task'][t]:.3f}{success}")
        lines.append(f"| {t.removesuffix('-v3')} | " + " | ".join(cells) + " |")
    lines += ["", f"![first-action error by condition]({figure.name})", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
