"""Physical layer removal: module lists shrink, the config's depths are rewritten, and whatever
indexes layers by position is rebuilt, so the pruned model is an ordinary, smaller model.

Reference VLA: expert layer i attends to backbone layer expert_to_backbone[i]'s keys/values. If
that backbone layer is removed, the next kept backbone layer reads exactly the input it read (the
output of the last kept layer before it), so the expert layer is re-pointed there (or at the last
kept layer, if none follows).
Hugging Face decoders: each attention module's `layer_idx` (its slot in the KV cache) and
`config.layer_types` (where present) are renumbered to the kept layers.
"""

from __future__ import annotations

from torch import nn

from leanvla.errors import require
from leanvla.models.layout import Layout


def remap_layer_targets(targets: list[int], kept: list[int]) -> list[int]:
    """New indices of old layer `targets` among the `kept` layers (a removed target moves to the
    next kept layer, else to the last kept one)."""
    out = []
    for target in targets:
        later = [k for k in kept if k >= target]
        out.append(kept.index(later[0]) if later else len(kept) - 1)
    return out


def _config_of(model: nn.Module):
    """The object holding the model's hyper-parameters (leanvla: .cfg; transformers: .config)."""
    return getattr(model, "cfg", None) or getattr(model, "config", None)


def remove_layers(model: nn.Module, layout: Layout, removed: dict[str, list[int]]) -> nn.Module:
    """Remove the given 0-based layers of each named stack from `model`, in place; returns it."""
    from leanvla.models.vla import VLA

    config = _config_of(model)
    kept_by_stack = {}
    for name, drop in removed.items():
        stack = layout.stack(name)
        layers = layout.layers(model, name)
        bad = [i for i in drop if not 0 <= i < len(layers)]
        require(not bad, f"stack '{name}' has {len(layers)} layers; cannot remove {bad}")
        kept = [i for i in range(len(layers)) if i not in set(drop)]
        require(kept, f"removing {sorted(drop)} would leave stack '{name}' with no layers")
        kept_by_stack[name] = kept
        parent_path, _, attr = stack.path.rpartition(".")
        parent = model.get_submodule(parent_path) if parent_path else model
        setattr(parent, attr, nn.ModuleList([layers[i] for i in kept]))
        if stack.depth_key is not None and config is not None:
            setattr(config, stack.depth_key, len(kept))

    if isinstance(model, VLA):
        cfg = model.cfg
        experts = kept_by_stack.get("expert", list(range(len(cfg.expert_to_backbone))))
        targets = [cfg.expert_to_backbone[i] for i in experts]
        backbone = kept_by_stack.get("backbone", list(range(cfg.layers)))
        cfg.expert_to_backbone = remap_layer_targets(targets, backbone)
    else:
        _renumber_hf_decoder(model, layout, kept_by_stack)
    return model


def _renumber_hf_decoder(model: nn.Module, layout: Layout, kept_by_stack: dict[str, list[int]]) -> None:
    config = getattr(model, "config", None)
    for name, kept in kept_by_stack.items():
        for new_index, layer in enumerate(layout.layers(model, name)):
            for module in layer.modules():
                if hasattr(module, "layer_idx"):
                    module.layer_idx = new_index
        layer_types = getattr(config, "layer_types", None)
        if isinstance(layer_types, list) and len(layer_types) > max(kept):
            config.layer_types = [layer_types[i] for i in kept]
