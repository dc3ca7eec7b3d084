"""Markdown tables and matplotlib figures for run reports and benchmark results."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from leanvla.atomic import atomic_dir, atomic_path, require_short_enough
from leanvla.errors import UserError, require


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (no display needed), imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, out: Path, dpi: int = 120) -> None:
    """Lay out, write and close a figure, whole or not at all: written in place, a full disk left a
    truncated PNG among a curation's outputs."""
    try:
        fig.tight_layout()
        with atomic_path(Path(out)) as tmp:  # its name ends .tmp-*: the format is the output's
            fig.savefig(tmp, dpi=dpi, format=Path(out).suffix.lstrip(".") or None)
    finally:
        pyplot().close(fig)


ROLLOUT_MEDIA = (".png", ".gif")


def rollouts_directory(results: Path) -> Path:
    """Where an evaluation writing `results` (a JSON file) saves its rollout strips and GIFs."""
    return Path(f"{Path(results).with_suffix('')}_rollouts")


def check_rollouts_directory(results: Path, flag: str) -> None:
    """Refuse, before any episode runs, a rollouts directory beside `results` (given as `flag`) that
    `save_rollout_media` could not replace whole: a file, or a directory holding what no evaluation
    writes."""
    directory = rollouts_directory(results)
    require_short_enough(results, flag, output=directory)
    saves = f"{flag} {results} saves its rollouts in {directory}, which"
    if not directory.is_dir():
        require(not directory.exists(), f"{saves} is a file; move it, or choose another {flag}")
        return
    foreign = sorted(p.name for p in directory.iterdir() if not (p.is_file() and p.suffix in ROLLOUT_MEDIA))
    if foreign:
        raise UserError(
            f"{saves} holds {foreign[0]!r}, not an evaluation's strip or GIF; move it, or choose another {flag}"
        )


def save_rollout_media(episodes: list[dict], directory: Path, strip_frames: int = 10) -> list[str]:
    """For each episode with frames: an image strip (PNG) and an animation (GIF), in `directory`,
    which they replace whole (an earlier evaluation's, among them, showed what this one did not).
    Returns the paths."""
    if not episodes:
        return []
    directory, paths = Path(directory), []
    with atomic_dir(directory, replace=True) as tmp:
        for e in episodes:
            frames = [np.asarray(f, dtype=np.uint8) for f in e["frames"]]
            tag = f"{e['task']}_ep{e['episode']}_{'success' if e['success'] else 'fail'}"
            picks = np.linspace(0, len(frames) - 1, min(strip_frames, len(frames))).round().astype(int)
            strip = np.concatenate([frames[i] for i in picks], axis=1)
            Image.fromarray(strip).save(tmp / f"{tag}.png")
            gif = [Image.fromarray(f) for f in frames[::2]]
            gif[0].save(tmp / f"{tag}.gif", save_all=True, append_images=gif[1:], duration=50, loop=0)
            paths += [str(directory / f"{tag}.png"), str(directory / f"{tag}.gif")]
    return paths


def rollout_grid(strip_paths: list[str], out: Path) -> None:
    """Stack rollout strips (one row per task) into one picture."""
    rows = [np.asarray(Image.open(p).convert("RGB")) for p in strip_paths]
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 2), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    with atomic_path(Path(out)) as tmp:
        Image.fromarray(np.concatenate(rows, axis=0)).save(tmp, format="PNG")


def read_metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def plot_loss(metrics: dict[str, list[dict]], out: Path, title: str = "training loss") -> None:
    """Loss curves of one or more runs (label -> metrics.jsonl records)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, records in metrics.items():
        ax.plot([r["step"] for r in records], [r["loss"] for r in records], label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(metrics) > 1:
        ax.legend()
    save_figure(fig, out)


AUX_FIGURE = "aux_terms.png"  # in a run directory trained with --aux, drawn at the end of training


def plot_aux_terms(records: list[dict], out: Path) -> None:
    """Each auxiliary target's error over training (metrics.jsonl's `aux_<target>` keys)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for key in [k for k in records[-1] if k.startswith("aux_")]:
        logged = [r for r in records if key in r]
        ax.plot([r["step"] for r in logged], [r[key] for r in logged], label=key.removeprefix("aux_"))
    ax.set_xlabel("step")
    ax.set_ylabel("mean squared error")
    ax.set_yscale("log")
    ax.set_title("auxiliary objective, by target")
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, out)


def pct(x: float) -> str:
    return f"{100 * x:.1f}"


def success_table(results: dict[str, dict]) -> str:
    """Markdown: one column per policy (label -> eval result), one row per task, mean last."""
    labels = list(results)
    tasks = list(next(iter(results.values()))["per_task"])
    head = "| task | " + " | ".join(labels) + " |\n|---|" + "---|" * len(labels) + "\n"
    rows = []
    for task in tasks:
        cells = []
        for label in labels:
            r = results[label]["per_task"][task]
            lo, hi = r["ci95"]
            cells.append(f"{pct(r['success_rate'])} [{pct(lo)}, {pct(hi)}]")
        rows.append(f"| {task} | " + " | ".join(cells) + " |")
    means = []
    for label in labels:
        lo, hi = results[label]["mean_ci95"]
        means.append(f"**{pct(results[label]['mean_success'])}** [{pct(lo)}, {pct(hi)}]")
    rows.append("| **mean** | " + " | ".join(means) + " |")
    return head + "\n".join(rows) + "\n"


def protocol_line(result: dict) -> str:
    p = result["protocol"]
    size = p.get("image_size")  # results written before cameras were fitted lack both
    height, width = p.get("camera_shape", (size, size))
    cropped = p.get("image_fit") == "crop" and height != width  # results before crop existed lack it
    how = "cropped to their centred square and scaled" if cropped else "fitted"
    fitted = (
        f" (cameras rendered {height} x {width}, {how} to the policy's {size} x {size})"
        if (height, width) != (size, size)
        else ""
    )
    return (
        f"{len(p['tasks'])} tasks x {p['episodes_per_task']} episodes, evaluation seed {p['eval_seed']}, "
        f"held-out positions (checked against training: {p['held_out_positions_checked']}), "
        f"max {p['max_steps']} steps, {p['n_action_steps']} actions executed per chunk, "
        f"observing {', '.join(p['observation'])}{fitted}. Success in % with 95% Wilson intervals."
    )
