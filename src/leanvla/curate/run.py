"""`leanvla curate`: ATHENA influence scores for every demonstration, and the selection they make.

    collect    one projected gradient per demonstration (Kronecker hooks) -> OUT/gradients/
    curvature  damped inverse of F = mean(phi phi^T): exact Cholesky, or rank-r RTA
    score      per-task queries from held-out validation demonstrations; local, global and
               interactive scores; self-influence and typicality; the best fraction, ranked by
               either, with a per-task floor

Writes OUT/scores.csv, OUT/selection.json (for `train --episodes`), OUT/report.md with figures,
OUT/timing.json. The gradient store is kept: a killed run resumes collecting, and scoring again
with other settings (damping, rank, fraction) reuses it. Run under torchrun to collect in parallel.
"""

from __future__ import annotations

import csv
import hashlib
import io
import time
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import torch

from leanvla.atomic import (
    empty_directory,
    require_creatable,
    require_own,
    write_bytes_atomic,
    write_json_atomic,
)
from leanvla.curate.curvature import check_damping
from leanvla.curate.store import Row
from leanvla.data.lerobot_home import DatasetDir
from leanvla.errors import InputWarning, require
from leanvla.flags import set_flags
from leanvla.option_lists import listed
from leanvla.run_lock import DirectoryLock

GRADIENTS, SCORES, SELECTION, REPORT, TIMING = (
    "gradients",
    "scores.csv",
    "selection.json",
    "report.md",
    "timing.json",
)
# scores.csv's score columns, in order (Influence's fields of the same meaning).
NUMERIC_COLUMNS = ("local", "global", "score", "self_influence", "typicality")
EXACT_MAX_DIM = 4096  # above this min(N, P), 'auto' curvature switches from exact to RTA


@dataclass
class CurateConfig:
    """Score every demonstration's influence on each task's validation loss (ATHENA); keep the best."""

    policy: Path
    """Checkpoint (or run directory) trained on --data: influence is measured around it."""
    data: DatasetDir
    """LeRobotDataset whose demonstrations are scored (a directory, or a repo id in LeRobot's home)."""
    out: Path
    """Output directory: scores.csv, selection.json, report.md, gradients/ (reusable)."""
    fraction: float = 0.5
    """Fraction of the scored demonstrations to select."""
    task_floor: float = 0.25
    """Every task keeps at least this fraction of its own demonstrations (<= --fraction)."""
    alpha: float = 0.5
    """Interactive score = alpha * local + (1 - alpha) * global."""
    select_by: Literal["influence", "typicality"] = "influence"
    """What selection ranks by: ATHENA's interactive influence on the validation loss, or typicality
    (low self-influence within the demonstration's task: outliers the model must memorise go last)."""
    val_per_task: int = 5
    """Validation demonstrations held out per task (seeded draw) to build each task's query. With
    --select-by typicality, 0 scores and selects among every demonstration, label-free (the
    influence columns are then empty)."""
    val_data: DatasetDir | None = None
    """Instead of a held-out split: a LeRobotDataset of validation demonstrations (tasks matched by instruction)."""
    episodes: Path | None = None
    """Consider only these episodes of --data (as for train: a selection JSON, or e.g. 0:40,45)."""
    stacks: str = "backbone,expert"
    """Layout stacks whose Linear layers are projected."""
    k_in: int = 16
    """Input-side projection size per Linear layer."""
    k_out: int = 16
    """Output-side projection size per Linear layer (phi has k_in * k_out dims per layer)."""
    other: Literal["skip", "dense"] = "skip"
    """Parameters outside the projected Linears: skip them, or project their gradient densely."""
    k_dense: int = 256
    """Dense projection size for --other dense."""
    curvature: Literal["auto", "exact", "rta"] = "auto"
    """Inverse curvature: exact (Cholesky in the smaller of N and P), rta (rank-r sketch + Woodbury),
    auto (exact while min(N, P) <= 4096)."""
    rank: int = 0
    """RTA rank r (0: min(N, P) / 4)."""
    damping: float = 0.1
    """lambda as a multiple of F's mean eigenvalue."""
    frames: int = 0
    """Frames per demonstration in its loss (0: every frame; else evenly spaced)."""
    batch_size: int = 64
    """Frames per backward microbatch (memory bound)."""
    seed: int = 0
    """Seed of projections, noise and flow-time draws, and the validation split."""
    overwrite: bool = False
    """Discard an existing --out (including stored gradients collected with other settings)."""

    def check_options_used(self, typed: Iterable[str] = ()) -> None:
        """An option this curation would ignore is a mistake: say which. `typed` holds the command
        line's flags, so that one typed at its default value counts as set too."""
        flags = set_flags(self, typed)
        for name, ignored, why in (
            (
                "val_per_task",
                self.val_data is not None,
                "holds validation demonstrations out of --data, "
                "but --val-data brings them: give one of the two",
            ),
            (
                "k_dense",
                self.other != "dense",
                "sizes the projection of --other dense: pass --other dense, or drop it",
            ),
            (
                "rank",
                self.curvature == "exact",
                "sizes RTA's sketch, which --curvature exact does not use: drop it",
            ),
        ):
            require(name not in flags or not ignored, f"{flags.get(name)} {why}")

    def check_ranges(self) -> None:
        """Settings checked before any work (select() checks fraction and floor again on real data)."""
        require(0.0 < self.fraction <= 1.0, f"--fraction must be in (0, 1], got {self.fraction}")
        require(
            0.0 <= self.task_floor <= self.fraction,
            f"--task-floor must be in [0, --fraction], got {self.task_floor}",
        )
        require(0.0 <= self.alpha <= 1.0, f"--alpha must be in [0, 1], got {self.alpha}")
        check_damping(self.damping)
        require(self.val_per_task >= 0, f"--val-per-task must be >= 0, got {self.val_per_task}")
        require(
            self.val_per_task >= 1 or self.val_data is not None or self.select_by == "typicality",
            "--val-per-task must be >= 1 without --val-data: the influence scores need validation demonstrations "
            "(only --select-by typicality selects without them)",
        )
        require(self.frames >= 0 and self.batch_size >= 1, "--frames must be >= 0 and --batch-size >= 1")
        require(self.rank >= 0, f"--rank must be >= 0 (0: automatic), got {self.rank}")


