"""Layouts: where a model keeps its layer stacks and which Linear modules each layer holds.

Every leanvla method addresses a model through a layout rather than through attribute names baked
into its code, so curation, pruning, merging and adapters apply to the reference VLA, to a Hugging
Face decoder, or to LeRobot's SmolVLA once someone writes its (few-line) layout.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from leanvla.errors import UserError
from leanvla.models.layers import BLOCK_LINEARS


@dataclass(frozen=True)
class Stack:
    name: str
    """What the stack is: backbone, expert, vision, decoder..."""
    path: str
    """Dotted attribute path from the model to the stack's nn.ModuleList."""
    linears: tuple[str, ...]
    """Linear modules inside each layer, relative to the layer."""
    depth_key: str | None = None
    """Config attribute holding the stack's depth (rewritten when layers are removed)."""


@dataclass(frozen=True)
class Layout:
    stacks: tuple[Stack, ...]
    io: tuple[str, ...] = ()
    """Modules outside the stacks that carry inputs into them and predictions out of them (a model
    need not have every one). Adapters on the stacks leave them frozen; fine-tuning with adapters
    trains them in full, as peft's modules_to_save does."""

    def stack(self, name: str) -> Stack:
        for s in self.stacks:
            if s.name == name:
                return s
        raise UserError(f"the layout has no stack '{name}' (it has {[s.name for s in self.stacks]})")

    def layers(self, model: nn.Module, name: str) -> nn.ModuleList:
        stack = self.stack(name)
        try:
            layers = model.get_submodule(stack.path)
        except AttributeError as exc:
            raise UserError(
                f"layout names '{stack.path}' for stack '{name}', but the model has no such module"
            ) from exc
        if not isinstance(layers, nn.ModuleList):
            raise UserError(
                f"layout stack '{name}' points at '{stack.path}', which is a {type(layers).__name__}, not "
                "an nn.ModuleList"
            )
        return layers

    def linear_modules(self, model: nn.Module, stacks: list[str] | None = None) -> dict[str, nn.Module]:
        """Qualified name -> module for every Linear the layout names, in stack and layer order."""
        out = {}
        for stack in self.stacks:
            if stacks is not None and stack.name not in stacks:
                continue
            for i, layer in enumerate(self.layers(model, stack.name)):
                for rel in stack.linears:
                    try:
                        module = layer.get_submodule(rel)
                    except AttributeError as exc:
                        raise UserError(
                            f"layout names '{stack.path}.{i}.{rel}', but the model has no such module"
                        ) from exc
                    out[f"{stack.path}.{i}.{rel}"] = module
        return out

    def io_modules(self, model: nn.Module) -> dict[str, nn.Module]:
        """Qualified name -> module for each of the layout's `io` modules the model has."""
        present = dict(model.named_modules())
        return {name: present[name] for name in self.io if name in present}

    def check(self, model: nn.Module) -> None:
        """Raise a UserError naming the first module the layout expects and the model lacks."""
        self.linear_modules(model)


VLA_LAYOUT = Layout(
    stacks=(
        Stack("backbone", "backbone", BLOCK_LINEARS, depth_key="layers"),
        Stack("expert", "expert.layers", BLOCK_LINEARS, depth_key="expert_layers"),
        Stack("vision", "vision.layers", BLOCK_LINEARS, depth_key="vision_layers"),
    ),
    io=(
        "vision.stem",
        "vision.connector",
        "vision.flat",
        "state_proj",
        "expert.action_in",
        "expert.time_mlp_in",
        "expert.time_mlp_out",
        "expert.cond_proj",
        "expert.action_out",
        "expert.token_embed",  # the discrete head's
        "expert.dim_embed",
        "expert.logits",
    ),
)

# Hugging Face Llama-style decoders (LlamaForCausalLM, Qwen2, SmolLM, the VLM inside SmolVLA).
LLAMA_LINEARS = (
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.o_proj",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.down_proj",
)
HF_DECODER_LAYOUT = Layout(
    stacks=(Stack("decoder", "model.layers", LLAMA_LINEARS, depth_key="num_hidden_layers"),)
)


def layout_for(model: nn.Module) -> Layout:
    """The built-in layout that fits `model`."""
    from leanvla.models.vla import VLA

    if isinstance(model, VLA):
        return VLA_LAYOUT
    if hasattr(model, "model") and hasattr(model.model, "layers") and hasattr(model, "config"):
        return HF_DECODER_LAYOUT
    raise UserError(
        f"no built-in layout for {type(model).__name__}; describe its layer stacks with leanvla.models.layout.Layout"
    )
