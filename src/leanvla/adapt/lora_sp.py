"""LoRA-SP: a frozen Linear plus a rank-adaptive low-rank update (Kim et al., 2026).

    y = W x + scale * B (g(x) * (A x)),   g(x) = s(x) * m(x)

A (R x d_in) and B (d_out x R) are a bank of R vectors. A router gives non-negative scores
s(x) = softplus(router(x)) that act as singular values: one d_in x R Linear (as large as A) or,
with `router_rank` h > 0, a d_in -> h -> R bottleneck (the paper's "small router"). m(x) keeps,
per token, the fewest top-scoring vectors whose squared scores hold a fraction eta of the total
energy. Gradients flow through the kept scores (the mask itself is a hard choice). B starts at
zero, so the adapted layer starts equal to the base layer.

eta follows a cosine schedule from `eta_start` to `eta` over `eta_decay_steps` training forward
passes. The layer counts those passes itself (a buffer, saved with the adapter), so the schedule
runs without any call in the training loop and resumes with the run. The spectral loss, which
pushes the score energy onto few vectors, is the layer's `spectral_loss()` of its last training
forward; the training loop adds it times the layer's `spectral_weight`, computing every layer's
at once (`concentration_losses`, through adapt.inject.spectral_loss).

When the active vectors are few, only they are computed: the union of the vectors any token in
the batch keeps is gathered and the two matmuls run at that width. (Per-token row gathers would
touch d_in x k numbers per token and lose to one dense matmul on CPU and GPU alike.) On CPU this
pays from widths of a few hundred when the union is at most about a quarter of R, and never for
narrow layers, where each call's fixed cost dominates: see benchmarks/adapt_paths.py. On an
accelerator 'auto' stays dense: choosing would read the count back to the host, a wait for all
queued work in every layer's call, and on an H200 the gather path's training step took 1.12x the
dense path's (docs/results/adapt_step_gpu.md).

Nothing on the dense path reads a tensor back to the host (the eta schedule counts on a host copy
of the step buffer), so on a GPU a LoRA-SP step queues its work without waiting on it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

PATHS = ("auto", "dense", "gather")


def energy_mask(scores: torch.Tensor, eta: float) -> torch.Tensor:
    """Per row, keep the fewest largest scores whose squares reach `eta` of the row's energy.

    scores (..., R) >= 0 -> bool mask of the same shape. eta >= 1 keeps every vector. Of scores tied
    at the cut, the lowest-indexed are kept (a stable sort's order), on every device and path alike.
    """
    if eta >= 1.0:
        return torch.ones_like(scores, dtype=torch.bool)
    energy = scores.pow(2)
    if energy.device.type == "cpu" and energy.dtype in NUMPY_SORTS and energy.numel() >= CPU_CUT_FROM:
        return _mask_by_cut(energy, eta)
    descending, order = torch.sort(energy, dim=-1, descending=True, stable=True)
    needed_sorted = _needed(descending, eta)
    # order is a permutation: the scatter writes every entry, so nothing needs zeroing first.
    return torch.empty_like(needed_sorted).scatter_(-1, order, needed_sorted)


def _needed(descending: torch.Tensor, eta: float) -> torch.Tensor:
    """Per rank, whether the energies ranked above it are still short of eta of the total."""
    cumulative = descending.cumsum(-1)
    return (cumulative - descending) < eta * cumulative[..., -1:]


# torch.sort always sorts indices along with the values; numpy sorts values alone, ~10x faster on
# CPU. At training batch sizes (1000+ tokens per call, R = 64) the mask then takes 0.4 ms instead
# of 1.5; below about this many scores, the extra ops of finding the cut cost more than they save.
NUMPY_SORTS = (torch.float32, torch.float64)
CPU_CUT_FROM = 4096


def _mask_by_cut(energy: torch.Tensor, eta: float) -> torch.Tensor:
    """energy_mask from sorted values alone: keep what is at least the smallest needed energy (the
    cut), then, in rows where ties at the cut keep too many, only the lowest-indexed of the tied."""
    descending = torch.from_numpy(-np.sort(-energy.detach().numpy(), axis=-1))
    needed = _needed(descending, eta).sum(-1, keepdim=True)
    cut = descending.gather(-1, (needed - 1).clamp_min(0))
    kept = energy >= cut
    surplus = kept.sum(-1, keepdim=True) - needed
    if bool((surplus > 0).any()):
        tied = energy == cut
        kept &= ~tied | (tied.cumsum(-1) <= tied.sum(-1, keepdim=True) - surplus)
    return kept


def concentration_loss(scores: torch.Tensor) -> torch.Tensor:
    """The spectral loss: entropy of the normalised energy s^2 / sum(s^2), over log R, token mean.

    0 when one vector holds all the energy, 1 when all R share it equally: minimising it pushes
    the energy onto few vectors, so the eta threshold keeps fewer of them.
    """
    return concentration_losses([scores])[0]


def concentration_losses(scores: list[torch.Tensor]) -> torch.Tensor:
    """concentration_loss of each tensor in `scores`, as one tensor of len(scores) losses.

    Tensors of one shape (a stack's layers see the same tokens) are stacked and computed together:
    a dozen ops per shape instead of per layer, forward and backward. On a GPU, where each small op
    waits its turn to launch, that per-layer dozen was a fifth of a LoRA-SP training step's ops.
    """
    groups: dict[tuple, list[int]] = {}
    for i, s in enumerate(scores):
        groups.setdefault((s.shape, s.dtype, s.device), []).append(i)
    parts, order = [], []
    for (shape, *_), members in groups.items():
        if len(members) > 1:
            stacked = torch.stack([scores[i] for i in members])
        else:  # a stack of one would copy it
            stacked = scores[members[0]].unsqueeze(0)
        stacked = stacked.reshape(len(members), -1, shape[-1])
        parts.append(_Concentration.apply(stacked) if shape[-1] > 1 else stacked.sum((1, 2)) * 0)
        order += members
    losses = torch.cat(parts) if len(parts) > 1 else parts[0]
    if order == sorted(order):
        return losses
    return losses[torch.tensor(order).argsort().to(losses.device)]


class _Concentration(torch.autograd.Function):
    """concentration_loss of L stacked score tensors (L x T x R -> L), with its gradient written out:
    autograd would record a dozen more small ops, a tenth of a LoRA-SP layer's training step on CPU.

    With e = s^2, S = sum(e), p = e / S and H = -sum(p log p): dH/ds_i = -2 s_i (log p_i + H) / S.
    The forward works in place and keeps s (log p + H) / S alone for the backward, which only
    scales it: one tensor of the scores' size, and the stack's copy of the scores is freed at once.
    """

    @staticmethod
    def forward(ctx, scores: torch.Tensor) -> torch.Tensor:
        p = scores.pow(2)
        total = p.sum(-1, keepdim=True).clamp_min_(1e-12)
        log_p = p.div_(total).clamp_min(1e-12).log_()  # p floored at 1e-12, as the loss treats it
        entropy = p.mul_(log_p).sum(-1, keepdim=True).neg_()
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(log_p.add_(entropy).mul_(scores).div_(total))
        ctx.normaliser = scores.shape[1] * math.log(scores.shape[-1])  # tokens x log R
        return entropy.sum((1, 2)) / ctx.normaliser

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (direction,) = ctx.saved_tensors
        return direction * grad.mul(-2.0 / ctx.normaliser).view(-1, 1, 1)


def eta_at(step: int, eta: float, eta_start: float, decay_steps: int) -> float:
    """Cosine from eta_start (step 0) to eta (step >= decay_steps)."""
    if decay_steps <= 0 or step >= decay_steps:
        return eta
    return eta + (eta_start - eta) * 0.5 * (1 + math.cos(math.pi * step / decay_steps))


class LoRASPLinear(nn.Module):
    def __init__(
        self,
        base: nn.Linear,
        rank: int,
        alpha: float,
        eta: float,
        eta_start: float = 1.0,
        eta_decay_steps: int = 0,
        path: str = "auto",
        gather_below: float = 0.25,
        router_rank: int = 0,
        spectral_weight: float = 0.0,
    ):
        super().__init__()
        self.base_layer = base
        for p in base.parameters():
            p.requires_grad_(False)
        d_in, d_out = base.in_features, base.out_features
        self.rank, self.scale = rank, alpha / rank
        self.eta, self.eta_start, self.eta_decay_steps = eta, eta_start, eta_decay_steps
        self.path, self.gather_below = path, gather_below
        self.spectral_weight = spectral_weight  # of this layer's concentration loss in training
        factory = dict(device=base.weight.device, dtype=base.weight.dtype)
        self.lora_A = nn.Parameter(torch.empty(rank, d_in, **factory))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # as peft's LoRA A
        self.lora_B = nn.Parameter(torch.zeros(d_out, rank, **factory))
        self.router_rank = router_rank
        if router_rank:
            scores = nn.Linear(router_rank, rank, **factory)
            self.router = nn.Sequential(nn.Linear(d_in, router_rank, bias=False, **factory), scores)
            # Default init gives the bottleneck ~0.58 std per unit input; this keeps the logits' spread
            # at the full router's (0.16 for unit-variance inputs).
            nn.init.normal_(scores.weight, std=0.277 / math.sqrt(router_rank))
        else:
            scores = self.router = nn.Linear(d_in, rank, **factory)
            nn.init.normal_(scores.weight, std=0.02 / math.sqrt(d_in / 64))
        # softplus(0.5413) = 1: every vector starts with score ~1, i.e. an ordinary LoRA.
        nn.init.constant_(scores.bias, math.log(math.e - 1))
        self.register_buffer("forward_steps", torch.zeros((), dtype=torch.long))
        self._host_steps: int | None = 0  # forward_steps on the host; None: read it at next use
        self.last_scores: torch.Tensor | None = None  # s(x) of the last training forward
        # Routing statistics cost several small ops per call, which at batch 1 is a sizeable part
        # of the layer's time: they are recorded while training, and in eval only when asked.
        self.track_routing = False
        self.reset_statistics()

    # ---- schedule and statistics ------------------------------------------------------------------
    def current_eta(self) -> float:
        return eta_at(self.steps_taken(), self.eta, self.eta_start, self.eta_decay_steps)

    def steps_taken(self) -> int:
        """Training forwards so far. Counted on the host as well as in the saved buffer: reading
        the buffer on a GPU would wait for every queued kernel, in every layer's forward."""
        if self._host_steps is None:
            self._host_steps = int(self.forward_steps)
        return self._host_steps

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._host_steps = None  # a loaded adapter brings its own count (read once, at next use)

    def reset_statistics(self) -> None:
        """Zero the running sums behind `active_rank()` and `mean_gate()`."""
        # Kept on the layer's device, so recording them never waits for the GPU.
        device = self.lora_A.device
        self._tokens = 0  # known from shapes alone, so counted on the host
        self._gate_sum = torch.zeros(self.rank, dtype=torch.float64, device=device)
        self._kept_sum = torch.zeros(self.rank, dtype=torch.float64, device=device)

    def score_layer(self) -> nn.Linear:
        """The router's last Linear: the one whose bias sets the scores of constant routing."""
        return self.router[-1] if self.router_rank else self.router

    def active_rank(self) -> float:
        """Mean number of vectors kept per token since the last reset (statistics are recorded
        while training, and in eval mode while `track_routing` is set)."""
        return float(self._kept_sum.sum() / max(self._tokens, 1))

    def usage(self) -> torch.Tensor:
        """Fraction of tokens that kept each vector since the last reset (R,)."""
        return (self._kept_sum / max(self._tokens, 1)).float().cpu()

    def mean_gate(self) -> torch.Tensor:
        """Mean of s(x) * m(x) per vector since the last reset (for the static export)."""
        return (self._gate_sum / max(self._tokens, 1)).float()

    # ---- forward ----------------------------------------------------------------------------------
    def gates(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(scores s(x), kept-vector mask m(x)), each ... x R."""
        scores = F.softplus(self.router(x))
        return scores, energy_mask(scores.detach(), self.current_eta())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores, mask = self.gates(x)
        gate = scores * mask
        active = None  # which vectors any token keeps
        if self.training or self.track_routing:
            # Summed as float32: over a training batch's tokens a bool reduction costs 4x as much,
            # and half precision would round counts above 256.
            kept = mask.reshape(-1, self.rank).float().sum(0)
            self.record_routing(kept, gate.detach())
            if self.gathers(x.device):
                active = kept > 0
        elif self.gathers(x.device):
            active = mask.reshape(-1, self.rank).any(0)
        if self.training:
            self._host_steps = self.steps_taken() + 1
            self.forward_steps += 1
            self.last_scores = scores
        hidden, lora_B = self.hidden(x, gate, active)
        out = self.base_layer(x)
        # out + scale * hidden B^T in one addmm: the scale and the sum cost no op of their own.
        flat = torch.addmm(
            out.reshape(-1, out.shape[-1]), hidden.reshape(-1, hidden.shape[-1]), lora_B.t(), alpha=self.scale
        )
        return flat.view(out.shape)

    def spectral_loss(self) -> torch.Tensor | None:
        """The concentration loss of the last training forward, computed when asked (None before
        any), so that training without the spectral loss does not pay for it."""
        return None if self.last_scores is None else concentration_loss(self.last_scores)

    @torch.no_grad()
    def record_routing(self, kept: torch.Tensor, gate: torch.Tensor) -> None:
        """kept: how many tokens kept each vector (R,); gate: s(x) * m(x), ... x R."""
        if self._kept_sum.device != gate.device:  # the module moved since construction
            self.reset_statistics()
        self._tokens += gate.numel() // self.rank
        self._kept_sum += kept
        self._gate_sum += gate.reshape(-1, self.rank).sum(0)

    def gathers(self, device: torch.device) -> bool:
        """Whether this call may compute only the active vectors: 'gather' always; 'auto' on the CPU
        only, where reading their count back costs nothing."""
        return self.path == "gather" or (self.path == "auto" and device.type == "cpu")

    def hidden(
        self, x: torch.Tensor, gate: torch.Tensor, active: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(gate * A x, the columns of B they meet): the update is B (gate * A x), computed at the
        width of the active vectors (R bools, needed when the call `gathers`) when they are few."""
        if self.gathers(x.device):
            if self.path == "gather" or int(active.sum()) <= self.gather_below * self.rank:
                index = active.nonzero().squeeze(1)
                hidden = F.linear(x, self.lora_A.index_select(0, index)) * gate.index_select(-1, index)
                return hidden, self.lora_B.index_select(1, index)
        return F.linear(x, self.lora_A) * gate, self.lora_B

    def static_delta(self, mean_gate: torch.Tensor) -> torch.Tensor:
        """The weight update at a fixed routing: scale * B diag(mean_gate) A (d_out x d_in)."""
        return self.scale * (self.lora_B * mean_gate.to(self.lora_B)) @ self.lora_A

    def extra_repr(self) -> str:
        return (
            f"rank={self.rank}, scale={self.scale:g}, eta={self.eta:g} (from {self.eta_start:g} over "
            f"{self.eta_decay_steps} steps), path={self.path}"
            + (f", router_rank={self.router_rank}" if self.router_rank else "")
        )
