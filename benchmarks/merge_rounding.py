r"""How far float rounding carries in a merge.py run: why its meta-model rows move between machines
while (a) and (b) repeat to the episode.

    python benchmarks/merge_rounding.py --work outputs/bench/merge_env --name merge_rounding

Reruns some of a finished merge.py WORK's trainings from their own train_config.json, changing one
thing: the number of torch threads (1 instead of the cores), which changes the order of float
additions and nothing else. A control reruns the vector's SFT run unchanged, to show this machine
reproduces the original bit for bit. Then, per rerun: its distance from the original (against the
original's own update), and the gap between their logged losses step by step (plotted); for the
capability vector made from the two rerun vector runs: its distance and cosine to the original, and the
distance between the two plain SFT runs (a vector that holds no capability, only rounding); closed
loop, episode by episode against the original's, for (a) rerun and for the no-penalty meta row
fine-tuned from the rerun vector's meta model. Last, which of the vector's tasks amplify rounding:
each alone, the vector SFT recipe's first 200 steps at both thread counts.

Writes docs/results/<--name>.md and <--name>_divergence.png. Results accumulate in WORK/rounding/.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

from common import (
    RESULTS,
    Results,
    command_line,
    episodes_by_task,
    finished_work_parser,
    shown,
    slug,
    train_timed,
    write_result,
)
from merge import NO_ORTH, PLAIN

NO_ORTH_RUN = f"runs/{slug(NO_ORTH)}"
SAME = "vector SFT, same threads (control)"
VECTOR_SFT, VECTOR_AUX = "vector SFT", "vector auxiliary"
TASK_STEPS = 200  # per-task probe: past the warm-up, where the vector's runs diverge
RERUNS = {  # label -> the original run, under WORK
    SAME: "vector/sft",
    VECTOR_SFT: "vector/sft",
    VECTOR_AUX: "vector/aux",
    PLAIN: f"runs/{slug(PLAIN)}",
}


def flat(weights: dict, keys: list[str]):
    import torch

    return torch.cat([weights[k].flatten().double() for k in keys])


def shared_keys(*state_dicts: dict) -> list[str]:
    first = state_dicts[0]
    return sorted(
        k
        for k in first
        if first[k].is_floating_point() and all(k in d and d[k].shape == first[k].shape for d in state_dicts)
    )


def run_weights(run: Path) -> dict:
    from safetensors.torch import load_file

    inside = run / "policy" if (run / "policy").is_dir() else run
    return load_file(str(inside / "model.safetensors"))


def distance(rerun: Path, original: Path, start: Path) -> dict:
    """How far a rerun ended from the original, against the original's update from its start."""
    new, old, init = run_weights(rerun), run_weights(original), run_weights(start)
    keys = shared_keys(new, old, init)
    a, b, s = flat(new, keys), flat(old, keys), flat(init, keys)
    return {
        "of_update": float((a - b).norm() / (b - s).norm()),
        "of_weights": float((a - b).norm() / b.norm()),
    }


def loss_gaps(rerun: Path, original: Path) -> list[tuple[int, float]]:
    from leanvla.report import read_metrics

    new, old = read_metrics(rerun / "metrics.jsonl"), read_metrics(original / "metrics.jsonl")
    return [(o["step"], abs(n["loss"] - o["loss"])) for n, o in zip(new, old)]


def vector_change(rerun_meta: Path, original_meta: Path, sft_rerun: Path, sft: Path) -> dict:
    from safetensors.torch import load_file

    from leanvla.merge.run import VECTOR

    new, old = load_file(str(rerun_meta / VECTOR)), load_file(str(original_meta / VECTOR))
    keys = shared_keys(new, old)
    a, b = flat(new, keys), flat(old, keys)
    null_new, null_old = run_weights(sft_rerun), run_weights(sft)
    null = flat(null_new, keys) - flat(null_old, keys)
    return {
        "of_tau": float((a - b).norm() / b.norm()),
        "cosine": float(a @ b / (a.norm() * b.norm())),
        "null_of_tau": float(null.norm() / b.norm()),
    }


