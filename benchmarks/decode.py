"""Fast-dVLA side by side: the flow head (10 Euler steps), bidirectional discrete decoding
(mask-predict) and Fast-dVLA's cached, pipelined block-causal decoding at a sweep of thresholds.

    python benchmarks/decode.py                          # the full protocol (resumable)
    python benchmarks/decode.py --steps 20 --eval-episodes 2 --work /tmp/d   # a smoke run

1. Train four reference VLAs (`small`) on DEMO5 with the same data, steps, batch and seed: the
   flow head; the discrete head with bidirectional attention; the discrete head block-causal
   (blocks of 8 tokens = 2 action steps, diffusion-forcing noise rising along the chunk); and the
   block-causal head again, distilled from the bidirectional one (`--distill.teacher`).
2. Per decoder: latency per chunk at batch 1 on this CPU (median over 30 real frames of the data,
   every decoder measured back to back in one pass at the end of each run), forward passes per chunk,
   tokens committed per pass, the control rate it allows (executed actions per second of
   inference), and closed-loop success on held-out positions.
3. The cache's share: the same Fast-dVLA decisions with every started block recomputed.

Writes docs/results/decode.md. Results accumulate in WORK/results.json.
"""

from __future__ import annotations

from common import (
    Results,
    benchmark_parser,
    cached_dataset,
    command_line,
    inference_latency_ms,
    recording,
    result_record,
    slug,
    train_timed,
    variants_table,
    write_result,
)

BLOCK = 8  # tokens per block: 2 action steps of 4 dimensions
# name -> (trained head, decoder settings applied at evaluation)
VARIANTS: dict[str, tuple[str, dict]] = {
    "flow head, 10 Euler steps": ("flow", {}),
    "bidirectional, mask-predict K=10": (
        "bidirectional",
        dict(decoder="bidirectional", decode_iterations=10),
    ),
    "Fast-dVLA, threshold 0.9": ("block-causal", dict(decoder="fast", commit_threshold=0.9)),
    "Fast-dVLA, threshold 0.7": ("block-causal", dict(decoder="fast", commit_threshold=0.7)),
    "Fast-dVLA, threshold 0.5": ("block-causal", dict(decoder="fast", commit_threshold=0.5)),
    "Fast-dVLA distilled, threshold 0.9": (
        "block-causal distilled",
        dict(decoder="fast", commit_threshold=0.9),
    ),
    "Fast-dVLA distilled, threshold 0.5": (
        "block-causal distilled",
        dict(decoder="fast", commit_threshold=0.5),
    ),
    "Fast-dVLA, threshold 0.9, no KV cache": (
        "block-causal",
        dict(decoder="fast-nocache", commit_threshold=0.9),
    ),
}
LATENCY_ONLY = {"Fast-dVLA, threshold 0.9, no KV cache"}  # same decisions as with the cache


def latency(policy, settings: dict, data) -> float:
    """Median ms per chunk at batch 1 with these decoder settings, over real frames of `data`."""

    def prepare(model) -> None:
        for name, value in settings.items():
            setattr(model.cfg, name, value)

    return inference_latency_ms(policy, prepare=prepare, frames_from=data)