def split_validation(episodes: list[int], tasks: list[int], per_task: int, seed: int) -> set[int]:
    """A seeded draw of `per_task` episodes of every task, held out as validation demonstrations."""
    generator = torch.Generator().manual_seed(seed)
    held = set()
    for k in sorted(set(tasks)):
        members = [e for e, t in zip(episodes, tasks) if t == k]
        require(
            len(members) > per_task,
            f"task {k} has {len(members)} demonstration{'s' if len(members) != 1 else ''}; holding out "
            f"--val-per-task {per_task} would leave none to score (lower --val-per-task or pass --val-data)",
        )
        order = torch.randperm(len(members), generator=generator)[:per_task]
        held.update(members[i] for i in order.tolist())
    return held


def check_validation_tasks(scored_tasks: list[str], data_tasks: list[str], offered: list[str]) -> None:
    """--val-data (whose demonstrations are of the tasks `offered`) may only hold tasks of --data,
    and must hold every scored task."""
    strangers = sorted(set(offered) - set(data_tasks))
    require(
        not strangers,
        f"--val-data task '{strangers[0] if strangers else ''}' is not a task of --data; "
        "validation demonstrations must share tasks",
    )
    missing = sorted(set(scored_tasks) - set(offered))
    require(
        not missing,
        f"--val-data has no demonstrations of {missing}; every scored task needs validation demonstrations",
    )


