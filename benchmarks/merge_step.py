"""What CapVector's training steps cost, part by part, per model size and device.

    python benchmarks/merge_step.py --sizes small --against 8cd2f66 --name merge_step
        # this CPU, the penalty of 8cd2f66 beside today's (at `large` a CPU takes hours)
    python benchmarks/merge_step.py --device cuda --threads 8 --against 8cd2f66 --name merge_step_gpu

CapVector's wall-time promise rests on prices: (b) pays the auxiliary objective in every step, (c)
pays the orthogonal penalty instead. benchmarks/merge.py times them on its trained meta model at
`small` on this CPU (`step_parts_ms`, here). This script times the same parts on random weights of
each reference size and head, where the price could differ: a plain step's forward and backward
(the action error), the same with the auxiliary objective (future image features + state, its
targets' vision forward included), with the objective that also decodes the future frame's pixels
(`--aux.pixels`), and the penalty alone against a random vector over every shared matrix, after a
small random update (so no cosine is 0/0). And on a copy with peft LoRA adapters (rank
--lora-rank): its step, and the penalty over its adapters as training computes it (no B A formed)
and written plainly (each B A formed). The cost depends on the shapes alone. Every part is timed in
turn with the others (median of --repeats), so a drift in the machine's speed falls on all alike.
Writes docs/results/NAME.md.
"""

from __future__ import annotations

import argparse
import copy

from common import (
    command_line,
    device_name,
    module_at,
    require_device,
    result_name,
    round_robin_ms,
    synchronised,
    write_result,
)

AUX = dict(horizon=8, weight=0.5)  # merge.py's objective
HEADS = ("flow", "discrete")


def step_parts_ms(
    model,
    vector: dict,
    seed: int,
    batch: int = 64,
    repeats: int = 30,
    device: str = "cpu",
    pixels_model=None,
    penalty_at: tuple | None = None,
    lora_model=None,
) -> dict[str, float]:
    """Median ms of the forward-and-backward passes, timed in turn on `model` (which has its
    auxiliary head): a plain step's action error at `batch`; the same with the auxiliary objective;
    with `pixels_model` (a copy whose head also decodes the future frame) that objective too; and the
    orthogonal penalty against `vector` (on the host, as training reads it) alone, after a small
    random update; with `penalty_at` (label, OrthogonalPenalty class of another revision) that
    revision's penalty too, as "penalty at LABEL"; with `lora_model` (a copy with peft LoRA adapters,
    they alone trained) its plain step ("LoRA step"), the penalty over its adapters computed without
    forming B A ("penalty, LoRA form"), and the same cosines from B A formed layer by layer
    ("penalty, forming B A"), after a random update of the adapters. Inputs are random."""
    import torch

    from leanvla.merge.orthogonal import OrthogonalPenalty
    from leanvla.models.policy import Observation
    from leanvla.train.loop import ActionError, flow_time

    model = model.to(device).train()
    cfg, g = model.cfg, torch.Generator().manual_seed(seed)
    size = cfg.image_size
    tokens, token_mask = model.tokenizer.batch(["reach the goal"])
    images = lambda: torch.randn(batch, len(cfg.cameras), 3, size, size, generator=g)  # noqa: E731
    obs = Observation(
        images(),
        torch.randn(batch, cfg.state_dim, generator=g),
        tokens.expand(batch, -1),
        token_mask.expand(batch, -1),
        torch.zeros(batch, dtype=torch.long),
    ).map(lambda x: x.to(device))
    future = (images(), torch.randn(batch, cfg.state_dim, generator=g))
    if cfg.aux_env_dim:
        future += (torch.randn(batch, cfg.aux_env_dim, generator=g),)
    future = tuple(x.to(device) for x in future)
    actions = torch.randn(batch, cfg.chunk_size, cfg.action_dim, generator=g)
    noise, t = torch.randn(actions.shape, generator=g), flow_time(torch.rand(batch, generator=g))
    actions, noise, t = actions.to(device), noise.to(device), t.to(device)
    start = {k: v.detach().clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1e-3 * torch.randn(p.shape, generator=g).to(device))
    penalty = OrthogonalPenalty(model, vector, start)

    def with_aux(of):
        action_error = ActionError(of)

        def loss():
            err, aux_terms = action_error(obs, actions, noise, t, future)
            return err.mean() + AUX["weight"] * sum(aux_terms.values()).mean()

        return loss

    def backward(of, loss_fn):
        def call(_):
            of.zero_grad(set_to_none=True)
            loss_fn().backward()

        return synchronised(call, device)

    calls = {
        "plain": backward(model, lambda: ActionError(model)(obs, actions, noise, t).mean()),
        "auxiliary": backward(model, with_aux(model)),
    }
    if pixels_model is not None:
        pixels_model = pixels_model.to(device).train()
        calls["auxiliary with pixels"] = backward(pixels_model, with_aux(pixels_model))
    calls["penalty"] = backward(model, penalty)
    if penalty_at is not None:
        label, penalty_class = penalty_at
        calls[f"penalty at {label}"] = backward(model, penalty_class(model, vector, start))
    if lora_model is not None:
        lora_model = lora_model.to(device).train()
        with torch.no_grad():  # B starts at 0: no cosine to take
            for p in lora_model.parameters():
                if p.requires_grad:
                    p.add_(1e-3 * torch.randn(p.shape, generator=g).to(device))
        calls["LoRA step"] = backward(
            lora_model, lambda: ActionError(lora_model)(obs, actions, noise, t).mean()
        )
        calls["penalty, LoRA form"] = backward(lora_model, OrthogonalPenalty(lora_model, vector, None))
        calls["penalty, forming B A"] = backward(lora_model, formed_lora_penalty(lora_model, vector, device))
    return round_robin_ms(calls, repeats)


