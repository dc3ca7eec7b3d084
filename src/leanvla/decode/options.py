"""How a policy decodes its action chunks, changed where it runs (`leanvla eval`, `leanvla probe`)
without retraining: the discrete head's decoder and its thresholds, the flow head's noise scale.

The options are checked against the policy before it runs (one clear line if they cannot work
with its head, or if a value is out of range), applied to its model's config, and summarised in
the result with what decoding cost: the action expert's forward passes per chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal

from leanvla.errors import require

DISCRETE = ("decoder", "commit_threshold", "activation_threshold", "decode_iterations", "decode_order")


@dataclass
class DecodingOptions:
    """How the policy decodes its action chunks (default: as it was saved)."""

    decoder: Literal["auto", "bidirectional", "fast", "fast-nocache"] | None = None
    """Discrete head: 'bidirectional' (mask-predict), 'fast' (Fast-dVLA), 'fast-nocache' (the same
    decisions without its KV cache), 'auto' (fast if the head is block-causal) (default: the
    policy's)."""
    commit_threshold: float | None = None
    """Fast decoder: confidence at which a token is committed (default: the policy's); below
    1/vocab every token of a block commits in the block's first pass."""
    activation_threshold: float | None = None
    """Fast decoder: fraction of a block committed before the next starts (default: the policy's)."""
    decode_iterations: int | None = None
    """Bidirectional decoder: mask-predict iterations (default: the policy's)."""
    decode_order: Literal["confidence", "random", "left-to-right"] | None = None
    """Bidirectional decoder: the order tokens are committed in (default: the policy's)."""
    flow_noise: float | None = None
    """Flow head: scale of the noise sampling starts from (default: the policy's, 1 = as trained;
    0 = deterministic)."""

    def overrides(self, meta: dict, checkpoint: Path) -> dict:
        """The settings to change on the policy whose config.json holds `meta`, checked against it."""
        chosen = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}
        head = meta["model"].get("head", "flow") if meta["type"] == "vla" else meta["type"]
        require(
            head == "discrete" or not set(chosen) & set(DISCRETE),
            f"--decoder and its thresholds need a discrete-head policy; {checkpoint} has a '{head}' head",
        )
        require(
            head == "flow" or "flow_noise" not in chosen,
            f"--flow-noise needs a flow-head VLA; {checkpoint} has a '{head}' head",
        )
        if chosen:
            decoding_config(meta, chosen)  # validates the values
        return chosen


def decoding_config(meta: dict, overrides: dict):
    """The VLA's config as it decodes with `overrides` applied."""
    from leanvla.models.config import VLAConfig

    return VLAConfig.from_dict({**meta["model"], **overrides})


def apply_overrides(policy, overrides: dict) -> None:
    """Set on a loaded policy's model config, which its decoders read at every chunk."""
    for name, value in overrides.items():
        setattr(policy.model.cfg, name, value)


def decoding_summary(meta: dict, overrides: dict, chunks: int, passes: int) -> dict:
    """What decoded the chunks, for a result file: the flow head's Euler steps and noise, or the
    discrete decoder, its settings, and the expert's `passes` over `chunks` (chunks decoded
    together in one batch count once: the samples of a batch share their passes)."""
    if meta["type"] != "vla":
        return {}
    settings = decoding_config(meta, overrides)
    if settings.head == "flow":
        return {"flow": {"flow_steps": settings.flow_steps, "flow_noise": settings.flow_noise}}
    if settings.head != "discrete":
        return {}
    tokens = settings.chunk_size * settings.action_dim
    return {
        "decode": {
            "decoder": settings.resolved_decoder(),
            "token_block": settings.token_block,
            "decode_iterations": settings.decode_iterations,
            "decode_order": settings.decode_order,
            "commit_threshold": settings.commit_threshold,
            "activation_threshold": settings.activation_threshold,
            "forward_passes_per_chunk": passes / max(1, chunks),
            "tokens_per_pass": tokens * chunks / max(1, passes),
        }
    }