def curate(cfg: CurateConfig, progress: bool = True) -> Path:
    """Collect (or resume collecting) every demonstration's projected gradient, then score and
    select; returns --out. Under torchrun each process collects its share; the main one scores."""
    from leanvla.data.episode_selection import read_episode_selection
    from leanvla.data.normalize import Normalizer
    from leanvla.data.reader import LeRobotDataset
    from leanvla.data.samples import ChunkDataset
    from leanvla.models.checkpoint import checkpoint_inputs, load_model
    from leanvla.train.build import check_contract
    from leanvla.train.distributed import init_world, shutdown

    cfg.check_options_used()
    cfg.check_ranges()
    inputs = [("--data", cfg.data), ("--val-data", cfg.val_data), ("--episodes", cfg.episodes)]
    inputs += checkpoint_inputs("--policy", cfg.policy)
    require_creatable(Path(cfg.out), "--out", inputs if cfg.overwrite else ())  # else it resumes there
    require_own(Path(cfg.out), "--out", "a curation", GRADIENTS, cfg.overwrite)
    world = init_world()
    model, meta, stats, source = load_model(cfg.policy)
    model.to(world.device)
    projector = gradient_projector(cfg, model).to(world.device)

    dataset = LeRobotDataset(cfg.data)
    val_dataset = LeRobotDataset(cfg.val_data) if cfg.val_data is not None else None
    for read in (dataset, val_dataset):  # each read as the policy reads: before any image decodes
        if read is not None:
            check_contract(meta["model"], read, f"checkpoint {source}", meta.get("fps"))
    episodes = read_episode_selection(cfg.episodes, dataset.num_episodes) if cfg.episodes else None
    considered = episodes if episodes is not None else list(range(dataset.num_episodes))
    considered = with_frames(dataset, considered, "not scored, so not selected")
    held = held_out_validation(cfg, dataset, considered, val_dataset)  # from the metadata
    scored = sum(e not in (held or ()) for e in considered)
    require(
        cfg.rank <= min(scored, projector.dim),
        f"--rank {cfg.rank} exceeds min(demonstrations, P) = {min(scored, projector.dim)}",
    )
    data = ChunkDataset.for_policy(
        dataset, meta["model"], episodes, meta["state_key"], meta["action_key"], progress
    )
    normalizer = Normalizer(stats, meta["state_key"], meta["action_key"], data.cameras)
    task_of = {int(e): int(t) for e, t in zip(data.episode_index.tolist(), data.task_index.tolist())}
    rows, losses = _rows_and_losses(cfg, model, data, normalizer, task_of, held, val_dataset, progress)

    # What the stored gradients depend on: a store made with other settings, or from files changed
    # since (a policy trained again, a dataset recorded again), is not resumed.
    settings = {
        "policy": str(source.resolve()),
        **{
            k: v
            for k, v in asdict(cfg).items()
            if k in ("stacks", "k_in", "k_out", "other", "k_dense", "frames", "seed")
        },
        **input_digests(source, [(dataset, episodes), (val_dataset, None)], data.cameras, progress),
    }
    lock = DirectoryLock(Path(cfg.out), "--out")  # held by the main process, from when --out exists
    try:
        store = open_store(cfg, world, rows, projector.dim, settings, lock)
        resumed = len(rows) - len(store.pending())
        timing = collect_gradients(store, rows, projector, losses, world, progress)
        if world.is_main:
            score_and_select(cfg, store, data, timing, resumed, world.size)
    finally:
        lock.release()
    shutdown(world)
    return Path(cfg.out)


def input_digests(policy: Path, datasets: list, cameras: list[str], progress: bool) -> dict[str, str]:
    """Digests of the files the gradients come from: the policy's (its weights, or its adapters and
    the base's digest in its config; its statistics) and the demonstrations' (each dataset's
    metadata but its statistics, its data files and its videos of the policy's cameras, of the
    episodes given with it or of all where None), remembered as the frame cache's are (a camera's
    videos are hashed already, naming its entry)."""
    from leanvla.curate.store import INPUT_FILES
    from leanvla.data import file_digests
    from leanvla.data.format import INFO_PATH, TASKS_PATH
    from leanvla.data.frame_cache import digests_dir, source_files
    from leanvla.models.checkpoint import ADAPTER, CONFIG, STATS, WEIGHTS

    inputs = {"policy_files": (policy, [policy / name for name in (CONFIG, WEIGHTS, ADAPTER, STATS)])}
    for name, (dataset, episodes) in zip(("data_files", "val_data_files"), datasets):
        if dataset is not None:
            meta = [
                dataset.root / INFO_PATH,
                dataset.root / TASKS_PATH,
                *(dataset.root / "meta" / "episodes").rglob("*"),
            ]
            videos = [path for camera in cameras for path in source_files(dataset, camera, episodes)]
            inputs[name] = (dataset.root, {*meta, *dataset.data_files, *videos})
    found = {}
    for name, (root, files) in inputs.items():
        digest = hashlib.blake2b(digest_size=20)
        present = sorted(path for path in files if path.is_file())
        file_digests.hash_files(digest, present, root, digests_dir(), f"hash {INPUT_FILES[name]}", progress)
        found[name] = digest.hexdigest()
    return found


def gradient_projector(cfg: CurateConfig, model):
    """The Kronecker projection of the Linear layers in --stacks (and of the other parameters with
    --other dense) to phi's P dimensions."""
    from leanvla.curate.projection import KroneckerProjector, dense_parameters, projected_linears
    from leanvla.models.layout import layout_for

    layout = layout_for(model)
    stacks = listed(cfg.stacks, "--stacks")
    require(stacks, "--stacks is empty; name the stacks to project, e.g. backbone,expert")
    for name in stacks:
        layout.stack(name)  # an unknown stack is one clear line, not an empty projection
    linears = projected_linears(layout.linear_modules(model, stacks))
    dense = dense_parameters(model, linears) if cfg.other == "dense" else None
    return KroneckerProjector(linears, cfg.k_in, cfg.k_out, cfg.seed, dense, cfg.k_dense)