def formed_lora_penalty(model, vector: dict, device: str):
    """The penalty over a model's peft LoRA adapters written plainly: each layer's update B A formed
    (d_out x d_in), then its squared cosine with tau, one layer after another."""
    import torch

    from leanvla.merge.orthogonal import squared_cosine

    layers = [
        (module, adapter, vector[f"{name}.weight"].to(device))
        for name, module in model.named_modules()
        if type(module).__module__.startswith("peft.")
        and hasattr(module, "lora_A")
        and f"{name}.weight" in vector
        for adapter in module.active_adapters
    ]

    def penalty():
        return torch.stack(
            [
                squared_cosine(m.scaling[a] * m.lora_B[a].weight @ m.lora_A[a].weight, tau)
                for m, a, tau in layers
            ]
        ).mean()

    return penalty


def random_parts(size: str, head: str, args) -> tuple[int, int, dict[str, float]]:
    """step_parts_ms on a seeded random VLA of `size` with `head` (and a copy with peft LoRA of rank
    --lora-rank on its usual targets): its parameter count, its LoRA layers and the times."""
    import torch

    from leanvla.adapt.config import LoRAOptions
    from leanvla.adapt.inject import inject_adapters
    from leanvla.models.config import vla_config
    from leanvla.models.vla import VLA

    torch.manual_seed(args.seed)
    model = VLA(vla_config(size, head=head))
    pixels_model, lora_model = copy.deepcopy(model), copy.deepcopy(model)
    model.add_aux_head(AUX["horizon"])
    pixels_model.add_aux_head(AUX["horizon"], pixels=True)
    lora_layers = len(inject_adapters(lora_model, "lora", LoRAOptions(rank=args.lora_rank, train_io=False)))
    # The capability vector covers every shared parameter (merge excludes the auxiliary head).
    vector = {
        name: torch.randn(p.shape) for name, p in model.named_parameters() if not name.startswith("aux_head.")
    }
    ms = step_parts_ms(
        model,
        vector,
        args.seed,
        args.batch,
        args.repeats,
        args.device,
        pixels_model,
        args.penalty_at,
        lora_model,
    )
    return model.num_parameters(), lora_layers, ms


