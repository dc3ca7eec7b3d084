"""Everything a run needs before its first step: data, model, statistics, metadata.

Kept apart from the loop so the loop reads as a loop, and so benchmarks can build the same model
and data without training.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path

from torch import nn

from leanvla.data.episode_selection import read_episode_selection
from leanvla.data.format import ENV_STATE
from leanvla.data.reader import LeRobotDataset
from leanvla.data.samples import ChunkDataset
from leanvla.errors import InputWarning, require
from leanvla.models.checkpoint import build_model, load_model, make_meta, read_weights
from leanvla.option_lists import listed
from leanvla.train.config import DEFAULT_CHUNK_SIZE, DEFAULT_N_ACTION_STEPS, TrainConfig


@dataclass
class RunParts:
    """What a run trains on and trains, and what its checkpoints record beside the weights."""

    data: ChunkDataset  # the training episodes, decoded
    model: nn.Module  # adapters injected, when asked
    meta: dict  # the checkpoint's metadata (models.checkpoint.make_meta)
    stats: dict  # the normalisation statistics
    provenance: dict  # which episodes, instructions, positions and camera shapes trained it
    teacher: nn.Module | None = None  # the distillation teacher


def select_cameras(dataset: LeRobotDataset, spec: str | None) -> list[str]:
    if spec is None:
        cams = [k for k in dataset.camera_keys]
        require(cams, f"{dataset.root} has no image features; the policy needs at least one camera")
    else:
        cams = []
        for name in listed(spec, "--cameras"):
            key = name if name.startswith("observation.images.") else f"observation.images.{name}"
            require(
                key in dataset.features,
                f"camera '{name}' is not in {dataset.root} (it has {dataset.camera_keys})",
            )
            require(key not in cams, f"--cameras names '{key}' twice; give each once")  # observed twice
            cams.append(key)
        require(cams, "--cameras is empty")
    for key in cams:  # one it cannot read refused before any camera decodes, not after the first
        dataset.camera_feature(key)
    return cams


def check_contract(
    model_cfg: dict,
    dataset: LeRobotDataset,
    source: str,
    fps: float | None = None,
    remedy: str = "use data recorded with that camera",
) -> None:
    """A checkpoint's config must match the data it is trained or evaluated on (images of another
    size are scaled and padded to the policy's when read: leanvla.data.resize). `fps`, the frame
    rate it was trained at: another one is usable, but changes what its chunk means, so it is warned of.
    `remedy` ends the refusal of a missing camera: what to do differs between commands."""
    for cam in model_cfg["cameras"]:
        require(
            cam in dataset.features,
            f"{source} observes '{cam}', which {dataset.root} does not have (it has {dataset.camera_keys}); {remedy}",
        )
    for key, dim in (("observation.state", model_cfg["state_dim"]), ("action", model_cfg["action_dim"])):
        require(key in dataset.features, f"{dataset.root} has no '{key}' feature")
        have = list(dataset.features[key]["shape"])
        require(have == [dim], f"{source} expects '{key}' of shape [{dim}] but {dataset.root} has {have}")
    if fps is not None and fps != dataset.fps:
        chunk = model_cfg["chunk_size"]
        warnings.warn(
            f"{source} was trained at {fps:g} fps, {dataset.root} is {dataset.fps:g} fps: its chunk of {chunk} "
            f"actions spans {chunk / fps:.2f} s in its training data and {chunk / dataset.fps:.2f} s in this one",
            InputWarning,
            stacklevel=2,
        )


def build_run(cfg: TrainConfig, progress: bool = False) -> RunParts:
    """Everything a run needs, built so that bad input is refused before any image decodes: the
    policy's shape (from --init, or from the options and the data), every option checked against
    the data, then the decoded data, the model, its metadata, a distillation teacher and adapters."""
    dataset = LeRobotDataset(cfg.data)
    episodes = read_episode_selection(cfg.episodes, dataset.num_episodes) if cfg.episodes else None
    start = start_from_checkpoint(cfg, dataset) if cfg.init is not None else start_from_options(cfg, dataset)
    check_before_decoding(cfg, dataset, start, episodes)
    data = ChunkDataset(
        dataset,
        start.cameras,
        start.chunk,
        episodes,
        progress=progress,
        env_state_key=ENV_STATE if cfg.aux.env_state else None,
        image_size=start.image_size,
        image_fit=start.image_fit,
    )
    if start.model is None:
        start = new_policy(cfg, dataset, data, start)
    model, model_cfg, stats, tokens = start.model, start.model_cfg, start.stats, start.action_tokens
    if cfg.aux.horizon > 0:
        env_dim = data.env_state.shape[1] if data.env_state is not None else 0
        model.add_aux_head(cfg.aux.horizon, env_dim, cfg.aux.pixels)
        model_cfg = {
            **model_cfg,
            "aux_horizon": cfg.aux.horizon,
            "aux_env_dim": env_dim,
            "aux_pixels": cfg.aux.pixels,
        }
    meta = make_meta(
        start.kind,
        model_cfg,
        dataset.tasks,
        data.state_key,
        data.action_key,
        dataset.fps,
        train={
            "data": str(Path(cfg.data).resolve()),
            "init": str(cfg.init) if cfg.init else None,
            "distill_teacher": str(cfg.distill.teacher) if cfg.distill.teacher else None,
        },
    )
    trained = provenance(dataset, data.episodes)
    if start.kind == "vla":
        warn_indistinct(model, trained["instructions"])
    teacher = None
    if cfg.distill.teacher is not None:
        from leanvla.decode.distill import load_teacher

        teacher, tokens = load_teacher(cfg.distill.teacher, model, meta, stats)  # the student takes its bins
    if tokens is not None:
        meta["action_tokens"] = tokens
    if cfg.adapter != "full":
        from leanvla.adapt.inject import inject_adapters
        from leanvla.models.checkpoint import adapter_record

        cfg.check_adapter()
        decay_steps = round(cfg.lora.eta_decay * cfg.steps)
        meta["adapter"] = adapter_record(cfg.adapter, cfg.lora, decay_steps, start.init_dir)
        inject_adapters(model, cfg.adapter, cfg.lora, decay_steps)
    return RunParts(data, model, meta, stats, trained, teacher)


@dataclass
class PolicyStart:
    """What the policy is, settled before any image decodes: its kind and what it observes and
    predicts; with --init, also the checkpoint's model (a new policy's is built on the decoded data)."""

    kind: str  # "vla" or "cnn"
    cameras: list[str]
    chunk: int
    image_size: int  # each camera is scaled (or cropped) to image_size x image_size
    image_fit: str
    model: nn.Module | None = None
    model_cfg: dict | None = None
    stats: dict | None = None  # the normalisation statistics
    action_tokens: dict | None = None  # the discrete head's bins, as the checkpoint records them
    init_dir: Path | None = None


def start_from_checkpoint(cfg: TrainConfig, dataset: LeRobotDataset) -> PolicyStart:
    """--init's policy, which keeps its cameras, chunking and head: options asking otherwise, an
    adapter or --orth.vector that cannot fit it, and data it cannot read are refused."""
    model, init_meta, stats, init_dir = load_model(cfg.init)
    require(
        not init_meta.get("adapter"),
        f"--init {init_dir} holds adapters; fold them into plain weights with `leanvla export` and start from that",
    )
    check_contract(
        init_meta["model"],
        dataset,
        f"checkpoint {init_dir}",
        init_meta.get("fps"),
        remedy="record that camera, or train from scratch (leave out --init)",
    )
    kind, model_cfg = init_meta["type"], init_meta["model"]
    require(
        cfg.head == "flow" or model_cfg.get("head") == cfg.head,
        f"--head {cfg.head}, but --init {init_dir} has a '{model_cfg.get('head', 'flow')}' head; "
        "a fine-tuned policy keeps its own head (drop --head, or train a new policy)",
    )
    cameras, chunk, size = model_cfg["cameras"], model_cfg["chunk_size"], model_cfg["image_size"]
    fit = model_cfg["image_fit"]
    require(
        cfg.cameras is None or select_cameras(dataset, cfg.cameras) == cameras,
        f"--cameras {cfg.cameras}, but --init {init_dir} observes {', '.join(cameras)}; "
        "a fine-tuned policy keeps its own cameras (drop --cameras, or train a new policy)",
    )
    for flag, asked, kept in (
        ("--chunk-size", cfg.chunk_size, chunk),
        ("--n-action-steps", cfg.n_action_steps, model_cfg["n_action_steps"]),
    ):
        require(
            asked is None or asked == kept,
            f"{flag} {asked}, but --init {init_dir} has {kept}; a fine-tuned policy keeps its own action "
            f"chunking (drop {flag}; `eval --n-action-steps` changes the receding horizon)",
        )
    if cfg.adapter != "full":
        from leanvla.adapt.inject import adapter_targets, modules_trained_beside

        adapter_targets(model, cfg.lora)  # a target, rank or module that cannot work
        modules_trained_beside(model, cfg.lora)
    if cfg.orth.vector is not None:  # a vector of another architecture
        from leanvla.merge.orthogonal import check_vector_fits

        check_vector_fits(model, read_weights(cfg.orth.vector_file()))
    tokens = init_meta.get("action_tokens")  # a fine-tuned discrete policy keeps its bins
    return PolicyStart(kind, cameras, chunk, size, fit, model, model_cfg, stats, tokens, init_dir)


def start_from_options(cfg: TrainConfig, dataset: LeRobotDataset) -> PolicyStart:
    """A new policy's cameras, image size and chunk, from the options and the recorded shapes."""
    kind = cfg.model.type
    cameras = select_cameras(dataset, cfg.cameras)
    sizes = {cam: dataset.image_shape(cam) for cam in cameras}
    size, fit = cfg.model.image_size, cfg.model.image_fit
    require(
        size is not None or (len(set(sizes.values())) == 1 and all(h == w for h, w in sizes.values())),
        f"images in {cfg.data} are "
        + ", ".join(f"{h}x{w} ('{cam}')" for cam, (h, w) in sizes.items())
        + "; give the policy's image size with --model.image-size N (each camera is then scaled, "
        "longer side first, and padded to N x N; or cropped to its centred square with "
        "--model.image-fit crop)",
    )
    size = size or next(iter(sizes.values()))[0]
    chunk = DEFAULT_CHUNK_SIZE if cfg.chunk_size is None else cfg.chunk_size
    if kind == "vla":
        from leanvla.models.config import vla_config

        # A vision stem that cannot tile images of this size fails here, before any decodes.
        vla_config(cfg.model.size, image_size=size, **cfg.model.overrides())
    return PolicyStart(kind, cameras, chunk, size, fit)


