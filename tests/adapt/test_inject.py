"""Adapters on the tiny VLA: targets through the layout or a regex, zero change at initialisation,
only adapters trainable, save/load round trips, and bad options as one clear line."""

from __future__ import annotations

import re
import sys

import pytest
import torch

from leanvla.adapt.config import LoRAOptions
from leanvla.adapt.inject import adapter_state_dict, adapter_targets, inject_adapters, trainable_parameters
from leanvla.errors import UserError
from leanvla.models.checkpoint import load_model, read_meta, save_checkpoint
from leanvla.models.layout import VLA_LAYOUT
from leanvla.models.policy import Observation
from tests.helpers import gpu_waits, host_reads, needs_cuda

IO_NAMES = tuple(f"{name}." for name in VLA_LAYOUT.io)


def random_batch(model, seed=0) -> tuple:
    """action_error's arguments: fixed random inputs (deterministic)."""
    cfg = model.cfg
    g = torch.Generator().manual_seed(seed)
    b = 3
    images = torch.randn(b, len(cfg.cameras), 3, cfg.image_size, cfg.image_size, generator=g)
    tokens, mask = model.tokenizer.batch(["reach the goal", "close the drawer", "open"])
    obs = Observation(images, torch.randn(b, cfg.state_dim, generator=g), tokens, mask, torch.arange(b))
    actions = torch.randn(b, cfg.chunk_size, cfg.action_dim, generator=g)
    noise = torch.randn(b, cfg.chunk_size, cfg.action_dim, generator=g)
    return obs, actions, noise, torch.rand(b, generator=g)


def fixed_error(model, seed=0) -> torch.Tensor:
    """The training objective on fixed random inputs."""
    with torch.no_grad():
        return model.action_error(*random_batch(model, seed))


@pytest.fixture
def base(tiny_run):
    return load_model(tiny_run)


@pytest.mark.parametrize("kind", ["lora", "lora-sp"])
def test_adapted_model_starts_equal_to_base(base, kind):
    model, *_ = base
    before = fixed_error(model)
    total = sum(p.numel() for p in model.parameters())
    targets = inject_adapters(model, kind, LoRAOptions(rank=4, eta=0.8))
    assert set(targets.values()) == {"backbone", "expert"}  # the tiny VLA has no vision layers
    assert torch.equal(fixed_error(model), before)
    trainable = trainable_parameters(model)
    assert 0 < trainable < 0.5 * total
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all("lora" in n or "router" in n or n.startswith(IO_NAMES) for n in trained)
    assert {n for n in trained if n.startswith(IO_NAMES)} == {
        n for n, _ in model.named_parameters() if n.startswith(IO_NAMES)
    }  # every input and output module trains in full, beside the adapters


@pytest.mark.parametrize("kind", ["full", "lora", "lora-sp"])
def test_a_training_step_reads_nothing_back_to_the_host(base, kind):
    """On a GPU each read-back (`int(t)`, `t.item()`, `nonzero`) waits for every queued kernel: a
    training step of the VLA, adapted or not, issues none (LoRA-SP on its dense path, which 'auto'
    takes off the CPU)."""
    model, *_ = base
    if kind != "full":
        inject_adapters(model, kind, LoRAOptions(rank=4, eta=0.8, path="dense"))
    model.train()
    with host_reads() as reads:
        for seed in range(2):
            model.action_error(*random_batch(model, seed)).mean().backward()
    assert reads == []


@needs_cuda
@pytest.mark.parametrize("kind", ["full", "lora", "lora-sp"])
def test_a_training_step_on_a_gpu_never_waits_for_it(kind):
    """The test above, where it matters: whole training steps (the eta schedule running, the spectral
    loss, clipping, the training loop's AdamW) of a random tiny VLA on the GPU, adapted or not, make
    the host wait nowhere."""
    from leanvla.adapt.inject import spectral_loss
    from leanvla.models.config import vla_config
    from leanvla.models.vla import VLA
    from leanvla.train.optimizer import adamw

    torch.manual_seed(0)
    model = VLA(vla_config("tiny"))
    if kind != "full":
        inject_adapters(model, kind, LoRAOptions(rank=4, eta=0.8), eta_decay_steps=2)
    model.cuda().train()
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = adamw(model, 1e-4, 0.01, torch.device("cuda"))  # whichever AdamW training uses there
    batches = []
    for seed in range(3):
        obs, *rest = random_batch(model, seed)
        batches.append((obs.map(lambda x: x.cuda()), *(x.cuda() for x in rest)))
    with gpu_waits() as waits:
        for batch in batches:
            objective = model.action_error(*batch).mean()
            spectral = spectral_loss(model)
            if spectral is not None:
                objective = objective + spectral[1]
            optimizer.zero_grad(set_to_none=True)
            objective.backward()
            torch.nn.utils.clip_grad_norm_(trained, 1.0)
            optimizer.step()
    assert waits == []


