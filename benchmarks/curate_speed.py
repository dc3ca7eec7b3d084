"""ATHENA's influence computation vs the naive one, side by side, at three model sizes.

    python benchmarks/curate_speed.py                                  # the full protocol
    python benchmarks/curate_speed.py --sizes tiny --demos 4 --work /tmp/cs   # a smoke run

Both methods score the same demonstrations of the same model with the same per-demonstration
loss (its frames, fixed noise and flow times), one backward pass per demonstration:

- naive: the per-demonstration gradient of every projected Linear weight is materialised (D
  numbers), the batch of gradients is projected to P dims by a dense seeded Gaussian (generated
  in column chunks, once per batch, as TRAK does), and the damped curvature is inverted exactly
  (Cholesky of the P x P matrix);
- ATHENA: Kronecker projection in hooks (k_in = k_out = K per layer, the same P), the rank-r
  Random Truncated Approximation (r = P / 8) with Woodbury.

Reported per size: D, P, seconds of the projection step and of the whole computation (collect +
curvature + scores), and the speed-ups. Models are the reference VLA at each size after one
training step (speed does not depend on the weights). Writes docs/results/curate_speed.md.
"""

from __future__ import annotations

import math
import time

from common import Results, benchmark_parser, cached_dataset, command_line, recording, write_result

K = 8  # k_in = k_out per Linear layer
CHUNK_ELEMENTS = 2**26  # dense projection generated in column chunks of at most this many entries


def one_step_policy(size: str, data, work):
    from leanvla.train.config import ModelOptions, TrainConfig
    from leanvla.train.loop import train_once

    cfg = TrainConfig(
        data=data, out=work / "models" / size, model=ModelOptions(size=size), steps=1, batch_size=8
    )
    train_once(cfg, progress=False)
    return cfg.out / "policy"


