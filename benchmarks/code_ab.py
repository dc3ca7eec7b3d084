"""Did the code get slower? The same short training and evaluation with the code at a git revision
and with the working tree's, in turn, so that the machine's drift falls on both alike.

    python benchmarks/code_ab.py --against 1df5c97 --data outputs/cache/metaworld-b01769e900 \
        --name code_ab_demo      # about 3 minutes: the demo's base (tiny, 3 + 3 layers), 300 steps

Each repeat trains `--steps` steps with `leanvla train` (the demo's base model shape) and evaluates
the result for `--episodes` episodes per task, first at the revision (a temporary git worktree),
then here. Writes docs/results/<--name>.md: wall seconds, logged samples/s, final loss and
inference ms per chunk, per repeat and version.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from common import REPO, command_line, leanvla_at, result_name, source_at, write_result

MODEL = ["--model.size", "tiny", "--model.layers", "3", "--model.expert-layers", "3"]


def run_once(src: Path, data: Path, out: Path, steps: int, episodes: int) -> dict:
    seconds = leanvla_at(
        src, ["train", "--data", str(data), *MODEL, "--steps", str(steps), "--seed", "0", "--out", str(out)]
    )
    leanvla_at(src, ["eval", "--policy", str(out), "--episodes", str(episodes), "--seed", "0",
                     "--save-rollouts", "0", "--out", str(out / "eval.json")])  # fmt: skip
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rates = [m["samples_per_s"] for m in logged if "samples_per_s" in m]
    return {
        "seconds": seconds,
        "samples_per_s": sum(rates) / len(rates),
        "loss": logged[-1]["loss"],
        "inference_ms": json.loads((out / "eval.json").read_text())["inference_ms_per_chunk"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--against", required=True, help="git revision to compare the working tree with")
    parser.add_argument("--data", type=Path, required=True, help="a LeRobotDataset (e.g. the demo's cache)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--name", type=result_name, default="code_ab")
    args = parser.parse_args()
    if not (args.data / "meta" / "info.json").is_file():
        parser.error(f"--data {args.data}: not a LeRobotDataset (no meta/info.json); record one first")
    rows = []
    with source_at(args.against, parser) as old, tempfile.TemporaryDirectory() as tmp:
        for repeat in range(1, args.repeats + 1):
            for label, src in ((args.against, old), ("working tree", REPO / "src")):
                out = Path(tmp) / f"{label.replace(' ', '-')}-{repeat}"
                rows.append(
                    (label, repeat, run_once(src, args.data.resolve(), out, args.steps, args.episodes))
                )
                print(label, repeat, rows[-1][2], flush=True)
    lines = [
        f"# The code at {args.against} against the working tree, in turn",
        "",
        f"Command: `{command_line()}`",
        "",
        f"Each repeat: `leanvla train` {args.steps} steps ({' '.join(MODEL)}, seed 0) on `{args.data}`, "
        f"then `leanvla eval` {args.episodes} episodes per task; the revision first, then the working tree.",
        "",
        "| code | repeat | train wall s | logged samples/s | final loss | inference ms per chunk |",
        "|---|---|---|---|---|---|",
    ]
    for label, repeat, r in rows:
        lines.append(
            f"| {label} | {repeat} | {r['seconds']:.1f} | {r['samples_per_s']:.0f} | {r['loss']:.7f} | "
            f"{r['inference_ms']:.1f} |"
        )
    write_result(f"{args.name}.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