def main() -> None:
    parser = benchmark_parser(__doc__, work="outputs/bench/decode")
    parser.add_argument("--steps", type=int, default=2000, help="training steps, every head")
    args = parser.parse_args()

    from leanvla.evaluate import EvalConfig, evaluate
    from leanvla.train.config import DiscreteOptions, DistillOptions, ModelOptions, TrainConfig

    work = args.work
    data = cached_dataset(tasks="DEMO5", **recording(args.episodes, args.seed))
    done = Results(work)

    heads = {
        "flow": dict(head="flow"),
        "bidirectional": dict(head="discrete", discrete=DiscreteOptions(block=0)),
        "block-causal": dict(head="discrete", discrete=DiscreteOptions(block=BLOCK)),
        "block-causal distilled": dict(
            head="discrete",
            discrete=DiscreteOptions(block=BLOCK),
            distill=DistillOptions(teacher=work / "runs" / "bidirectional"),
        ),
    }
    runs = {}
    for name, options in heads.items():
        cfg = TrainConfig(
            data=data,
            out=work / "runs" / name,
            model=ModelOptions(size="small"),
            cameras="corner2",
            steps=args.steps,
            seed=args.seed,
            **options,
        )
        done.setdefault(f"train_s {name}", train_timed(cfg))
        runs[name] = cfg.out
        done.save()

    for name, (head, settings) in VARIANTS.items():
        if name in done or name in LATENCY_ONLY:
            continue
        result = evaluate(
            EvalConfig(
                policy=runs[head],
                episodes=args.eval_episodes,
                seed=args.seed,
                out=work / "eval" / f"{slug(name)}.json",
                **settings,
            )
        )
        done[name] = result_record(result, done[f"train_s {head}"], decode=result.get("decode"))
        done.save()
    # Latency of every decoder back to back in this one process, so the ratios share conditions.
    done["ms_per_chunk"] = {
        name: latency(runs[head], settings, data) for name, (head, settings) in VARIANTS.items()
    }
    done.save()
    ms = done["ms_per_chunk"]
    bidir_ms = ms["bidirectional, mask-predict K=10"]

    # ---- the tables ----
    n_action_steps = 8
    flow, bidir = done["flow head, 10 Euler steps"], done["bidirectional, mask-predict K=10"]
    rows = []
    for name in VARIANTS:
        if name in LATENCY_ONLY:
            continue
        r = done[name]
        decode = r.get("decode") or {}
        rows.append(
            (
                [
                    name,
                    f"{ms[name]:.1f}",
                    f"{bidir_ms / ms[name]:.2f}x",
                    f"{decode['forward_passes_per_chunk']:.1f}" if decode else "10 (Euler)",
                    f"{decode['tokens_per_pass']:.1f}" if decode else "",
                    f"{1000 * n_action_steps / ms[name]:.0f}",
                ],
                r,
            )
        )
    fast = {n: done[n] for n in VARIANTS if n.startswith("Fast-dVLA") and n not in LATENCY_ONLY}
    best = max(
        fast,
        key=lambda n: (
            fast[n]["mean"] >= bidir["mean"] - 0.02,
            bidir_ms / ms[n],
        ),
    )
    lines = [
        "# Decode: Fast-dVLA vs bidirectional discrete decoding vs the flow head",
        "",
        f"Command: `{command_line()}`",
        "",
        f"Four reference VLAs (`small`) trained on DEMO5 ({args.episodes} demonstrations per task, corner2 64 px + "
        f"proprio), {args.steps} steps at batch 64, seed {args.seed}: the flow head, the discrete head (256 uniform bins "
        f"per dimension, 64 action tokens per chunk) with bidirectional attention, and the discrete head block-causal "
        f"({BLOCK} tokens per block), and that block-causal head trained again with KL to the bidirectional one on its "
        "masked tokens (`--distill.teacher`, weight 1). Latency: median over 30 evenly spaced real frames of the data "
        "at batch 1, 2 threads, this CPU, every decoder measured back to back in one process; forward passes and "
        "tokens per pass are means over every chunk of the closed-loop evaluation; control rate = executed actions "
        f"({n_action_steps} per chunk) per second of inference.",
        "",
        "Protocol: " + flow["protocol"],
        "",
    ]
    lines += variants_table(
        [
            "decoder",
            "ms per chunk",
            "speed-up vs bidirectional",
            "passes per chunk",
            "tokens per pass",
            "control Hz",
        ],
        rows,
    )
    lines += [
        "",
        f"The KV cache's share: Fast-dVLA at threshold 0.9 takes {ms['Fast-dVLA, threshold 0.9']:.1f} ms with the cache "
        f"and {ms['Fast-dVLA, threshold 0.9, no KV cache']:.1f} ms recomputing every started block (the same decisions).",
        "",
        "## Against the goal",
        "",
        f"- {best}: {bidir_ms / ms[best]:.2f}x faster than bidirectional decoding "
        "(goal >= 3x), success "
        f"{100 * fast[best]['mean']:.1f}% vs {100 * bidir['mean']:.1f}% "
        f"({100 * (fast[best]['mean'] - bidir['mean']):+.1f} points; goal: within 2)",
        "",
        "GPU latencies for the largest reference size: not measured (no GPU was lent to this task).",
    ]
    write_result("decode.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