def test_train_io_off_trains_only_the_adapters(base):
    model, *_ = base
    inject_adapters(model, "lora", LoRAOptions(rank=4, train_io=False))
    trained = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trained and all("lora_" in n for n in trained)


def test_an_adapted_io_module_keeps_its_base_frozen(base):
    model, *_ = base
    inject_adapters(model, "lora-sp", LoRAOptions(rank=4, regex=r"connector$"))
    assert not model.vision.connector.base_layer.weight.requires_grad
    assert model.vision.connector.lora_A.requires_grad and model.state_proj.weight.requires_grad


def test_adapters_saved_before_train_io_load_with_those_modules_frozen():
    assert LoRAOptions.from_dict({"rank": 4}, "x").train_io is False
    assert LoRAOptions.from_dict(LoRAOptions(rank=4).to_dict(), "x").train_io is True


def test_an_option_this_version_lacks_is_refused_not_dropped():
    # Dropping it would build a different adapter from the one that was trained.
    with pytest.raises(
        UserError, match=r"^run/config.json: unknown adapter option 'future' \(written by a newer"
    ):
        LoRAOptions.from_dict({**LoRAOptions().to_dict(), "future": 1}, "run/config.json")


@pytest.mark.parametrize(
    "name, value, kind",
    [
        ("rank", "4", 'int, got "4"'),
        ("rank", 4.0, "int, got 4.0"),
        ("alpha", "8", 'float | None, got "8"'),
        ("targets", ["backbone"], 'str, got ["backbone"]'),
        ("train_io", "yes", 'bool, got "yes"'),
        ("path", "fast", "Literal['auto', 'dense', 'gather'], got \"fast\""),
    ],
)
def test_an_option_of_the_wrong_kind_is_one_line_naming_it(name, value, kind):
    # a hand-edited record: each was a TypeError or an AttributeError where the option was first used
    with pytest.raises(UserError, match=f"^{re.escape(f'run/config.json: {name!r} must be {kind}')}$"):
        LoRAOptions.from_dict({**LoRAOptions().to_dict(), name: value}, "run/config.json")
    assert (
        LoRAOptions.from_dict({**LoRAOptions().to_dict(), "alpha": 16}, "x").alpha == 16
    )  # an int is a float


def test_targets_by_stack_regex_and_group_rank(base):
    model, *_ = base
    only_expert = adapter_targets(model, LoRAOptions(targets="expert"))
    assert only_expert and all(n.startswith("expert.layers.") for n in only_expert)
    queries = adapter_targets(model, LoRAOptions(regex=r"attn\.q_proj$"))
    assert len(queries) == 4 and all(n.endswith("attn.q_proj") for n in queries)
    inject_adapters(model, "lora-sp", LoRAOptions(rank=4, group_rank="expert=2"))
    assert model.expert.layers[0].attn.q_proj.rank == 2 and model.backbone[0].attn.q_proj.rank == 4


def test_group_settings_reach_each_stacks_layers(base):
    """--lora.group-*: a stack's layers take its rank (alpha / rank kept), eta and spectral weight, and
    their eta schedule never starts below their own eta."""
    model, *_ = base
    opts = LoRAOptions(
        rank=4,
        alpha=8.0,
        eta=0.6,
        eta_start=0.7,
        spectral_weight=0.5,
        group_rank="expert=2",
        group_eta="expert=0.9",
        group_spectral_weight="expert=0.25",
    )
    inject_adapters(model, "lora-sp", opts, eta_decay_steps=10)
    expert, backbone = model.expert.layers[0].mlp.up_proj, model.backbone[0].mlp.up_proj
    assert (expert.rank, expert.eta, expert.eta_start, expert.spectral_weight) == (2, 0.9, 0.9, 0.25)
    assert (backbone.rank, backbone.eta, backbone.eta_start, backbone.spectral_weight) == (4, 0.6, 0.7, 0.5)
    assert expert.scale == backbone.scale == 2.0  # alpha / rank: 8 / 4 at rank 4, 4 / 2 at rank 2


