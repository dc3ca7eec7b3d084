"""Policy checkpoints: a directory loadable without any training state.

    config.json        model type and config, instructions, feature keys, leanvla version
    model.safetensors  weights, or for an adapter checkpoint (LoRA, LoRA-SP):
    adapter.safetensors  only what fine-tuning trained; config.json's "adapter" names the frozen
                       base checkpoint and its weights' SHA-256, checked on load
    stats.json         normalisation statistics (LeRobot's stats.json layout)
    provenance.json    which dataset and episodes trained it, with their object/goal positions
                       (evaluation uses these to stay on held-out positions)
A training run directory holds `last/` (a checkpoint plus optimizer/RNG state) and, when finished,
`policy/`; `resolve_checkpoint` accepts either a checkpoint or a run directory.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

import leanvla
from leanvla.atomic import atomic_dir, default_mode
from leanvla.data.normalize import Normalizer, check_stats
from leanvla.data.resize import FITTED
from leanvla.data.stats import stats_from_json, stats_to_json
from leanvla.errors import InputWarning, UserError, require
from leanvla.json_values import fits, is_number, is_whole, read_json
from leanvla.machine_errors import refusal_to_open
from leanvla.models.contract import DataContract
from leanvla.models.policy import Policy
from leanvla.models.tokenizer import WORDS
from leanvla.nearby import nearby

if TYPE_CHECKING:
    from leanvla.adapt.config import LoRAOptions

CONFIG, WEIGHTS, STATS, PROVENANCE = "config.json", "model.safetensors", "stats.json", "provenance.json"
ADAPTER = "adapter.safetensors"


def build_model(meta: dict) -> nn.Module:
    """An untrained model of the type and config in `meta` (with its adapters, if it has any)."""
    model = _build_architecture(meta)
    if meta.get("adapter"):
        from leanvla.adapt.inject import inject_adapters

        adapter = meta["adapter"]
        inject_adapters(model, adapter["kind"], adapter_options(adapter, CONFIG), adapter["eta_decay_steps"])
    return model


# What an adapter record holds beside the --lora.* options: the adapter's kind, the eta schedule's
# length in steps, and the frozen base (found and verified on load).
RECORD_KINDS = {"kind": str, "eta_decay_steps": int, "base": str, "base_sha256": str}
RECORD_KEYS = tuple(RECORD_KINDS)


def adapter_record(kind: str, options: LoRAOptions, eta_decay_steps: int, base: str | Path) -> dict:
    """config.json's "adapter" for adapters of `kind` with `options` trained on the checkpoint `base`."""
    directory = resolve_checkpoint(base)
    require(
        not read_meta(directory).get("adapter"),
        f"{directory} is itself an adapter checkpoint; fold it into plain weights first with `leanvla export`",
    )
    own = (kind, eta_decay_steps, str(directory.resolve()), file_sha256(directory / WEIGHTS))
    return {**options.to_dict(), **dict(zip(RECORD_KEYS, own, strict=True))}


def adapter_options(adapter: dict, config: str | Path) -> LoRAOptions:
    """The --lora.* options in the adapter record of a checkpoint's `config`."""
    from leanvla.adapt.config import LoRAOptions

    return LoRAOptions.from_dict(
        {k: v for k, v in adapter.items() if k not in RECORD_KEYS}, f"{config}, 'adapter'"
    )


def _build_architecture(meta: dict) -> nn.Module:
    if meta["type"] == "vla":
        from leanvla.models.vla import VLA

        return VLA(_config_class("vla").from_dict(meta["model"]))
    from leanvla.models.cnn_policy import CNNPolicy

    return CNNPolicy(_config_class("cnn").from_dict(meta["model"]))


def _config_class(kind: str, where: str = "checkpoint config") -> type[DataContract]:
    if kind == "vla":
        from leanvla.models.config import VLAConfig

        return VLAConfig
    if kind == "cnn":
        from leanvla.models.cnn_policy import CNNConfig

        return CNNConfig
    raise UserError(f"unknown model type '{kind}' in {where}; expected 'vla' or 'cnn'")


# What every checkpoint's config.json has held (make_meta), and what loading one reads.
META_KEYS = ("type", "model", "instructions", "state_key", "action_key")