def goal_needs(ms: dict) -> float:
    """The auxiliary step's cost, as a multiple of a plain step, at which (c) (a plain step plus the
    penalty) takes 0.7x (b)'s time at equal steps: the issue's wall-time goal with no help from
    reaching the target in fewer steps."""
    return (ms["plain"] + ms["penalty"]) / 0.7 / ms["plain"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="small,large", help="reference sizes, comma-separated")
    parser.add_argument("--heads", default="flow,discrete", help="action heads, comma-separated")
    parser.add_argument("--batch", type=int, default=64, help="training batch (merge.py's is 64)")
    parser.add_argument("--repeats", type=int, default=30, help="timed calls of each part")
    parser.add_argument("--lora-rank", type=int, default=64, help="rank of the LoRA copy's adapters")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--against",
        metavar="REV",
        help="also time the penalty of this git revision (or a copy of its orthogonal.py)",
    )
    parser.add_argument(
        "--name", type=result_name, default="merge_step", help="result file name (without .md)"
    )
    args = parser.parse_args()
    args.penalty_at = None
    if args.against:
        try:
            module, label = module_at(args.against, "src/leanvla/merge/orthogonal.py")
        except LookupError as error:
            parser.error(str(error))
        args.penalty_at = (label, module.OrthogonalPenalty)

    import torch
    from tqdm import tqdm

    from leanvla.errors import UserError
    from leanvla.models.config import SIZES

    sizes, heads = args.sizes.split(","), args.heads.split(",")
    for size in sizes:
        if size not in SIZES:
            parser.error(f"--sizes: unknown size '{size}'; choose from {', '.join(SIZES)}")
    for head in heads:
        if head not in HEADS:
            parser.error(f"--heads: unknown head '{head}'; choose from {', '.join(HEADS)}")
    require_device(parser, args.device)
    torch.set_num_threads(args.threads)

    try:
        measured = {
            (size, head): random_parts(size, head, args)
            for size, head in tqdm([(s, h) for s in sizes for h in heads], desc="sizes x heads")
        }
    except UserError as error:  # a --lora-rank larger than a size's layers allow
        parser.error(f"--lora-rank {args.lora_rank}: {error}")
    older = f"penalty at {args.penalty_at[0]}" if args.penalty_at else None
    rows, lora_rows = [], []
    for (size, head), (parameters, lora_layers, ms) in measured.items():
        lora_rows.append(
            f"| {size} | {head} | {lora_layers} | {ms['LoRA step']:.1f} | {ms['penalty, LoRA form']:.1f} "
            f"({100 * ms['penalty, LoRA form'] / ms['LoRA step']:.0f}%) | {ms['penalty, forming B A']:.1f} "
            f"({ms['penalty, forming B A'] / ms['penalty, LoRA form']:.2f}x) |"
        )
        plain, penalty = ms["plain"], ms["penalty"]
        rows.append(
            f"| {size} | {head} | {parameters / 1e6:.1f}M | {plain:.1f} | {ms['auxiliary']:.1f} "
            f"({ms['auxiliary'] / plain:.2f}x) | {ms['auxiliary with pixels']:.1f} "
            f"({ms['auxiliary with pixels'] / plain:.2f}x) | {penalty:.1f} ({100 * penalty / plain:.0f}%) | "
            + (f"{ms[older]:.1f} ({100 * ms[older] / plain:.0f}%) | " if older else "")
            + f"{(plain + penalty) / ms['auxiliary']:.2f}x / {(plain + penalty) / ms['auxiliary with pixels']:.2f}x "
            f"| {goal_needs(ms):.2f}x |"
        )
    where = device_name(args.device, args.threads)
    lines = [
        f"# What CapVector's training steps cost, part by part ({where})",
        "",
        f"Command: `{command_line()}`",
        "",
        f"Random weights of each reference size and head, batch {args.batch}, float32 as `leanvla train` runs, "
        f"torch {torch.__version__}. Median ms of a forward and backward pass over {args.repeats} calls of each "
        "part, timed in turn after 5 untimed rounds (each call waited for on a GPU): a plain step's action error "
        "(what (a) and (c) pay); with merge.py's auxiliary objective (future image features + state "
        f"{AUX['horizon']} frames ahead, weight {AUX['weight']:g}; what (b) pays); with the objective that also "
        "decodes the future frame's pixels; and the orthogonal penalty alone over every shared matrix, its vector "
        "read onto the host as training reads it (what (c) pays on top of a plain step)"
        + (f"; and the penalty as {args.penalty_at[0]} computed it, on the same update" if older else "")
        + ". Optimizer steps and data loading, the same for every variant, are left out, so every ratio here is "
        "further from 1 than a whole training step's would be.",
        "",
        "| size | head | parameters | plain ms | auxiliary ms | with pixels ms | penalty ms (of plain) | "
        + (f"{older} ms (of plain) | " if older else "")
        + "(c) / (b) at equal steps (objective / with pixels) | auxiliary cost the 0.7x goal needs at equal steps |",
        "|---|---|---|---|---|---|---|---|---|" + ("---|" if older else ""),
        *rows,
        "",
        "The last column: how many plain steps (b)'s step would have to cost for (c), a plain step plus the "
        "penalty, to take 0.7x of (b)'s wall time in as many steps. Where the objective costs less, the goal could "
        "only be met by (c) reaching the target loss in fewer steps than (b).",
        "",
        f"## The penalty on LoRA updates (rank {args.lora_rank})",
        "",
        f"A copy of each model with peft LoRA of rank {args.lora_rank} on its usual targets (`--adapter lora`; "
        "the adapters alone trained), after a small random update of the adapters, timed in the same rounds: its "
        "plain step's forward and backward; the penalty over its adapters as `--orth.vector` computes it, from "
        "B^T tau, B^T B and A A^T without forming B A; and the same cosines written plainly, each layer's B A "
        "formed and compared with tau, one layer after another.",
        "",
        "| size | head | LoRA layers | LoRA step ms | penalty, LoRA form ms (of the step) | forming B A ms (vs LoRA form) |",
        "|---|---|---|---|---|---|",
        *lora_rows,
    ]
    write_result(f"{args.name}.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