def test_peft_lora_group_rank(base):
    model, *_ = base
    inject_adapters(model, "lora", LoRAOptions(rank=4, group_rank="expert=2"))
    assert model.expert.layers[1].mlp.up_proj.lora_A["default"].weight.shape[0] == 2
    assert model.backbone[1].mlp.up_proj.lora_A["default"].weight.shape[0] == 4


def test_spectral_loss_weights_each_stack_by_its_own_weight(base):
    from leanvla.adapt.inject import lora_sp_layers, spectral_loss
    from leanvla.adapt.lora_sp import concentration_loss

    model, *_ = base
    opts = LoRAOptions(rank=4, eta=0.8, spectral_weight=0.5, group_spectral_weight="expert=0")
    stacks = inject_adapters(model, "lora-sp", opts)
    assert spectral_loss(model) is None  # before any training forward
    with torch.no_grad():  # routers away from their constant start, so that the loss has a gradient
        for layer in lora_sp_layers(model).values():
            layer.score_layer().weight.normal_(std=0.5)
    model.train()
    model.action_error(*random_batch(model))  # a training forward: each layer keeps its scores
    mean, weighted = spectral_loss(model)
    layers = lora_sp_layers(model)
    losses = {name: concentration_loss(layer.last_scores) for name, layer in layers.items()}
    assert torch.equal(mean, torch.stack(list(losses.values())).mean())
    expected = sum(losses[n] * (0.0 if stacks[n] == "expert" else 0.5) for n in layers) / len(layers)
    assert torch.allclose(weighted, expected)
    weighted.backward()
    for name, layer in layers.items():
        router_grad = layer.score_layer().weight.grad
        if stacks[name] == "expert":  # weight 0: the spectral term leaves its routers alone
            assert router_grad is None or not router_grad.any()
        else:
            assert router_grad is not None and router_grad.abs().sum() > 0


def test_one_spectral_weight_keeps_the_arithmetic_of_a_single_weight(base):
    """Runs without per-stack weights repeat bit for bit those from before they existed."""
    from leanvla.adapt.inject import lora_sp_layers, spectral_loss

    model, *_ = base
    inject_adapters(model, "lora-sp", LoRAOptions(rank=4, eta=0.8))
    model.train()
    model.action_error(*random_batch(model))
    for weight in (0.3, 0.7, 0.9, 1 / 3):  # a mean of weighted losses rounds differently for some
        for layer in lora_sp_layers(model).values():
            layer.spectral_weight = weight
        mean, weighted = spectral_loss(model)
        assert torch.equal(weighted, weight * mean)


@pytest.mark.parametrize(
    "opts, message",
    [
        (LoRAOptions(regex="no_such_module"), "matches no nn.Linear"),
        (LoRAOptions(regex="("), "not a valid regular expression"),
        (
            LoRAOptions(targets="decoder"),
            "stack 'decoder', which the layout lacks (it has backbone, expert, vision)",
        ),
        (LoRAOptions(targets="backbone,vision"), "stack 'vision', which has no layers in this model"),
        (LoRAOptions(rank=40), "rank 40 is larger than"),
        (  # the smaller side bounds the rank, however wide the other
            LoRAOptions(rank=40, regex=r"backbone\.0\.attn\.k_proj$"),
            "rank 40 is larger than backbone.0.attn.k_proj allows (64 -> 32: at most 32)",
        ),
        (LoRAOptions(eta=0.0), "--lora.eta must be in (0, 1]"),
        (LoRAOptions(eta=1.5), "--lora.eta must be in (0, 1]"),
        (
            LoRAOptions(group_rank="vision=4"),
            "--lora.group-rank names stack 'vision', which has no adapted layers (adapted stacks: backbone, "
            "expert); drop it or add it to --lora.targets",
        ),
        (
            LoRAOptions(group_spectral_weight="vision=0"),
            "--lora.group-spectral-weight names stack 'vision', which has no adapted layers",
        ),
        (
            LoRAOptions(group_eta="decoder=0.9"),
            "--lora.group-eta names stack 'decoder', which the layout lacks",
        ),
        (LoRAOptions(train_modules="("), "--lora.train-modules '(' is not a valid regular expression"),
        (LoRAOptions(train_modules="zzz"), "--lora.train-modules 'zzz' matches no module in the model"),
        (
            LoRAOptions(group_spectral_weight="expert=-1"),
            "--lora.group-spectral-weight for 'expert' must be finite and >= 0",
        ),
        (
            LoRAOptions(spectral_weight=float("inf")),
            "--lora.spectral-weight must be finite and >= 0, got inf",
        ),
        (LoRAOptions(alpha=float("nan")), "--lora.alpha must be finite and > 0, got nan"),
        (LoRAOptions(group_spectral_weight="expert"), "item 'expert' must look like stack=value"),
        # the last one won, without a word
        (
            LoRAOptions(group_rank="expert=4, expert=8"),
            "--lora.group-rank names 'expert' twice; give each once",
        ),
        (LoRAOptions(router_rank=-1), "--lora.router-rank must be >= 0"),
        (LoRAOptions(rank=0), "--lora.rank must be >= 1, got 0"),
        (LoRAOptions(eta_decay=1.5), "--lora.eta-decay must be in [0, 1], got 1.5"),
        (
            LoRAOptions(path="sideways"),
            "--lora.path must be one of ('auto', 'dense', 'gather'), got 'sideways'",
        ),
        (LoRAOptions(group_eta="expert=1.5"), "--lora.group-eta for 'expert' must be in (0, 1], got 1.5"),
        (LoRAOptions(group_rank="expert=0"), "--lora.group-rank for 'expert' must be >= 1, got 0"),
        # the tiny policy has no vision transformer: its 'vision' stack is empty
        (LoRAOptions(targets="expert,vision"), "--lora.targets names stack 'vision', which has no layers"),
        (LoRAOptions(targets="expert, expert"), "--lora.targets names 'expert' twice; give each once"),
    ],
)
def test_bad_options(base, opts, message):
    model, *_ = base
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        inject_adapters(model, "lora-sp", opts)


