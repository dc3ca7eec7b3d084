"""What the fused AdamW saves in a training step, against torch's default AdamW, timed side by side.

    python benchmarks/fused_adamw.py                                  # small VLA, this CPU (about a minute)
    python benchmarks/fused_adamw.py --size large --device cuda --batch 32 --name fused_adamw_gpu

On the CPU torch's default AdamW updates one tensor at a time in Python, about ten ops each; an
adapted VLA trains hundreds of small tensors (LoRA-SP four per layer). The fused kernel updates a
parameter group's tensors in one op. `leanvla train` uses it where this script has measured it
(leanvla.train.optimizer.FUSED_ON). Here full fine-tuning, LoRA and LoRA-SP each train twice from
the same weights on the same random batch, once with each AdamW: whole training steps in turn (round
robin, as benchmarks/adapt_step.py), then the optimizer's update alone on fixed gradients, in turn
likewise. Each pair's weights are compared after one step, where they differ only by the two
implementations' float rounding, and after all the timed steps, where training may have amplified
it (LoRA-SP's selection is discontinuous: a rounding-sized change can flip a kept vector). Writes
docs/results/NAME.md.
"""

from __future__ import annotations

from adapt_step import Trainer, adapted, random_base, random_batch, step_timing_parser
from common import command_line, device_name, round_robin_ms, synchronised, write_result

DEFAULT, FUSED = "torch's default", "fused"


def weight_gap(a, b) -> float:
    """Largest relative difference between two models' trainable weights."""
    return max(
        float((p - q).detach().abs().max() / q.detach().abs().max().clamp_min(1e-12))
        for p, q in zip(a.parameters(), b.parameters())
        if p.requires_grad
    )


def main() -> None:
    parser = step_timing_parser(__doc__, "fused_adamw")
    args = parser.parse_args()

    from tqdm import tqdm

    from leanvla.adapt.config import LoRAOptions

    device, base = random_base(parser, args)
    plan = {
        "full fine-tuning": (None, None),
        f"LoRA r{args.rank}": ("lora", LoRAOptions(rank=args.rank)),
        f"LoRA-SP R{args.rank} eta 0.8": ("lora-sp", LoRAOptions(rank=args.rank, eta=0.8)),
    }
    batch = random_batch(base, args.batch, device)
    trainers = {}
    for name, (kind, options) in tqdm(plan.items(), desc="variants"):
        weight = options.spectral_weight if kind == "lora-sp" else 0.0
        for fused in (False, True):
            model = adapted(base, kind, options)  # the same start for both implementations
            trainers[name, FUSED if fused else DEFAULT] = Trainer(model, batch, weight, device, fused=fused)
    for trainer in trainers.values():
        trainer()  # AdamW's state exists from here on
    first_gaps = {
        name: weight_gap(trainers[name, FUSED].model, trainers[name, DEFAULT].model) for name in plan
    }
    print("timing training steps in turn ...")
    step_ms = round_robin_ms(
        {key: synchronised(trainer, device) for key, trainer in trainers.items()}, args.repeats, warmup=3
    )
    gaps = {name: weight_gap(trainers[name, FUSED].model, trainers[name, DEFAULT].model) for name in plan}
    print("timing the updates alone in turn ...")
    update_ms = round_robin_ms(
        {
            key: synchronised(lambda _, t=trainer: t.optimizer.step(), device)
            for key, trainer in trainers.items()
        },
        args.repeats,
    )

    where = device_name(args.device, args.threads)
    lines = [
        f"# The fused AdamW against torch's default ({args.size} VLA, {where})",
        "",
        f"Command: `{command_line()}`",
        "",
        f"One randomly initialised `{args.size}` VLA; each variant trained twice from the same weights on the "
        f"same random batch of {args.batch}, once with each AdamW (`leanvla train`'s settings: betas 0.9 / "
        "0.95, weight decay on matrices only), as benchmarks/adapt_step.py trains (forward, flow objective, "
        "LoRA-SP's spectral loss, backward, gradient clipping, the update). Median ms over "
        f"{args.repeats} training steps of each, taken in turn (round robin) after 3 untimed rounds; then "
        f"the update alone (the optimizer's step on the last gradients), {args.repeats} of each in turn. "
        "Weight gap: the largest relative difference between the pair's trainable weights, after one step "
        f"(the implementations' rounding) and after the same {args.repeats + 4} steps (that rounding, as "
        "training carried it on).",
        "",
        "| variant | trainable tensors | step ms, torch's default | step ms, fused | fused / default "
        f"| update ms, default | update ms, fused | weight gap after 1 step | after {args.repeats + 4} |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in plan:
        default, fused = step_ms[name, DEFAULT], step_ms[name, FUSED]
        lines.append(
            f"| {name} | {len(trainers[name, DEFAULT].parameters)} | {default:.1f} | {fused:.1f} | "
            f"{fused / default:.2f}x | {update_ms[name, DEFAULT]:.1f} | {update_ms[name, FUSED]:.1f} | "
            f"{first_gaps[name]:.1e} | {gaps[name]:.1e} |"
        )
    lines += ["", "## Reading", ""]
    for name in plan:
        default = step_ms[name, DEFAULT]
        saved = default - step_ms[name, FUSED]
        lines.append(
            f"- {name}: the fused update saves {saved:.1f} ms of a {default:.1f} ms step ({saved / default:.0%}); "
            f"the update alone takes {update_ms[name, FUSED] / update_ms[name, DEFAULT]:.2f}x its time."
        )
    write_result(f"{args.name}.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
