"""What a LoRA-SP training step costs against LoRA and full fine-tuning, timed side by side.

    python benchmarks/adapt_step.py                              # small VLA, this CPU (a few minutes)
    python benchmarks/adapt_step.py --against a7e7643            # also the LoRA-SP layer of that revision
    python benchmarks/adapt_step.py --size large --device cuda --batch 32 --name adapt_step_gpu

benchmarks/adapt.py reads each variant's samples/s off its own training run, one variant after
another, so a drift in the machine's speed falls on some rows and not on others. Here every variant
is a copy of one randomly initialised base of the chosen size, sees the same random batch, and takes
real training steps (forward, the objective plus LoRA-SP's spectral loss, backward, gradient
clipping, `leanvla train`'s AdamW) in turn with the others, in one process; then each predicts one
action chunk at batch 1, in turn. LoRA-SP runs at its final eta (the schedule's all-vectors start
would skip the selection). `--against REV` adds the LoRA-SP layer as it was at a git revision (that
revision's src/leanvla/adapt/lora_sp.py, or a copy of that file, loaded beside the current one and
started from the same weights), so a change to the layer is priced in the same run as the layer
before it; `--sp-paths gather` adds LoRA-SP rows on other `--lora.path` values; `--sp-parts` adds
LoRA-SP without its spectral loss, without its selection (eta 1) and without both, to say where its
extra time over LoRA goes. Each variant's own weights and AdamW state are counted, and the aten ops
its training step dispatches (which set a small model's step time on a GPU, where each waits its
turn to launch); on CUDA, its step's peak memory above what every variant holds is measured in a
pass of its own and added to them. Writes docs/results/NAME.md.
"""

from __future__ import annotations

import argparse

from common import (
    aten_ops,
    command_line,
    device_name,
    module_at,
    require_device,
    result_name,
    round_robin_ms,
    synchronised,
    write_result,
)


def lora_sp_class_at(revision: str):
    """LoRASPLinear as src/leanvla/adapt/lora_sp.py defined it at `revision` (see common.module_at),
    and the name the table gives it."""
    module, label = module_at(revision, "src/leanvla/adapt/lora_sp.py")
    return module.LoRASPLinear, label


def spectral_of(model):
    """Mean concentration loss of the model's LoRA-SP layers, computed as training computes it at the
    layer's revision: all layers at once (adapt.inject.spectral_loss) for this revision's layer, one
    by one for another's (a `spectral_loss()` method since e84cdce, a `spectral` attribute before)."""
    import torch

    from leanvla.adapt.inject import spectral_loss
    from leanvla.adapt.lora_sp import LoRASPLinear

    layers = [m for m in model.modules() if hasattr(m, "router") and hasattr(m, "lora_A")]
    if layers and all(isinstance(m, LoRASPLinear) for m in layers):
        found = spectral_loss(model)
        return None if found is None else found[0]
    losses = []
    for module in layers:
        loss = module.spectral_loss() if hasattr(module, "spectral_loss") else module.spectral
        if loss is not None:
            losses.append(loss)
    return torch.stack(losses).mean() if losses else None


def adapted(base, kind: str, options, layer_class=None):
    """A copy of `base` with `kind` adapters (None: full fine-tuning), trainable parts set."""
    import copy
    from unittest import mock

    import torch

    from leanvla.adapt import inject

    model = copy.deepcopy(base)
    torch.manual_seed(1)  # every LoRA-SP layer class starts from the same bank and router
    if kind is not None:
        with mock.patch.object(inject, "LoRASPLinear", layer_class or inject.LoRASPLinear):
            inject.inject_adapters(model, kind, options)  # no eta schedule: the final eta throughout
    return model


def random_batch(model, batch: int, device):
    """(observation, actions, noise, t) for the model's config, fixed by seed 0."""
    import torch

    from leanvla.models.policy import Observation

    cfg = model.cfg
    g = torch.Generator().manual_seed(0)
    images = torch.randn(batch, len(cfg.cameras), 3, cfg.image_size, cfg.image_size, generator=g)
    prompts = ["reach the goal", "press the button from the top", "slide the plate into the goal"]
    tokens, mask = model.tokenizer.batch([prompts[i % len(prompts)] for i in range(batch)])
    obs = Observation(
        images, torch.randn(batch, cfg.state_dim, generator=g), tokens, mask, torch.arange(batch)
    )
    actions = torch.randn(batch, cfg.chunk_size, cfg.action_dim, generator=g)
    noise = torch.randn(batch, cfg.chunk_size, cfg.action_dim, generator=g)
    t = torch.rand(batch, generator=g)
    return obs.map(lambda x: x.to(device)), actions.to(device), noise.to(device), t.to(device)


