"""Which layers ask for capacity: LoRA-SP's per-layer active rank over training, as a figure."""

from __future__ import annotations

from pathlib import Path

from leanvla.report import read_metrics

ACTIVE_RANK = "active_rank.jsonl"  # in a run directory: {"step", "layers": {name: mean active rank}}
ACTIVE_RANK_FIGURE = "active_rank.png"  # beside it, drawn at the end of training

SHUT = 2.0
"""Vectors per token at or below which a layer's adapter counts as shut (one or two directions
left). On one seed the spectral loss at 1e-2 shut 11 of the vision stack's 14 layers so (stack mean
1.4 of 64) before the policy learned to read its images; at 5e-3 none was (docs/RESULTS.md, Adapt)."""


def read_active_rank(path: Path) -> tuple[list[int], list[str], list[list[float]]]:
    """(logged steps, layer names, rows of per-layer mean active rank, one row per step)."""
    lines = read_metrics(path)
    names = list(lines[0]["layers"]) if lines else []
    return [r["step"] for r in lines], names, [[r["layers"][n] for n in names] for r in lines]


def last_quarter_means(path: Path) -> dict[str, float]:
    """Each layer's mean active rank over the last quarter of the logged steps: where training settled."""
    _, names, rows = read_active_rank(path)
    tail = rows[-max(1, len(rows) // 4) :]
    return {name: sum(row[i] for row in tail) / len(tail) for i, name in enumerate(names)}


def plot_active_rank(path: Path, out: Path) -> Path:
    """Heatmap of active rank (layer x step) beside each layer's mean over the last quarter."""
    import numpy as np

    from leanvla.report import pyplot, save_figure

    plt = pyplot()

    steps, names, rows = read_active_rank(path)
    values = np.array(rows).T  # layers x steps
    tail = list(last_quarter_means(path).values())
    short = [n.replace(".layers", "").replace("attn.", "").replace("mlp.", "") for n in names]
    height = max(3.0, 0.16 * len(names) + 1.2)
    fig, (ax_map, ax_bar) = plt.subplots(
        1, 2, figsize=(11, height), gridspec_kw={"width_ratios": [3, 1]}, sharey=True
    )
    image = ax_map.imshow(values, aspect="auto", cmap="viridis", interpolation="nearest")
    ax_map.set_xticks(np.linspace(0, len(steps) - 1, min(6, len(steps))).round().astype(int))
    ax_map.set_xticklabels([steps[i] for i in ax_map.get_xticks()])
    ax_map.set_yticks(range(len(names)))
    ax_map.set_yticklabels(short, fontsize=6)
    ax_map.set_xlabel("training step")
    ax_map.set_title("LoRA-SP active rank per layer")
    fig.colorbar(image, ax=ax_map, fraction=0.03, pad=0.01)
    colors = {"backbone": "tab:blue", "expert": "tab:orange", "vision": "tab:green"}
    ax_bar.barh(
        range(len(names)),
        tail,
        color=[colors.get(n.split(".")[0], "gray") for n in names],
    )
    ax_bar.set_xlabel("mean, last quarter")
    save_figure(fig, out, dpi=110)
    return out


def layers_by_stack(model) -> dict[str, dict]:
    """{stack name: {layer name: LoRA-SP layer}} over the model's layout stacks that hold any
    (empty when the model has no layout: layers chosen by --lora.regex)."""
    from leanvla.adapt.inject import layout_or_none, lora_sp_layers

    layout = layout_or_none(model)
    if layout is None:
        return {}
    layers = lora_sp_layers(model)
    grouped = {
        stack.name: {name: layer for name, layer in layers.items() if name.startswith(stack.path + ".")}
        for stack in layout.stacks
    }
    return {stack: held for stack, held in grouped.items() if held}


def active_rank_summary(model, log: Path) -> str:
    """One line: the vectors per token each stack's LoRA-SP layers kept over the last quarter of
    training, of R, and where the per-layer figure is."""
    settled = last_quarter_means(log)
    stacks = [
        f"{stack} {sum(settled[name] for name in held) / len(held):.1f} of {next(iter(held.values())).rank}"
        for stack, held in layers_by_stack(model).items()
    ]
    mean = sum(settled.values()) / max(1, len(settled))
    return (
        f"LoRA-SP kept {mean:.1f} vectors per token over the last quarter of training, layer mean"
        + (f" ({', '.join(stacks)})" if stacks else "")
        + f"; per layer: {Path(log).parent / ACTIVE_RANK_FIGURE}"
    )


def shut_stacks(model, log: Path) -> list[str]:
    """A warning for each stack of the model's layout in which at least half the LoRA-SP layers,
    averaged over the last quarter of training, kept SHUT vectors per token or fewer while a spectral
    loss pulled on them. Counted per layer, not on the stack's mean: a stack whose other layers shut
    can keep a few wide ones (two vision layers at 49 of 64 lift a mean of 9.3)."""
    settled = last_quarter_means(log)
    warnings = []
    for stack, held in layers_by_stack(model).items():
        shut = [name for name in held if settled[name] <= SHUT]
        first = next(iter(held.values()))  # rank and spectral weight are set per stack
        if first.spectral_weight == 0 or 2 * len(shut) < len(held):
            continue
        mean = sum(settled[name] for name in held) / len(held)
        warnings.append(
            f"LoRA-SP's {stack} stack: {len(shut)} of {len(held)} layers settled at {SHUT:g} or fewer of "
            f"{first.rank} vectors per token (stack mean {mean:.1f}) under spectral weight "
            f"{first.spectral_weight:g}: the loss may have shut them before training could use them "
            f"(docs/RESULTS.md, Adapt); if the stack's input matters, retrain with a lower "
            f"--lora.group-spectral-weight {stack}=..."
        )
    return warnings
