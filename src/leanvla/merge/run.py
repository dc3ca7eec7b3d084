"""`leanvla merge`: build the meta model theta_0 + lambda tau (CapVector), or merge several vectors.

Two ways in:
  --sft A --aux B          tau = B - A (the same small task set trained plainly and with auxiliary
                           objectives); writes the meta model and tau itself (for --orth.vector)
  --vectors V1,V2,...      vectors (capability_vector.safetensors files, or fine-tuned checkpoints
                           taken relative to --base) combined by task arithmetic, TIES or DARE

Writes OUT/ (an ordinary checkpoint of the base's architecture), OUT/capability_vector.safetensors,
OUT/merge_report.json (per-parameter norms, cosines between vectors per parameter and per group)
and OUT/vector_norms.png.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from leanvla.errors import InputWarning, UserError, require
from leanvla.flags import set_flags
from leanvla.merge.vectors import (
    add_scaled,
    along,
    capability_vector,
    check_compatible,
    check_same_config,
    combine,
    diagnostics,
    group_of,
)
from leanvla.models.checkpoint import (
    CONFIG,
    WEIGHTS,
    build_model,
    checkpoint_inputs,
    load_state_dict_checked,
    read_meta,
    read_stats,
    read_weights,
    require_finite,
    resolve_checkpoint,
    save_tensors,
    write_checkpoint_files,
)
from leanvla.option_lists import listed

VECTOR = "capability_vector.safetensors"
REPORT = "merge_report.json"

COMBINING = ("method", "weights", "density", "seed")  # read only when --vectors are combined
TRIMMING = ("ties", "dare-linear", "dare-ties")  # the methods that read --density
DROPPING = ("dare-linear", "dare-ties")  # the methods that read --seed


@dataclass
class MergeConfig:
    """Add capability vectors to a base policy (CapVector, task arithmetic, TIES, DARE)."""

    base: Path
    """The pretrained checkpoint the vector is added to (theta_0)."""
    out: Path
    """Output checkpoint directory (the meta model, its vector and a report)."""
    sft: Path | None = None
    """Checkpoint trained on the small task set with plain SFT (from --base)."""
    aux: Path | None = None
    """Checkpoint trained on the same tasks with the auxiliary objectives (from --base)."""
    vectors: str | None = None
    """Instead of --sft/--aux: comma-separated vector files or checkpoints (taken minus --base)."""
    method: Literal["task-arithmetic", "ties", "dare-linear", "dare-ties"] = "task-arithmetic"
    """How several --vectors combine (peft's merge utilities)."""
    weights: str | None = None
    """Comma-separated weight per --vectors entry (default 1 each)."""
    density: float = 0.5
    """TIES / DARE: fraction of each vector's entries kept."""
    scale: float = 1.0
    """lambda: the vector is added times this."""
    group_scale: str = ""
    """Per-group lambda, e.g. 'backbone=1.0,expert=0.5' (groups: the layout's stacks, and 'other')."""
    seed: int = 0
    """Seed of DARE's random drops."""
    overwrite: bool = False

    def check_options_used(self, typed: Iterable[str] = ()) -> None:
        """An option this merge would ignore is a mistake (`--density` does nothing to one capability
        vector): say which. `typed` holds the command line's flags, so that one typed at its default
        value counts as set too."""
        flags = set_flags(self, typed)
        if self.sft is not None or self.aux is not None:
            for name in COMBINING:
                if name in flags:
                    raise UserError(
                        f"{flags[name]} applies to combining several --vectors; --sft and --aux make one "
                        "capability vector: drop it, or pass --vectors"
                    )
        if self.vectors is not None:
            if "density" in flags and self.method not in TRIMMING:
                methods = f"{', '.join(TRIMMING[:-1])} or {TRIMMING[-1]}"
                raise UserError(
                    f"{flags['density']} applies to --method {methods} (task arithmetic keeps every entry): "
                    "choose one, or drop it"
                )
            if "seed" in flags and self.method not in DROPPING:
                raise UserError(
                    f"{flags['seed']} draws DARE's random drops: it applies to --method "
                    f"{' or '.join(DROPPING)}; choose one, or drop it"
                )


def _load(path: Path) -> tuple[dict, dict, dict, Path]:
    """(state dict, meta, stats, directory) of a plain checkpoint."""
    directory = resolve_checkpoint(path)
    meta = read_meta(directory)
    require(
        (directory / WEIGHTS).is_file(),
        f"{directory} holds adapters only; fold them with `leanvla export` before merging",
    )
    return (
        _finite(read_weights(directory / WEIGHTS), directory / WEIGHTS),
        meta,
        read_stats(directory),
        directory,
    )


def _finite(tensors: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """`tensors`, read from `path`, all finite (the meta model was written NaN, without a word)."""
    require_finite(tensors, path, "a merge of it would be NaN")
    return tensors


def _group_prefixes(meta: dict) -> dict[str, str]:
    from leanvla.models.layout import VLA_LAYOUT

    return {s.name: s.path for s in VLA_LAYOUT.stacks} if meta.get("type") == "vla" else {}


def _parse_scales(spec: str) -> dict[str, float]:
    from leanvla.option_lists import parse_groups

    return parse_groups(spec, "--group-scale", float) if spec else {}


def merge(cfg: MergeConfig) -> Path:
    """Write --out: --base plus --scale (per group, --group-scale) times the capability vector of
    --sft and --aux, or of several --vectors combined; with the vector itself, its report and plot."""
    from leanvla.atomic import atomic_dir, require_output

    out = Path(cfg.out)
    pair = cfg.sft is not None or cfg.aux is not None
    require(
        pair != (cfg.vectors is not None),
        "give either --sft and --aux (a capability vector) or --vectors (several to combine), not both or neither",
    )
    require(
        not pair or (cfg.sft is not None and cfg.aux is not None), "--sft and --aux go together; give both"
    )
    cfg.check_options_used()
    given = [("--base", cfg.base), ("--sft", cfg.sft), ("--aux", cfg.aux)]
    given += [("--vectors", entry) for entry in _vector_paths(cfg)]
    inputs = [item for flag, path in given for item in checkpoint_inputs(flag, path)]
    require_output(out, "--out", cfg.overwrite, "a checkpoint", CONFIG, inputs)
    # A nan or inf scale would write a checkpoint of nan weights that loads without complaint.
    require(math.isfinite(cfg.scale), f"--scale must be a finite number, got {cfg.scale}")
    group_scale = _parse_scales(cfg.group_scale)
    for group, value in group_scale.items():
        require(math.isfinite(value), f"--group-scale {group}={value}: a scale must be a finite number")
    base, base_meta, stats, base_dir = _load(cfg.base)
    prefixes = _group_prefixes(base_meta)
    known = set(prefixes) | {"other"}
    for group in group_scale:
        require(group in known, f"--group-scale names group '{group}'; the groups are {sorted(known)}")
    if pair:
        vector, parts, sources = _vector_of_pair(cfg, base, base_meta, base_dir)
    else:
        vector, parts, sources = _vectors_combined(cfg, base, base_meta, base_dir)
    if not any(v.any() for v in vector.values()):
        why = "--sft and --aux hold the same weights" if pair else "each vector is zero or weighted 0"
        warnings.warn(
            f"the {'capability' if pair else 'combined'} vector is zero ({why}): {out} will be --base unchanged",
            InputWarning,
            stacklevel=2,
        )
    merged = add_scaled(base, vector, cfg.scale, group_scale, prefixes)
    # A large enough scale or weight overflows float32: a meta model of infinities, written as is.
    require_finite(
        merged, "the merge", "the scaled vector overflows float32: lower --scale, --group-scale or --weights"
    )

    model = build_model(base_meta)
    load_state_dict_checked(model, merged, "the merged weights")
    report = {
        "base": str(base_dir),
        **sources,
        "scale": cfg.scale,
        "group_scale": group_scale,
        "vector_norm": float(torch.sqrt(sum(v.double().square().sum() for v in vector.values()))),
        "group_norms": _group_norms(vector, prefixes),
        **diagnostics(parts, prefixes),
    }
    meta = {**base_meta, "merge": {k: report[k] for k in ("base", "scale", "group_scale", *sources)}}
    with atomic_dir(out, replace=cfg.overwrite) as tmp:
        write_checkpoint_files(tmp, model, meta, stats)
        save_tensors({k: v.contiguous() for k, v in vector.items()}, tmp / VECTOR)
        (tmp / REPORT).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        plot_norms(report["norms"], tmp / "vector_norms.png")
    return out


def _vector_of_pair(cfg: MergeConfig, base: dict, base_meta: dict, base_dir: Path):
    """(the capability vector tau = aux - sft, the vectors diagnosed, the report's sources) from
    --sft and --aux, fine-tuned from --base alike but for the auxiliary objectives."""
    sft, sft_meta, _, sft_dir = _load(cfg.sft)
    aux, aux_meta, _, aux_dir = _load(cfg.aux)
    require(
        sft_dir.resolve() != aux_dir.resolve(),
        f"--sft and --aux are both {sft_dir}: tau = aux - sft would be zero; pass the checkpoint trained "
        "with the auxiliary objectives (`leanvla train --aux.horizon ...`) as --aux",
    )
    check_compatible(base, sft, f"base {base_dir}", f"SFT {sft_dir}")
    check_compatible(sft, aux, f"SFT {sft_dir}", f"auxiliary {aux_dir}")
    check_same_config({f"base {base_dir}": base_meta["model"], f"SFT {sft_dir}": sft_meta["model"]})
    check_same_config({f"base {base_dir}": base_meta["model"], f"auxiliary {aux_dir}": aux_meta["model"]})
    check_same_start(sft_meta, sft_dir, aux_meta, aux_dir)
    vector = capability_vector({k: v for k, v in sft.items() if k in base}, aux)
    parts = {"sft - base": _minus(sft, base), "aux - base": _minus(aux, base), "tau = aux - sft": vector}
    return vector, parts, {"sft": str(sft_dir), "aux": str(aux_dir)}


def _vector_paths(cfg: MergeConfig) -> list[Path]:
    """--vectors' entries, each `~/...` under the home directory as the path options are (cli.py):
    the shell expands none of them after the first comma."""
    return [Path(os.path.expanduser(entry)) for entry in listed(cfg.vectors or "", "--vectors")]


def _vectors_combined(cfg: MergeConfig, base: dict, base_meta: dict, base_dir: Path):
    """(the --vectors combined by --method with --weights, the vectors diagnosed, the report's
    sources)."""
    entries = _vector_paths(cfg)
    require(entries, "--vectors is empty")
    try:
        weights = [float(w) for w in cfg.weights.split(",")] if cfg.weights else [1.0] * len(entries)
    except ValueError as exc:
        raise UserError(f"--weights '{cfg.weights}' must be comma-separated numbers") from exc
    require(all(map(math.isfinite, weights)), f"--weights '{cfg.weights}' must be finite numbers")
    loaded = [_vector_from(e, base, base_meta, base_dir) for e in entries]
    vector = combine(loaded, weights, cfg.method, cfg.density, cfg.seed)
    parts = {**{f"vector {i + 1}": v for i, v in enumerate(loaded)}, "combined": vector}
    sources = {
        "vectors": [str(e) for e in entries],
        "weights": weights,
        "method": cfg.method,
        "density": cfg.density,
    }
    return vector, parts, sources


def update_along_vector(meta: Path, fine_tuned: Path) -> dict:
    """`along` for the update a fine-tuning made on top of a meta model this module wrote, against the
    vector merged into it (lambda_g tau_g, from the vector file and the scales the meta model records):
    minus its `coefficient` is the share of the merged vector the fine-tuning undid, and its
    `norm_ratio` the update's size against the merged vector's."""
    start, meta_info, _, _ = _load(meta)
    end = _load(fine_tuned)[0]
    tau, scales = read_weights(meta / VECTOR), meta_info["merge"]
    zeros = {k: torch.zeros_like(v) for k, v in tau.items()}
    merged = add_scaled(zeros, tau, scales["scale"], scales["group_scale"], _group_prefixes(meta_info))
    return along({k: v - start[k] for k, v in end.items() if k in start}, merged)


def undone_percent(along_merged: dict) -> float:
    """The share of the merged vector a fine-tuning undid (`update_along_vector`), in percent to one
    decimal."""
    return round(-100 * along_merged["coefficient"], 1) + 0.0  # + 0.0: no "-0.0"


def check_same_start(sft_meta: dict, sft_dir: Path, aux_meta: dict, aux_dir: Path) -> None:
    """tau = aux - sft means "what the auxiliary objective changed" only when both fine-tunings
    started from one checkpoint; checkpoints that do not record their start are taken on trust."""
    if "train" not in sft_meta or "train" not in aux_meta:
        return
    sft_start, aux_start = _start(sft_meta), _start(aux_meta)
    require(
        sft_start == aux_start,
        f"--sft {sft_dir} started from {sft_start or 'scratch'} but --aux {aux_dir} from {aux_start or 'scratch'}: "
        "tau = aux - sft would carry the difference of their starts; fine-tune both from one --init (the base)",
    )


def _start(meta: dict) -> str | None:
    """The checkpoint a training run started from (its --init, resolved as far as it still exists)."""
    init = meta["train"].get("init")
    if init is None:
        return None
    try:
        return str(resolve_checkpoint(init).resolve())
    except UserError:  # moved or deleted since: compare as recorded
        return str(Path(init).resolve())


def _minus(a: dict, b: dict) -> dict:
    return {
        k: (a[k].double() - v.double()).to(v.dtype) for k, v in b.items() if k in a and v.is_floating_point()
    }


def _vector_from(path: Path, base: dict, base_meta: dict, base_dir: Path) -> dict:
    """A vector file as is, or a checkpoint minus the base."""
    if path.is_file():
        vector = _finite(read_weights(path), path)
        check_compatible(vector, base, f"vector {path}", f"base {base_dir}")
        return vector
    other, meta, _, directory = _load(path)
    check_compatible(base, other, f"base {base_dir}", f"checkpoint {directory}")
    check_same_config({f"base {base_dir}": base_meta["model"], f"checkpoint {directory}": meta["model"]})
    return _minus(other, base)


def _group_norms(vector: dict, prefixes: dict[str, str]) -> dict[str, float]:
    sums: dict[str, float] = {}
    for name, v in vector.items():
        g = group_of(name, prefixes)
        sums[g] = sums.get(g, 0.0) + float(v.double().square().sum())
    return {g: s**0.5 for g, s in sums.items()}


def plot_norms(norms: dict[str, dict[str, float]], path: Path) -> None:
    """Per-parameter norm of each vector (matrices only), one line per vector."""
    from leanvla.report import pyplot, save_figure

    plt = pyplot()

    names = [p for p in norms if p.endswith("weight")]
    series = sorted({v for p in names for v in norms[p]})
    fig, ax = plt.subplots(figsize=(max(6, 0.08 * len(names) + 3), 3.5))
    for label in series:
        ax.plot([norms[p].get(label, float("nan")) for p in names], marker=".", label=label)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([n.removesuffix(".weight") for n in names], rotation=90, fontsize=5)
    ax.set_ylabel("Frobenius norm")
    ax.set_title("update norms per weight")
    ax.legend(fontsize=7)
    save_figure(fig, path, dpi=110)
