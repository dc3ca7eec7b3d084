"""The auxiliary objective's pieces: the environment-state target's standardisation, the error
against a hand-written reference, the pixel decoder, the head a trained policy is given, and a step with the objective reading
nothing back to the host."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from leanvla.models.auxiliary import (
    AuxiliaryHead,
    auxiliary_terms,
    future_rows,
    standardised_environment_state,
)
from leanvla.models.config import vla_config
from leanvla.models.pixel_decoder import PixelDecoder
from leanvla.models.vision import VisionEncoder
from tests.helpers import host_reads
from tests.models.test_vla import obs, tiny


def test_the_future_frame_stays_in_its_episode():
    episode_end = torch.tensor([3, 3, 3, 7, 7, 7, 7])  # episodes of rows 0-2 and 3-6
    # two frames ahead, clamped to the episode's last frame (never the next episode's first)
    assert future_rows(torch.arange(7), episode_end, 2).tolist() == [2, 2, 2, 5, 6, 6, 6]


def test_environment_state_is_standardised_and_constant_dimensions_become_zero():
    g = torch.Generator().manual_seed(0)
    env = torch.cat([3 + 5 * torch.randn(200, 3, generator=g), torch.full((200, 2), 7.0)], dim=1)
    out = standardised_environment_state(env)
    torch.testing.assert_close(out[:, :3].mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(out[:, :3].std(0), torch.ones(3), atol=1e-5, rtol=0)
    assert torch.equal(out[:, 3:], torch.zeros(200, 2))


def test_each_target_has_its_own_mean_squared_error():
    torch.manual_seed(0)
    width, state_dim, env_dim, b = 16, 4, 5, 3
    head = AuxiliaryHead(width, state_dim, env_dim)
    vision = torch.nn.Sequential(torch.nn.Flatten(2), torch.nn.Linear(8, width))  # B x 2 x 8 -> B x 2 x width
    summary, images = torch.randn(b, width), torch.randn(b, 2, 2, 4)
    state, env = torch.randn(b, state_dim), torch.randn(b, env_dim)

    h = F.silu(head.trunk[0](summary))
    target = F.layer_norm(vision(images).mean(1), (width,))
    expected = {
        "features": ((head.features(h) - target) ** 2).mean(-1),
        "state": ((head.state(h) - state) ** 2).mean(-1),
        "env": ((head.env(h) - env) ** 2).mean(-1),
    }
    terms = auxiliary_terms(head, vision, summary, images, state, env)
    assert list(terms) == list(expected)
    for name in expected:
        torch.testing.assert_close(terms[name], expected[name])
    without = AuxiliaryHead(width, state_dim)
    predicted = without(summary)
    assert predicted.env is None and predicted.pixels is None and not hasattr(without, "env")


def test_the_pixel_term_is_the_mean_squared_error_over_every_camera_and_pixel():
    torch.manual_seed(0)
    width, state_dim, b = 16, 4, 3
    decoder = PixelDecoder(width, cameras=2, image_size=16, channels=[4, 8], patch=2)
    head = AuxiliaryHead(width, state_dim, pixels=decoder)
    vision = torch.nn.Sequential(torch.nn.Flatten(2), torch.nn.Linear(3 * 16 * 16, width))
    summary, images, state = torch.randn(b, width), torch.randn(b, 2, 3, 16, 16), torch.randn(b, state_dim)

    plain = AuxiliaryHead(width, state_dim)
    plain.load_state_dict(head.state_dict(), strict=False)  # the same trunk, features and state
    pixel_term = ((decoder(summary) - images) ** 2).mean((1, 2, 3, 4))
    expected = auxiliary_terms(plain, vision, summary, images, state) | {"pixels": pixel_term}
    terms = auxiliary_terms(head, vision, summary, images, state)
    assert list(terms) == ["features", "state", "pixels"]
    for name in expected:
        torch.testing.assert_close(terms[name], expected[name])


def test_the_pixel_decoder_mirrors_the_stem_back_to_every_cameras_image():
    for size in ("tiny", "small", "base"):
        cfg = vla_config(size, cameras=["a", "b"], image_size=64)
        decoder = PixelDecoder(cfg.width, 2, cfg.image_size, cfg.vision_channels, cfg.vision_patch)
        out = decoder(torch.randn(3, cfg.width))
        assert out.shape == (3, 2, 3, 64, 64)
        assert decoder.grid == VisionEncoder(cfg).grid  # it starts from the grid the stem ends at
        transposed = [m for m in decoder.net if isinstance(m, torch.nn.ConvTranspose2d)]
        stem = [m for m in VisionEncoder(cfg).stem.net if isinstance(m, torch.nn.Conv2d)]
        assert [(m.out_channels, m.in_channels, m.stride) for m in transposed] == [
            (m.in_channels, m.out_channels, m.stride) for m in reversed(stem)
        ]
    assert not torch.equal(out[:, 0], out[:, 1])  # each camera has its own grid from the summary


def test_a_head_is_kept_for_the_same_targets_and_replaced_for_others():
    model = tiny()
    model.add_aux_head(4)
    first = model.aux_head
    model.add_aux_head(8)
    assert model.aux_head is first and model.cfg.aux_horizon == 8
    model.add_aux_head(8, env_dim=39)
    assert model.aux_head is not first and model.aux_head.env.out_features == 39
    assert model.cfg.aux_env_dim == 39
    b = 2
    actions = torch.randn(b, 6, model.cfg.action_dim)
    err, aux = model.action_and_aux_error(
        obs(b), actions, torch.randn_like(actions), torch.rand(b),
        torch.randn(b, 2, 3, 32, 32), torch.randn(b, 4), torch.randn(b, 39),
    )  # fmt: skip
    assert err.shape == (b, 6) and list(aux) == ["features", "state", "env"]
    assert all(term.shape == (b,) and (term > 0).all() for term in aux.values())
    env_only = model.aux_head
    model.add_aux_head(8, env_dim=39, pixels=True)
    assert model.aux_head is not env_only and model.cfg.aux_pixels
    with_pixels = model.aux_head
    model.add_aux_head(8, env_dim=39, pixels=True)
    assert model.aux_head is with_pixels


def test_a_step_with_every_target_reads_nothing_back_to_the_host():
    """Computed every step of (b): on a GPU a read-back in it would wait for every queued kernel."""
    model = tiny(aux_horizon=8, aux_env_dim=5, aux_pixels=True).train()
    o = obs(b=3)
    g = torch.Generator().manual_seed(1)
    actions, noise = torch.randn(2, 3, 6, 4, generator=g)
    with host_reads() as reads:
        err, terms = model.action_and_aux_error(
            o, actions, noise, torch.rand(3, generator=g), o.images, o.state, torch.randn(3, 5, generator=g)
        )
        (err.mean() + sum(terms.values()).mean()).backward()
    assert list(terms) == ["features", "state", "env", "pixels"] and reads == []
