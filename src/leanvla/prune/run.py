"""`leanvla prune`: CKA-guided layer pruning (CLP) of a trained policy, before fine-tuning.

One calibration pass over frames of the training data records every layer's output in the named
stacks; the most redundant layers (output most like input) are removed physically; the result is
an ordinary checkpoint plus `prune_report.json` (similarity matrices, scores, removed layers,
parameters before/after) and one similarity heatmap per stack.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from leanvla.atomic import atomic_dir, require_output
from leanvla.data.lerobot_home import DatasetDir
from leanvla.errors import UserError, require
from leanvla.flags import set_flags
from leanvla.option_lists import listed, parse_groups
from leanvla.prune.select import (
    check_removable,
    contiguous_removal,
    drop_last,
    greedy_removal,
    layers_to_remove,
    similarity_matrix,
)

REPORT = "prune_report.json"


@dataclass
class PruneConfig:
    """Remove redundant layers from a policy (CLP); writes a smaller checkpoint and a report."""

    policy: Path
    """Checkpoint (or training run directory) to prune."""
    data: DatasetDir
    """LeRobotDataset whose frames calibrate the similarities (usually the training data)."""
    out: Path
    """Directory of the pruned checkpoint (config.json, model.safetensors, stats.json, report, PNGs)."""
    keep: str = "0.5"
    """Fraction of each stack's layers to keep: one number, or per stack, e.g. 'backbone=0.5,expert=0.75'."""
    threshold: float | None = None
    """Instead of --keep: remove layers while their similarity (input vs output) is >= this."""
    stacks: str = "backbone,expert"
    """Comma-separated layout stacks to prune."""
    criterion: Literal["cka", "block-influence", "angular", "drop-last"] = "cka"
    """Redundancy measure: CKA (CLP), 1 - cosine (ShortGPT), angular distance (Gromov), or truncation."""
    contiguous: bool = False
    """Remove one contiguous block of layers (Gromov et al.) instead of greedy single layers."""
    unbiased: bool = False
    """Use the unbiased HSIC estimator in CKA (less biased for few tokens)."""
    samples: int = 256
    """Calibration frames (drawn task-balanced)."""
    batch_size: int = 64
    """Calibration batch size (memory is bounded by it, not by --samples)."""
    episodes: Path | None = None
    """Calibrate on these episodes only (as for train: a selection JSON, or e.g. 0:40,45)."""
    seed: int = 0
    """Seed of the calibration frames, noise and flow times."""
    overwrite: bool = False
    """Replace --out if it exists."""

    def check_options_used(self, typed: Iterable[str] = ()) -> None:
        """An option this pruning would ignore is a mistake: say which. `typed` holds the command
        line's flags, so that one typed at its default value counts as set too."""
        flags = set_flags(self, typed)
        require(
            "keep" not in flags or self.threshold is None,
            "--keep and --threshold each decide how many layers go: give one of them",
        )
        require(
            "contiguous" not in flags or self.criterion != "drop-last",
            f"{flags.get('contiguous')} applies to the similarity criteria; --criterion drop-last removes "
            "the last layers: drop it",
        )


def parse_keep(spec: str, stacks: list[str]) -> dict[str, float]:
    """'0.5' -> every stack 0.5; 'backbone=0.5,expert=0.75' -> per stack (unnamed stacks keep all)."""
    if "=" in spec:
        given = parse_groups(spec, "--keep", float)
        for name in given:
            require(name in stacks, f"--keep names stack '{name}', which is not in --stacks {stacks}")
        return {s: given.get(s, 1.0) for s in stacks}
    try:
        return {s: float(spec) for s in stacks}
    except ValueError as exc:
        raise UserError(f"--keep '{spec}' is not a number or a list like 'backbone=0.5,expert=0.75'") from exc


