"""Fold adapters into the base weights: a plain checkpoint for deployment.

LoRA folds exactly: W + scale * B A. LoRA-SP's update depends on the input through its router, so
no single weight reproduces it; what can be folded is the update at the mean routing,
W + scale * B diag(mean over calibration tokens of s(x) m(x)) A. That export is offered, and its
success cost is measured by `benchmarks/adapt.py`, never assumed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from leanvla.adapt.inject import is_adapter_layer, lora_sp_layers, replace_module
from leanvla.adapt.lora_sp import LoRASPLinear
from leanvla.atomic import require_output
from leanvla.data.lerobot_home import DatasetDir
from leanvla.errors import require
from leanvla.flags import set_flags

CALIBRATION = ("data", "samples", "batch_size", "seed")  # the options only LoRA-SP's export reads


@dataclass
class ExportConfig:
    """Fold a LoRA / LoRA-SP policy's adapters into its base weights and write a plain checkpoint."""

    policy: Path
    """Adapter checkpoint or training run directory."""
    out: Path
    """Output checkpoint directory."""
    data: DatasetDir | None = None
    """LoRA-SP only: frames that measure the mean routing (default: the policy's training data)."""
    samples: int = 512
    """LoRA-SP only: calibration frames."""
    batch_size: int = 64
    """LoRA-SP only: calibration frames per forward pass."""
    seed: int = 0
    """LoRA-SP only: seed of the calibration frames' draw."""
    overwrite: bool = False

    def check_options_used(self, typed: Iterable[str] = ()) -> None:
        """The calibration options measure LoRA-SP's mean routing; LoRA folds exactly without them.
        `typed` holds the command line's flags, so that one typed at its default value counts too."""
        from leanvla.models.checkpoint import read_meta, resolve_checkpoint

        adapter = read_meta(resolve_checkpoint(self.policy)).get("adapter")
        kind = adapter["kind"] if adapter else None  # a plain checkpoint is refused by the export itself
        calibration = {n: f for n, f in set_flags(self, typed).items() if n in CALIBRATION}
        require(
            kind in (None, "lora-sp") or not calibration,
            f"{next(iter(calibration.values()), '')} calibrates LoRA-SP's routing, but {self.policy} holds "
            f"{kind} adapters, which fold exactly: drop it",
        )


def fold_adapters(model: nn.Module) -> nn.Module:
    """Replace every adapter layer by its base Linear holding the folded weight, in place.

    LoRA-SP layers use the mean gate recorded since their last `reset_statistics()`.
    """
    for name, module in [(n, m) for n, m in model.named_modules() if is_adapter_layer(m)]:
        if isinstance(module, LoRASPLinear):
            base = module.base_layer
            with torch.no_grad():
                base.weight += module.static_delta(module.mean_gate()).to(base.weight)
        else:  # peft LoRA
            module.merge()
            base = module.get_base_layer()
        replace_module(model, name, base)
    for p in model.parameters():
        p.requires_grad_(True)
    return model


@torch.no_grad()
def record_mean_routing(model: nn.Module, data, normalizer, samples: int, batch_size: int, seed: int) -> None:
    """Run calibration frames through a LoRA-SP model so each layer holds its mean gate."""
    from leanvla.prune.calibrate import vla_calibration

    model.eval()
    layers = lora_sp_layers(model).values()
    for layer in layers:
        layer.reset_statistics()
        layer.track_routing = True
    try:
        batches, run = vla_calibration(model, data, normalizer, samples, batch_size, seed)
        for rows in batches:
            run(rows)
    finally:
        for layer in layers:
            layer.track_routing = False


def export_checkpoint(cfg: ExportConfig) -> Path:
    from leanvla.data.normalize import Normalizer
    from leanvla.data.reader import LeRobotDataset
    from leanvla.data.samples import ChunkDataset
    from leanvla.models.checkpoint import (
        CONFIG,
        checkpoint_inputs,
        load_model,
        read_provenance,
        save_checkpoint,
    )
    from leanvla.train.build import check_contract

    out = Path(cfg.out)
    inputs = [("--data", cfg.data), *checkpoint_inputs("--policy", cfg.policy)]
    require_output(out, "--out", cfg.overwrite, "a checkpoint", CONFIG, inputs)
    model, meta, stats, directory = load_model(cfg.policy)
    adapter = meta.get("adapter")
    require(adapter is not None, f"{directory} has no adapters to fold; it is already a plain checkpoint")
    cfg.check_options_used()
    if adapter["kind"] == "lora-sp":
        for flag, value in (("--samples", cfg.samples), ("--batch-size", cfg.batch_size)):
            require(value >= 1, f"{flag} must be >= 1, got {value}")
        data_dir = cfg.data or Path(meta["train"]["data"])
        require(Path(data_dir).is_dir(), f"calibration data {data_dir} does not exist; pass --data DIR")
        model_cfg = meta["model"]
        dataset = LeRobotDataset(data_dir)
        check_contract(model_cfg, dataset, f"checkpoint {directory}", meta.get("fps"))  # before decoding
        data = ChunkDataset.for_policy(dataset, model_cfg)
        normalizer = Normalizer(stats, meta["state_key"], meta["action_key"], model_cfg["cameras"])
        record_mean_routing(model, data, normalizer, cfg.samples, cfg.batch_size, cfg.seed)
    fold_adapters(model)
    plain = {k: v for k, v in meta.items() if k != "adapter"}
    plain["exported_from"] = {"checkpoint": str(directory.resolve()), "adapter": adapter}
    save_checkpoint(out, model, plain, stats, read_provenance(directory) or None, replace=cfg.overwrite)
    return out
