"""The reference VLA: prefix masking, the expert's use of the prefix cache, flow sampling, sizes."""

from __future__ import annotations

import pytest
import torch

from leanvla.errors import UserError
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


def test_the_action_tokens_continue_the_positions_of_the_real_prefix_tokens(monkeypatch):
    import leanvla.models.vla
    from leanvla.models.layers import rotary

    model, o = tiny(), obs()
    o.token_mask[1, 3:] = False  # the second instruction is two tokens shorter (padding)
    positions = []
    monkeypatch.setattr(leanvla.models.vla, "rotary", lambda p, dim: positions.append(p) or rotary(p, dim))
    prefix = model.prefix_of(o)
    model.velocity(prefix, torch.randn(2, 6, 4), torch.tensor([0.3, 0.9]))
    prefix_positions, action_positions = positions
    real = prefix.valid.sum(1)
    assert (
        real[0] - real[1] == 2 and prefix_positions[:, -1].tolist() == (real - 1).tolist()
    )  # the state token
    assert action_positions.tolist() == [list(range(n, n + 6)) for n in real.tolist()]


def test_flow_samples_drawn_together_average_their_errors():
    model, o = tiny(), obs()
    g = torch.Generator().manual_seed(1)
    actions, noise, t = (
        torch.randn(2, 6, 4, generator=g),
        torch.randn(2, 3, 6, 4, generator=g),
        torch.rand(2, 3),
    )
    together = model.action_error(o, actions, noise, t)  # 3 noise draws sharing one prefix pass
    apart = torch.stack([model.action_error(o, actions, noise[:, k], t[:, k]) for k in range(3)]).mean(0)
    torch.testing.assert_close(together, apart, rtol=1e-5, atol=1e-6)


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


@pytest.mark.parametrize("target", ["velocity", "action"])
def test_flow_error_is_zero_for_the_true_target(target):
    model = tiny(flow_target=target)
    actions, noise, t = torch.randn(2, 6, 4), torch.randn(2, 6, 4), torch.tensor([0.2, 0.7])
    truth = noise - actions if target == "velocity" else actions
    model.expert_output = lambda prefix, x, tt: truth
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


def test_a_deeper_vision_stem_gives_the_same_tokens_from_more_conv_stages():
    shallow = tiny()  # patch 4, 2 stages: 32 px -> 4 x 4 grid
    deep = tiny(vision_patch=2, vision_channels=[16, 24, 32])  # 32 -> 16 -> 8 -> 4
    images = obs().images
    assert deep.vision.grid == shallow.vision.grid == 4
    assert deep.vision(images).shape == shallow.vision(images).shape
    convs = [m for m in deep.vision.stem.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.stride for c in convs] == [(2, 2), (2, 2), (2, 2)]


def test_the_flat_token_reads_each_cameras_tokens_with_weights_of_their_own():
    plain, flat = tiny(), tiny(vision_flat_token=True)
    flat.load_state_dict(plain.state_dict(), strict=False)  # the same stem and connector
    images = obs().images
    tokens, out = plain.vision(images), flat.vision(images)
    per_camera = flat.vision.tokens_per_camera
    assert out.shape[1] == tokens.shape[1] + 2  # one more token per camera, after the others
    torch.testing.assert_close(out[:, : tokens.shape[1]], tokens, rtol=0, atol=0)
    w, bias = flat.vision.flat.weight, flat.vision.flat.bias
    width = tokens.shape[-1]
    for cam in range(2):  # slow reference: token j of the camera meets its own block of columns
        cam_tokens = tokens[:, cam * per_camera : (cam + 1) * per_camera]
        expected = bias + sum(
            t @ w[:, j * width : (j + 1) * width].T for j, t in enumerate(cam_tokens.unbind(1))
        )
        torch.testing.assert_close(out[:, tokens.shape[1] + cam], expected, rtol=1e-5, atol=1e-6)
    o = obs()
    assert flat.predict(o, torch.zeros(2, 6, 4)).shape == (2, 6, 4)


