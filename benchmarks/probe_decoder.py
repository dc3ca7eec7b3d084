"""Can `leanvla probe` choose a decoder setting offline? The demo's discrete head at each setting.

    python benchmarks/probe_decoder.py      # about 21 min on 2 CPU cores (resumable)

A robot without a simulator picks its Fast-dVLA commit threshold (or mask-predict's iteration
count) from recordings alone, with `leanvla probe --commit-threshold T`. This trains the
discrete-head VLA `leanvla demo` trains (its plan: tiny with 3 + 3 layers, 32 bins per action
dimension, blocks of 32 tokens, 1000 steps on DEMO5, 50 demonstrations per task) and, for each
decoder setting, measures side by side: the probe's executed-step error and forward passes per
chunk on new demonstrations (--held-out per task, recording seed --held-out-seed, every
--every-th frame), and closed-loop success (5 tasks x --eval-episodes on held-out positions) with
its inference time per chunk. Writes docs/results/NAME.md and NAME.png; the runs, probes and
evaluations lie in WORK.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from common import (
    RESULTS,
    Results,
    benchmark_parser,
    cached_dataset,
    command_line,
    rank_agreement,
    recording,
    result_name,
    result_record,
    slug,
    success_with_errors,
    variants_table,
    write_result,
)

SETTINGS = {  # display name -> decoding options, as `leanvla eval` and `leanvla probe` take them
    "Fast-dVLA, threshold 0.001 (the demo's)": dict(decoder="fast", commit_threshold=0.001),
    "Fast-dVLA, threshold 0.1": dict(decoder="fast", commit_threshold=0.1),
    "Fast-dVLA, threshold 0.3": dict(decoder="fast", commit_threshold=0.3),
    "Fast-dVLA, threshold 0.5": dict(decoder="fast", commit_threshold=0.5),
    "Fast-dVLA, threshold 0.9": dict(decoder="fast", commit_threshold=0.9),
    "mask-predict, K=2": dict(decoder="bidirectional", decode_iterations=2),
    "mask-predict, K=10": dict(decoder="bidirectional", decode_iterations=10),
}


def trained(args, data: Path) -> tuple[Path, float]:
    """The demo's discrete head, trained by the demo's own decode stage (WORK/fast)."""
    from leanvla.demo import DemoConfig, DemoPlan, _decode_stage

    start = time.perf_counter()
    run = _decode_stage(DemoPlan(), DemoConfig(seed=args.seed), data, args.work)
    return run, time.perf_counter() - start


def plot(rows: list[dict], out: Path) -> None:
    from leanvla.report import pyplot, save_figure

    plt = pyplot()
    fig, (errors, passes) = plt.subplots(1, 2, figsize=(11, 4.2))
    success, yerr = success_with_errors([r["closed_loop"] for r in rows])
    for ax, key, label in (
        (errors, "error", "probe: executed-step error on new demonstrations"),
        (passes, "passes", "probe: forward passes of the action expert per chunk"),
    ):
        x = [r[key] for r in rows]
        ax.errorbar(x, success, yerr=yerr, fmt="o", capsize=3)
        for r, y in zip(rows, success, strict=True):
            short = r["name"].replace("Fast-dVLA, threshold", "fast").removesuffix(" (the demo's)")
            ax.annotate(short, (r[key], y), fontsize=7, xytext=(4, 3), textcoords="offset points")
        ax.xaxis.set_major_locator(plt.MaxNLocator(5))
        ax.set_xlabel(label)
        ax.set_ylabel("closed-loop success (%), 95% interval")
        ax.grid(alpha=0.3)
    errors.set_title("What the probe reads offline, against success")
    passes.set_title("What each setting costs, against success")
    save_figure(fig, out)


def main() -> None:
    parser = benchmark_parser(__doc__, "outputs/bench/probe_decoder")
    parser.add_argument("--held-out", type=int, default=10, help="new demonstrations per task")
    parser.add_argument("--held-out-seed", type=int, default=100, help="their recording seed")
    parser.add_argument("--every", type=int, default=2, help="probe every N-th frame of them")
    parser.add_argument(
        "--name", type=result_name, default="probe_decoder", help="result file name (without .md)"
    )
    args = parser.parse_args()

    from leanvla.decode.options import DecodingOptions
    from leanvla.evaluate import EvalConfig, evaluate
    from leanvla.probe.run import RESULT, ProbeConfig, probe

    done = Results(args.work)
    data = cached_dataset(tasks="DEMO5", **recording(args.episodes, args.seed))
    held_out = cached_dataset(tasks="DEMO5", **recording(args.held_out, args.held_out_seed))
    run, train_s = trained(args, data)
    done.setdefault("train_s", train_s)
    for name, settings in SETTINGS.items():
        out = args.work / slug(name)
        if name not in done:
            result = evaluate(
                EvalConfig(
                    policy=run,
                    episodes=args.eval_episodes,
                    seed=args.seed,
                    out=out / "eval.json",
                    decoding=DecodingOptions(**settings),
                )
            )
            done[name] = result_record(
                result,
                done["train_s"],
                ms_per_chunk=result["inference_ms_per_chunk"],
                decode=result["decode"],
            )
            done.save()
        if not (out / "probe" / RESULT).is_file():
            probe(
                ProbeConfig(
                    policy=run,
                    data=held_out,
                    out=out / "probe",
                    every=args.every,
                    overwrite=True,
                    decoding=DecodingOptions(**settings),
                )
            )

    rows = []
    for name in SETTINGS:
        probed = json.loads((args.work / slug(name) / "probe" / RESULT).read_text())
        overall = probed["groups"]["held_out"]["summary"]["all"]
        rows.append(
            {
                "name": name,
                "closed_loop": done[name],
                "error": overall["executed"],
                "first_action": overall["first_action"],
                "passes": probed["protocol"]["decode"]["forward_passes_per_chunk"],
                "frames": overall["frames"],
                "probe_s": probed["seconds"],
            }
        )
    success = [r["closed_loop"]["mean"] for r in rows]
    table = variants_table(
        [
            "decoder",
            "probe: error, executed steps",
            "probe: first action",
            "probe: passes per chunk",
            "closed loop: passes per chunk",
            "closed loop: ms per chunk",
        ],
        [
            (
                [
                    r["name"],
                    f"{r['error']:.4f}",
                    f"{r['first_action']:.4f}",
                    f"{r['passes']:.1f}",
                    f"{r['closed_loop']['decode']['forward_passes_per_chunk']:.1f}",
                    f"{r['closed_loop']['ms_per_chunk']:.1f}",
                ],
                r["closed_loop"],
            )
            for r in rows
        ],
    )
    lines = [
        "# `leanvla probe --commit-threshold`: choosing a decoder setting offline",
        "",
        f"Command: `{command_line()}`",
        "",
        "Policy: the discrete-head VLA `leanvla demo` trains (tiny, 3 + 3 layers, 32 bins per action dimension, "
        f"blocks of 32 tokens: 64 tokens per chunk in two blocks, 1000 steps), trained on {args.episodes} "
        f"demonstrations per task of DEMO5, seed {args.seed}, in {done['train_s']:.0f} s; one policy, every row "
        f"decodes it differently. Probe: {args.held_out} new demonstrations per task (recording seed "
        f"{args.held_out_seed}: positions no training demonstration used), one frame in {args.every} "
        f"({rows[0]['frames']} frames); errors are mean |predicted - demonstrated| over the 8 executed steps of "
        "each chunk (or the first action), actions in [-1, 1]. Closed loop: "
        f"{rows[0]['closed_loop']['protocol']} Its ms per chunk is the evaluation's own inference time (2 "
        "workers, 1 thread each; the settings ran one after another on this machine).",
        "",
        *table,
        "",
        f"Spearman rank correlation with closed-loop success over the {len(rows)} settings: the probe's "
        f"executed-step error {rank_agreement([r['error'] for r in rows], success):+.2f}, its first-action error "
        f"{rank_agreement([r['first_action'] for r in rows], success):+.2f}, passes per chunk "
        f"{rank_agreement([r['passes'] for r in rows], success):+.2f} (a perfect offline stand-in: -1 for errors).",
        "",
        f"![probe error and passes against closed-loop success]({args.name}.png)",
        "",
        f"Probe time: {min(r['probe_s'] for r in rows):.0f}-{max(r['probe_s'] for r in rows):.0f} s per setting "
        "(the fast decoder probes one frame at a time, mask-predict 64 at a time).",
    ]
    plot(rows, RESULTS / f"{args.name}.png")
    write_result(f"{args.name}.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
