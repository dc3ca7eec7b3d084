"""LoRA-SP's per-layer active-rank log, read back: where each layer's rank settled."""

from __future__ import annotations

import json

import pytest

from leanvla.adapt.report import last_quarter_means, plot_active_rank, read_active_rank


@pytest.fixture
def log(tmp_path):
    path = tmp_path / "active_rank.jsonl"
    steps = [
        {"step": 10 * (i + 1), "layers": {"backbone.0.q": 8.0 - i, "vision.layers.0.q": 2.0 * i}}
        for i in range(8)
    ]
    path.write_text("".join(json.dumps(s) + "\n" for s in steps))
    return path


def test_the_log_reads_back_in_order(log):
    steps, names, rows = read_active_rank(log)
    assert steps == [10, 20, 30, 40, 50, 60, 70, 80]
    assert names == ["backbone.0.q", "vision.layers.0.q"] and rows[2] == [6.0, 4.0]


def test_last_quarter_means_average_the_last_quarter_of_the_logged_steps(log):
    # 8 logged steps: the last 2 (i = 6, 7)
    assert last_quarter_means(log) == {"backbone.0.q": 1.5, "vision.layers.0.q": 13.0}


def test_the_figure_is_drawn(log, tmp_path):
    out = plot_active_rank(log, tmp_path / "rank.png")
    assert out.stat().st_size > 1000


def _settled_at(model, tmp_path, vision: list[float], other: float = 30.0):
    """An active-rank log in which the vision layers settled at `vision` vectors (in layer order), the
    rest at `other`."""
    from leanvla.adapt.inject import lora_sp_layers

    names = list(lora_sp_layers(model))
    vision_names = [n for n in names if n.startswith("vision.")]
    assert len(vision_names) == len(vision)
    ranks = {n: dict(zip(vision_names, vision)).get(n, other) for n in names}
    path = tmp_path / "active_rank.jsonl"
    path.write_text("".join(json.dumps({"step": s, "layers": ranks}) + "\n" for s in (10, 20, 30, 40)))
    return path


SHUT_LINE = (
    "LoRA-SP's vision stack: {shut} of 7 layers settled at 2 or fewer of 8 vectors per token (stack mean "
    "{mean}) under spectral weight 0.01: the loss may have shut them before training could use them "
    "(docs/RESULTS.md, Adapt); if the stack's input matters, retrain with a lower "
    "--lora.group-spectral-weight vision=..."
)


@pytest.mark.parametrize(
    "vision_weight, vision, expected",
    [
        (None, [1.4] * 7, SHUT_LINE.format(shut=7, mean="1.4")),
        (None, [2.0] * 7, SHUT_LINE.format(shut=7, mean="2.0")),  # at SHUT counts as shut
        (None, [2.5] * 7, None),
        # The stack's mean (21.6) hides four shut layers: they are counted one by one.
        (None, [1.0] * 4 + [49.0] * 3, SHUT_LINE.format(shut=4, mean="21.6")),
        (None, [1.0] * 3 + [49.0] * 4, None),
        (0.0, [1.4] * 7, None),
    ],
    ids=[
        "shut",
        "at-the-bound",
        "open",
        "most-shut-some-wide",
        "fewer-than-half-shut",
        "shut-without-the-loss",
    ],
)
def test_a_stack_the_spectral_loss_shut_is_named(tmp_path, vision_weight, vision, expected):
    from leanvla.adapt.report import shut_stacks

    model = _adapted(vision_layers=1, vision_weight=vision_weight)
    warnings = shut_stacks(model, _settled_at(model, tmp_path, vision))
    assert warnings == ([expected] if expected else [])


def test_a_stack_with_exactly_half_its_layers_shut_is_named(tmp_path):
    from leanvla.adapt.report import shut_stacks

    model = _adapted(vision_layers=2)  # 14 vision Linears: 7 shut, 7 wide
    warnings = shut_stacks(model, _settled_at(model, tmp_path, [1.0] * 7 + [49.0] * 7))
    assert len(warnings) == 1 and warnings[0].startswith(
        "LoRA-SP's vision stack: 7 of 14 layers settled at 2"
    )


def _adapted(vision_layers: int, vision_weight: float | None = None):
    """A tiny VLA with LoRA-SP of rank 8 under spectral weight 1e-2 (`vision_weight` on the vision stack)."""
    from leanvla.adapt.config import LoRAOptions
    from leanvla.adapt.inject import inject_adapters
    from leanvla.models.config import vla_config
    from leanvla.models.vla import VLA

    model = VLA(vla_config("tiny", vision_layers=vision_layers))
    groups = "" if vision_weight is None else f"vision={vision_weight}"
    inject_adapters(model, "lora-sp", LoRAOptions(rank=8, spectral_weight=1e-2, group_spectral_weight=groups))
    return model


def test_the_run_ends_with_each_stacks_active_rank(tmp_path):
    from leanvla.adapt.config import LoRAOptions
    from leanvla.adapt.inject import inject_adapters
    from leanvla.adapt.report import active_rank_summary
    from leanvla.models.config import vla_config
    from leanvla.models.vla import VLA

    model = VLA(vla_config("tiny", vision_layers=1))
    inject_adapters(model, "lora-sp", LoRAOptions(rank=8, group_rank="vision=4"))
    log = _settled_at(model, tmp_path, [1.0] * 4 + [4.0] * 3, other=6.0)
    vision_mean = (4 * 1.0 + 3 * 4.0) / 7
    layers = json.loads(log.read_text().splitlines()[0])["layers"]
    mean = sum(layers.values()) / len(layers)
    assert active_rank_summary(model, log) == (
        f"LoRA-SP kept {mean:.1f} vectors per token over the last quarter of training, layer mean "
        f"(backbone 6.0 of 8, expert 6.0 of 8, vision {vision_mean:.1f} of 4); per layer: {tmp_path / 'active_rank.png'}"
    )