@pytest.mark.parametrize(
    "stem", [dict(vision_patch=3), dict(vision_channels=[8, 16, 16, 16, 32]), dict(vision_channels=[])]
)
def test_a_vision_stem_that_does_not_tile_the_image_is_refused(stem):
    with pytest.raises(UserError, match="vision stem .* on 32 px images"):
        vla_config("tiny", image_size=32, **stem)


def test_flow_noise_scales_the_starting_point_and_zero_is_deterministic():
    model = tiny()
    prefix = model.prefix_of(obs())
    a, b = torch.randn(2, 2, 6, 4)
    as_trained = model.sample_actions(prefix, a)
    model.cfg.flow_noise = 0.5
    half = model.sample_actions(prefix, a)
    model.cfg.flow_noise = 1.0
    assert torch.equal(model.sample_actions(prefix, a * 0.5), half)
    assert torch.equal(model.sample_actions(prefix, a), as_trained)
    model.cfg.flow_noise = 0.0
    assert torch.equal(model.sample_actions(prefix, a), model.sample_actions(prefix, b))
    assert not torch.allclose(model.sample_actions(prefix, a), as_trained)
    with pytest.raises(UserError, match="--flow-noise must be finite and >= 0"):
        vla_config("tiny", flow_noise=-0.1)


def test_the_action_target_predicts_the_clean_chunk_on_the_same_flow_path():
    model = tiny(flow_target="action")
    prefix = model.prefix_of(obs())
    actions, noise = torch.randn(2, 2, 6, 4)
    t = torch.tensor([0.3, 0.9])
    x_t = t[:, None, None] * noise + (1 - t[:, None, None]) * actions
    chunk = model.expert_output(prefix, x_t, t)
    # the velocity is the one the predicted chunk implies on the path x_t = t noise + (1 - t) a
    velocity = model.velocity(prefix, x_t, t)
    assert torch.allclose(velocity, (x_t - chunk) / t[:, None, None])
    # its loss is the action error at every t alike; the velocity error is the same over t^2
    error = model.flow_error(prefix, actions, noise, t)
    assert torch.allclose(error, (chunk - actions).pow(2).mean(-1))
    velocity_error = (velocity - (noise - actions)).pow(2).mean(-1)
    assert torch.allclose(velocity_error, error / t[:, None] ** 2, rtol=1e-4)
    # one Euler step from noise at t = 1 lands on the predicted chunk
    start = torch.ones(2)
    assert torch.allclose(
        model.sample_actions(prefix, noise, steps=1), model.expert_output(prefix, noise, start)
    )
    # the default target reads the same network output as the velocity itself
    model.cfg.flow_target = "velocity"
    assert torch.equal(model.velocity(prefix, x_t, t), chunk)
    with pytest.raises(UserError, match="model flow_target 'noise' is not one of velocity, action"):
        vla_config("tiny", flow_target="noise")


def test_the_regression_head_is_one_euler_step_from_zero_noise_and_learns():
    model = tiny(head="regression")
    o = obs()
    prefix = model.prefix_of(o)
    zeros = torch.zeros(2, 6, 4)
    assert torch.equal(model.regress(prefix, zeros.shape), model.sample_actions(prefix, zeros, steps=1))
    assert torch.equal(model.predict(o, torch.randn(2, 6, 4)), model.regress(prefix, zeros.shape))
    target = torch.randn(2, 6, 4)
    error = model.action_error(o, target, torch.randn(2, 6, 4), torch.rand(2))
    assert torch.allclose(error, (model.regress(prefix, zeros.shape) - target).pow(2).mean(-1), atol=1e-6)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    first = None
    for _ in range(150):
        loss = model.action_error(o, target, torch.randn(2, 6, 4), torch.rand(2)).mean()
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05 * first  # the noise and time draws do not touch it: it fits a fixed batch
