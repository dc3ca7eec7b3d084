"""Kronecker gradient projection (ATHENA): a demonstration's gradient, projected, without ever
forming it.

For a Linear layer y = W x the loss gradient is G = sum_t g_t x_t^T (g_t: the gradient at the
output for token t, x_t: the input). With seeded Gaussian projections P_in (k_in x d_in) and
P_out (k_out x d_out), the projected gradient is

    P_out G P_in^T = sum_t (P_out g_t)(P_in x_t)^T          (a k_out x k_in block)

so hooks project each token's input and output gradient first: O(d_in k_in + d_out k_out) per
token instead of O(d_in d_out) to form G and O(d_in d_out k_in k_out) to project it densely.
A layer called several times in one forward (or a demonstration split into microbatches) just
adds its blocks up. Parameters outside the projected Linears are skipped or, by option, projected
densely from their accumulated .grad.
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from leanvla.errors import UserError, require


def seeded_gaussian(rows: int, cols: int, seed: int, name: str) -> torch.Tensor:
    """A rows x cols N(0, 1/rows) matrix that depends only on (seed, name): the same on every
    process and in every run, whatever order the layers are visited in."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
    return torch.randn(rows, cols, generator=generator) / math.sqrt(rows)


def projected_linears(modules: dict[str, nn.Module]) -> dict[str, nn.Linear]:
    """The Linear modules whose gradients are projected. A peft LoRA-wrapped Linear contributes its
    trainable lora_A and lora_B Linears (the frozen base weight is not what fine-tuning changes)."""
    out: dict[str, nn.Linear] = {}
    for name, module in modules.items():
        if hasattr(module, "lora_A") and hasattr(module, "base_layer"):
            for adapter, linear in module.lora_A.items():
                out[f"{name}.lora_A.{adapter}"] = linear
                out[f"{name}.lora_B.{adapter}"] = module.lora_B[adapter]
        elif isinstance(module, nn.Linear):
            out[name] = module
        else:
            raise UserError(
                f"'{name}' is a {type(module).__name__}: Kronecker projection needs nn.Linear or peft "
                "LoRA layers; name other stacks with --stacks"
            )
    require(len(out) > 0, "no Linear modules to project: check the layout's stacks")
    return out


class KroneckerProjector:
    """Hooks that turn one backward pass into the projected gradient phi of everything it saw.

    projector = KroneckerProjector(linears, k_in=16, k_out=16, seed=0)
    with projector.hooks():
        for microbatch in demo: loss(microbatch).backward()
    phi = projector.take()    # P = sum over layers of k_out * k_in (+ dense dims)
    """

    def __init__(
        self,
        linears: dict[str, nn.Linear],
        k_in: int,
        k_out: int,
        seed: int,
        dense: dict[str, nn.Parameter] | None = None,
        k_dense: int = 0,
    ):
        require(k_in >= 1 and k_out >= 1, f"--k-in and --k-out must be >= 1, got {k_in} and {k_out}")
        self.linears = linears
        self.p_in: dict[str, torch.Tensor] = {}
        self.p_out: dict[str, torch.Tensor] = {}
        for name, linear in linears.items():
            # A projection wider than the layer would only add correlated copies.
            self.p_in[name] = seeded_gaussian(
                min(k_in, linear.in_features), linear.in_features, seed, name + "/in"
            )
            self.p_out[name] = seeded_gaussian(
                min(k_out, linear.out_features), linear.out_features, seed, name + "/out"
            )
        self.blocks = {n: torch.zeros(self.p_out[n].shape[0], self.p_in[n].shape[0]) for n in linears}
        self.dense = dense or {}
        self.dense_matrix = None
        if self.dense:
            require(
                k_dense >= 1,
                f"--k-dense (the other parameters' dense projection) must be >= 1, got {k_dense}",
            )
            total = sum(p.numel() for p in self.dense.values())
            require(
                k_dense * total <= 2**28,
                f"a dense {k_dense} x {total} projection of the non-Linear parameters needs "
                f"{4 * k_dense * total / 2**30:.1f} GiB; lower --k-dense or skip them (--other skip)",
            )
            self.dense_matrix = seeded_gaussian(k_dense, total, seed, "/dense")
        # Time spent in the hooks' own work, for the speed report (host time: on a GPU without a
        # synchronisation it counts kernel launches, not their run time).
        self.projection_s = 0.0

    @property
    def dim(self) -> int:
        """P: the length of phi."""
        dense = self.dense_matrix.shape[0] if self.dense_matrix is not None else 0
        return sum(b.numel() for b in self.blocks.values()) + dense

    def to(self, device: torch.device) -> KroneckerProjector:
        for table in (self.p_in, self.p_out, self.blocks):
            for name in table:
                table[name] = table[name].to(device)
        if self.dense_matrix is not None:
            self.dense_matrix = self.dense_matrix.to(device)
        return self

    def _accumulate(self, name: str, x: torch.Tensor, g: torch.Tensor) -> None:
        start = time.perf_counter()
        with torch.no_grad():
            xp = x.reshape(-1, x.shape[-1]).to(self.p_in[name].dtype) @ self.p_in[name].T  # n x k_in
            gp = g.reshape(-1, g.shape[-1]).to(self.p_out[name].dtype) @ self.p_out[name].T  # n x k_out
            self.blocks[name] += gp.T @ xp
        self.projection_s += time.perf_counter() - start

    @contextmanager
    def hooks(self) -> Iterator[None]:
        """Forward hooks keep each projected Linear's input and hook its output's gradient."""
        handles = []
        saved = {}
        for name, linear in self.linears.items():
            saved[name] = linear.weight.requires_grad
            linear.weight.requires_grad_(True)  # so the output carries a gradient even when frozen

            def forward_hook(module, args, output, name=name):
                if output.requires_grad:
                    x = args[0].detach()
                    output.register_hook(lambda g, x=x, name=name: self._accumulate(name, x, g))

            handles.append(linear.register_forward_hook(forward_hook))
        try:
            yield
        finally:
            for h in handles:
                h.remove()
            for name, linear in self.linears.items():
                linear.weight.requires_grad_(saved[name])
                if not saved[name]:
                    linear.weight.grad = None

    def take(self) -> torch.Tensor:
        """phi of everything accumulated since the last take (flattened blocks, then dense dims);
        resets the accumulators and the dense parameters' .grad."""
        parts = [b.flatten().clone() for b in self.blocks.values()]
        for b in self.blocks.values():
            b.zero_()
        if self.dense_matrix is not None:
            grads = [
                p.grad.flatten() if p.grad is not None else torch.zeros(p.numel(), device=p.device)
                for p in self.dense.values()
            ]
            parts.append(self.dense_matrix @ torch.cat(grads))
            for p in self.dense.values():
                p.grad = None
        return torch.cat(parts)


def dense_parameters(model: nn.Module, linears: dict[str, nn.Linear]) -> dict[str, nn.Parameter]:
    """Trainable parameters outside the projected Linears' weights (norms, embeddings, convs, biases)."""
    taken = {id(linear.weight) for linear in linears.values()}
    return {n: p for n, p in model.named_parameters() if p.requires_grad and id(p) not in taken}
