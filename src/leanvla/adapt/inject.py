"""Put adapters on a model's Linear modules, freeze the rest, and read the adapters back out.

Targets are named through the model's layout (stacks: backbone, expert, vision) or by a regex over
qualified module names, so the same call adapts the reference VLA and a Hugging Face decoder.
LoRA comes from peft; LoRA-SP is `leanvla.adapt.lora_sp`.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from leanvla.adapt.config import GROUP_OPTIONS, LoRAOptions
from leanvla.adapt.lora_sp import LoRASPLinear, concentration_losses
from leanvla.errors import UserError, require
from leanvla.option_lists import listed
from leanvla.optional import require_module

ADAPTER_KINDS = ("lora", "lora-sp")


def _compile(pattern: str, option: str) -> re.Pattern:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise UserError(f"{option} '{pattern}' is not a valid regular expression: {exc}") from exc


def layout_or_none(model: nn.Module):
    """The model's built-in layout, or None (then only --lora.regex can name targets)."""
    from leanvla.models.layout import layout_for

    try:
        return layout_for(model)
    except UserError:
        return None


def adapter_targets(model: nn.Module, opts: LoRAOptions) -> dict[str, str | None]:
    """Qualified name -> stack name (None when chosen by regex outside any stack) of each target Linear."""
    layout = layout_or_none(model)
    stack_of = {}
    if layout is not None:
        for stack in layout.stacks:
            for name in layout.linear_modules(model, [stack.name]):
                stack_of[name] = stack.name
    if opts.regex is not None:
        pattern = _compile(opts.regex, "--lora.regex")
        names = {
            name: stack_of.get(name)
            for name, module in model.named_modules()
            if isinstance(module, nn.Linear) and pattern.search(name)
        }
        require(
            names,
            f"--lora.regex '{opts.regex}' matches no nn.Linear in the model; Linear names look like "
            f"{_examples(model)}",
        )
    else:
        require(
            layout is not None, f"no layout for {type(model).__name__}: name the targets with --lora.regex"
        )
        wanted = listed(opts.targets, "--lora.targets")
        known = [s.name for s in layout.stacks]
        for name in wanted:
            require(
                name in known,
                f"--lora.targets names stack '{name}', which the layout lacks (it has {', '.join(known)})",
            )
        if opts.targets != LoRAOptions.targets:  # the default names every stack a model may have
            for name in wanted:
                require(
                    name in stack_of.values(),
                    f"--lora.targets names stack '{name}', which has no layers in this model; drop it "
                    "(the modules around the stacks train in full with --lora.train-io)",
                )
        names = {name: stack for name, stack in stack_of.items() if stack in wanted}
        require(
            names,
            f"--lora.targets '{opts.targets}' holds no Linear modules in this model (are those stacks empty?)",
        )
    _check_group_stacks(opts, layout, names)
    for name, stack in names.items():
        module, rank = model.get_submodule(name), opts.rank_for(stack)
        limit = min(module.in_features, module.out_features)
        require(
            rank <= limit,
            f"rank {rank} is larger than {name} allows ({module.in_features} -> {module.out_features}: at "
            f"most {limit}); lower --lora.rank or --lora.group-rank",
        )
    return names


def _check_group_stacks(opts: LoRAOptions, layout, names: dict[str, str | None]) -> None:
    """Each stack a --lora.group-* option names exists and holds adapted layers."""
    known = [stack.name for stack in layout.stacks] if layout is not None else []
    adapted = sorted({stack for stack in names.values() if stack is not None})
    for field in GROUP_OPTIONS:
        flag = f"--lora.{field.replace('_', '-')}"
        for group in opts.group_overrides(field):
            require(
                group in known,
                f"{flag} names stack '{group}', which the layout lacks (it has {', '.join(known) or 'none'})",
            )
            require(
                group in adapted,
                f"{flag} names stack '{group}', which has no adapted layers (adapted stacks: "
                f"{', '.join(adapted) or 'none'}); drop it or add it to --lora.targets",
            )


def _examples(model: nn.Module) -> str:
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")


def replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new)


