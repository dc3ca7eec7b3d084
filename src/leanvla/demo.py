"""`leanvla demo`: the whole pipeline on the built-in default, ending in a report.

Stages: record demonstrations (cached by their recording options), train the base policy,
evaluate it in closed loop on held-out positions, probe what it reads from its demonstrations
(`leanvla probe`: its images? its state?), score every demonstration's influence (ATHENA)
and select the best half, prune it (CLP) and briefly fine-tune and
evaluate the pruned model, adapt the base to two new tasks with LoRA-SP and evaluate that,
build a CapVector meta model (capability vector from those two tasks, plain vs auxiliary
training) and fine-tune it on the base's tasks with the orthogonal penalty, train a discrete
action head block-causally and evaluate it with the Fast-dVLA decoder, write `report.md`.
Every stage writes into the output directory; an interrupted demo rerun with the same options
resumes (the dataset is cached, training resumes from its last checkpoint).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from leanvla.atomic import require_creatable, require_own, write_bytes_atomic
from leanvla.errors import require
from leanvla.optional import require_module


@dataclass
class DemoConfig:
    """Run the pipeline on the built-in default (5 Meta-World tasks) and write a report."""

    out: Path = Path("outputs/demo")
    """Where the run, evaluation and report.md go."""
    quick: bool = False
    """Tiny settings that run the same path in under three minutes (used by the tests)."""
    cache: Path = Path("outputs/cache")
    """Recorded datasets are kept here, keyed by their recording options."""
    seed: int = 0
    """Seed of recording, training and evaluation."""


@dataclass
class DemoPlan:
    """The settings each stage uses; `quick` swaps in tiny ones."""

    tasks: str = "DEMO5"
    episodes: int = 50
    cameras: str = "corner2"
    image_size: int = 64
    # The tiny widths with 3 + 3 layers: the ablations measured tiny (2 + 2) within 2 points of
    # small on these tasks (63 vs 65%) at a third of the training time; a third layer leaves CLP
    # one to prune (it never removes the first or the last). 4 + 4 measured 58% (docs/RESULTS.md).
    size: str = "tiny"
    model_overrides: dict = field(default_factory=lambda: dict(layers=3, expert_layers=3))
    steps: int = 3200
    batch_size: int = 64
    eval_episodes: int = 20
    max_steps: int = 200
    workers: int | None = None  # leanvla.workers.worker_count's default
    prune_keep: float = 0.5
    prune_steps: int = 400
    adapt_tasks: str = "drawer-open-v3,window-close-v3"
    adapt_episodes: int = 20
    adapt_rank: int = 16
    adapt_eta: float = 0.8
    adapt_steps: int = 500
    # CapVector: the vector comes from the adapt tasks (a small set the targets do not include)
    merge_vector_steps: int = 250
    merge_steps: int = 300
    merge_aux_horizon: int = 8
    curate_fraction: float = 0.5
    curate_frames: int = 16
    decode_steps: int = 1000
    # Two blocks of 32 action tokens (8 action steps of 4 dimensions), each committed whole in its
    # first pass (no token's confidence is below 1 / vocab): two passes per chunk. In the demo that
    # scores 61% at 5.4 ms per chunk where blocks of 8 at threshold 0.9 scored 49% at 33 ms, and
    # benchmarks/decode.py found the same order on two seeds (docs/RESULTS.md, Decode). Not robust:
    # trained on seed 1, this head scores 36% so and 53-57% with 10-34 passes per chunk; over seeds
    # 0-2 pooled 49.9%, mask-predict at K = 10 53.5%, undecided (benchmarks/probe_decoder_seeds.py).
    decode_block: int = 32
    decode_commit_threshold: float = 0.001
    # Bins per action dimension. With 1000 steps the tiny head learns 32 bins and not 256: the
    # fresh-clone demo with 256 scored 3.0% (36 passes per chunk), docs/RESULTS.md.
    decode_vocab: int = 32
    probe_every: int = 10  # one frame in 10 of the demonstrations: about 1800 frames, seconds

    @classmethod
    def for_config(cls, cfg: DemoConfig) -> DemoPlan:
        if cfg.quick:
            return cls(
                tasks="reach-v3,drawer-close-v3",
                episodes=3,
                image_size=32,
                steps=30,
                batch_size=16,
                eval_episodes=2,
                max_steps=60,
                workers=1,
                prune_steps=10,
                adapt_tasks="drawer-open-v3",
                adapt_episodes=2,
                adapt_rank=4,
                adapt_steps=10,
                merge_vector_steps=6,
                merge_steps=6,
                merge_aux_horizon=2,
                curate_frames=4,
                decode_steps=10,
            )
        return cls()


def _dataset(plan: DemoPlan, cfg: DemoConfig, tasks: str, episodes: int) -> Path:
    from leanvla.data.record import record_cached

    return record_cached(
        Path(cfg.cache),
        workers=plan.workers,
        tasks=tasks,
        episodes=episodes,
        cameras=plan.cameras,
        image_size=plan.image_size,
        seed=cfg.seed,
    )


def demo(cfg: DemoConfig) -> Path:
    from leanvla.data.record import check_seed
    from leanvla.run_lock import DirectoryLock

    check_seed(cfg.seed)  # before the output directory is made
    require_module("metaworld")  # the demo records and evaluates: without the sim extra, made nothing
    plan = DemoPlan.for_config(cfg)
    out = Path(cfg.out)
    require_creatable(out, "--out")
    require_own(out, "--out", "a demo's output", "base", overwrite=False)  # each stage found there is kept
    # the recordings go into --cache: a refusal naming the recorder's --out inside it misled
    require_creatable(Path(cfg.cache), "--cache")
    require(
        not Path(cfg.cache).is_file(), f"--cache {cfg.cache} is a file; name a directory for the recordings"
    )
    out.mkdir(parents=True, exist_ok=True)
    lock = DirectoryLock(out, "--out")
    lock.take()  # one demo at a time in --out: a second ran each stage again beside the first
    try:
        return _stages(cfg, plan, out)
    finally:
        lock.release()


def _stages(cfg: DemoConfig, plan: DemoPlan, out: Path) -> Path:
    """Every stage in turn, then the report; its path."""
    from leanvla.decode.options import DecodingOptions
    from leanvla.demo_report import (
        adapt_section,
        curate_section,
        decode_section,
        merge_section,
        probe_section,
        prune_section,
        report_markdown,
    )
    from leanvla.evaluate import EvalConfig, evaluate
    from leanvla.report import plot_loss, read_metrics, rollout_grid
    from leanvla.train.config import ModelOptions, TrainConfig
    from leanvla.train.loop import train_once

    timings: dict[str, float] = {}

    def timed(stage: str, run, *args, **kwargs):
        start = time.perf_counter()
        value = run(*args, **kwargs)
        timings[stage] = time.perf_counter() - start
        return value

    data = timed("record (or reuse cached) demonstrations", _dataset, plan, cfg, plan.tasks, plan.episodes)
    train_cfg = TrainConfig(
        data=data,
        out=out / "base",
        model=ModelOptions(size=plan.size, **plan.model_overrides),
        steps=plan.steps,
        batch_size=plan.batch_size,
        seed=cfg.seed,
    )
    timed("train base policy", train_once, train_cfg)

    def evaluate_policy(policy: Path, name: str, **decoding) -> dict:
        return evaluate(
            EvalConfig(
                policy=policy,
                episodes=plan.eval_episodes,
                seed=cfg.seed,
                max_steps=plan.max_steps,
                out=out / f"eval_{name}.json",
                workers=plan.workers,
                decoding=DecodingOptions(**decoding),
            )
        )

    result = timed("evaluate", evaluate_policy, out / "base", "base")
    probed = timed("probe what the base policy reads", _probe_stage, plan, cfg, data, out)
    curated = timed("curate: influence scores + selection (ATHENA)", _curate_stage, plan, cfg, data, out)
    pruned = timed("prune + fine-tune pruned policy", _prune_stage, plan, cfg, data, out)
    pruned_result = timed("evaluate pruned policy", evaluate_policy, pruned, "pruned")
    adapted = timed("record new tasks + adapt with LoRA-SP", _adapt_stage, plan, cfg, out)
    adapted_result = timed("evaluate adapted policy", evaluate_policy, adapted, "adapted")
    merged = timed(
        "capability vector (plain + auxiliary runs) + merge + orth fine-tune",
        _merge_stage,
        plan,
        cfg,
        data,
        out,
    )
    merged_result = timed("evaluate merged policy", evaluate_policy, merged, "merged")
    fast = timed("train discrete head (block-causal)", _decode_stage, plan, cfg, data, out)
    fast_result = timed(
        "evaluate with the Fast-dVLA decoder",
        evaluate_policy,
        fast,
        "fast",
        decoder="fast",
        commit_threshold=plan.decode_commit_threshold,
    )

    plot_loss(
        {"base": read_metrics(out / "base" / "metrics.jsonl")}, out / "loss.png", "base policy training loss"
    )
    strips = [p for p in result.get("rollout_media", []) if p.endswith(".png")]
    if strips:
        rollout_grid(strips, out / "rollouts.png")
    sections = [
        probe_section(probed),
        curate_section(plan, curated),
        prune_section(plan, out, result, pruned_result),
        adapt_section(plan, out, adapted_result),
        merge_section(plan, out, result, merged_result),
        decode_section(plan, result, fast_result),
    ]
    report = report_markdown(cfg, plan, data, result, timings, bool(strips), sections)
    write_bytes_atomic(out / "report.md", report.encode())
    return out / "report.md"


def _curate_stage(plan: DemoPlan, cfg: DemoConfig, data: Path, out: Path) -> Path:
    """ATHENA: every demonstration's influence on each task's held-out validation loss; the best half."""
    from leanvla.curate.run import SELECTION, CurateConfig, curate

    curated = out / "curated"
    if not (curated / SELECTION).is_file():
        curate(
            CurateConfig(
                policy=out / "base",
                data=data,
                out=curated,
                fraction=plan.curate_fraction,
                frames=plan.curate_frames,
                val_per_task=1 if cfg.quick else 5,
                seed=cfg.seed,
            )
        )
    return curated


def _probe_stage(plan: DemoPlan, cfg: DemoConfig, data: Path, out: Path) -> Path:
    """`leanvla probe`: the base policy's chunks against its demonstrations, and with another
    demonstration's images, then state: which inputs it reads."""
    from leanvla.probe.run import RESULT, ProbeConfig, probe

    probed = out / "probe"
    if not (probed / RESULT).is_file():
        probe(
            ProbeConfig(
                policy=out / "base",
                data=data,
                out=probed,
                every=plan.probe_every,
                seed=cfg.seed,
                overwrite=True,
            )
        )
    return probed