def removal_counts(cfg: PruneConfig, depths: dict[str, int]) -> dict[str, int | None]:
    """Per stack, how many layers to remove (None: the threshold decides). Checked before any work."""
    cfg.check_options_used()
    require(
        cfg.threshold is None or 0 < cfg.threshold <= 1, f"--threshold must be in (0, 1], got {cfg.threshold}"
    )
    require(
        cfg.threshold is None or (cfg.criterion != "drop-last" and not cfg.contiguous),
        "--threshold works with greedy removal only; use --keep with --criterion drop-last or --contiguous",
    )
    keep = parse_keep(cfg.keep, list(depths)) if cfg.threshold is None else {}
    counts = {}
    for name, depth in depths.items():
        counts[name] = layers_to_remove(depth, keep.get(name), cfg.threshold)
        if counts[name] is not None:
            check_removable(name, depth, counts[name], cfg.criterion)
    return counts


def choose_removals(
    cfg: PruneConfig, sims: dict[str, torch.Tensor], counts: dict[str, int | None], depths: dict[str, int]
) -> dict[str, list[int]]:
    """Per stack, the 0-based layers to remove under the config's rule."""
    removed = {}
    for name, depth in depths.items():
        if cfg.criterion == "drop-last":
            removed[name] = drop_last(depth, counts[name])
        elif cfg.contiguous:
            removed[name] = contiguous_removal(sims[name], counts[name])
        else:
            removed[name] = greedy_removal(sims[name], counts[name], cfg.threshold)
    return removed


def adjacent(matrix: torch.Tensor) -> list[float]:
    """Similarity of each layer's input and output: matrix[i-1, i] for layers i = 1..L."""
    return [float(matrix[i - 1, i]) for i in range(1, matrix.shape[0])]


def prune(cfg: PruneConfig, progress: bool = True) -> Path:
    """Calibrate on --data, choose the layers to remove, remove them; writes --out (a checkpoint,
    prune_report.json and one similarity heatmap per stack) at once or not at all."""
    from leanvla.data.episode_selection import read_episode_selection
    from leanvla.data.normalize import Normalizer
    from leanvla.data.reader import LeRobotDataset
    from leanvla.data.samples import ChunkDataset
    from leanvla.models.checkpoint import (
        CONFIG,
        PROVENANCE,
        checkpoint_inputs,
        load_model,
        write_checkpoint_files,
    )
    from leanvla.models.layout import layout_for
    from leanvla.prune.calibrate import record_similarity, vla_calibration
    from leanvla.prune.remove import remove_layers
    from leanvla.train.build import check_contract

    out = Path(cfg.out)
    inputs = [("--data", cfg.data), ("--episodes", cfg.episodes), *checkpoint_inputs("--policy", cfg.policy)]
    require_output(out, "--out", cfg.overwrite, "a checkpoint", CONFIG, inputs)
    require(cfg.samples >= 4 and cfg.batch_size >= 1, "--samples must be >= 4 and --batch-size >= 1")
    model, meta, stats, source = load_model(cfg.policy)
    require(
        meta["type"] == "vla", f"{source} is a '{meta['type']}' policy; prune acts on layer stacks of a VLA"
    )
    layout = layout_for(model)
    stacks = listed(cfg.stacks, "--stacks")
    # (an empty one wrote the policy unpruned)
    require(stacks, "--stacks is empty; name the stacks to prune, e.g. backbone,expert")
    layout.check(model)
    depths = {name: len(layout.layers(model, name)) for name in stacks}
    for name, depth in depths.items():
        require(depth > 0, f"stack '{name}' of {source} has no layers to prune")
    counts = removal_counts(cfg, depths)

    dataset = LeRobotDataset(cfg.data)
    check_contract(meta["model"], dataset, f"checkpoint {source}", meta.get("fps"))
    episodes = read_episode_selection(cfg.episodes, dataset.num_episodes) if cfg.episodes else None
    data = ChunkDataset.for_policy(dataset, meta["model"], episodes, progress=progress)
    normalizer = Normalizer(stats, meta["state_key"], meta["action_key"], meta["model"]["cameras"])

    timing = {}
    model.eval()
    t0 = time.perf_counter()
    batches, run = vla_calibration(model, data, normalizer, cfg.samples, cfg.batch_size, cfg.seed)
    accumulators = record_similarity(model, layout, stacks, batches, run, progress=progress)
    timing["calibrate_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    matrices = {
        name: {
            crit: similarity_matrix(acc, crit, cfg.unbiased) for crit in ("cka", "block-influence", "angular")
        }
        for name, acc in accumulators.items()
    }
    chosen = "cka" if cfg.criterion == "drop-last" else cfg.criterion  # drop-last reads no similarity
    removed = choose_removals(cfg, {n: m[chosen] for n, m in matrices.items()}, counts, depths)
    timing["select_s"] = time.perf_counter() - t0

    params_before = sum(p.numel() for p in model.parameters())
    map_before = list(model.cfg.expert_to_backbone)
    remove_layers(model, layout, removed)
    params_after = sum(p.numel() for p in model.parameters())
    meta = {**meta, "model": model.cfg.to_dict(), "pruned_from": str(source.resolve())}

    report = {
        "source": str(source.resolve()),
        "criterion": cfg.criterion,
        "contiguous": cfg.contiguous,
        "keep": cfg.keep if cfg.threshold is None else None,
        "threshold": cfg.threshold,
        "unbiased": cfg.unbiased,
        "calibration": {"samples": cfg.samples, "seed": cfg.seed, "data": str(Path(cfg.data).resolve())},
        "parameters": {"before": params_before, "after": params_after},
        "expert_to_backbone": {"before": map_before, "after": model.cfg.expert_to_backbone},
        "timing": timing,
        "stacks": {
            name: stack_report(depths[name], removed[name], accumulators[name].n, matrices[name])
            for name in stacks
        },
    }
    with atomic_dir(out, replace=cfg.overwrite) as tmp:
        provenance = source / PROVENANCE
        write_checkpoint_files(tmp, model, meta, stats)
        if provenance.is_file():  # the pruned model still carries what the original saw
            shutil.copy(provenance, tmp / PROVENANCE)
        (tmp / REPORT).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        for name in stacks:
            plot_similarity(matrices[name]["cka"], removed[name], name, tmp / f"cka_{name}.png")
    return out