def make_meta(
    kind: str,
    model_config: dict,
    instructions: list[str],
    state_key: str,
    action_key: str,
    fps: float,
    **extra,
) -> dict:
    return {
        "leanvla_version": leanvla.__version__,
        "type": kind,
        "model": model_config,
        "instructions": instructions,
        "state_key": state_key,
        "action_key": action_key,
        "fps": fps,
        **extra,
    }


def write_checkpoint_files(
    directory: Path, model: nn.Module, meta: dict, stats: dict, provenance: dict | None = None
) -> None:
    """Write the checkpoint files into an existing directory (callers make it atomic)."""
    directory = Path(directory)
    (directory / CONFIG).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    if meta.get("adapter"):
        from leanvla.adapt.inject import adapter_state_dict

        state, file = adapter_state_dict(model), ADAPTER
    else:
        state, file = model.state_dict(), WEIGHTS
    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    # One metadata entry: safetensors writes its metadata in hash order, which changes from one save
    # to the next, so with two entries identical runs wrote different bytes. The version is in config.json.
    save_tensors(tensors, directory / file, metadata={"format": "pt"})
    (directory / STATS).write_text(json.dumps(stats_to_json(stats), indent=2) + "\n", encoding="utf-8")
    if provenance is not None:
        (directory / PROVENANCE).write_text(json.dumps(provenance) + "\n", encoding="utf-8")


def save_tensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict | None = None) -> None:
    """safetensors' save_file, the file readable as any other output: save_file creates it 0600,
    so a checkpoint on a shared disk was a permission error to everyone but its writer."""
    try:
        save_file(tensors, str(path), metadata=metadata)
    except SafetensorError as exc:  # its I/O errors as the OSError they are: a full disk is one line
        number = re.search(r"\(os error (\d+)\)", str(exc))
        if number is None:
            raise
        raise OSError(int(number.group(1)), os.strerror(int(number.group(1))), str(path)) from exc
    os.chmod(path, default_mode(0o666))


def save_checkpoint(
    directory: Path,
    model: nn.Module,
    meta: dict,
    stats: dict,
    provenance: dict | None = None,
    replace: bool = True,
) -> None:
    """Write a complete checkpoint directory atomically, replacing an older one, or, without
    `replace`, refusing one another process wrote meanwhile (atomic_dir)."""
    with atomic_dir(Path(directory), replace=replace) as tmp:
        write_checkpoint_files(tmp, model, meta, stats, provenance)


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint directory, or a run directory's finished policy (else its last checkpoint)."""
    path = Path(path)
    require(
        path.exists(),
        f"checkpoint {path} does not exist; pass a checkpoint directory (config.json + model.safetensors) "
        "or a training run directory",
    )
    for candidate in (path, path / "policy", path / "last"):
        if (candidate / CONFIG).is_file() and (
            (candidate / WEIGHTS).is_file() or (candidate / ADAPTER).is_file()
        ):
            # A run's last checkpoint, read in place of its policy: said, lest it pass for the final one.
            if candidate.name == "last" and candidate != path:
                warnings.warn(
                    f"{path} holds no finished policy (policy/): reading its last checkpoint, {candidate} "
                    "(a run still training, or stopped; name last/ itself to read it without this warning)",
                    InputWarning,
                    stacklevel=2,
                )
            return candidate
    raise UserError(
        f"{path} is not a checkpoint: expected {CONFIG} and {WEIGHTS} (or {ADAPTER}) in it (or in its "
        f"policy/ or last/ subdirectory){nearby(path, CONFIG, 'checkpoint')}"
    )


def checkpoint_inputs(flag: str, path: str | Path | None) -> list[tuple[str, Path]]:
    """(flag, path) and the places in it `resolve_checkpoint` reads from (policy/, last/), for
    `require_creatable`: an output replacing any of them deletes what the command reads."""
    return [] if path is None else [(flag, Path(path) / part) for part in ("", "policy", "last")]


def read_checkpoint_json(path: Path, missing: str | None = None) -> dict | None:
    """A checkpoint's JSON object, refused in one line if it is not one (edited by hand, or
    truncated) or, where `missing` says why it is needed, absent; None if absent and optional."""
    if not path.is_file():
        require(missing is None, f"{path} is missing; {missing}")
        return None
    obj = read_json(path)
    require(isinstance(obj, dict), f"{path} must hold a JSON object, not {type(obj).__name__}")
    return obj


