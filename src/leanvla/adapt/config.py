"""Options of `leanvla train --adapter lora|lora-sp` (the `--lora.*` flags), and their validation."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Literal

from leanvla.adapt.lora_sp import PATHS
from leanvla.errors import UserError, require
from leanvla.flags import set_flags
from leanvla.json_values import check_fields
from leanvla.option_lists import parse_groups

ADAPTERS = ("full", "lora", "lora-sp")
PREFIX = "--lora."  # of every LoRAOptions flag on the command line

# The options only LoRA-SP reads: peft's LoRA has one fixed rank and no router.
LORA_SP_ONLY = (
    "eta",
    "eta_start",
    "eta_decay",
    "group_eta",
    "spectral_weight",
    "group_spectral_weight",
    "router_rank",
    "path",
)


@dataclass
class LoRAOptions:
    """Adapters on the Linear modules of a frozen base: LoRA (peft) or LoRA-SP."""

    rank: int = 32
    """LoRA rank, or the size R of LoRA-SP's vector bank."""
    alpha: float | None = None
    """Scale numerator: the update is multiplied by alpha / rank (default 2 * rank, scale 2)."""
    targets: str = "backbone,expert,vision"
    """Layout stacks whose Linear modules get adapters (the reference VLA has backbone, expert, vision)."""
    regex: str | None = None
    """Instead of --lora.targets: adapt every nn.Linear whose qualified name matches this regex."""
    group_rank: str = ""
    """Per-stack rank overrides, e.g. 'vision=64,expert=16'."""
    train_io: bool = True
    """Train in full the modules outside the layer stacks that the layout names as the model's inputs
    and outputs (reference VLA: vision stem and connector, state projection, the action expert's
    action, time and condition projections), which adapters on the stacks would leave frozen."""
    train_modules: str | None = None
    """Regex of further modules trained in full beside the adapters (e.g. 'embed_tokens')."""
    eta: float = 0.9
    """LoRA-SP: energy fraction the kept vectors must hold at the end of the eta schedule, in (0, 1]."""
    eta_start: float = 1.0
    """LoRA-SP: eta at step 0 (every vector kept), in (0, 1]."""
    eta_decay: float = 0.5
    """LoRA-SP: fraction of training over which eta falls from eta_start to eta (cosine)."""
    group_eta: str = ""
    """LoRA-SP: per-stack eta overrides, e.g. 'vision=0.95'."""
    spectral_weight: float = 1e-3
    """LoRA-SP: weight of the energy-concentration loss (0 = off)."""
    group_spectral_weight: str = ""
    """LoRA-SP: per-stack spectral-weight overrides, e.g. 'vision=0' (that stack's routers are left
    to the task alone)."""
    router_rank: int = 0
    """LoRA-SP: the router's bottleneck width h (d_in -> h -> R); 0 = one d_in x R Linear, as large as A."""
    path: Literal["auto", "dense", "gather"] = "auto"
    """LoRA-SP: compute only the active vectors ('gather'), all of them ('dense'), or decide per call
    ('auto': on the CPU, gather when the vectors any token keeps are at most a quarter of R; on a GPU,
    dense, since counting them would make the host wait in every layer)."""

    def validate(self) -> None:
        require(self.rank >= 1, f"--lora.rank must be >= 1, got {self.rank}")
        require(
            self.alpha is None or 0 < self.alpha < math.inf,
            f"--lora.alpha must be finite and > 0, got {self.alpha}",
        )
        for name, value in (("eta", self.eta), ("eta-start", self.eta_start)):
            require(0 < value <= 1, f"--lora.{name} must be in (0, 1], got {value}")
        for stack, value in self.group_overrides("group_eta").items():
            require(0 < value <= 1, f"--lora.group-eta for '{stack}' must be in (0, 1], got {value}")
        require(0 <= self.eta_decay <= 1, f"--lora.eta-decay must be in [0, 1], got {self.eta_decay}")
        require(
            0 <= self.spectral_weight < math.inf,
            f"--lora.spectral-weight must be finite and >= 0, got {self.spectral_weight}",
        )
        for stack, value in self.group_overrides("group_spectral_weight").items():
            require(
                0 <= value < math.inf,
                f"--lora.group-spectral-weight for '{stack}' must be finite and >= 0, got {value}",
            )
        require(
            self.router_rank >= 0,
            f"--lora.router-rank must be >= 0 (0 = full router), got {self.router_rank}",
        )
        require(self.path in PATHS, f"--lora.path must be one of {PATHS}, got '{self.path}'")
        for stack, value in self.group_overrides("group_rank").items():
            require(value >= 1, f"--lora.group-rank for '{stack}' must be >= 1, got {value}")

    def check_used_by(self, adapter: str, typed: Iterable[str] = ()) -> None:
        """An option the adapter would ignore is a mistake (`--lora.rank 8` without `--adapter lora`
        would fine-tune every weight): say which. `typed` holds the flags given on the command line,
        so that one typed at its default value (`--lora.rank 32`) counts as set too."""
        flags = set_flags(self, typed, PREFIX)
        if adapter == "full" and flags:
            flag = next(iter(flags.values()))
            raise UserError(
                f"{flag} sets an adapter, but --adapter is full (the default): pass --adapter lora or "
                f"lora-sp (with --init) to train adapters, or drop {flag}"
            )
        if adapter == "lora":
            for name, flag in flags.items():
                require(
                    name not in LORA_SP_ONLY,
                    f"{flag} applies to --adapter lora-sp only (peft's LoRA has one fixed rank): "
                    "pass --adapter lora-sp, or drop it",
                )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, where: str) -> LoRAOptions:
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise UserError(
                f"{where}: unknown adapter option '{unknown[0]}' (written by a newer leanvla?); upgrade leanvla"
            )
        check_fields(cls, d, where)
        # Adapters saved before train_io existed kept those modules frozen.
        return cls(**{"train_io": False, **d})

    def group_overrides(self, field: str) -> dict:
        """One of the GROUP_OPTIONS parsed: {stack: value}."""
        return parse_groups(getattr(self, field), "--lora." + field.replace("_", "-"), GROUP_OPTIONS[field])

    def rank_for(self, stack: str | None) -> int:
        return self.group_overrides("group_rank").get(stack, self.rank)

    def eta_for(self, stack: str | None) -> float:
        return self.group_overrides("group_eta").get(stack, self.eta)

    def spectral_weight_for(self, stack: str | None) -> float:
        return self.group_overrides("group_spectral_weight").get(stack, self.spectral_weight)

    def alpha_for(self, rank: int) -> float:
        """Keeps alpha / rank fixed across per-group ranks."""
        return (self.alpha if self.alpha is not None else 2.0 * self.rank) * rank / self.rank


# The per-stack overrides, with the type of their values.
GROUP_OPTIONS = {"group_rank": int, "group_eta": float, "group_spectral_weight": float}
