"""Kronecker projection equals the dense projection of autograd's per-example gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from leanvla.curate.projection import KroneckerProjector, dense_parameters, projected_linears
from leanvla.errors import UserError
from leanvla.models.layout import VLA_LAYOUT
from tests.models.test_vla import obs, tiny

NAMES = (
    "backbone.0.attn.q_proj",
    "backbone.1.mlp.down_proj",
    "expert.layers.0.mlp.gate_proj",
    "expert.layers.1.attn.o_proj",
)


def example_loss(model, example: int) -> torch.Tensor:
    """One example's loss: a batch of 3 frames of sequence inputs, fixed noise and flow times."""
    o = obs(b=3, seed=example)
    g = torch.Generator().manual_seed(100 + example)
    actions = torch.randn(3, model.cfg.chunk_size, model.cfg.action_dim, generator=g)
    noise = torch.randn(actions.shape, generator=g)
    t = torch.rand(3, generator=g)
    return model.action_error(o, actions, noise, t).mean()


def test_projected_gradients_equal_the_projection_of_per_example_gradients():
    model = tiny()
    linears = projected_linears(VLA_LAYOUT.linear_modules(model, ["backbone", "expert"]))
    projector = KroneckerProjector(linears, k_in=5, k_out=7, seed=3)
    for example in range(2):
        model.zero_grad()
        with projector.hooks():
            example_loss(model, example).backward()
        phi = projector.take()
        grads = torch.autograd.grad(example_loss(model, example), [linears[n].weight for n in NAMES])
        offsets, offset = {}, 0
        for name, block in projector.blocks.items():
            offsets[name] = offset
            offset += block.numel()
        assert offset == projector.dim == phi.numel()
        for name, grad in zip(NAMES, grads):
            expected = projector.p_out[name] @ grad @ projector.p_in[name].T
            got = phi[offsets[name] : offsets[name] + expected.numel()].view_as(expected)
            assert grad.abs().sum() > 0
            torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)


def test_microbatches_add_up_to_one_backward():
    model = tiny()
    linears = projected_linears(VLA_LAYOUT.linear_modules(model, ["backbone", "expert"]))
    projector = KroneckerProjector(linears, k_in=4, k_out=4, seed=0)
    with projector.hooks():
        (example_loss(model, 0) + example_loss(model, 1)).backward()
    together = projector.take()
    with projector.hooks():
        example_loss(model, 0).backward()
        example_loss(model, 1).backward()
    torch.testing.assert_close(projector.take(), together, rtol=1e-4, atol=1e-6)


def test_frozen_weights_are_projected_and_left_frozen():
    model = tiny()
    for p in model.parameters():
        p.requires_grad_(False)
    linears = projected_linears(VLA_LAYOUT.linear_modules(model, ["expert"]))
    projector = KroneckerProjector(linears, k_in=4, k_out=4, seed=0)
    with projector.hooks():
        example_loss(model, 0).backward()
    assert projector.take().abs().sum() > 0
    assert all(not p.requires_grad and p.grad is None for p in model.parameters())


def test_projections_depend_only_on_seed_and_layer_name():
    model = tiny()
    linears = projected_linears(VLA_LAYOUT.linear_modules(model, ["backbone"]))
    a = KroneckerProjector(linears, 4, 4, seed=1)
    b = KroneckerProjector(dict(reversed(list(linears.items()))), 4, 4, seed=1)
    c = KroneckerProjector(linears, 4, 4, seed=2)
    name = next(iter(linears))
    assert torch.equal(a.p_in[name], b.p_in[name]) and torch.equal(a.p_out[name], b.p_out[name])
    assert not torch.equal(a.p_in[name], c.p_in[name])


def test_dense_projection_of_the_other_parameters():
    model = tiny()
    linears = projected_linears(VLA_LAYOUT.linear_modules(model, ["expert"]))
    dense = dense_parameters(model, linears)
    assert not any(id(p) in {id(m.weight) for m in linears.values()} for p in dense.values())
    projector = KroneckerProjector(linears, 3, 3, seed=0, dense=dense, k_dense=5)
    with projector.hooks():
        example_loss(model, 0).backward()
    grads = torch.cat([p.grad.flatten() for p in dense.values()])
    phi = projector.take()
    assert phi.numel() == projector.dim == sum(b.numel() for b in projector.blocks.values()) + 5
    torch.testing.assert_close(phi[-5:], projector.dense_matrix @ grads)
    # take() starts the next demonstration afresh: the next phi holds only the next backward
    with projector.hooks():
        example_loss(model, 1).backward()
    following = projector.take()
    model.zero_grad(set_to_none=True)
    example_loss(model, 1).backward()
    alone = torch.cat([p.grad.flatten() for p in dense.values()])
    torch.testing.assert_close(following[-5:], projector.dense_matrix @ alone)


class Sequence(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.Linear(6, 12)
        self.down = nn.Linear(12, 6)

    def forward(self, x):
        return self.down(torch.tanh(self.up(x)))


def test_lora_wrapped_linears_project_their_adapter_weights():
    from peft import LoraConfig, inject_adapter_in_model

    torch.manual_seed(0)
    model = inject_adapter_in_model(
        LoraConfig(r=3, target_modules=["up", "down"], lora_dropout=0.0), Sequence()
    )
    for name, p in model.named_parameters():
        if "lora_B" in name:  # peft starts B at zero, which would make A's gradient zero
            nn.init.normal_(p)
    linears = projected_linears({"up": model.up, "down": model.down})
    assert set(linears) == {f"{m}.lora_{ab}.default" for m in ("up", "down") for ab in "AB"}
    projector = KroneckerProjector(linears, k_in=4, k_out=2, seed=0)
    x = torch.randn(2, 5, 6)  # 2 frames x 5 tokens
    with projector.hooks():
        model(x).pow(2).mean().backward()
    phi = projector.take()
    grads = torch.autograd.grad(model(x).pow(2).mean(), [m.weight for m in linears.values()])
    expected = torch.cat(
        [(projector.p_out[n] @ g @ projector.p_in[n].T).flatten() for n, g in zip(linears, grads)]
    )
    torch.testing.assert_close(phi, expected, rtol=1e-4, atol=1e-6)


def test_what_cannot_be_projected_is_refused():
    with pytest.raises(UserError, match="'norm' is a LayerNorm: Kronecker projection needs nn.Linear"):
        projected_linears({"norm": nn.LayerNorm(4)})
    with pytest.raises(UserError, match="no Linear modules to project"):
        projected_linears({})
    linears = {"fc": nn.Linear(4, 3)}
    with pytest.raises(UserError, match="--k-in and --k-out must be >= 1, got 0 and 2"):
        KroneckerProjector(linears, k_in=0, k_out=2, seed=0)
    other = {"bias": nn.Parameter(torch.zeros(5))}
    with pytest.raises(
        UserError, match=r"--k-dense \(the other parameters' dense projection\) must be >= 1, got 0"
    ):
        KroneckerProjector(linears, 2, 2, 0, dense=other, k_dense=0)
    huge = {"table": torch.zeros(1).expand(2**20)}  # its size, without the memory
    with pytest.raises(
        UserError, match=r"a dense 512 x 1048576 projection .* needs 2.0 GiB; lower --k-dense"
    ):
        KroneckerProjector(linears, 2, 2, 0, dense=huge, k_dense=512)
