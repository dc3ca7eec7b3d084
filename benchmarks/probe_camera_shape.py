"""Does `leanvla probe` see what the closed loop saw? camera_shape.py's policies, offline.

    python benchmarks/probe_camera_shape.py      # after camera_shape.py's seed 0 and 1 runs; about 10 min

camera_shape.py trained the reference VLA on one camera rendered six ways, on two seeds, and measured
each policy in closed loop: the 16:9 camera padded to 64 x 64 lost 20-22 points, cropped it lost
none. A robot without a simulator has only `leanvla probe`. This records new DEMO5 demonstrations
(--held-out per task, recording seed --held-out-seed: positions no training demonstration used, as
the probe checks) with each camera shape, probes every policy on them and on every 10th frame of its
own training demonstrations, and sets the open-loop errors and what each policy reads beside its
closed-loop success. Writes docs/results/NAME.md and NAME.png; each probe's own report lies in
WORK/probe/.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from camera_shape import VARIANTS
from common import (
    REPO,
    RESULTS,
    cached_dataset,
    command_line,
    rank_agreement,
    result_name,
    shown,
    write_result,
)

RUNS = ["outputs/bench/camera_shape", "outputs/bench/camera_shape_seed1"]
TRAINING_EVERY = 10  # the training demonstrations are many: every 10th frame is enough to compare


def held_out_recording(name: str, args) -> Path:
    height, width = VARIANTS[name][1:3]
    shape = {"image_size": height} | ({} if width == height else {"image_width": width})
    return cached_dataset(
        tasks="DEMO5", episodes=args.held_out, cameras="corner2", seed=args.held_out_seed, **shape
    )


def probed(policy: Path, data: Path, out: Path, every: int) -> dict:
    """probe.json of `policy` on `data` (probed once; a rerun reads it)."""
    from leanvla.probe.run import RESULT, ProbeConfig, probe

    if not (out / RESULT).is_file():
        probe(ProbeConfig(policy=policy, data=data, out=out, every=every, overwrite=True))
    return json.loads((out / RESULT).read_text())


def plot(rows: list[dict], out: Path) -> None:
    from leanvla.report import pyplot, save_figure

    plt = pyplot()
    fig, (errors, reads) = plt.subplots(1, 2, figsize=(11, 4.2))
    for seed, marker in ((0, "o"), (1, "s")):
        mine = [r for r in rows if r["seed"] == seed]
        for ax, key in ((errors, "held_out"), (reads, "images_ratio")):
            ax.scatter(
                [r[key] for r in mine], [r["success"] for r in mine], marker=marker, label=f"seed {seed}"
            )
            for r in mine:
                place = (r[key], r["success"])
                ax.annotate(r["variant"], place, fontsize=6, xytext=(3, 3), textcoords="offset points")
    errors.set_xlabel("probe: executed-step error on new demonstrations")
    reads.set_xlabel("probe: that error with another demonstration's images / as recorded")
    for ax in (errors, reads):
        ax.set_ylabel("closed-loop success (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    errors.set_title("Open-loop error against closed-loop success")
    reads.set_title("How much it reads its images, against success")
    save_figure(fig, out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--runs", default=",".join(RUNS), help="camera_shape.py work directories, seed 0 first"
    )
    parser.add_argument("--held-out", type=int, default=10, help="new demonstrations per task")
    parser.add_argument("--held-out-seed", type=int, default=100, help="their recording seed")
    parser.add_argument(
        "--name", type=result_name, default="probe_camera_shape", help="result file name (without .md)"
    )
    args = parser.parse_args()
    runs = [REPO / r.strip() for r in args.runs.split(",") if r.strip()]
    for run in runs:
        if not (run / "results.json").is_file():
            parser.error(f"{run} has no results.json: run benchmarks/camera_shape.py for it first")

    from leanvla.probe.summary import swap_ratios

    rows = []
    for seed, run in enumerate(runs):
        closed_loop = json.loads((run / "results.json").read_text())
        for name in [n for n in VARIANTS if n in closed_loop]:
            policy = run / name
            training_data = Path(json.loads((policy / "train_config.json").read_text())["data"])
            if not training_data.is_dir():  # trained from a copy of the tree: the same cache here
                training_data = REPO / "outputs" / "cache" / training_data.name
            new = probed(policy, held_out_recording(name, args), run / "probe" / f"{name}-held-out", 1)
            old = probed(policy, training_data, run / "probe" / f"{name}-training", TRAINING_EVERY)
            held = new["groups"]["held_out"]["summary"]["all"]
            fit = old["groups"]["training"]["summary"]["all"]
            reads = swap_ratios(held["swapped"])
            rows.append(
                {
                    "seed": seed,
                    "variant": name,
                    "success": 100 * closed_loop[name]["mean"],
                    "ci": [100 * c for c in closed_loop[name]["ci"]],
                    "held_out": held["executed"],
                    "first_action": held["first_action"],
                    "training": fit["executed"],
                    "images_ratio": reads["images"],
                    "state_ratio": reads["state"],
                    "frames": held["frames"],
                    "training_frames": fit["frames"],
                    "seconds": new["seconds"],
                }
            )
    (REPO / "outputs" / "bench").mkdir(parents=True, exist_ok=True)
    (REPO / "outputs" / "bench" / f"{args.name}.json").write_text(json.dumps(rows, indent=2))

    success = [r["success"] for r in rows]
    lines = [
        "# `leanvla probe` beside the closed loop: camera_shape.py's policies",
        "",
        f"Command: `{command_line()}`",
        "",
        f"Policies: camera_shape.py's ({', '.join(shown(r) for r in runs)}; seed 0 then 1): the reference VLA "
        "(small, regression head) trained on DEMO5 with the corner2 camera recorded in each shape. New "
        f"demonstrations: DEMO5, {args.held_out} per task, recording seed {args.held_out_seed}, each camera shape "
        f"(every frame probed: {rows[0]['frames']} frames); training demonstrations: every {TRAINING_EVERY}th "
        f"frame of the policy's own ({rows[0]['training_frames']} frames). Errors: mean |predicted - demonstrated| "
        "over the first executed steps of each chunk (the policy's 8), actions in [-1, 1]. Reads: that error "
        "with the images, or the state, of the frame at the same point of the task's next demonstration, over "
        "the error as recorded. Closed-loop success: camera_shape.py's (5 tasks x 50 held-out episodes).",
        "",
        "| seed | camera | closed-loop success [95% CI] | error, new demonstrations | error, training "
        "demonstrations | first action, new | reads images (x) | reads state (x) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lo, hi = r["ci"]
        lines.append(
            f"| {r['seed']} | {r['variant']} | {r['success']:.1f} [{lo:.1f}, {hi:.1f}] | {r['held_out']:.4f} "
            f"| {r['training']:.4f} | {r['first_action']:.4f} | {r['images_ratio']:.2f} | {r['state_ratio']:.2f} |"
        )
    lines += [
        "",
        "Spearman rank correlation with closed-loop success, over the "
        f"{len(rows)} policies: error on new demonstrations {rank_agreement([r['held_out'] for r in rows], success):+.2f}, "
        f"on training demonstrations {rank_agreement([r['training'] for r in rows], success):+.2f}, "
        f"reads images {rank_agreement([r['images_ratio'] for r in rows], success):+.2f}, "
        f"reads state {rank_agreement([r['state_ratio'] for r in rows], success):+.2f}. "
        "A perfect offline stand-in would score -1 for errors (lower error, more success).",
        "",
        f"![probe beside closed-loop success]({args.name}.png)",
        "",
        f"Probe time: {min(r['seconds'] for r in rows):.0f}-{max(r['seconds'] for r in rows):.0f} s per policy on the "
        "new demonstrations, decoding included (this machine, 2 CPU threads; the probes shared it with other "
        "work, so these are not timings to compare).",
    ]
    plot(rows, RESULTS / f"{args.name}.png")
    write_result(f"{args.name}.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
