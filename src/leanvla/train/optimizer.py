"""The training loop's AdamW: weight decay on matrices only, and torch's fused update where measured."""

from __future__ import annotations

import torch
from torch import nn

# torch's default AdamW on the CPU updates one tensor at a time in Python, about ten ops each; an
# adapted VLA has hundreds of small trainable tensors (LoRA-SP: four per layer). The fused kernel
# updates a parameter group's tensors in one op, with the same arithmetic up to float rounding: the
# update takes a third of the time (benchmarks/fused_adamw.py). On CUDA torch's own default
# (foreach) stays until that benchmark has run on a GPU.
FUSED_ON = ("cpu",)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Decay matrices and embeddings; not biases or norm gains."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    rest = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def adamw(
    model: nn.Module, lr: float, weight_decay: float, device: torch.device, fused: bool | None = None
) -> torch.optim.AdamW:
    """AdamW over the model's trainable parameters, on `device`. fused: None picks by device
    (FUSED_ON); False is torch's default implementation for the device."""
    if fused is None:
        fused = device.type in FUSED_ON
    return torch.optim.AdamW(param_groups(model, weight_decay), lr=lr, betas=(0.9, 0.95), fused=fused or None)