def read_stats(directory: Path) -> dict:
    """The normalisation statistics a checkpoint keeps: {feature: {statistic: array}}."""
    obj = read_checkpoint_json(directory / STATS, "a checkpoint needs its normalisation statistics")
    require(
        all(isinstance(s, dict) for s in obj.values()),
        f"{directory / STATS} must hold an object of features, each an object of statistics "
        '(LeRobot\'s stats.json layout: {"action": {"mean": [...], ...}, ...})',
    )
    try:
        return stats_from_json(obj)
    except ValueError as exc:  # numpy's, on lists of uneven lengths
        raise UserError(f"cannot read the statistics in {directory / STATS}: {exc}") from exc


def read_meta(directory: Path) -> dict:
    """A checkpoint's config.json, every value its readers take checked (it may be edited by hand)."""
    path = Path(directory) / CONFIG
    meta = read_checkpoint_json(path, "a checkpoint needs its model config")
    absent = [key for key in META_KEYS if key not in meta]
    require(
        not absent,
        f"{path} has no '{absent[0] if absent else ''}': it is not a leanvla "
        f"checkpoint's config, which holds {', '.join(META_KEYS)} (was it edited?)",
    )
    config_class, model = _config_class(meta["type"], str(path)), meta["model"]
    require(isinstance(model, dict), f"{path}: 'model' must be an object of the policy's settings")
    instructions = meta["instructions"]
    require(
        isinstance(instructions, list) and instructions and all(isinstance(i, str) for i in instructions),
        f"{path}: 'instructions' must be a list of the instructions the policy was trained on, "
        f"got {json.dumps(instructions)}",
    )
    for key in ("state_key", "action_key"):
        require(
            isinstance(meta[key], str),
            f"{path}: '{key}' must be a feature's name, got {json.dumps(meta[key])}",
        )
    fit = model.setdefault("image_fit", "pad")  # written before frames could be cropped: they were padded
    require(
        fit in FITTED,
        f"{path}: image_fit '{fit}' is not one of {', '.join(FITTED)}; set it to the fit the policy was trained with",
    )
    if meta["type"] == "vla":
        # written before instructions in any script were read: their words were a-z and 0-9
        words = model.setdefault("instruction_words", "ascii")
        require(words in WORDS, f"{path}: instruction_words '{words}' is not one of {', '.join(WORDS)}")
    config_class.check_values(model, f"{path}'s model")
    return meta


def first_mismatch(expected: dict[str, torch.Tensor], given: dict[str, torch.Tensor]) -> str | None:
    """The first parameter of `expected` that `given` lacks or shapes differently (None: all match)."""
    for name, tensor in expected.items():
        if name not in given or tuple(given[name].shape) != tuple(tensor.shape):
            return name
    return None


def load_state_dict_checked(
    model: nn.Module, state: dict[str, torch.Tensor], source: str, own: dict | None = None
) -> None:
    """Load weights, naming the first parameter whose name or shape does not match.

    `own` restricts the check to part of the model's state (an adapter's); the rest stays as it is.
    """
    own = model.state_dict() if own is None else own
    name = first_mismatch(own, state)
    if name is not None and name not in state:
        raise UserError(
            f"{source} has no parameter '{name}' that the model config expects; the weights and config.json "
            "do not match"
        )
    if name is not None:
        raise UserError(
            f"parameter '{name}' has shape {list(state[name].shape)} in {source} but the config gives "
            f"{list(own[name].shape)}"
        )
    extra = [n for n in state if n not in own]
    if extra:
        raise UserError(
            f"{source} has parameter '{extra[0]}' that the model config does not have; the weights and "
            "config.json do not match"
        )
    require_finite(state, source, "the policy's actions would be NaN")
    model.load_state_dict(state, strict=len(own) == len(model.state_dict()))


def require_finite(tensors: dict[str, torch.Tensor], source: str | Path, consequence: str) -> None:
    """Refuse weights holding a NaN or an infinity (from elsewhere, or damaged), naming the first
    tensor: what they feed would be NaN, without a word. A sum in float64 is NaN or infinite exactly
    when one of its terms is (a float32 tensor's cannot overflow it), and it makes no bool tensor
    the size of the weights, as isfinite on each entry would."""
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor.sum(dtype=torch.float64))):
            raise UserError(f"{source}: '{name}' holds a NaN or an infinity; {consequence}")


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; one that is missing or not safetensors is one clear line,
    one the filesystem refuses the error Python's open gives."""
    try:
        return load_file(str(path))
    except FileNotFoundError as exc:  # or there, and refused: safetensors says the same of both
        refused = refusal_to_open(path)
        if refused is not None:
            raise refused from exc
        raise UserError(f"{path} does not exist") from exc
    except SafetensorError as exc:
        raise UserError(
            f"{path} is not a readable safetensors file ({exc}); was it truncated or overwritten?"
        ) from exc