class Trainer:
    """One variant's model and optimizer; call() takes one training step on the shared batch."""

    def __init__(self, model, batch, spectral_weight: float, device, fused: bool | None = None):
        """spectral_weight: LoRA-SP's; at 0 the loss is not computed, as `leanvla train` skips it.
        The optimizer is `leanvla train`'s (fused: None picks by device, as training does)."""
        import torch

        from leanvla.train.config import TrainConfig
        from leanvla.train.optimizer import adamw

        self.model = model.to(device).train()
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        decay = TrainConfig.weight_decay
        self.optimizer = adamw(model, 1e-4, decay, torch.device(device), fused=fused)
        self.batch, self.spectral_weight = batch, spectral_weight

    def __call__(self, _=None) -> float:
        import torch

        obs, actions, noise, t = self.batch
        objective = self.model.action_error(obs, actions, noise, t).mean()
        spectral = spectral_of(self.model) if self.spectral_weight > 0 else None
        if spectral is not None:
            objective = objective + self.spectral_weight * spectral
        self.optimizer.zero_grad(set_to_none=True)
        objective.backward()
        torch.nn.utils.clip_grad_norm_(self.parameters, 1.0)
        self.optimizer.step()
        return float(objective.detach())


def state_mib(trainer) -> float:
    """What a variant keeps between steps: its weights, buffers and AdamW state (the same on any
    device, in float32)."""
    tensors = [*trainer.model.parameters(), *trainer.model.buffers()]
    tensors += [
        t for state in trainer.optimizer.state.values() for t in state.values() if hasattr(t, "numel")
    ]
    return sum(t.numel() * t.element_size() for t in tensors) / 2**20


def peak_step_mib(trainer, device, steps: int = 3) -> float:
    """CUDA memory a variant's steps need above what is resident (every model and optimizer state)."""
    import torch

    torch.cuda.synchronize()
    resident = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    for _ in range(steps):
        trainer()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated(device) - resident) / 2**20


def sp_parts(sp_name: str, rank: int) -> dict[str, dict]:
    """--sp-parts' rows, name -> LoRAOptions changes: LoRA-SP without its spectral loss, without its
    selection (eta 1 keeps every vector: the mask is all ones), and without both (what is left: the
    router, the bank and the routing statistics)."""
    return {
        f"{sp_name}, no spectral loss": dict(spectral_weight=0.0),
        f"LoRA-SP R{rank} eta 1 (no selection)": dict(eta=1.0),
        f"LoRA-SP R{rank} eta 1, no spectral loss": dict(eta=1.0, spectral_weight=0.0),
    }


def parts_reading(step_ms: dict, sp_name: str, lora_top: str, parts: list[str]) -> str:
    """Where LoRA-SP's step time over LoRA's goes, from the --sp-parts rows: each part is what
    removing it alone saves; the router and the rest are what is left with both removed."""
    without_spectral, without_selection, without_both = parts
    extra = step_ms[sp_name] - step_ms[lora_top]
    shares = {
        "the spectral loss": step_ms[sp_name] - step_ms[without_spectral],
        "the selection (eta below 1)": step_ms[sp_name] - step_ms[without_selection],
        "the router, the bank and the routing statistics": step_ms[without_both] - step_ms[lora_top],
    }
    named = "; ".join(f"{part} {ms:+.1f} ms ({ms / extra:.0%})" for part, ms in shares.items())
    return (
        f"- Where {sp_name}'s {extra:+.1f} ms over {lora_top} goes (each part: what removing it alone "
        f"saves, in this run): {named}. The parts sum to {sum(shares.values()):+.1f} ms; the rest is "
        "their interplay and the timing's noise."
    )