def task_gaps(cfg, fewer: int, out: Path) -> dict[str, dict]:
    """Which of the vector's tasks amplify rounding: each task alone, TASK_STEPS steps of the vector's
    SFT recipe at its own thread count and at `fewer`; the logged-loss gap (every 5 steps) between them."""
    from leanvla.report import read_metrics
    from leanvla.train.loop import train

    gaps = {}
    for task, episodes in episodes_by_task(cfg.data).items():
        selection = out / f"{slug(task)}.json"
        selection.parent.mkdir(parents=True, exist_ok=True)
        selection.write_text(json.dumps(episodes))
        logs = []
        for threads in (cfg.threads, fewer):
            run = replace(
                cfg,
                out=out / f"{slug(task)}-threads-{threads}",
                episodes=selection,
                threads=threads,
                log_every=5,
                save_every=TASK_STEPS,
                overwrite=True,
            )
            train(run, progress=False, stop_after=TASK_STEPS)
            logs.append(read_metrics(run.out / "metrics.jsonl"))
        gaps[task] = {
            "episodes": len(episodes),
            "gaps": [(a["step"], abs(a["loss"] - b["loss"])) for a, b in zip(*logs)],
        }
    return gaps


def rerun_closed_loop(rerun: Path, original: Path) -> dict:
    """Evaluate the rerun on the original run's protocol (tasks, episodes, seed); compare episode by episode."""
    from leanvla.evaluate import EvalConfig, evaluate

    protocol = json.loads((original / "eval.json").read_text())["protocol"]
    evaluate(
        EvalConfig(
            policy=rerun,
            episodes=protocol["episodes_per_task"],
            seed=protocol["eval_seed"],
            out=rerun / "eval.json",
        )
    )
    return episode_flips(rerun / "eval.json", original / "eval.json")


def episode_flips(rerun_eval: Path, original_eval: Path) -> dict:
    new, old = json.loads(rerun_eval.read_text()), json.loads(original_eval.read_text())
    pairs = list(zip(new["episodes"], old["episodes"]))
    return {
        "mean": new["mean_success"],
        "original_mean": old["mean_success"],
        "flipped": sum(n["success"] != o["success"] for n, o in pairs),
        "other_length": sum(n["steps"] != o["steps"] for n, o in pairs),
        "episodes": len(pairs),
    }


def plot(gaps: dict[str, list], warmup: int, change: str, out: Path) -> None:
    from leanvla.report import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, points in gaps.items():
        steps, gap = zip(*points)
        ax.semilogy(steps, [max(g, 1e-10) for g in gap], marker=".", label=label)
    ax.axvline(warmup, color="grey", linestyle=":", label=f"end of warm-up (step {warmup})")
    ax.set_xlabel("step")
    ax.set_ylabel("|loss of rerun - loss of original| (floored at 1e-10)")
    ax.set_title(f"{change}: how far the logged training loss moves")
    ax.legend(fontsize=8)
    save_figure(fig, out)


def main() -> None:
    parser = finished_work_parser(__doc__, "merge_rounding", "a finished benchmarks/merge.py work directory")
    args = parser.parse_args()
    work = args.work
    needed = [*RERUNS.values(), NO_ORTH_RUN, "meta/lambda-1"]
    missing = [rel for rel in needed if not (work / rel).is_dir()]
    missing += [
        f"{rel}/eval.json" for rel in (RERUNS[PLAIN], NO_ORTH_RUN) if not (work / rel / "eval.json").is_file()
    ]
    if missing:
        parser.error(f"{shown(work)} is not a finished merge.py work directory: it lacks {missing[0]}")

    from leanvla.merge.run import MergeConfig, merge
    from leanvla.train.state import config_from_json

    def original_config(rel: str):
        return config_from_json(
            json.loads((work / rel / "train_config.json").read_text()), f"{rel}/train_config.json"
        )

    then = original_config(RERUNS[SAME]).threads or os.cpu_count() or 1  # 0 = one per core
    fewer = 1 if then > 1 else 2  # any other count reorders the additions
    out = work / "rounding"
    done = Results(out)
    runs = {}
    for label, rel in RERUNS.items():
        cfg = original_config(rel)
        runs[label] = replace(cfg, out=out / slug(label), threads=cfg.threads if label == SAME else fewer)
        done.setdefault(label, {"train_s": train_timed(runs[label])})
        done[label].update(distance(runs[label].out, work / rel, cfg.init))
        done.save()

    meta = out / "meta-lambda-1"
    if not (meta / "model.safetensors").is_file():
        vector_sft = original_config("vector/sft")
        merge(
            MergeConfig(
                base=vector_sft.init, sft=runs[VECTOR_SFT].out, aux=runs[VECTOR_AUX].out, out=meta, scale=1.0
            )
        )
    done["vector"] = vector_change(
        meta, work / "meta" / "lambda-1", runs[VECTOR_SFT].out, work / "vector" / "sft"
    )
    no_orth = replace(original_config(NO_ORTH_RUN), out=out / "no-orth-from-the-rerun-vector", init=meta)
    done.setdefault(NO_ORTH, {"train_s": train_timed(no_orth)})
    done[NO_ORTH].update(distance(no_orth.out, work / NO_ORTH_RUN, work / "meta" / "lambda-1"))
    done.save()

    for label, cfg, original in (
        (PLAIN, runs[PLAIN], work / RERUNS[PLAIN]),
        (NO_ORTH, no_orth, work / NO_ORTH_RUN),
    ):
        if "flipped" not in done[label]:
            done[label].update(rerun_closed_loop(cfg.out, original))
            done.save()

    if "tasks" not in done:
        done["tasks"] = task_gaps(original_config(RERUNS[VECTOR_SFT]), fewer, out / "tasks")
        done.save()

    gaps = {label: loss_gaps(runs[label].out, work / rel) for label, rel in RERUNS.items()}
    figure = f"{args.name}_divergence.png"
    plot(gaps, runs[VECTOR_SFT].warmup_steps, f"{thread_count(fewer)} instead of {then}", RESULTS / figure)
    write_result(f"{args.name}.md", report(work, done, gaps, figure, then, fewer))