def inject_adapters(
    model: nn.Module, kind: str, opts: LoRAOptions, eta_decay_steps: int = 0
) -> dict[str, str | None]:
    """Freeze `model`, add `kind` adapters to its targets in place; returns the targets."""
    require(kind in ADAPTER_KINDS, f"adapter kind must be one of {ADAPTER_KINDS}, got '{kind}'")
    opts.validate()
    targets = adapter_targets(model, opts)
    for p in model.parameters():
        p.requires_grad_(False)
    if kind == "lora-sp":
        for name, stack in targets.items():
            rank = opts.rank_for(stack)
            layer = LoRASPLinear(
                model.get_submodule(name),
                rank,
                opts.alpha_for(rank),
                eta=opts.eta_for(stack),
                eta_start=max(opts.eta_start, opts.eta_for(stack)),
                eta_decay_steps=eta_decay_steps,
                path=opts.path,
                router_rank=opts.router_rank,
                spectral_weight=opts.spectral_weight_for(stack),
            )
            replace_module(model, name, layer)
    else:
        peft = require_module("peft")

        ranks = {name: opts.rank_for(stack) for name, stack in targets.items()}
        config = peft.LoraConfig(
            r=opts.rank,
            lora_alpha=opts.alpha_for(opts.rank),
            target_modules=sorted(targets),
            rank_pattern={re.escape(n): r for n, r in ranks.items() if r != opts.rank},
            alpha_pattern={re.escape(n): opts.alpha_for(r) for n, r in ranks.items() if r != opts.rank},
            lora_dropout=0.0,
            bias="none",
        )
        peft.inject_adapter_in_model(config, model)
        for name, p in model.named_parameters():  # peft leaves other parameters as they were
            p.requires_grad_("lora_" in name)
    if opts.train_io:
        for module in io_modules(model, exclude=targets).values():
            for p in module.parameters():
                p.requires_grad_(True)
    for module in modules_trained_beside(model, opts):
        for p in module.parameters():
            p.requires_grad_(True)
    return targets


def modules_trained_beside(model: nn.Module, opts: LoRAOptions) -> list[nn.Module]:
    """The modules --lora.train-modules names, which train in full beside the adapters."""
    if not opts.train_modules:
        return []
    pattern = _compile(opts.train_modules, "--lora.train-modules")
    matched = [m for n, m in model.named_modules() if n and pattern.search(n)]
    require(matched, f"--lora.train-modules '{opts.train_modules}' matches no module in the model")
    return matched


def io_modules(model: nn.Module, exclude=()) -> dict[str, nn.Module]:
    """The layout's input and output modules outside the stacks (none without a layout), less any
    that are adapter targets themselves (an adapter already trains those)."""
    layout = layout_or_none(model)
    if layout is None:
        return {}
    return {name: m for name, m in layout.io_modules(model).items() if name not in exclude}


def is_adapted(model: nn.Module) -> bool:
    return any(is_adapter_layer(m) for m in model.modules())


def is_adapter_layer(module: nn.Module) -> bool:
    if isinstance(module, LoRASPLinear):
        return True
    return type(module).__module__.startswith("peft.") and hasattr(module, "get_base_layer")


def adapter_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """What fine-tuning changed: trainable parameters and the adapters' buffers (LoRA-SP's step count)."""
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    buffers = {
        f"{name}.{b}"
        for name, m in model.named_modules()
        if isinstance(m, LoRASPLinear)
        for b, _ in m.named_buffers(recurse=False)
    }
    return {k: v for k, v in model.state_dict().items() if k in trainable | buffers}


def lora_sp_layers(model: nn.Module) -> dict[str, LoRASPLinear]:
    return {n: m for n, m in model.named_modules() if isinstance(m, LoRASPLinear)}


def spectral_loss(model: nn.Module) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Of the LoRA-SP layers' last training forward: their mean energy-concentration loss (what the
    log shows) and the mean of each one's loss times its spectral weight (what training adds to its
    objective; a stack's weight can differ from the others'). None before any."""
    layers = [m for m in lora_sp_layers(model).values() if m.last_scores is not None]
    if not layers:
        return None
    losses = concentration_losses([m.last_scores for m in layers])  # one pass per shape
    mean, weights = losses.mean(), [m.spectral_weight for m in layers]
    if len(set(weights)) == 1:  # one weight: the arithmetic of runs before per-stack weights, bit for bit
        return mean, weights[0] * mean
    return mean, (losses * losses.new_tensor(weights)).mean()


def active_ranks(model: nn.Module, reset: bool = True) -> dict[str, float]:
    """Per LoRA-SP layer, the mean number of vectors each token kept since the last reset."""
    out = {}
    for name, layer in lora_sp_layers(model).items():
        out[name] = layer.active_rank()
        if reset:
            layer.reset_statistics()
    return out


def trainable_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
