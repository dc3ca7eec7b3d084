"""CapVector's orthogonal regulariser: keep each layer's fine-tuning update orthogonal to tau.

    penalty = mean over matrices W of cos^2(Delta W, tau_W),   Delta W = W - W_start

For a full fine-tune Delta W is the parameter minus its value at the start (the meta model). For a
peft LoRA layer Delta W = s B A, and both the inner product and the norm come from small products,
never from B A itself:

    <B A, T>  = sum((B^T T) * A)              (r x d_in)
    |B A|^2   = sum((B^T B) * (A A^T))        (r x r)
"""

from __future__ import annotations

import torch
from torch import nn

from leanvla.errors import require

EPS = 1e-12


def squared_cosine(update: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    # dot on flat views: one fused pass per product, no elementwise temporaries (and their backward)
    u, t = update.flatten(), target.flatten()
    return torch.dot(u, t).square() / (torch.dot(u, u) * torch.dot(t, t) + EPS)


def lora_squared_cosine(a: torch.Tensor, b: torch.Tensor, scale: float, target: torch.Tensor) -> torch.Tensor:
    """cos^2(scale * B A, T) without forming B A (A: r x d_in, B: d_out x r, T: d_out x d_in)."""
    inner = scale * ((b.T @ target) * a).sum()
    norm2 = scale**2 * ((b.T @ b) * (a @ a.T)).sum()
    return inner.square() / (norm2 * target.square().sum() + EPS)


class OrthogonalPenalty:
    """Callable on the model being trained; returns the mean squared cosine over the matched matrices."""

    def __init__(
        self, model: nn.Module, vector: dict[str, torch.Tensor], start: dict[str, torch.Tensor] | None
    ):
        """`vector`: tau by base-model parameter name; `start`: the weights fine-tuning began from.
        Each tau is moved to its matrix's device and dtype here, once, not in every call (a vector
        read from a file sits on the host: on a GPU that copy would be the size of the model)."""
        self.dense: list[tuple[nn.Parameter, torch.Tensor, torch.Tensor]] = []
        self.lora: list[tuple[nn.Module, torch.Tensor]] = []
        params = dict(model.named_parameters())
        for module_name, module in model.named_modules():
            if type(module).__module__.startswith("peft.") and hasattr(module, "lora_A"):
                key = f"{module_name}.weight"
                if key in vector and vector[key].dim() == 2:
                    _check_fits(key, vector[key], module.get_base_layer().weight)
                    adapter = module.lora_A[module.active_adapters[0]].weight
                    self.lora.append((module, vector[key].to(adapter)))
        for name, p in params.items():
            if p.requires_grad and p.dim() >= 2 and name in vector:
                _check_fits(name, vector[name], p)
                require(
                    start is not None and name in start,
                    f"no starting value for '{name}' to measure its update from",
                )
                self.dense.append((p, start[name].detach().clone(), vector[name].to(p)))
        require(
            self.dense or self.lora,
            "--orth.vector shares no trainable matrix with the model (names or adapter kind do not match); "
            "use the vector `leanvla merge` wrote for this architecture",
        )

    @property
    def matrices(self) -> int:
        return len(self.dense) + len(self.lora)

    def __call__(self) -> torch.Tensor:
        terms = [squared_cosine(p - start, tau.to(p)) for p, start, tau in self.dense]
        for module, tau in self.lora:
            for adapter in module.active_adapters:
                a, b = module.lora_A[adapter].weight, module.lora_B[adapter].weight
                terms.append(lora_squared_cosine(a, b, module.scaling[adapter], tau.to(a)))
        return torch.stack(terms).mean()


def check_vector_fits(model: nn.Module, vector: dict[str, torch.Tensor]) -> None:
    """Every tensor the vector names in the (not yet adapted) model has the model's shape."""
    for name, p in model.named_parameters():
        if name in vector:
            _check_fits(name, vector[name], p)


def _check_fits(name: str, tau: torch.Tensor, weight: torch.Tensor) -> None:
    require(
        tau.shape == weight.shape,
        f"--orth.vector holds '{name}' of shape {list(tau.shape)}, but the model's is {list(weight.shape)}; "
        "use the vector `leanvla merge` wrote for this architecture",
    )
