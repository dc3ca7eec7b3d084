"""The reference VLA's configuration and its named sizes, from a CPU test size to a GPU size.

A config holds both the architecture and the data contract the weights were trained for (cameras,
image size, state/action dims, chunk length: `leanvla.models.contract`), so a checkpoint says
exactly what it consumes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace

from leanvla.errors import UserError
from leanvla.models.contract import DataContract


@dataclass
class VLAConfig(DataContract):
    # ---- data contract: DataContract's fields come first ----
    # ---- vision ----
    vision_patch: int = 4
    """Patch size of the stem's first stage (kernel = stride)."""
    vision_channels: list[int] = field(default_factory=lambda: [64, 128])
    """Conv stem channels: a patch embedding, then stride-2 convs."""
    vision_layers: int = 0
    """Transformer layers on the patch tokens (a small ViT on top of the stem); 0 = stem only."""
    vision_heads: int = 4
    pixel_shuffle: int = 2
    """Merge s x s neighbouring patch tokens into one (SmolVLA's token reduction)."""
    vision_flat_token: bool = False
    """Add one token per camera: a linear map of all that camera's tokens laid side by side (the CNN
    baseline's flatten-and-project readout), so each location's features keep their own weights
    instead of being mixed by attention."""
    # ---- language ----
    vocab_size: int = 4096
    max_instruction_tokens: int = 12
    instruction_words: str = "unicode"
    """What the tokenizer takes for a word (leanvla.models.tokenizer.WORDS): 'unicode', or 'ascii'
    (a-z and 0-9 only), which checkpoints written before 2026-12-05 were trained with."""
    # ---- backbone ("VLM") ----
    width: int = 128
    layers: int = 4
    heads: int = 4
    kv_heads: int = 2
    head_dim: int = 32
    mlp_ratio: float = 3.0
    # ---- action expert ----
    expert_width: int = 96
    expert_layers: int = 4
    expert_mlp_ratio: float = 3.0
    expert_to_backbone: list[int] | None = None
    """Backbone layer whose keys/values each expert layer attends to; None = spread evenly."""
    # ---- head ----
    head: str = "flow"
    """Action head: 'flow' (flow matching, Euler sampling), 'discrete' (masked action tokens) or
    'regression' (the expert regresses the chunk, MSE)."""
    flow_target: str = "velocity"
    """What the flow head's expert outputs: 'velocity' (noise - actions, as pi0/SmolVLA; its loss
    weighs each flow time t by 1/t^2 against the action error) or 'action' (the clean chunk,
    x-prediction: the same path and Euler sampler, velocity (x_t - output) / t, its loss the action
    error at every t alike)."""
    flow_steps: int = 10
    """Euler steps when sampling the flow head."""
    flow_noise: float = 1.0
    """Flow head at inference: scale of the noise sampling starts from (1 = the training
    distribution; 0 = deterministic, every draw integrates from the noise's mean)."""
    action_vocab: int = 256
    """Discrete head: bins per action dimension."""
    token_block: int = 0
    """Discrete head: action tokens per attention block (block-causal, Fast-dVLA); 0 = one block
    over the whole chunk (bidirectional)."""
    decoder: str = "auto"
    """Discrete head at inference: 'bidirectional' (mask-predict), 'fast' (Fast-dVLA, KV cache),
    'fast-nocache' (the same decisions, every started block recomputed); 'auto' = fast when
    trained block-causal, else bidirectional."""
    decode_iterations: int = 10
    """Mask-predict iterations (the bidirectional decoder's forward passes per chunk)."""
    decode_order: str = "confidence"
    """Mask-predict: which masked tokens an iteration commits, 'confidence' (most confident first),
    'random' (a random permutation per chunk) or 'left-to-right'."""
    commit_threshold: float = 0.9
    """Fast decoder: commit a token once its confidence reaches this (below 1/vocab: every token
    of a block in the block's first pass, one pass per block)."""
    activation_threshold: float = 0.5
    """Fast decoder: start the next block once this fraction of the current one is committed."""
    # ---- auxiliary objective (training only; see leanvla.models.auxiliary) ----
    aux_horizon: int = 0
    """Frames ahead the auxiliary head predicts (image features + state); 0 = no auxiliary head."""
    aux_env_dim: int = 0
    """Environment-state dimensions the auxiliary head also predicts (--aux.env-state); 0 = none."""
    aux_pixels: bool = False
    """The auxiliary head also decodes the future frame's pixels (--aux.pixels)."""

    def __post_init__(self) -> None:
        if self.expert_to_backbone is None:
            self.expert_to_backbone = default_layer_map(self.expert_layers, self.layers)
        self.vision_grid()
        self.check_head()

    def vision_grid(self) -> int:
        """Side of the stem's token grid (before pixel shuffle); one clear line if the sizes do not fit."""
        stages = len(self.vision_channels)
        stride = self.vision_patch * 2 ** (stages - 1) if stages and self.vision_patch >= 1 else 0
        grid = self.image_size // stride if stride else 0
        if grid < 1 or self.image_size % stride or grid % self.pixel_shuffle:
            raise UserError(
                f"vision stem (patch {self.vision_patch}, channels {self.vision_channels}) on "
                f"{self.image_size} px images gives no whole grid divisible by pixel_shuffle "
                f"{self.pixel_shuffle}; pick a patch size and stage count whose stride divides the image size"
            )
        return grid

    def check_head(self) -> None:
        """One clear line for a head or decoder setting that cannot work."""
        choices = {"head": HEADS, "decoder": DECODERS, "flow_target": FLOW_TARGETS}
        for name, allowed in choices.items():
            value = getattr(self, name)
            if value not in allowed:
                raise UserError(f"model {name} '{value}' is not one of {', '.join(allowed)}")
        from leanvla.decode.bidirectional import check_iterations, check_order
        from leanvla.decode.fast import check_thresholds

        check_thresholds(self.commit_threshold, self.activation_threshold)
        if not 0 <= self.flow_noise < math.inf:  # inf ran, the actions NaN
            raise UserError(
                f"--flow-noise must be finite and >= 0 (1 = as trained, 0 = deterministic), got {self.flow_noise}"
            )
        if self.head == "discrete":
            from leanvla.decode.masks import check_head_shape

            check_iterations(self.decode_iterations)
            check_order(self.decode_order)
            check_head_shape(self.chunk_size * self.action_dim, self.token_block, self.action_vocab)

    def resolved_decoder(self) -> str:
        """The discrete head's decoder, 'auto' resolved: fast when trained block-causal."""
        if self.decoder != "auto":
            return self.decoder
        n_tokens = self.chunk_size * self.action_dim
        return "fast" if 0 < self.token_block < n_tokens else "bidirectional"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> VLAConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UserError(f"model config has unknown keys {unknown}; was it written by a newer leanvla?")
        return cls(**d)


