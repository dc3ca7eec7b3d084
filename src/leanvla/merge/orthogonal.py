"""CapVector's orthogonal regulariser: keep each layer's fine-tuning update orthogonal to tau.

    penalty = mean over matrices W of cos^2(Delta W, tau_W),   Delta W = W - W_start

For a full fine-tune Delta W is the parameter minus its value at the start (the meta model). For a
peft LoRA layer Delta W = s B A, and both the inner product and the norm come from small products,
never from B A itself:

    <B A, T>  = sum((B^T T) * A)              (r x d_in)
    |B A|^2   = sum((B^T B) * (A A^T))        (r x r)
"""

from __future__ import annotations

from collections import defaultdict

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
    """Callable on the model being trained; returns the mean squared cosine over the matched matrices.

    Matrices of one shape are stacked and their cosines taken in a few batched ops: computed one by
    one, each matrix costs a dozen small kernels forward and backward, and on a GPU, where each
    kernel waits its turn to be launched, the penalty then cost 0.7-0.8x a plain step's forward and
    backward; stacked, 0.13-0.30x (on an H200: docs/results/merge_step_gpu_batching.md).
    """

    def __init__(
        self, model: nn.Module, vector: dict[str, torch.Tensor], start: dict[str, torch.Tensor] | None
    ):
        """`vector`: tau by base-model parameter name; `start`: the weights fine-tuning began from.
        Each tau is moved to its matrix's device and dtype here, once, not in every call (a vector
        read from a file sits on the host: on a GPU that copy would be the size of the model). The
        LoRA adapters active now, and their scales, are the ones penalised."""
        dense: dict[tuple, list] = defaultdict(list)
        lora: dict[tuple, list] = defaultdict(list)
        for module_name, module in model.named_modules():
            if type(module).__module__.startswith("peft.") and hasattr(module, "lora_A"):
                key = f"{module_name}.weight"
                if key in vector and vector[key].dim() == 2:
                    _check_fits(key, vector[key], module.get_base_layer().weight)
                    for adapter in module.active_adapters:
                        a, b = module.lora_A[adapter].weight, module.lora_B[adapter].weight
                        tau = vector[key].to(a)
                        lora[(a.shape, b.shape, a.dtype, a.device)].append(
                            (a, b, module.scaling[adapter], tau)
                        )
        for name, p in model.named_parameters():
            if p.requires_grad and p.dim() >= 2 and name in vector:
                _check_fits(name, vector[name], p)
                require(
                    start is not None and name in start,
                    f"no starting value for '{name}' to measure its update from",
                )
                dense[(p.shape, p.dtype, p.device)].append(
                    (p, start[name].detach().to(p), vector[name].to(p))
                )
        self.groups = [_DenseGroup(*zip(*m)) for m in dense.values()] + [
            _LoRAGroup(*zip(*m)) for m in lora.values()
        ]
        self.matrices = sum(len(m) for m in (*dense.values(), *lora.values()))
        require(
            self.matrices > 0,
            "--orth.vector shares no trainable matrix with the model (names or adapter kind do not match); "
            "use the vector `leanvla merge` wrote for this architecture",
        )

    def __call__(self) -> torch.Tensor:
        return torch.cat([group.squared_cosines() for group in self.groups]).mean()


def _dots(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Row-wise dot products of two G x N tensors (vecdot: on CPU 6x faster than a batched matmul)."""
    return torch.linalg.vecdot(x, y)


class _DenseGroup:
    """Matrices of one shape trained in full: cos^2(W - W_start, tau) for each, stacked."""

    def __init__(self, params, starts, taus):
        self.params = list(params)
        self.start = torch.stack(starts).flatten(1)
        self.tau = torch.stack(taus).flatten(1)
        self.tau_norm2 = _dots(self.tau, self.tau)

    def squared_cosines(self) -> torch.Tensor:
        update = torch.stack(self.params).flatten(1) - self.start
        return _dots(update, self.tau).square() / (_dots(update, update) * self.tau_norm2 + EPS)


class _LoRAGroup:
    """peft LoRA adapters of one shape: lora_squared_cosine for each, as batched products."""

    def __init__(self, a, b, scales, taus):
        self.a, self.b = list(a), list(b)
        self.tau = torch.stack(taus)
        self.scale = torch.tensor(scales, dtype=self.tau.dtype, device=self.tau.device)
        self.tau_norm2 = self.tau.square().sum((1, 2))

    def squared_cosines(self) -> torch.Tensor:
        a, b = torch.stack(self.a), torch.stack(self.b)  # G x r x d_in, G x d_out x r
        bt = b.transpose(1, 2)
        inner = self.scale * (torch.bmm(bt, self.tau) * a).sum((1, 2))
        norm2 = self.scale.square() * (torch.bmm(bt, b) * torch.bmm(a, a.transpose(1, 2))).sum((1, 2))
        return inner.square() / (norm2 * self.tau_norm2 + EPS)


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
    require(  # else the penalty made every weight NaN, reported as a training that diverged
        bool(torch.isfinite(tau).all()),
        f"--orth.vector's '{name}' holds a NaN or an infinity; merge it again from finite checkpoints",
    )
