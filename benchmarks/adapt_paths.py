"""When does computing only LoRA-SP's active vectors pay? One layer, both paths, side by side.

    python benchmarks/adapt_paths.py                       # the full grid (under a minute)
    python benchmarks/adapt_paths.py --widths 64 --repeats 5   # a smoke run

`benchmarks/adapt.py` found the gather path slower than the dense one on the `small` VLA at
batch 1. This asks where that turns: one LoRA-SP layer (d_in = d_out = a reference size's backbone
width, R = width / 2) in eval mode, with its router set so that exactly k vectors are active for
every token, timed in round-robin (so drift in the machine's speed falls on all alike): the frozen
Linear alone, the dense path (all R vectors, masked) and the gather path (only the k active ones),
each with the full router (one d_in x R Linear, as large as A) and with a small one (a d_in -> 16 ->
R bottleneck, `--lora.router-rank 16`). Tokens per call: 16 (the action expert's chunk at batch 1,
one call per Euler step) and 256 (a batch-1 prefix of a few hundred tokens). Writes
docs/results/adapt_paths.md and a plot.
"""

from __future__ import annotations

import argparse

from common import RESULTS, command_line, round_robin_ms, write_result

SIZE_OF_WIDTH = {128: "small", 256: "base", 768: "large", 1536: "2x large"}
ROUTERS = {"full": 0, "small": 16}  # router name -> --lora.router-rank


def forced_layer(width: int, rank: int, active: int, router_rank: int):
    """A LoRA-SP layer whose router keeps the same `active` vectors for every token."""
    import torch
    from torch import nn

    from leanvla.adapt.lora_sp import LoRASPLinear

    torch.manual_seed(0)
    # eta just under 1 keeps every vector with equal score and none of the ~0 ones.
    layer = LoRASPLinear(
        nn.Linear(width, width), rank, alpha=2.0 * rank, eta=0.999, router_rank=router_rank
    ).eval()
    scores = layer.score_layer()
    with torch.no_grad():
        nn.init.normal_(layer.lora_B, std=0.01)
        scores.weight.zero_()
        scores.bias.fill_(-30.0)
        scores.bias[torch.randperm(rank)[:active]] = 3.0
    return layer


def forward_on(layer, path: str, x):
    layer.path = path
    return layer(x)


def measure(width: int, tokens: int, active: int, repeats: int) -> dict[str, float]:
    """Median ms of the Linear alone and of each (router, path) pair, on the same input."""
    import torch

    rank = width // 2
    x = torch.randn(1, tokens, width)
    layers = {
        router: forced_layer(width, rank, active, router_rank) for router, router_rank in ROUTERS.items()
    }
    base = next(iter(layers.values())).base_layer  # the same seeded Linear in every layer
    calls = {"base": lambda _: base(x)}
    for router, layer in layers.items():
        kept = layer.gates(x)[1].reshape(-1, rank).any(0).sum()
        assert int(kept) == active, f"router kept {int(kept)} vectors, wanted {active}"
        for path in ("dense", "gather"):
            calls[f"{router} {path}"] = lambda _, layer=layer, path=path: forward_on(layer, path, x)
    with torch.no_grad():
        return round_robin_ms(calls, repeats, warmup=3)