HEADS = ("flow", "discrete", "regression")
DECODERS = ("auto", "bidirectional", "fast", "fast-nocache")
FLOW_TARGETS = ("velocity", "action")


def default_layer_map(expert_layers: int, backbone_layers: int) -> list[int]:
    """Expert layer i attends to backbone layer round(i * (Lb - 1) / (Le - 1)): first to first, last to last."""
    if expert_layers == 1:
        return [backbone_layers - 1]
    return [round(i * (backbone_layers - 1) / (expert_layers - 1)) for i in range(expert_layers)]


SIZES: dict[str, dict] = {
    # CPU unit tests: well under 1M parameters.
    "tiny": dict(
        vision_channels=[16, 32],
        width=64,
        layers=2,
        heads=4,
        kv_heads=2,
        head_dim=16,
        expert_width=32,
        expert_layers=2,
        mlp_ratio=2.0,
        expert_mlp_ratio=2.0,
    ),
    # CPU demo and benchmarks (a few million parameters).
    "small": dict(
        vision_channels=[64, 128],
        width=128,
        layers=4,
        heads=4,
        kv_heads=2,
        head_dim=32,
        expert_width=96,
        expert_layers=4,
    ),
    "base": dict(
        vision_channels=[64, 192],
        vision_layers=2,
        width=256,
        layers=8,
        heads=8,
        kv_heads=4,
        head_dim=32,
        expert_width=192,
        expert_layers=8,
    ),
    # GPU size: SmolVLA's shape at ~1/4 of its parameters.
    "large": dict(
        vision_channels=[128, 384],
        vision_layers=6,
        vision_heads=6,
        width=768,
        layers=12,
        heads=12,
        kv_heads=4,
        head_dim=64,
        expert_width=512,
        expert_layers=12,
    ),
}


def vla_config(size: str = "small", **overrides) -> VLAConfig:
    if size not in SIZES:
        raise UserError(f"unknown model size '{size}'; choose one of {', '.join(SIZES)}")
    return replace(VLAConfig(), **{**SIZES[size], "expert_to_backbone": None, **overrides})
