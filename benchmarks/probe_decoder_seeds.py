r"""Pool `probe_decoder.py` runs over seeds: is any decoder setting of the demo's discrete head
better than the demo's own, over several training seeds?

    python benchmarks/probe_decoder_seeds.py --work outputs/bench/probe_decoder \
        --work outputs/bench/probe_decoder_seed1 --work outputs/bench/probe_decoder_seed2 \
        --name probe_decoder_pooled

Each run trained its own head (data, training and evaluation on its seed) and evaluated the same
seven settings; each setting's success pools over every episode of every seed, and its gap to the
demo's setting pairs the (seed, task) cells. Reads only each WORK/results.json; writes
docs/results/<--name>.md.
"""

from __future__ import annotations

from common import write_result
from pooling import PAIRED_NOTE, gap_cell, paired_gap, parse_runs, pooled_success, protocol_shape, report_head
from probe_decoder import SETTINGS

DEMO = next(iter(SETTINGS))  # the demo's own setting, the first row


def main() -> None:
    _, args, runs = parse_runs(__doc__, "benchmarks/probe_decoder.py")
    _, episodes = protocol_shape(runs[0])
    lines = report_head("The demo's discrete head, decoded seven ways", args.work, runs)
    lines += [
        "",
        "| decoder | passes per chunk (closed loop, each seed) | success per seed (%) | pooled [95% CI] | minus the demo's, paired |",
        "|---|---|---|---|---|",
    ]
    for name in SETTINGS:
        records = [run[name] for run in runs]
        pooled = pooled_success(records, episodes)
        passes = " / ".join(f"{r['decode']['forward_passes_per_chunk']:.1f}" for r in records)
        seeds = " / ".join(f"{100 * r['mean']:.1f}" for r in records)
        gap = "" if name == DEMO else gap_cell(paired_gap(runs, name, DEMO))
        low, high = pooled["ci"]
        lines.append(
            f"| {name} | {passes} | {seeds} | {100 * pooled['mean']:.1f} [{100 * low:.1f}, {100 * high:.1f}] | {gap} |"
        )
    lines += ["", PAIRED_NOTE]
    write_result(f"{args.name}.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