def check_before_decoding(
    cfg: TrainConfig, dataset: LeRobotDataset, start: PolicyStart, episodes: list[int] | None = None
) -> None:
    """The options that depend on the data or the policy, checked before any image decodes: the
    discrete head's shape, a distillation teacher, --aux, its horizon against the training episodes
    (`episodes`, None = all) and its environment state."""
    if start.model is None and cfg.head == "discrete" and "action" in dataset.features:
        from leanvla.decode.masks import check_head_shape

        action_dim = dataset.features["action"]["shape"][0]
        check_head_shape(start.chunk * action_dim, cfg.discrete.block, cfg.discrete.vocab)
    if cfg.distill.teacher is not None:
        from leanvla.decode.distill import check_teacher

        student = dict(
            cameras=start.cameras,
            chunk_size=start.chunk,
            image_size=start.image_size,
            image_fit=start.image_fit,
        )
        if start.model is None:
            student.update(head=cfg.head, action_vocab=cfg.discrete.vocab)
        else:
            student.update({k: start.model_cfg.get(k) for k in ("head", "action_vocab")})
        check_teacher(cfg.distill.teacher, student, dataset)
    size = start.image_size
    require(
        cfg.augment_shift < size,
        f"--augment-shift {cfg.augment_shift} moves the {size} x {size} images by up to their whole size, "
        f"so that some show nothing of the scene; shift them by fewer than {size} pixels",
    )
    if cfg.aux.horizon > 0:
        require(
            start.kind == "vla",
            f"--aux needs the reference VLA; {cfg.init or 'this run'} is a '{start.kind}' policy",
        )
        check_aux_horizon(cfg.aux.horizon, dataset, episodes)
    if cfg.aux.env_state:
        require(
            ENV_STATE in dataset.features,
            f"--aux.env-state: {cfg.data} has no '{ENV_STATE}' (simulation datasets recorded by "
            "`leanvla data metaworld` have it); drop --aux.env-state",
        )