def _decode_stage(plan: DemoPlan, cfg: DemoConfig, data: Path, out: Path) -> Path:
    """Fast-dVLA: the base's model shape with a discrete action head trained block-causally."""
    from leanvla.train.config import DiscreteOptions, ModelOptions

    return _short_run(
        plan,
        cfg,
        plan.decode_steps,
        data=data,
        out=out / "fast",
        model=ModelOptions(size=plan.size, **plan.model_overrides),
        head="discrete",
        discrete=DiscreteOptions(block=plan.decode_block, vocab=plan.decode_vocab),
    )


def _prune_stage(plan: DemoPlan, cfg: DemoConfig, data: Path, out: Path) -> Path:
    """CLP: remove the most redundant half of the backbone and expert layers, then fine-tune."""
    from leanvla.prune.run import REPORT, PruneConfig, prune

    pruned = out / "pruned"
    if not (pruned / REPORT).is_file():
        prune(
            PruneConfig(policy=out / "base", data=data, out=pruned, keep=str(plan.prune_keep), seed=cfg.seed)
        )
    return _short_run(plan, cfg, plan.prune_steps, data=data, out=out / "pruned_ft", init=pruned)


def _short_run(plan: DemoPlan, cfg: DemoConfig, steps: int, **options) -> Path:
    """Train (or resume) a short fine-tuning run at the demo's batch and seed, warm-up scaled to
    its length; returns its run directory."""
    from leanvla.train.config import TrainConfig
    from leanvla.train.loop import train_once

    run = TrainConfig(
        steps=steps, warmup_steps=min(50, steps // 4), batch_size=plan.batch_size, seed=cfg.seed, **options
    )
    train_once(run)
    return run.out


def _adapt_stage(plan: DemoPlan, cfg: DemoConfig, out: Path) -> Path:
    """LoRA-SP: adapt the frozen base to tasks it never saw, training the adapters and the input and
    output modules around the stacks."""
    from leanvla.adapt.config import LoRAOptions

    return _short_run(
        plan,
        cfg,
        plan.adapt_steps,
        data=_dataset(plan, cfg, plan.adapt_tasks, plan.adapt_episodes),
        out=out / "adapted",
        init=out / "base" / "policy",
        adapter="lora-sp",
        lora=LoRAOptions(rank=plan.adapt_rank, eta=plan.adapt_eta),
        lr=1e-3,
    )


def _merge_stage(plan: DemoPlan, cfg: DemoConfig, data: Path, out: Path) -> Path:
    """CapVector: tau = (aux-trained - plain-trained) on the adapt tasks; meta = base + tau; then
    plain fine-tuning on the base's tasks with the orthogonal penalty against tau."""
    from leanvla.merge.run import VECTOR, MergeConfig, merge
    from leanvla.train.config import AuxOptions, OrthOptions

    vector_data = _dataset(plan, cfg, plan.adapt_tasks, plan.adapt_episodes)
    small = dict(data=vector_data, init=out / "base" / "policy")
    sft = _short_run(plan, cfg, plan.merge_vector_steps, out=out / "vector_sft", **small)
    aux = _short_run(
        plan,
        cfg,
        plan.merge_vector_steps,
        out=out / "vector_aux",
        aux=AuxOptions(horizon=plan.merge_aux_horizon),
        **small,
    )
    meta = out / "meta"
    if not (meta / VECTOR).is_file():
        merge(MergeConfig(base=out / "base", sft=sft, aux=aux, out=meta, overwrite=True))
    return _short_run(
        plan,
        cfg,
        plan.merge_steps,
        data=data,
        out=out / "merged_ft",
        init=meta,
        orth=OrthOptions(vector=meta / VECTOR),
    )
