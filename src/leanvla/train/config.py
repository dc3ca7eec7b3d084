"""`leanvla train` options."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal

from leanvla.adapt.config import LoRAOptions
from leanvla.cores import check_threads
from leanvla.data.lerobot_home import DatasetDir
from leanvla.errors import InputWarning, UserError, require
from leanvla.flags import set_flags
from leanvla.optional import require_module


def check_state_augmentation(state_noise: float, state_dropout: float) -> None:
    """--state-noise is a std, --state-dropout a probability: say so before any data is read."""
    require(
        math.isfinite(state_noise) and state_noise >= 0,
        f"--state-noise must be finite and >= 0 (a std), got {state_noise}",
    )
    require(0 <= state_dropout < 1, f"--state-dropout is a probability in [0, 1), got {state_dropout}")


# A new policy's action chunking when --chunk-size / --n-action-steps are not given.
DEFAULT_CHUNK_SIZE = 16
DEFAULT_N_ACTION_STEPS = 8


@dataclass
class ModelOptions:
    """Which model to train and how big."""

    type: Literal["vla", "cnn"] = "vla"
    """'vla' (the reference VLA) or 'cnn' (the plain behaviour-cloning baseline)."""
    size: str = "small"
    """Named VLA size: tiny (CPU tests), small (CPU demo), base, large (GPU)."""
    image_size: int | None = None
    """Side of the square images the policy takes, in pixels (VLA and CNN). Cameras of another shape
    are fitted to it (--model.image-fit). Default: the dataset's, when its cameras are square and of
    one size."""
    image_fit: Literal["pad", "crop"] = "pad"
    """How a camera of another shape is fitted to the square: 'pad' scales its longer side to it and
    pads the shorter with black (all of the view, in fewer pixels); 'crop' keeps its centred square,
    scaled (no black, the view's sides lost). Kept with the policy, which fits its frames so at
    inference too."""
    width: int | None = None
    """Override the backbone width."""
    layers: int | None = None
    """Override the backbone depth."""
    expert_width: int | None = None
    """Override the action expert width."""
    expert_layers: int | None = None
    """Override the action expert depth."""
    vision_layers: int | None = None
    """Override the number of vision transformer layers."""
    vision_patch: int | None = None
    """Override the patch size of the vision stem's first stage."""
    vision_channels: list[int] | None = None
    """Override the vision stem's channels: one stage each, the first a patch embedding, the rest
    stride-2 3x3 convs (e.g. 32 64 128 with patch 2: a deeper, CNN-like stem)."""
    vision_flat_token: bool | None = None
    """Add a flatten-and-project token per camera to the prefix (the CNN baseline's image readout)."""
    flow_steps: int | None = None
    """Override the Euler steps of the flow head at inference."""
    flow_target: Literal["velocity", "action"] | None = None
    """What the flow head's expert predicts: 'velocity' (pi0/SmolVLA, the default) or 'action' (the
    clean chunk, x-prediction; same flow path and Euler sampler)."""

    def check_ranges(self) -> None:
        """A depth, width or step count that builds no working model is refused by its flag."""
        for name in ("width", "layers", "expert_width", "expert_layers", "vision_patch", "flow_steps"):
            value = getattr(self, name)
            require(
                value is None or value >= 1, f"--model.{name.replace('_', '-')} must be >= 1, got {value}"
            )
        require(
            self.image_size is None or 8 <= self.image_size <= 512,
            f"--model.image-size must be within 8..512 pixels, got {self.image_size}",
        )
        require(
            self.vision_layers is None or self.vision_layers >= 0,
            f"--model.vision-layers must be >= 0 (0 = stem only), got {self.vision_layers}",
        )
        require(
            self.vision_channels is None or (self.vision_channels and min(self.vision_channels) >= 1),
            f"--model.vision-channels must be one or more channel counts >= 1, got {self.vision_channels}",
        )

    def overrides(self) -> dict:
        """The VLA config fields set here (every field but type, size and the image's size and fit,
        the data's side of the policy's contract)."""
        contract = ("type", "size", "image_size", "image_fit")
        names = [f.name for f in fields(self) if f.name not in contract]
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


@dataclass
class DiscreteOptions:
    """The discrete action head (`--head discrete`): tokens, bins and attention blocks."""

    vocab: int = 256
    """Bins per action dimension."""
    bins: Literal["uniform", "quantile"] = "uniform"
    """Bin edges over the normalised training actions: uniform over each dimension's range, or
    equal-mass quantiles (finer where actions are dense)."""
    block: int = 0
    """Action tokens (chunk_size x action_dim in all) per block-causal attention block, with
    diffusion-forcing noise rising along the chunk: what Fast-dVLA's cached decoder needs.
    0 = one block (bidirectional attention, the mask-predict baseline)."""


@dataclass
class AuxOptions:
    """Auxiliary objective (reference VLA): predict the future frame's image features and state;
    optionally also the present environment state and the future frame's pixels."""

    horizon: int = 0
    """Frames ahead to predict; 0 = off. Adds an auxiliary head and an extra vision pass per step."""
    weight: float = 0.5
    """Weight of the auxiliary error in the training objective."""
    env_state: bool = False
    """Also predict the present environment state (the dataset's observation.environment_state:
    object and goal poses, recorded in simulation), which only the images reveal."""
    pixels: bool = False
    """Also decode the future frame's pixels, every camera (a decoder mirroring the vision stem):
    a reconstruction objective, about 1.3x a plain step on the `small` VLA."""


@dataclass
class OrthOptions:
    """CapVector's orthogonal regulariser: keep each layer's update orthogonal to a capability vector."""

    vector: Path | None = None
    """capability_vector.safetensors written by `leanvla merge`, or the merge's output directory
    holding it (off when unset)."""
    weight: float = 0.1
    """Weight of the mean squared cosine between each matrix's update and the vector."""

    def vector_file(self) -> Path | None:
        """The vector's file: --orth.vector itself, or the one a `leanvla merge --out` directory holds."""
        if self.vector is None:
            return None
        from leanvla.merge.run import VECTOR

        path = Path(self.vector)
        return path / VECTOR if path.is_dir() else path


@dataclass
class DistillOptions:
    """Fast-dVLA's optional distillation: a block-causal discrete head learns from a bidirectional one."""

    teacher: Path | None = None
    """A trained bidirectional discrete-head policy on the same data (off when unset)."""
    weight: float = 1.0
    """Weight of KL(teacher || student) on the masked tokens, added to the cross-entropy."""


@dataclass
class TrainConfig:
    """Train a policy on a LeRobotDataset (single process, or data-parallel under torchrun)."""

    data: DatasetDir
    """LeRobotDataset v3 directory, or the repo id of one in LeRobot's home (lerobot/pusht)."""
    out: Path
    """Run directory: metrics.jsonl, last/ (resumable checkpoint), policy/ (final checkpoint)."""
    episodes: Path | None = None
    """The training episodes: a JSON selection file (a list, or {"episodes": [...]} as curate
    writes), or the episodes themselves: 0,1,2 or [0, 1, 2] or ranges 0:40,45 (START:END, END left
    out, as meta/info.json's splits)."""
    init: Path | None = None
    """Start from this checkpoint's weights (fine-tuning); its config must match the data."""
    val_episodes: Path | None = None
    """Held-out episodes of --data (as --episodes: a JSON selection file, or e.g. 40:50); their
    flow loss is logged as val_loss."""
    val_every: int = 100
    """Steps between validation losses (a multiple of --log-every)."""
    val_samples: int = 256
    """Held-out samples (fixed frames, noise and flow times) behind each validation loss."""
    model: ModelOptions = field(default_factory=ModelOptions)
    adapter: Literal["full", "lora", "lora-sp"] = "full"
    """What fine-tuning trains: every weight ('full'), peft LoRA, or LoRA-SP. Adapters freeze the
    --init policy and save only themselves (adapter.safetensors); `leanvla export` folds them in."""
    lora: LoRAOptions = field(default_factory=LoRAOptions)
    head: Literal["flow", "discrete", "regression"] = "flow"
    """Action head of a new VLA: flow matching, discrete diffusion over action tokens (options under
    --discrete), or plain regression of the chunk (MSE, the CNN baseline's objective through the
    VLA's expert). A fine-tuned --init keeps its own head."""
    discrete: DiscreteOptions = field(default_factory=DiscreteOptions)
    aux: AuxOptions = field(default_factory=AuxOptions)
    orth: OrthOptions = field(default_factory=OrthOptions)
    distill: DistillOptions = field(default_factory=DistillOptions)
    cameras: str | None = None
    """Comma-separated image features to observe (default: every image feature of the dataset)."""
    chunk_size: int | None = None
    """Actions predicted per chunk (default 16 for a new policy; a fine-tuned --init keeps its own)."""
    n_action_steps: int | None = None
    """Actions executed per chunk at evaluation, the receding horizon (default 8 for a new policy; a
    fine-tuned --init keeps its own, and `eval --n-action-steps` overrides it)."""
    steps: int = 3000
    """Optimizer steps."""
    batch_size: int = 64
    """Global batch size (split across processes under torchrun)."""
    lr: float = 3e-4
    """Peak learning rate."""
    min_lr_ratio: float = 0.05
    """Final learning rate as a fraction of the peak (cosine decay)."""
    warmup_steps: int = 100
    """Linear warm-up steps."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this (0 = off)."""
    ema: float = 0.0
    """EMA decay of the weights saved as the policy (0 = off, e.g. 0.999)."""
    precision: Literal["fp32", "bf16"] = "fp32"
    """Arithmetic of the training forward pass: float32, or bfloat16 autocast (matrix products and
    convolutions in bfloat16; the weights, their gradients, AdamW and the validation loss stay
    float32). bf16 is for GPUs: on a CPU without bfloat16 matrix units it is slower."""
    flow_samples: int = 1
    """Flow-matching noise draws per observation (VLA): they share one backbone pass."""
    augment_shift: int = 4
    """Random-shift augmentation in pixels (0 = off), each image moved by up to this many, border
    pixels filling in: fewer than the policy's image size."""
    state_noise: float = 0.0
    """Std of Gaussian noise added to the normalised proprio state in training (0 = off)."""
    state_dropout: float = 0.0
    """Probability that a training sample's proprio state is replaced by the dataset mean (0 = off)."""
    balanced: bool = True
    """Sample tasks uniformly (else frames uniformly)."""
    seed: int = 0
    """Seed of initialisation and of every random draw in training."""
    save_every: int = 500
    """Steps between resumable checkpoints (last/)."""
    log_every: int = 25
    """Steps between metrics.jsonl lines."""
    threads: int = 0
    """Torch CPU threads per process (0 = the cores this process may use, by affinity and CPU quota,
    shared among torchrun's processes on this machine)."""
    overwrite: bool = False
    """Start over even if --out holds a run."""

    def check_ranges(self) -> None:
        """A number outside what it means (a batch of 0, a learning rate of nan, an EMA decay of 1.5)
        fails before anything is read or written, rather than deep in the optimizer or never."""
        for flag, value in (
            ("--steps", self.steps),
            ("--batch-size", self.batch_size),
            ("--flow-samples", self.flow_samples),
            ("--save-every", self.save_every),
            ("--log-every", self.log_every),
            ("--val-samples", self.val_samples),
            ("--chunk-size", self.chunk_size),
        ):
            require(value is None or value >= 1, f"{flag} must be >= 1, got {value}")
        for flag, value, zero in (
            ("--warmup-steps", self.warmup_steps, "no warm-up"),
            ("--weight-decay", self.weight_decay, "no decay"),
            ("--grad-clip", self.grad_clip, "no clipping"),
            ("--augment-shift", self.augment_shift, "no shifts"),
            ("--threads", self.threads, "cores / processes"),
        ):
            require(
                math.isfinite(value) and value >= 0,
                f"{flag} must be finite and >= 0 (0 = {zero}), got {value}",
            )
        check_threads(self.threads)
        self.model.check_ranges()
        require(math.isfinite(self.lr) and self.lr > 0, f"--lr must be a positive number, got {self.lr}")
        require(
            0 <= self.min_lr_ratio <= 1,
            f"--min-lr-ratio is the final learning rate as a fraction of --lr, in [0, 1]; got {self.min_lr_ratio}",
        )
        require(0 <= self.ema < 1, f"--ema is a decay in [0, 1) (0 = off, e.g. 0.999), got {self.ema}")
        if self.init is None:  # a fine-tuned --init keeps its own chunking (checked against it later)
            chunk = DEFAULT_CHUNK_SIZE if self.chunk_size is None else self.chunk_size
            n_action_steps = DEFAULT_N_ACTION_STEPS if self.n_action_steps is None else self.n_action_steps
            require(
                1 <= n_action_steps <= chunk,
                f"--n-action-steps must be within 1..--chunk-size ({chunk}), got {n_action_steps}",
            )
        if self.val_episodes is not None:
            require(
                self.val_every >= 1 and self.val_every % self.log_every == 0,
                f"--val-every must be a positive multiple of --log-every ({self.log_every}), got {self.val_every}",
            )

    def check_options_used(self, typed: Iterable[str] = ()) -> None:
        """An option this run would ignore is a mistake (`--orth.weight` without `--orth.vector`, any
        `--model.*` beside `--init`): refuse the first, saying what it needs. `typed` holds the command
        line's flags, so that one typed at its default value counts as set too."""
        self.lora.check_used_by(self.adapter, typed)
        model = set_flags(self.model, typed, "--model.")
        discrete = set_flags(self.discrete, typed, "--discrete.")
        if self.init is not None:
            _refuse(model | discrete, f"shapes a new policy, but --init {self.init} brings its own; drop it")
        else:
            require(
                self.model.type == "vla" or self.head == "flow",
                f"--head {self.head} needs the reference VLA (--model.type vla)",
            )
            if self.model.type == "cnn":
                vla_only = _without(model, "type", "image_size", "image_fit")
                _refuse(
                    vla_only, "applies to the reference VLA (--model.type vla), not the CNN baseline; drop it"
                )
            if self.head != "flow":
                _refuse(
                    _only(model, "flow_steps", "flow_target"),
                    f"applies to --head flow, not {self.head}; drop it",
                )
            if self.head != "discrete":
                _refuse(discrete, "applies to --head discrete: pass --head discrete, or drop it")
        # Options that act only beside another: (is that one off, their flags, what they do, its flag).
        for off, flags, what, switch in (
            (
                self.aux.horizon == 0,
                _without(set_flags(self.aux, typed, "--aux."), "horizon"),
                "adds to the auxiliary objective",
                "set --aux.horizon too (e.g. 8)",
            ),
            (
                self.orth.vector is None,
                _without(set_flags(self.orth, typed, "--orth."), "vector"),
                "weights the orthogonal penalty",
                "pass --orth.vector too",
            ),
            (
                self.distill.teacher is None,
                _without(set_flags(self.distill, typed, "--distill."), "teacher"),
                "weights distillation",
                "pass --distill.teacher too",
            ),
            (
                self.val_episodes is None,
                _only(set_flags(self, typed), "val_every", "val_samples"),
                "applies to the validation loss",
                "pass --val-episodes too",
            ),
        ):
            if off:
                _refuse(flags, f"{what}, which is off: {switch}, or drop it")
        # Half ignored rather than ignored: the cosine decay never starts. Only a warm-up someone asked
        # for: the default one outlasts every short trial run. Attributed to this line (stacklevel 1),
        # so that the run's own check after the command line's shows it once.
        if "warmup_steps" in set_flags(self, typed) and self.warmup_steps >= self.steps:
            warnings.warn(
                f"--warmup-steps {self.warmup_steps} is not fewer than --steps {self.steps}: the learning "
                f"rate rises the whole run, to {self.steps / self.warmup_steps:.0%} of --lr at its last step, "
                "and never decays; give fewer warm-up steps",
                InputWarning,
                stacklevel=1,
            )

    def check_adapter(self) -> None:
        """Adapter options are wrong, or there is no frozen base: say so before any data is read."""
        if self.adapter == "full":
            return
        require(
            self.init is not None,
            f"--adapter {self.adapter} adapts a trained policy: pass --init CKPT (it stays frozen), or use "
            "--adapter full",
        )
        if self.adapter == "lora":  # peft's, an optional package: said before any data is read
            require_module("peft")
        self.lora.validate()

    def check_aux(self) -> None:
        require(self.aux.horizon >= 0, f"--aux.horizon must be >= 0, got {self.aux.horizon}")
        require(
            0 <= self.aux.weight < math.inf, f"--aux.weight must be finite and >= 0, got {self.aux.weight}"
        )
        if self.aux.horizon > 0:
            require(self.model.type == "vla", "--aux needs the reference VLA (--model.type vla)")
            require(
                self.adapter == "full",
                f"--aux.horizon adds a new head, which --adapter {self.adapter} would leave frozen at its random "
                "start (and not save): use --adapter full with --aux",
            )

    def check_orth(self) -> None:
        if self.orth.vector is None:
            return
        require(self.init is not None, "--orth.vector regularises an update: pass --init (the meta model)")
        require(
            self.adapter != "lora-sp",
            "--orth.vector keeps one update matrix per layer orthogonal to the vector, but LoRA-SP's update "
            "changes with every input (its router): use --adapter lora or full with it",
        )
        from leanvla.merge.run import VECTOR

        require(
            self.orth.vector_file().is_file(),
            f"--orth.vector {self.orth.vector} is a directory without {VECTOR}: pass a `leanvla merge` "
            "--out directory, or the vector file in it"
            if Path(self.orth.vector).is_dir()
            else f"--orth.vector {self.orth.vector} does not exist; `leanvla merge --out DIR` writes DIR/{VECTOR}",
        )
        require(
            0 <= self.orth.weight < math.inf, f"--orth.weight must be finite and >= 0, got {self.orth.weight}"
        )

    def check_distill(self) -> None:
        if self.distill.teacher is None:
            return
        require(
            Path(self.distill.teacher).exists(),
            f"--distill.teacher {self.distill.teacher} does not exist; train a bidirectional discrete head first",
        )
        require(
            0 <= self.distill.weight < math.inf,
            f"--distill.weight must be finite and >= 0, got {self.distill.weight}",
        )
        require(self.aux.horizon == 0, "--distill.teacher does not combine with --aux")
        require(self.flow_samples == 1, "--distill.teacher needs --flow-samples 1")
        require(self.adapter == "full", "--distill.teacher trains every weight: use --adapter full")


def _refuse(flags: dict[str, str], why: str) -> None:
    """The first of `flags` ({field: flag}) does nothing in this run: say why."""
    if flags:
        raise UserError(f"{next(iter(flags.values()))} {why}")


def _only(flags: dict[str, str], *names: str) -> dict[str, str]:
    return {name: flag for name, flag in flags.items() if name in names}


def _without(flags: dict[str, str], *names: str) -> dict[str, str]:
    return {name: flag for name, flag in flags.items() if name not in names}