def with_frames(dataset, episodes: list[int], left_out: str) -> list[int]:
    """`episodes` less those of no frames, which have no loss and so no gradient. They are named in
    a warning (`left_out` says what becomes of them), not refused: the others curate as before."""
    from leanvla.data.reader import no_frames_phrase

    lengths = dataset.episode_column("length")
    chosen = [lengths[e] for e in episodes]
    empty = no_frames_phrase(episodes, chosen)
    if empty:
        warnings.warn(f"{dataset.root}: {empty}: {left_out}", InputWarning, stacklevel=2)
    return [e for e, length in zip(episodes, chosen) if length > 0]


def held_out_validation(cfg: CurateConfig, dataset, considered: list[int], val_dataset) -> set[int] | None:
    """The episodes of --data held out as validation demonstrations: a seeded split, an empty set
    for label-free typicality (--val-per-task 0), or None when `val_dataset` (--val-data) brings
    them (its tasks are checked here)."""
    if val_dataset is not None:
        scored_tasks = [dataset.episode_tasks()[e] for e in considered]
        offered = with_frames(val_dataset, list(range(val_dataset.num_episodes)), "not used as validation")
        check_validation_tasks(scored_tasks, dataset.tasks, [val_dataset.episode_tasks()[e] for e in offered])
        return None
    if cfg.val_per_task == 0:
        return set()
    task_index = [dataset.tasks.index(text) for text in dataset.episode_tasks()]
    return split_validation(considered, [task_index[e] for e in considered], cfg.val_per_task, cfg.seed)


def open_store(cfg: CurateConfig, world, rows: list[Row], dim: int, settings: dict, lock: DirectoryLock):
    """OUT/gradients, created (or checked against `settings`, to resume) by the main process first,
    which takes --out's `lock` before anything there is deleted, resumed or written."""
    from leanvla.curate.store import GradientStore
    from leanvla.train.distributed import barrier

    out = Path(cfg.out)
    if world.is_main:
        out.mkdir(parents=True, exist_ok=True)  # the lock is on the directory itself
        lock.take()  # another curation may be collecting there, or have begun to meanwhile
        if cfg.overwrite:
            empty_directory(out)
        store = GradientStore(out / GRADIENTS, rows, dim, settings)
    barrier(world)
    if not world.is_main:
        store = GradientStore(out / GRADIENTS, rows, dim, settings)
    return store


def collect_gradients(store, rows: list[Row], projector, losses: dict, world, progress: bool) -> dict:
    """Collect this process's pending rows (demonstrations, then validation demonstrations) into
    the store; returns the collection's timing."""
    from leanvla.curate.collect import collect
    from leanvla.train.distributed import barrier

    timing = {}
    mine = store.pending(world.rank, world.size)
    try:
        for role in ("train", "val"):
            positions = [i for i in mine if rows[i].role == role]
            shown = progress and world.is_main
            for key, value in collect(store, positions, projector, losses[role], shown).items():
                timing[f"{key}_{role}"] = value
    except KeyboardInterrupt:  # Ctrl-C: what is kept, and how it goes on
        kept = len(rows) - len(store.pending())
        raise KeyboardInterrupt(
            f"with {kept} of {len(rows)} demonstrations' gradients in {store.root}; the same command "
            "goes on from there"
        ) from None
    barrier(world)
    return timing


