"""The reference VLA: a small model with SmolVLA's shape.

    prefix  = [vision tokens per camera] + [instruction tokens] + [state token]
    backbone: transformer over the prefix (bidirectional, padding masked); every layer's
              keys/values are kept (the prefix KV cache)
    expert  : a narrower transformer over the H action tokens; expert layer i attends to the
              prefix keys/values of backbone layer expert_to_backbone[i] plus the action tokens
    head    : flow matching (pi0 / SmolVLA): the expert predicts the velocity u = noise - actions
              at x_t = t * noise + (1 - t) * actions (or, cfg.flow_target = 'action', the clean
              chunk, from which u = (x_t - chunk) / t); sampling integrates with Euler steps.
              Or discrete (cfg.head = 'discrete'): masked action tokens, see leanvla.decode.head.
              Or regression (cfg.head = 'regression'): the expert's output is the chunk, MSE.

At inference the backbone runs once per observation and only the expert runs per Euler step, on
the cached prefix keys/values. Everything here works in normalised units (see `Normalizer`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from leanvla.models.auxiliary import AuxiliaryHead, auxiliary_terms
from leanvla.models.config import VLAConfig
from leanvla.models.layers import KV, Block, RMSNorm, rotary
from leanvla.models.pixel_decoder import PixelDecoder
from leanvla.models.policy import Observation
from leanvla.models.tokenizer import InstructionTokenizer
from leanvla.models.vision import VisionEncoder


@dataclass
class Prefix:
    """What the backbone hands the action expert: one observation's cached context."""

    kv: list[KV]  # per backbone layer: keys, values (B x kv_heads x P x head_dim)
    valid: torch.Tensor  # B x P bool: real (non-padding) prefix tokens
    summary: torch.Tensor  # B x width: final backbone state at the state token

    @property
    def length(self) -> int:
        """P, the number of prefix slots (real or padding)."""
        return self.valid.shape[1]

    def next_position(self) -> torch.Tensor:
        """B x 1: the rotary position of the first action token (after the real prefix tokens)."""
        return self.valid.long().sum(1, keepdim=True)

    def repeat(self, n: int) -> Prefix:
        """The same context for n samples each (B -> B*n), e.g. several noise draws per observation."""
        rep = lambda x: x.repeat_interleave(n, dim=0)  # noqa: E731
        return Prefix([(rep(k), rep(v)) for k, v in self.kv], rep(self.valid), rep(self.summary))