def check_aux_horizon(horizon: int, dataset: LeRobotDataset, episodes: list[int] | None) -> None:
    """A horizon that reaches past the end of every training episode makes each target its episode's
    last frame (future_rows clamps there): the head would learn where episodes end, not what comes
    next."""
    lengths = dataset.episode_column("length")
    longest = max((lengths[e] for e in (range(len(lengths)) if episodes is None else episodes)), default=0)
    require(
        horizon < longest,
        f"--aux.horizon {horizon} reaches past the end of every training episode (the longest has "
        f"{longest} frames), so each target would be its episode's last frame; give a horizon under {longest}",
    )


def new_policy(
    cfg: TrainConfig, dataset: LeRobotDataset, data: ChunkDataset, start: PolicyStart
) -> PolicyStart:
    """A new policy's model, sized by the decoded data, with its normalisation statistics (and a
    discrete head's bins, fitted on the training actions). --n-action-steps was checked against the
    chunk by TrainConfig.check_ranges."""
    n_action_steps = DEFAULT_N_ACTION_STEPS if cfg.n_action_steps is None else cfg.n_action_steps
    contract = dict(
        cameras=start.cameras,
        image_size=start.image_size,
        image_fit=start.image_fit,
        state_dim=data.state.shape[1],
        action_dim=data.actions.shape[1],
        chunk_size=start.chunk,
        n_action_steps=n_action_steps,
    )
    if start.kind == "vla":
        from leanvla.models.config import vla_config

        head = dict(head=cfg.head, action_vocab=cfg.discrete.vocab, token_block=cfg.discrete.block)
        model_cfg = vla_config(cfg.model.size, **contract, **cfg.model.overrides(), **head).to_dict()
    else:
        from leanvla.models.cnn_policy import CNNConfig

        model_cfg = CNNConfig(**contract, num_tasks=len(dataset.tasks)).to_dict()
    model = build_model({"type": start.kind, "model": model_cfg})
    stats = data.stats()
    tokens = None
    if model_cfg.get("head") == "discrete":
        tokens = _fit_action_bins(model, data, stats, cfg.discrete.bins)
    return replace(start, model=model, model_cfg=model_cfg, stats=stats, action_tokens=tokens)