def test_an_unknown_adapter_kind_and_a_model_without_a_layout_are_refused(base):
    model, *_ = base
    with pytest.raises(UserError, match="adapter kind must be one of .*, got 'dora'"):
        inject_adapters(model, "dora", LoRAOptions())
    with pytest.raises(UserError, match="no layout for Sequential: name the targets with --lora.regex"):
        inject_adapters(torch.nn.Sequential(torch.nn.Linear(4, 4)), "lora", LoRAOptions())


@pytest.mark.parametrize("kind, router_rank", [("lora", 0), ("lora-sp", 0), ("lora-sp", 2)])
def test_saved_adapters_reload_to_identical_outputs(base, tiny_run, tmp_path, kind, router_rank):
    from leanvla.models.checkpoint import ADAPTER, WEIGHTS, adapter_record, resolve_checkpoint

    model, meta, stats, _ = base
    opts = LoRAOptions(rank=4, eta=0.7, router_rank=router_rank)
    inject_adapters(model, kind, opts)
    torch.manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)  # a trained adapter
    expected = fixed_error(model)
    meta = {**meta, "adapter": adapter_record(kind, opts, 0, tiny_run)}
    save_checkpoint(tmp_path / "adapted", model, meta, stats)
    assert (tmp_path / "adapted" / ADAPTER).is_file() and not (tmp_path / "adapted" / WEIGHTS).exists()
    saved = set(adapter_state_dict(model))
    assert saved and all(
        "lora" in k or "router" in k or "forward_steps" in k or k.startswith(IO_NAMES) for k in saved
    )
    reloaded, reloaded_meta, *_ = load_model(tmp_path / "adapted")
    assert reloaded_meta["adapter"]["kind"] == kind
    assert torch.equal(fixed_error(reloaded), expected)
    # The base is found by path and checked by hash.
    assert read_meta(tmp_path / "adapted")["adapter"]["base"] == str(resolve_checkpoint(tiny_run).resolve())


def test_without_peft_lora_is_one_line_saying_how_to_install_it(base, tiny_run, tmp_path, monkeypatch):
    """`pip install leanvla` has no peft (the adapt extra): training LoRA was a ModuleNotFoundError
    traceback once every frame had decoded, and so was loading a LoRA policy anywhere."""
    from leanvla.models.checkpoint import adapter_record

    model, meta, stats, _ = base
    opts = LoRAOptions(rank=4)
    inject_adapters(model, "lora", opts)
    save_checkpoint(
        tmp_path / "lora", model, {**meta, "adapter": adapter_record("lora", opts, 0, tiny_run)}, stats
    )
    monkeypatch.setitem(sys.modules, "peft", None)  # as if not installed
    for load in (
        lambda: inject_adapters(load_model(tiny_run)[0], "lora", opts),
        lambda: load_model(tmp_path / "lora"),
    ):
        with pytest.raises(
            UserError, match=r"needs the optional package 'peft'.*pip install 'leanvla\[adapt\]'"
        ):
            load()
    inject_adapters(load_model(tiny_run)[0], "lora-sp", opts)  # leanvla's own: no peft needed