def time_embedding(
    t: torch.Tensor, dim: int, min_period: float = 4e-3, max_period: float = 4.0
) -> torch.Tensor:
    """Sinusoidal embedding of flow time t in [0, 1] (B,) -> B x dim, as pi0."""
    fraction = torch.linspace(0.0, 1.0, dim // 2, device=t.device)
    period = min_period * (max_period / min_period) ** fraction
    angle = t[:, None] * (2 * math.pi / period)[None]
    return torch.cat([angle.sin(), angle.cos()], dim=-1)


def expert_blocks(cfg: VLAConfig) -> nn.ModuleList:
    """The action expert's layers (either head): narrower than the backbone, same head layout, so
    they can attend to the backbone's keys/values."""
    w = cfg.expert_width
    mlp = int(w * cfg.expert_mlp_ratio)
    return nn.ModuleList(
        [Block(w, cfg.heads, cfg.kv_heads, cfg.head_dim, mlp) for _ in range(cfg.expert_layers)]
    )


class ActionExpert(nn.Module):
    """The action expert: action tokens in, per-token velocity (flow head) out."""

    def __init__(self, cfg: VLAConfig):
        super().__init__()
        w = cfg.expert_width
        self.action_in = nn.Linear(cfg.action_dim, w)
        self.time_mlp_in = nn.Linear(2 * w, w)
        self.time_mlp_out = nn.Linear(w, w)
        self.cond_proj = nn.Linear(cfg.width, w)
        self.layers = expert_blocks(cfg)
        self.norm = RMSNorm(w)
        self.action_out = nn.Linear(w, cfg.action_dim)

    def embed(self, x_t: torch.Tensor, t: torch.Tensor, summary: torch.Tensor) -> torch.Tensor:
        """Noisy actions (B x H x A) + flow time (B,) + backbone summary (B x width) -> B x H x w."""
        a = self.action_in(x_t)
        te = time_embedding(t, a.shape[-1]).to(a.dtype)[:, None].expand_as(a)
        h = self.time_mlp_out(nn.functional.silu(self.time_mlp_in(torch.cat([a, te], dim=-1))))
        return h + self.cond_proj(summary)[:, None]


class VLA(nn.Module):
    def __init__(self, cfg: VLAConfig):
        super().__init__()
        self.cfg = cfg
        self.tokenizer = InstructionTokenizer(
            cfg.vocab_size, cfg.max_instruction_tokens, cfg.instruction_words
        )
        self.vision = VisionEncoder(cfg)
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.width)
        self.state_proj = nn.Linear(cfg.state_dim, cfg.width)
        mlp = int(cfg.width * cfg.mlp_ratio)
        self.backbone = nn.ModuleList(
            [Block(cfg.width, cfg.heads, cfg.kv_heads, cfg.head_dim, mlp) for _ in range(cfg.layers)]
        )
        self.backbone_norm = RMSNorm(cfg.width)
        if cfg.head == "discrete":
            from leanvla.decode.head import DiscreteActionExpert

            self.expert = DiscreteActionExpert(cfg)
        else:
            self.expert = ActionExpert(cfg)
        self.last_decode = None  # the discrete head's DecodeStats of the latest chunk
        if cfg.aux_horizon > 0:
            self.aux_head = self._new_aux_head()
        self.apply(_init_weights)

    def _new_aux_head(self) -> AuxiliaryHead:
        cfg = self.cfg
        pixels = None
        if cfg.aux_pixels:
            sizes = (cfg.image_size, cfg.vision_channels, cfg.vision_patch)
            pixels = PixelDecoder(cfg.width, len(cfg.cameras), *sizes)
        return AuxiliaryHead(cfg.width, cfg.state_dim, cfg.aux_env_dim, pixels)

    def add_aux_head(self, horizon: int, env_dim: int = 0, pixels: bool = False) -> None:
        """Give a trained policy the auxiliary head (fresh weights) to fine-tune with the objective;
        a head it already has is kept when it predicts the same targets."""
        head = getattr(self, "aux_head", None)
        same = head is not None and head.env_dim == env_dim and (head.pixels is not None) == pixels
        self.cfg.aux_horizon, self.cfg.aux_env_dim, self.cfg.aux_pixels = horizon, env_dim, pixels
        if not same:
            self.aux_head = self._new_aux_head()
            self.aux_head.apply(_init_weights)

    # ---- prefix ---------------------------------------------------------------------------------
    def embed_prefix(
        self, images: torch.Tensor, tokens: torch.Tensor, token_mask: torch.Tensor, state: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """images B x N x 3 x S x S, tokens/token_mask B x L, state B x S_dim -> prefix B x P x width, valid B x P."""
        vis = self.vision(images)  # B x V x width
        txt = self.embed_tokens(tokens) * math.sqrt(self.cfg.width)  # B x L x width
        st = self.state_proj(state)[:, None]  # B x 1 x width
        x = torch.cat([vis, txt, st], dim=1)
        ones = lambda n: torch.ones(x.shape[0], n, dtype=torch.bool, device=x.device)  # noqa: E731
        valid = torch.cat([ones(vis.shape[1]), token_mask.bool(), ones(1)], dim=1)
        return x, valid

    def run_backbone(self, x: torch.Tensor, valid: torch.Tensor, return_hidden: bool = False):
        """The backbone over an embedded prefix: per-layer KV, and optionally every layer's output."""
        b, p, _ = x.shape
        # Positions count real tokens only, so padding never shifts what follows it.
        positions = valid.long().cumsum(1) - 1
        rope = rotary(positions, self.cfg.head_dim)
        mask = valid[:, None, None, :].expand(b, 1, p, p)  # attend to every real prefix token
        kvs, hidden = [], []
        for layer in self.backbone:
            x, kv = layer(x, rope, mask)
            kvs.append(kv)
            if return_hidden:
                hidden.append(x)
        return (kvs, x, hidden) if return_hidden else (kvs, x)

    def encode_prefix(self, images, tokens, token_mask, state) -> Prefix:
        x, valid = self.embed_prefix(images, tokens, token_mask, state)
        kvs, out = self.run_backbone(x, valid)
        summary = self.backbone_norm(out[:, -1])  # the state token, last in the prefix
        return Prefix(kvs, valid, summary)

    # ---- action expert --------------------------------------------------------------------------
    def expert_output(
        self, prefix: Prefix, x_t: torch.Tensor, t: torch.Tensor, action_attn: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The expert's B x H x A answer for noisy actions x_t (B x H x A) at flow time t (B,): a
        velocity or a clean chunk, as cfg.flow_target says (the regression head reads it at one point)."""
        b, h, _ = x_t.shape
        x = self.expert.embed(x_t, t, prefix.summary)
        positions = prefix.next_position() + torch.arange(h, device=x.device)  # B x H
        rope = rotary(positions, self.cfg.head_dim)
        among = (
            torch.ones(b, 1, h, h, dtype=torch.bool, device=x.device)
            if action_attn is None
            else action_attn.expand(b, 1, h, h)
        )
        mask = torch.cat([prefix.valid[:, None, None, :].expand(b, 1, h, prefix.length), among], dim=-1)
        for i, layer in enumerate(self.expert.layers):
            x, _ = layer(x, rope, mask, cache=prefix.kv[self.cfg.expert_to_backbone[i]])
        return self.expert.action_out(self.expert.norm(x))

    def velocity(self, prefix: Prefix, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Predicted flow velocity for noisy actions x_t (B x H x A) at time t (B,)."""
        out = self.expert_output(prefix, x_t, t)
        if self.cfg.flow_target == "action":  # x_t = t noise + (1 - t) a, so v = noise - a = (x_t - a) / t
            return (x_t - out) / t[:, None, None]
        return out

    def flow_error(
        self, prefix: Prefix, actions: torch.Tensor, noise: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        """Squared error per action step (B x H) of the expert's target: the velocity, or the clean
        chunk; actions/noise B x H x A, t (B,)."""
        tt = t[:, None, None]
        x_t = tt * noise + (1 - tt) * actions
        target = actions if self.cfg.flow_target == "action" else noise - actions
        return (self.expert_output(prefix, x_t, t) - target).pow(2).mean(-1)

    @torch.no_grad()
    def sample_actions(self, prefix: Prefix, noise: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        """Euler integration from noise (t = 1) to actions (t = 0): B x H x A, normalised."""
        steps = steps or self.cfg.flow_steps
        x = noise * self.cfg.flow_noise
        for k in range(steps):
            t = torch.full((x.shape[0],), 1.0 - k / steps, device=x.device)
            x = x - self.velocity(prefix, x, t) / steps
        return x

    def regress(self, prefix: Prefix, shape: torch.Size) -> torch.Tensor:
        """Regression head: B x H x A actions, normalised. The flow expert's machinery at one fixed
        point (an all-zero chunk at t = 1): a single Euler step from zero noise, trained only there."""
        x = torch.zeros(shape, device=prefix.summary.device)
        return x - self.expert_output(prefix, x, torch.ones(shape[0], device=x.device))

    # ---- the model interface (see leanvla.models.policy) -----------------------------------------
    def prefix_of(self, obs: Observation) -> Prefix:
        return self.encode_prefix(obs.images, obs.tokens, obs.token_mask, obs.state)

    def action_error(
        self, obs: Observation, actions: torch.Tensor, noise: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        """B x H error. noise may be B x K x H x A with t B x K: K flow samples share one prefix pass
        (the backbone is most of the cost, so extra noise draws for the expert come cheap)."""
        return self._head_error_samples(self.prefix_of(obs), actions, noise, t)

    def head_error(self, prefix: Prefix, actions, noise, t) -> torch.Tensor:
        """B x H training error of the action head: flow error (of the velocity or the clean chunk),
        masked-token cross-entropy or squared error of the regressed chunk."""
        if self.cfg.head == "discrete":
            return self.expert.token_error(prefix, actions, noise, t)
        if self.cfg.head == "regression":
            return (self.regress(prefix, actions.shape) - actions).pow(2).mean(-1)
        return self.flow_error(prefix, actions, noise, t)

    def _head_error_samples(self, prefix: Prefix, actions, noise, t) -> torch.Tensor:
        if noise.dim() == 3:
            return self.head_error(prefix, actions, noise, t)
        b, k = t.shape
        err = self.head_error(
            prefix.repeat(k), actions.repeat_interleave(k, 0), noise.flatten(0, 1), t.flatten()
        )
        return err.view(b, k, -1).mean(1)

    def action_and_aux_error(
        self, obs: Observation, actions, noise, t, *targets: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(B x H action error, the auxiliary error's B-sized terms by target) from one backbone
        pass; `targets` are the future images and state, and the environment state when the head
        predicts it."""
        prefix = self.prefix_of(obs)
        err = self._head_error_samples(prefix, actions, noise, t)
        return err, auxiliary_terms(self.aux_head, self.vision, prefix.summary, *targets)

    @torch.no_grad()
    def predict(self, obs: Observation, noise: torch.Tensor) -> torch.Tensor:
        prefix = self.prefix_of(obs)
        if self.cfg.head == "discrete":
            tokens, self.last_decode = self.decode_tokens(prefix, noise)
            return self.expert.tokenizer.decode(tokens.view(noise.shape))
        if self.cfg.head == "regression":
            return self.regress(prefix, noise.shape)
        return self.sample_actions(prefix, noise)

    def decode_tokens(self, prefix: Prefix, noise: torch.Tensor | None = None):
        """(B x N action tokens, DecodeStats) with the configured decoder (discrete head); `noise`
        (B x H x A) ranks the tokens when mask-predict unmasks in random order."""
        from leanvla.decode.bidirectional import mask_predict
        from leanvla.decode.fast import fast_decode

        decoder = self.cfg.resolved_decoder()
        if decoder == "bidirectional":
            return mask_predict(self.expert, prefix, self.cfg.decode_iterations, self.cfg.decode_order, noise)
        thresholds = dict(threshold=self.cfg.commit_threshold, activation=self.cfg.activation_threshold)
        return fast_decode(self.expert, prefix, **thresholds, use_cache=decoder == "fast")

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)