def plot(rows: list[dict], token_counts: list[int], out) -> None:
    from leanvla.report import pyplot, save_figure

    plt = pyplot()

    fig, axes = plt.subplots(
        1, len(token_counts), figsize=(5.5 * len(token_counts), 4.2), sharey=True, squeeze=False
    )
    widths = sorted({r["width"] for r in rows})
    colours = dict(
        zip(widths, plt.cm.viridis([0.9 * i / max(1, len(widths) - 1) for i in range(len(widths))]))
    )
    for ax, tokens in zip(axes[0], token_counts):
        for width, colour in colours.items():
            mine = [r for r in rows if r["width"] == width and r["tokens"] == tokens]
            for router, style in (("full", "-"), ("small", "--")):
                ax.plot(
                    [r["active"] / r["rank"] for r in mine],
                    [r[f"{router} dense"] / r[f"{router} gather"] for r in mine],
                    style,
                    marker="o",
                    color=colour,
                    label=f"width {width}, {router} router",
                )
        ax.axhline(1.0, color="grey", lw=0.8, ls=":")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("active vectors / R")
        ax.set_title(f"{tokens} tokens per call")
    axes[0][0].set_ylabel("dense ms / gather ms (> 1: gather pays)")
    axes[0][0].legend(fontsize=7, ncol=2)
    save_figure(fig, out, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--widths", type=int, nargs="+", default=[128, 256, 768, 1536])
    parser.add_argument("--tokens", type=int, nargs="+", default=[16, 256])
    parser.add_argument("--fractions", type=int, nargs="+", default=[16, 4, 1], help="k = R / each")
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch
    from tqdm import tqdm

    torch.set_num_threads(args.threads)
    grid = [(w, t, w // 2 // f) for w in args.widths for t in args.tokens for f in args.fractions]
    rows = []
    for width, tokens, active in tqdm(grid, desc="layers"):
        rows.append(
            dict(
                width=width,
                rank=width // 2,
                tokens=tokens,
                active=active,
                **measure(width, tokens, active, args.repeats),
            )
        )

    figure = RESULTS / "adapt_paths.png"
    plot(rows, args.tokens, figure)
    lines = [
        "# LoRA-SP: when computing only the active vectors pays",
        "",
        f"Command: `{command_line()}`",
        "",
        f"One LoRA-SP layer in eval mode, d_in = d_out = width, R = width / 2, its router set so that the same k "
        f"vectors are active for every token; input batch 1. Median ms over {args.repeats} calls of each path, "
        f"timed in turn, {args.threads} threads, this CPU. Dense: every vector computed and masked. Gather: only "
        "the active ones (the union over the call's tokens). Both include the router and the energy selection, "
        "which they share. 'auto' (the default path) takes gather when the union is at most a quarter of R.",
        "",
        "| width (size) | R | tokens | active k | Linear alone ms | full router: dense ms | gather ms | "
        "dense / gather | small router: dense ms | gather ms | dense / gather | fastest LoRA-SP / Linear |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        fastest = min(r[f"{router} {path}"] for router in ROUTERS for path in ("dense", "gather"))
        lines.append(
            f"| {r['width']} ({SIZE_OF_WIDTH.get(r['width'], '')}) | {r['rank']} | {r['tokens']} | {r['active']} | "
            f"{r['base']:.3f} | "
            + " | ".join(
                f"{r[f'{router} dense']:.3f} | {r[f'{router} gather']:.3f} | "
                f"{r[f'{router} dense'] / r[f'{router} gather']:.2f}x"
                for router in ROUTERS
            )
            + f" | {fastest / r['base']:.1f}x |"
        )
    lines += [
        "",
        f"![dense / gather per width]({figure.name})",
        "",
        "## Reading",
        "",
    ]
    for router in ROUTERS:
        pays = [r for r in rows if r[f"{router} dense"] / r[f"{router} gather"] > 1.1]
        best = max(rows, key=lambda r: r[f"{router} dense"] / r[f"{router} gather"])
        lines.append(
            f"- {router} router: gather is more than 10% faster than dense in {len(pays)} of {len(rows)} settings"
            + (f" (widths {', '.join(str(w) for w in sorted({r['width'] for r in pays}))})" if pays else "")
            + f"; at most {best[f'{router} dense'] / best[f'{router} gather']:.2f}x (width {best['width']}, "
            f"{best['tokens']} tokens, k = {best['active']})."
        )
    lines.append(
        "- The last column is what routing costs at all: the fastest LoRA-SP variant of the row against the frozen "
        "Linear it wraps."
    )
    write_result("adapt_paths.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