def score_and_select(cfg: CurateConfig, store, data, timing: dict, resumed: int, world_size: int) -> None:
    """Curvature, influence scores and the selection, from the complete store; writes scores.csv,
    selection.json, timing.json and report.md."""
    from leanvla.curate.report import write_report
    from leanvla.curate.scores import influence, select

    out, instructions = Path(cfg.out), data.instructions
    require(store.complete, f"{store.root} is missing gradients after collection; run curate again to resume")
    start = time.perf_counter()
    phi_train, train_rows = store.matrix("train")
    phi_val, val_rows = store.matrix("val")
    n, p = phi_train.shape
    solver, rank = curvature_solver(cfg, phi_train)
    timing["curvature_s"] = time.perf_counter() - start

    start = time.perf_counter()
    scores = influence(
        phi_train, [r.task for r in train_rows], phi_val, [r.task for r in val_rows], solver, cfg.alpha
    )
    selected = select(
        scores.ranking(cfg.select_by), [r.task for r in train_rows], cfg.fraction, cfg.task_floor
    )
    timing["score_s"] = time.perf_counter() - start

    _write_scores(out / SCORES, train_rows, instructions, scores, selected)
    write_json_atomic(
        out / SELECTION,
        {
            "episodes": [r.episode for r, keep in zip(train_rows, selected.tolist()) if keep],
            "fraction": cfg.fraction,
            "task_floor": cfg.task_floor,
            "select_by": cfg.select_by,
            "validation_episodes": [r.episode for r in val_rows] if cfg.val_data is None else [],
            "source": str(Path(cfg.data).resolve()),
        },
    )
    summary = {
        "demonstrations": n,
        "validation": len(val_rows),
        "dim": p,
        "curvature": "exact" if rank is None else f"rta (rank {rank})",
        "resumed_rows": resumed,
        "world_size": world_size,
    }
    write_json_atomic(out / TIMING, {**timing, **summary})
    write_report(out, cfg, data, train_rows, instructions, scores, selected, timing, summary)


def curvature_solver(cfg: CurateConfig, phi_train: torch.Tensor):
    """(the damped inverse curvature of the training gradients, the RTA sketch's rank or None):
    exact below EXACT_MAX_DIM or when asked, random truncated (RTA) above."""
    n, p = phi_train.shape
    if cfg.curvature == "exact" or (cfg.curvature == "auto" and min(n, p) <= EXACT_MAX_DIM):
        from leanvla.curate.curvature import ExactInverse

        return ExactInverse(phi_train, cfg.damping), None
    from leanvla.curate.curvature import RandomTruncated

    rank = cfg.rank or max(1, min(n, p) // 4)
    return RandomTruncated(phi_train, rank, cfg.damping, cfg.seed), rank


def _rows_and_losses(
    cfg, model, data, normalizer, task_of: dict[int, int], held: set[int] | None, val_dataset, progress: bool
):
    """The store's rows (scored demos first, then validation demos) and the loss of each role;
    `held` is the held-out split (None with `val_dataset`, --val-data)."""
    from leanvla.curate.collect import DemoLoss

    losses = {"train": DemoLoss(model, data, normalizer, cfg.seed, cfg.frames, cfg.batch_size)}
    if held is not None:
        train = [Row(e, t, "train") for e, t in task_of.items() if e not in held]
        val = [Row(e, t, "val") for e, t in task_of.items() if e in held]
        losses["val"] = losses["train"]
        return train + val, losses
    val_data = data.like(val_dataset, progress=progress)
    # The validation dataset numbers its tasks its own way: match them by instruction.
    val_task = {k: data.instructions.index(text) for k, text in enumerate(val_data.instructions)}
    # Queries are per training task, so the validation instructions must map onto those indices.
    val_data.instructions = data.instructions
    val_data.task_index = torch.tensor([val_task[int(t)] for t in val_data.task_index.tolist()])
    train = [Row(e, t, "train") for e, t in task_of.items()]
    val_tasks = {
        int(e): int(t) for e, t in zip(val_data.episode_index.tolist(), val_data.task_index.tolist())
    }
    val = [Row(e, t, "val") for e, t in val_tasks.items()]
    losses["val"] = DemoLoss(model, val_data, normalizer, cfg.seed, cfg.frames, cfg.batch_size)
    return train + val, losses


def _write_scores(path: Path, rows, instructions: list[str], scores, selected: torch.Tensor) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["episode_index", "task", *NUMERIC_COLUMNS, "selected"])
    values = (scores.local, scores.global_, scores.score, scores.self_influence, scores.typicality)
    for i, r in enumerate(rows):
        writer.writerow(
            [r.episode, instructions[r.task], *(f"{float(v[i]):.6g}" for v in values), int(selected[i])]
        )
    write_bytes_atomic(path, buffer.getvalue().encode())


def read_scores(path: Path) -> list[dict]:
    """scores.csv back as dicts with typed values."""
    with open(path, newline="", encoding="utf-8") as f:
        return [
            {
                "episode_index": int(r["episode_index"]),
                "task": r["task"],
                **{column: float(r[column]) for column in NUMERIC_COLUMNS},
                "selected": bool(int(r["selected"])),
            }
            for r in csv.DictReader(f)
        ]
