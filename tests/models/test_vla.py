"""The reference VLA: prefix masking, the expert's use of the prefix cache, flow sampling, sizes."""

from __future__ import annotations

import torch

from leanvla.models.config import SIZES, default_layer_map, vla_config
from leanvla.models.policy import Observation
from leanvla.models.vla import VLA


def tiny(**kw):
    torch.manual_seed(0)
    return VLA(
        vla_config(
            "tiny",
            cameras=["observation.images.a", "observation.images.b"],
            image_size=32,
            chunk_size=6,
            **kw,
        )
    ).eval()


def obs(b=2, length=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(2, 100, (b, length), generator=g)
    return Observation(
        torch.randn(b, 2, 3, 32, 32, generator=g),
        torch.randn(b, 4, generator=g),
        tokens,
        torch.ones(b, length, dtype=torch.bool),
        torch.zeros(b, dtype=torch.long),
    )


def test_padding_tokens_change_nothing():
    model = tiny()
    o = obs()
    x = torch.randn(2, 6, 4)
    t = torch.tensor([0.3, 0.9])
    base = model.velocity(model.prefix_of(o), x, t)
    padded = Observation(
        o.images,
        o.state,
        torch.cat([o.tokens, torch.randint(2, 100, (2, 3))], 1),
        torch.cat([o.token_mask, torch.zeros(2, 3, dtype=torch.bool)], 1),
        o.task_index,
    )
    assert torch.allclose(model.velocity(model.prefix_of(padded), x, t), base, atol=1e-5)


def test_velocity_depends_on_images_state_and_instruction():
    model = tiny()
    o = obs()
    x, t = torch.randn(2, 6, 4), torch.tensor([0.5, 0.5])
    base = model.velocity(model.prefix_of(o), x, t)
    for changed in (
        Observation(o.images + 1, o.state, o.tokens, o.token_mask, o.task_index),
        Observation(o.images, o.state + 1, o.tokens, o.token_mask, o.task_index),
        Observation(o.images, o.state, o.tokens.flip(1), o.token_mask, o.task_index),
    ):
        assert not torch.allclose(model.velocity(model.prefix_of(changed), x, t), base, atol=1e-4)


def test_cached_prefix_sampling_equals_recomputing_the_prefix_every_step():
    model = tiny()
    o = obs()
    noise = torch.randn(2, 6, 4)
    cached = model.sample_actions(model.prefix_of(o), noise, steps=5)
    x = noise
    for k in range(5):  # slow reference: the backbone re-run at every Euler step
        t = torch.full((2,), 1.0 - k / 5)
        x = x - model.velocity(model.prefix_of(o), x, t) / 5
    assert torch.allclose(cached, x, atol=1e-6)


def test_euler_integration_recovers_the_target_for_an_exact_velocity_field():
    model = tiny()
    target = torch.randn(2, 6, 4)
    # For x_t = t * noise + (1 - t) * a the exact velocity is (x_t - a) / t.
    model.velocity = lambda prefix, x, t: (x - target) / t[:, None, None]
    out = model.sample_actions(model.prefix_of(obs()), torch.randn(2, 6, 4), steps=7)
    assert torch.allclose(out, target, atol=1e-5)


def test_flow_error_is_zero_for_the_true_velocity():
    model = tiny()
    actions, noise, t = torch.randn(2, 6, 4), torch.randn(2, 6, 4), torch.tensor([0.2, 0.7])
    model.velocity = lambda prefix, x, tt: noise - actions
    assert torch.all(model.flow_error(model.prefix_of(obs()), actions, noise, t) == 0)


def test_training_reduces_the_loss():
    model = tiny()
    model.train()
    o = obs(b=4)
    actions = torch.randn(4, 6, 4)
    opt = torch.optim.AdamW(model.parameters(), 3e-3)
    noise, t = torch.randn(4, 6, 4), torch.rand(4)
    losses = []
    for _ in range(80):
        loss = model.action_error(o, actions, noise, t).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]  # it can fit a fixed batch


def test_layer_map_and_sizes():
    assert default_layer_map(4, 4) == [0, 1, 2, 3]
    assert default_layer_map(3, 8) == [0, 4, 7]
    assert default_layer_map(1, 5) == [4]
    tiny_params = tiny().num_parameters()
    assert tiny_params < 1_000_000
    with torch.device("meta"):
        large = VLA(vla_config("large"))
    assert large.num_parameters() > 100_000_000
    assert list(SIZES) == ["tiny", "small", "base", "large"]