def file_sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _load_adapted(meta: dict, directory: Path) -> nn.Module:
    """The frozen base from its own checkpoint, with this checkpoint's adapters on it."""
    from leanvla.adapt.inject import adapter_state_dict, inject_adapters

    adapter, where = meta["adapter"], f"{directory / CONFIG}, 'adapter'"
    require(isinstance(adapter, dict), f"{where} must be an object of the adapters' options")
    for key, kind in RECORD_KINDS.items():
        require(
            key in adapter and fits(adapter[key], kind),
            f"{where}: '{key}' must be {kind.__name__}, got {json.dumps(adapter.get(key))}",
        )
    base = Path(adapter["base"])
    require(
        (base / WEIGHTS).is_file(),
        f"{directory} adapts the base checkpoint {base}, which is gone; put it back or fold the adapters "
        "with `leanvla export` where it exists",
    )
    require(
        file_sha256(base / WEIGHTS) == adapter["base_sha256"],
        f"the base checkpoint {base} changed since {directory} was trained on it (SHA-256 differs); its "
        "adapters would not fit it",
    )
    model = load_model(base)[0]
    inject_adapters(
        model, adapter["kind"], adapter_options(adapter, directory / CONFIG), adapter["eta_decay_steps"]
    )
    own = adapter_state_dict(model)
    load_state_dict_checked(model, read_weights(directory / ADAPTER), str(directory / ADAPTER), own)
    return model


def load_model(path: str | Path) -> tuple[nn.Module, dict, dict, Path]:
    """(model with weights, meta, stats, checkpoint dir) from a checkpoint or run directory."""
    directory = resolve_checkpoint(path)
    meta = read_meta(directory)
    if meta.get("adapter"):
        model = _load_adapted(meta, directory)
    else:
        model = build_model(meta)
        load_state_dict_checked(model, read_weights(directory / WEIGHTS), str(directory / WEIGHTS))
    stats = read_stats(directory)
    model_cfg = meta["model"]
    sizes = {meta["state_key"]: model_cfg["state_dim"], meta["action_key"]: model_cfg["action_dim"]}
    check_stats(stats, {**sizes, **dict.fromkeys(model_cfg["cameras"], 3)}, str(directory / STATS))
    return model, meta, stats, directory


def load_policy(path: str | Path) -> Policy:
    model, meta, stats, _ = load_model(path)
    normalizer = Normalizer(stats, meta["state_key"], meta["action_key"], meta["model"]["cameras"])
    model.eval()
    return Policy(model, normalizer, meta)


def _positions(value) -> bool:
    """Each training episode's object/goal positions (their number differs between tasks); null
    where unknown."""
    return isinstance(value, list) and all(
        p is None or (isinstance(p, list) and all(is_number(x) for x in p)) for p in value
    )


# provenance.json's entries, each with a test of its kind and the kind in words.
PROVENANCE_KINDS = {
    "dataset": (lambda v: isinstance(v, str), "the dataset's path"),
    "episodes": (
        lambda v: isinstance(v, list) and all(is_whole(e, 0) for e in v),
        "a list of episode indices",
    ),
    "instructions": (
        lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v),
        "a list of instructions",
    ),
    "camera_shapes": (
        lambda v: (
            isinstance(v, dict)
            and all(
                isinstance(s, list) and len(s) == 2 and all(is_whole(n, 1) for n in s) for s in v.values()
            )
        ),
        "an object of each camera's [height, width]",
    ),
    "positions": (_positions, "a list of each episode's positions (a list of numbers, or null)"),
}


def read_provenance(path: str | Path) -> dict:
    """What trained the checkpoint (train.build.provenance), each entry checked: probe and eval
    read them (a positions entry of the wrong kind was a traceback, episodes given as text a
    silently wrong set); {} where there is no provenance.json."""
    where = resolve_checkpoint(path) / PROVENANCE
    provenance = read_checkpoint_json(where) or {}
    for key, (holds, kind) in PROVENANCE_KINDS.items():
        if key in provenance and not holds(provenance[key]):
            raise UserError(f"{where}: '{key}' must be {kind}, got {json.dumps(provenance[key])[:80]}")
    return provenance