def warn_indistinct(model: nn.Module, instructions: list[str]) -> None:
    """Warn of trained instructions the VLA's tokenizer reads as the same words."""
    for group in model.tokenizer.indistinct(instructions):
        warnings.warn(
            f"instructions {' and '.join(map(repr, group))} are the same words to the policy (lower-cased; "
            f"punctuation, symbols and all but the first {model.tokenizer.max_length - 1} words dropped): it "
            "cannot tell them apart by instruction",
            InputWarning,
            stacklevel=3,
        )


def _fit_action_bins(model, data, stats: dict, kind: str) -> dict:
    """Fit the discrete head's bins on the normalised training actions (saved in its weights);
    returns what the checkpoint records of them, with the round-trip error in normalised units."""
    from leanvla.data.normalize import Normalizer

    normalizer = Normalizer(stats, data.state_key, data.action_key, data.cameras)
    error = model.expert.fit_bins(normalizer.action(data.actions), kind)
    return {"bins": kind, "vocab": model.expert.vocab, "round_trip_error": error}


def provenance(dataset: LeRobotDataset, episodes: list[int]) -> dict:
    """Which episodes trained the policy, with the object/goal positions they used and the shape of
    each camera's frames as recorded (evaluation renders them so)."""
    tasks = dataset.episode_tasks()
    trained = sorted({tasks[e] for e in episodes}, key=dataset.tasks.index)
    out = {"dataset": str(Path(dataset.root).resolve()), "episodes": episodes, "instructions": trained}
    out["camera_shapes"] = {key: list(dataset.image_shape(key)) for key in dataset.camera_keys}
    if "metaworld/positions" in dataset.episodes.column_names:
        positions = dataset.episode_column("metaworld/positions")
        out["positions"] = [positions[e] for e in episodes]
        unknown = [e for e in episodes if positions[e] is None]
        if unknown:  # episodes another recorder added (LeRobot's keeps no positions)
            named = ", ".join(map(str, unknown[:5])) + (
                f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            )
            warnings.warn(
                f"{dataset.root}: training episodes {named} have no metaworld/positions (recorded by "
                "another tool?): `leanvla eval` cannot keep its episodes clear of their object and goal "
                "positions, only of the others'",
                InputWarning,
                stacklevel=2,
            )
    return out