def stack_report(depth: int, removed: list[int], tokens: int, matrices: dict[str, torch.Tensor]) -> dict:
    """prune_report.json's entry for one stack: the layers removed (in the order chosen), how alike
    each layer's output is to its input (CKA; block influence and angular distance, which are
    distances: 1 - similarity), and the full matrices."""
    return {
        "layers_before": depth,
        "layers_after": depth - len(removed),
        "removed": sorted(removed),
        "removal_order": removed,
        "tokens": tokens,
        "adjacent": {
            "cka": adjacent(matrices["cka"]),
            "block_influence": [1 - v for v in adjacent(matrices["block-influence"])],
            "angular_distance": [1 - v for v in adjacent(matrices["angular"])],
        },
        "cka_matrix": matrices["cka"].tolist(),
        "cosine_matrix": matrices["block-influence"].tolist(),
    }


def plot_similarity(matrix: torch.Tensor, removed: list[int], stack: str, path: Path) -> None:
    """Heatmap of CKA between the stack's representations, removed layers' outputs marked."""
    from leanvla.report import pyplot, save_figure

    plt = pyplot()

    r = matrix.shape[0]
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    im = ax.imshow(matrix.numpy(), vmin=0, vmax=1, cmap="viridis")
    labels = ["in"] + [f"L{i}" + ("x" if i - 1 in removed else "") for i in range(1, r)]
    ax.set_xticks(range(r), labels, fontsize=7, rotation=90)
    ax.set_yticks(range(r), labels, fontsize=7)
    ax.set_title(f"{stack}: linear CKA between layer outputs\n(x = removed)", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    save_figure(fig, path)