def thread_count(n: int) -> str:
    return f"{n} thread" + "s" * (n > 1)


def percent(fraction: float) -> str:
    return f"{100 * fraction:.2g}%"  # two significant digits: 33%, 0.00036%


def report(work: Path, done: dict, gaps: dict, figure: str, then: int, fewer: int) -> str:
    from leanvla.report import pct

    def at(label: str, step: int) -> str:
        return next((f"{g:.1e}" for s, g in gaps[label] if s >= step), "-")  # "-": a shorter run

    v = done["vector"]
    lines = [
        "# Merge: how far float rounding carries",
        "",
        f"Command: `{command_line()}`",
        "",
        f"Reruns of {shown(work)}'s trainings from their own train_config.json, changing only the torch "
        f"thread count: {fewer} instead of {then} (the originals' setting on this machine), which "
        "reorders float additions and nothing else. The control reruns the vector's SFT run unchanged.",
        "",
        "| rerun | threads | weights moved, of the original's update | of its weights | loss gap at steps 100 / 200 / last |",
        "|---|---|---|---|---|",
    ]
    for label in RERUNS:
        d = done[label]
        threads = "same" if label == SAME else str(fewer)
        last = gaps[label][-1][0]
        lines.append(
            f"| {label} | {threads} | {d['of_update']:.2g} | {d['of_weights']:.2g} | "
            f"{at(label, 100)} / {at(label, 200)} / {at(label, last)} |"
        )
    lines += [
        "",
        f"![loss gaps]({figure})",
        "",
        "## The capability vector made from the two reruns",
        "",
        f"- It moved by {percent(v['of_tau'])} of its own norm (cosine {v['cosine']:.3f} with the original's).",
        f"- The two vector SFT runs alone, which differ only by rounding (a vector with no capability in it), "
        f"lie {percent(v['null_of_tau'])} of the capability vector's norm apart.",
        "",
        "## Closed loop, episode by episode against the original",
        "",
        "| run | success, original -> rerun | episodes with another outcome | with another length |",
        "|---|---|---|---|",
    ]
    for label, what in (
        (PLAIN, f"(a), {thread_count(fewer)}"),
        (NO_ORTH, f"{NO_ORTH}, from the rerun vector's meta model"),
    ):
        d = done[label]
        lines.append(
            f"| {what} | {pct(d['original_mean'])} -> {pct(d['mean'])} | {d['flipped']} of {d['episodes']} | "
            f"{d['other_length']} of {d['episodes']} |"
        )
    lines += [
        "",
        "## Which of the vector's tasks amplify it",
        "",
        f"Each task alone, the vector SFT run's recipe for its first {TASK_STEPS} steps (warm-up included), at "
        f"{thread_count(then)} and at {thread_count(fewer)}; the gap between their logged losses (every 5 steps).",
        "",
        "| task | demonstrations | gap at step 100 | largest gap | gap at the last step |",
        "|---|---|---|---|---|",
    ]
    for task, g in done["tasks"].items():
        steps = dict(g["gaps"])
        at_100 = f"{steps[100]:.1e}" if 100 in steps else "-"
        lines.append(
            f"| {task} | {g['episodes']} | {at_100} | {max(steps.values()):.1e} | {g['gaps'][-1][1]:.1e} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