def step_timing_parser(doc: str, name: str) -> argparse.ArgumentParser:
    """The options of a script that times training steps of a random reference VLA: its size, the
    batch, the adapters' rank, timed calls, CPU threads, device and the report's name."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="small", help="reference VLA size (tiny, small, base, large)")
    parser.add_argument("--batch", type=int, default=64, help="training batch (adapt.py's is 64)")
    parser.add_argument(
        "--rank", type=int, default=64, help="LoRA-SP's bank size R, and the largest LoRA rank"
    )
    parser.add_argument("--repeats", type=int, default=30, help="timed calls of each kind per variant")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--name", type=result_name, default=name, help="result file name (without .md)")
    return parser


def random_base(parser: argparse.ArgumentParser, args):
    """(device, a randomly initialised VLA of --size, seed 0), with torch on --threads; a device or
    size that cannot be had is one line and exit code 2."""
    import torch

    from leanvla.errors import UserError
    from leanvla.models.config import vla_config
    from leanvla.models.vla import VLA

    require_device(parser, args.device)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    try:
        return torch.device(args.device), VLA(vla_config(args.size))
    except UserError as error:
        parser.error(str(error))


def main() -> None:
    parser = step_timing_parser(__doc__, "adapt_step")
    parser.add_argument("--eta", type=float, default=0.8)
    parser.add_argument("--spectral-weight", type=float, default=1e-3)
    parser.add_argument(
        "--against",
        metavar="REV",
        help="also time the LoRA-SP layer of this git revision (or lora_sp.py copy)",
    )
    parser.add_argument(
        "--sp-paths",
        default="",
        help="also time LoRA-SP on these --lora.path values, comma-separated (e.g. 'gather,dense')",
    )
    parser.add_argument(
        "--sp-parts",
        action="store_true",
        help="also time LoRA-SP without its spectral loss, without its selection (eta 1), and without both",
    )
    args = parser.parse_args()

    from dataclasses import replace

    import torch
    from tqdm import tqdm

    from leanvla.adapt.config import LoRAOptions
    from leanvla.adapt.inject import trainable_parameters
    from leanvla.adapt.lora_sp import PATHS
    from leanvla.train.optimizer import FUSED_ON

    device, base = random_base(parser, args)
    sp_name = f"LoRA-SP R{args.rank} eta {args.eta:g}"
    sp_options = LoRAOptions(rank=args.rank, eta=args.eta, spectral_weight=args.spectral_weight)
    plan = {"full fine-tuning": (None, None, None)}
    for rank in sorted({8, 32, args.rank}):
        plan[f"LoRA r{rank}"] = ("lora", LoRAOptions(rank=rank), None)
    plan[sp_name] = ("lora-sp", sp_options, None)
    for path in filter(None, args.sp_paths.split(",")):
        if path not in PATHS:
            parser.error(f"--sp-paths: unknown path '{path}'; choose from {', '.join(PATHS)}")
        plan[f"{sp_name} path {path}"] = ("lora-sp", replace(sp_options, path=path), None)
    parts = sp_parts(sp_name, args.rank) if args.sp_parts else {}
    for name, changes in parts.items():
        plan[name] = ("lora-sp", replace(sp_options, **changes), None)
    against = None
    if args.against:
        try:
            old_layer, against = lora_sp_class_at(args.against)
            plan[f"{sp_name} at {against}"] = ("lora-sp", sp_options, old_layer)
        except LookupError as error:
            parser.error(str(error))

    batch = random_batch(base, args.batch, device)
    trainers = {
        name: Trainer(
            adapted(base, kind, options, layer_class),
            batch,
            options.spectral_weight if kind == "lora-sp" else 0.0,
            device,
        )
        for name, (kind, options, layer_class) in tqdm(plan.items(), desc="variants")
    }
    first_objective = {name: trainer() for name, trainer in trainers.items()}  # also AdamW's state
    ops = {name: aten_ops(trainer) for name, trainer in trainers.items()}  # a second, counted step
    print("timing training steps in turn ...")
    step_ms = round_robin_ms(
        {n: synchronised(tr, device) for n, tr in trainers.items()}, args.repeats, warmup=3
    )

    obs, _, noise, _ = batch
    one = obs.map(lambda x: x[:1])

    def predict(model):
        def call(_):
            with torch.no_grad():
                model.predict(one, noise[:1])

        return call

    for trainer in trainers.values():
        trainer.model.eval()
    print("timing batch-1 predictions in turn ...")
    chunk_ms = round_robin_ms(
        {n: synchronised(predict(tr.model), device) for n, tr in trainers.items()}, args.repeats
    )
    peak = {}
    if device.type == "cuda":
        for name, trainer in trainers.items():
            trainer.model.train()
            peak[name] = peak_step_mib(trainer, device)
    state = {name: state_mib(trainer) for name, trainer in trainers.items()}
    total = {name: state[name] + peak[name] for name in peak}

    lora_top = f"LoRA r{args.rank}"
    where = device_name(args.device, args.threads)
    optimizer_kind = "fused" if device.type in FUSED_ON else f"torch's default on {device.type}"
    lines = [
        f"# What a LoRA-SP training step costs ({args.size} VLA, {where})",
        "",
        f"Command: `{command_line()}`",
        "",
        f"One randomly initialised `{args.size}` VLA; every variant a copy of it, on the same random batch of "
        f"{args.batch}. Training step: forward, the flow objective (+ {args.spectral_weight:g} x the spectral loss "
        f"for LoRA-SP), backward, gradient clipping, `leanvla train`'s AdamW ({optimizer_kind}). Median ms over "
        f"{args.repeats} steps of each variant, taken in turn (round robin), after 3 untimed rounds (the "
        "aten ops, views excluded, counted in the second); then the "
        f"median ms to predict one action chunk at batch 1, in turn likewise. LoRA-SP at eta {args.eta:g} "
        "throughout (no schedule), on the default path ('auto': on a GPU, dense) unless its row names one; "
        "float32 throughout, as `leanvla train` runs; adapter rows train the input and output modules in "
        "full (`--lora.train-io`, the default).",
        "",
        "| variant | trainable | train step ms | vs "
        + lora_top
        + " | vs full | aten ops per step | batch-1 chunk ms |"
        + " weights + AdamW state MiB |"
        + (" peak MiB (state + step) |" if peak else ""),
        "|---|---|---|---|---|---|---|---|" + ("---|" if peak else ""),
    ]
    for name, trainer in trainers.items():
        lines.append(
            f"| {name} | {trainable_parameters(trainer.model) / 1e6:.2f}M | {step_ms[name]:.1f} | "
            f"{step_ms[name] / step_ms[lora_top]:.2f}x | {step_ms[name] / step_ms['full fine-tuning']:.2f}x | "
            f"{ops[name]} | {chunk_ms[name]:.1f} | {state[name]:.0f} |"
            + (f" {total[name]:.0f} |" if peak else "")
        )
    lines += ["", "## Reading", ""]
    lines.append(
        f"- {sp_name} takes {step_ms[sp_name] / step_ms[lora_top]:.2f}x the time of a {lora_top} step and "
        f"{step_ms[sp_name] / step_ms['full fine-tuning']:.2f}x that of full fine-tuning; at batch 1 it predicts "
        f"a chunk in {chunk_ms[sp_name] / chunk_ms[lora_top]:.2f}x {lora_top}'s time."
    )
    if against:
        old = f"{sp_name} at {against}"
        lines.append(
            f"- Against the layer at {against}: the training step takes {step_ms[sp_name] / step_ms[old]:.2f}x "
            f"its time ({step_ms[old]:.1f} -> {step_ms[sp_name]:.1f} ms), prediction {chunk_ms[sp_name] / chunk_ms[old]:.2f}x "
            f"({chunk_ms[old]:.1f} -> {chunk_ms[sp_name]:.1f} ms). Both started from the same weights; their first "
            f"objectives: {first_objective[old]:.9f} ({against}) and {first_objective[sp_name]:.9f} (now)."
        )
    if parts:
        lines.append(parts_reading(step_ms, sp_name, lora_top, list(parts)))
    if peak:
        lines.append(
            f"- Memory at its peak (state + step): {sp_name} {total[sp_name]:.0f} MiB, {lora_top} "
            f"{total[lora_top]:.0f} MiB ({total[sp_name] / total[lora_top]:.2f}x), full fine-tuning "
            f"{total['full fine-tuning']:.0f} MiB ({total[sp_name] / total['full fine-tuning']:.2f}x)."
        )
    else:
        lines.append(
            "- No peak column: on CPU the variants share one process, whose peak resident memory is not "
            "theirs apart (adapt.py probes each in its own process)."
        )
    write_result(f"{args.name}.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