def setup(policy_dir, data_dir, demos: int, frames: int):
    """Model, its projected Linears, the per-demo loss and the demo episodes (first `demos`)."""
    from leanvla.curate.collect import DemoLoss
    from leanvla.curate.projection import projected_linears
    from leanvla.data.normalize import Normalizer
    from leanvla.data.reader import LeRobotDataset
    from leanvla.data.samples import ChunkDataset
    from leanvla.models.checkpoint import load_model
    from leanvla.models.layout import layout_for

    model, meta, stats, _ = load_model(policy_dir)
    cameras = meta["model"]["cameras"]
    data = ChunkDataset(LeRobotDataset(data_dir), cameras, meta["model"]["chunk_size"])
    normalizer = Normalizer(stats, meta["state_key"], meta["action_key"], cameras)
    linears = projected_linears(layout_for(model).linear_modules(model, ["backbone", "expert"]))
    loss = DemoLoss(model, data, normalizer, seed=0, frames=frames)
    step = max(1, len(data.episodes) // demos)  # spread over tasks
    episodes = data.episodes[::step][:demos]
    tasks = [int(data.task_index[loss.rows(e)[0]]) for e in episodes]
    return model, linears, loss, episodes, tasks


def athena(linears, loss, episodes, tasks, work) -> dict:
    import shutil

    from leanvla.curate.collect import collect
    from leanvla.curate.curvature import RandomTruncated
    from leanvla.curate.projection import KroneckerProjector
    from leanvla.curate.scores import influence
    from leanvla.curate.store import GradientStore, Row

    projector = KroneckerProjector(linears, K, K, seed=0)
    rows = [Row(e, t, "train") for e, t in zip(episodes, tasks)]
    shutil.rmtree(work, ignore_errors=True)
    store = GradientStore(work, rows, projector.dim, {})
    timing = collect(store, list(range(len(rows))), projector, loss)
    phi, _ = store.matrix("train")
    start = time.perf_counter()
    solver = RandomTruncated(phi, max(1, min(phi.shape) // 8), damping=0.1)
    curvature_s = time.perf_counter() - start
    start = time.perf_counter()
    influence(phi, tasks, phi, tasks, solver)
    score_s = time.perf_counter() - start
    return {
        "projection_s": timing["projection_s"],
        "whole_s": timing["collect_s"] + curvature_s + score_s,
        "dim": projector.dim,
    }


def naive(model, linears, loss, episodes, tasks, dim: int) -> dict:
    """Per-demo gradients materialised, dense Gaussian projection to `dim`, exact inverse."""
    import torch

    from leanvla.curate.curvature import ExactInverse
    from leanvla.curate.scores import influence

    weights = [m.weight for m in linears.values()]
    for p in model.parameters():
        p.requires_grad_(False)
    for w in weights:
        w.requires_grad_(True)
    model.eval()
    start = time.perf_counter()
    grads = []
    for episode in episodes:
        model.zero_grad(set_to_none=True)
        loss.backward(episode)
        grads.append(torch.cat([w.grad.flatten() for w in weights]))
    gradients = torch.stack(grads)  # N x D: the materialised per-example gradients
    backward_s = time.perf_counter() - start

    start = time.perf_counter()
    d = gradients.shape[1]
    phi = torch.zeros(len(episodes), dim)
    columns = max(1, CHUNK_ELEMENTS // dim)
    generator = torch.Generator().manual_seed(0)
    for lo in range(0, d, columns):
        hi = min(d, lo + columns)
        dense = torch.randn(dim, hi - lo, generator=generator) / math.sqrt(dim)
        phi += gradients[:, lo:hi] @ dense.T
    projection_s = time.perf_counter() - start

    start = time.perf_counter()
    solver = ExactInverse(phi, damping=0.1)
    influence(phi, tasks, phi, tasks, solver)
    rest_s = time.perf_counter() - start
    return {
        "projection_s": projection_s,
        "whole_s": backward_s + projection_s + rest_s,
        "gradient_dims": d,
    }


def main() -> None:
    parser = benchmark_parser(__doc__, work="outputs/bench/curate_speed", closed_loop=False)
    parser.add_argument("--sizes", default="tiny,small,base", help="reference VLA sizes, smallest first")
    parser.add_argument("--demos", type=int, default=16, help="demonstrations scored")
    parser.add_argument("--frames", type=int, default=16, help="frames per demonstration")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(2)
    data = cached_dataset(tasks="DEMO5", **recording(args.episodes, args.seed))
    done = Results(args.work)
    sizes = [s.strip() for s in args.sizes.split(",")]
    for size in sizes:
        if size in done:
            continue
        policy = one_step_policy(size, data, args.work)
        model, linears, loss, episodes, tasks = setup(policy, data, args.demos, args.frames)
        fast = athena(linears, loss, episodes, tasks, args.work / "store" / size)
        slow = naive(model, linears, loss, episodes, tasks, fast["dim"])
        done[size] = {
            "parameters": sum(p.numel() for p in model.parameters()),
            "gradient_dims": slow["gradient_dims"],
            "dim": fast["dim"],
            "athena": {k: fast[k] for k in ("projection_s", "whole_s")},
            "naive": slow,
        }
        done.save()
        print(size, done[size])

    lines = [
        "# Curate: ATHENA vs naive influence computation",
        "",
        f"Command: `{command_line()}`",
        "",
        f"{args.demos} demonstrations of DEMO5 (corner2 64 px + proprio), {args.frames} frames each, one backward pass "
        f"per demonstration; every Linear of the backbone and the action expert projected with k_in = k_out = {K} "
        "(both methods reach the same P). Naive: per-demonstration gradients materialised (D numbers each), "
        "dense seeded Gaussian projection to P (generated once per batch in column chunks), exact Cholesky inverse. "
        "ATHENA: Kronecker projection in hooks, RTA at rank r = min(N, P) / 8 with Woodbury. Seconds on this CPU "
        "(2 threads); whole = collect (forward + backward + projection) + curvature + scores.",
        "",
        "| size | parameters | D (projected weights) | P | naive projection s | ATHENA projection s | projection speed-up | naive whole s | ATHENA whole s | whole speed-up |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size in sizes:
        r = done[size]
        a, n = r["athena"], r["naive"]
        lines.append(
            f"| {size} | {r['parameters'] / 1e6:.2f}M | {r['gradient_dims'] / 1e6:.2f}M | {r['dim']} | "
            f"{n['projection_s']:.2f} | {a['projection_s']:.3f} | **{n['projection_s'] / a['projection_s']:.0f}x** | "
            f"{n['whole_s']:.1f} | {a['whole_s']:.1f} | **{n['whole_s'] / a['whole_s']:.1f}x** |"
        )
    largest = done[sizes[-1]]
    projection_x = largest["naive"]["projection_s"] / largest["athena"]["projection_s"]
    whole_x = largest["naive"]["whole_s"] / largest["athena"]["whole_s"]
    lines += [
        "",
        "## Against the goal",
        "",
        f"- Largest size measured ({sizes[-1]}): projection {projection_x:.0f}x, whole computation {whole_x:.1f}x "
        "(goal >= 100x; paper: 313x on billion-parameter models). "
        + (
            "Goal met for the projection step."
            if projection_x >= 100
            else "Goal missed for the projection step."
        )
        + (
            " Goal met for the whole computation."
            if whole_x >= 100
            else " Goal missed for the whole computation: "
            "both methods pay the same forward and backward passes, which dominate at these sizes."
        ),
        "- Trend: the naive projection costs O(D P) per batch and grows with the square of the width; the "
        "Kronecker projection costs O(tokens (d_in + d_out) K) and grows linearly, so the ratio widens with size "
        "(see the table).",
    ]
    write_result("curate_speed.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
