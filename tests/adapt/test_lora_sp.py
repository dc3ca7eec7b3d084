"""The LoRA-SP layer against slow references: energy selection, dense LoRA at eta = 1, zero update
at initialisation, gather path = masked dense path, the eta schedule, the static export, the small
(bottleneck) router, and routing statistics recorded only when wanted."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from leanvla.adapt import lora_sp
from leanvla.adapt.lora_sp import (
    LoRASPLinear,
    concentration_loss,
    concentration_losses,
    energy_mask,
    eta_at,
)
from tests.helpers import dispatched_ops, gpu_waits, host_reads, needs_cuda


def reference_mask(scores: torch.Tensor, eta: float) -> torch.Tensor:
    """Row by row: take scores largest first (ties: lowest index first) until their squares reach
    eta of the row's energy."""
    flat = scores.reshape(-1, scores.shape[-1])
    out = torch.zeros_like(flat, dtype=torch.bool)
    for row, s in enumerate(flat.tolist()):
        total, held = sum(v * v for v in s), 0.0
        for j in sorted(range(len(s)), key=lambda j: -s[j]):
            if held >= eta * total:
                break
            out[row, j] = True
            held += s[j] * s[j]
    return out.view_as(scores)


def layer(rank=8, eta=0.9, d_in=12, d_out=10, **kw) -> LoRASPLinear:
    torch.manual_seed(0)
    sp = LoRASPLinear(nn.Linear(d_in, d_out), rank, alpha=2.0 * rank, eta=eta, **kw)
    nn.init.normal_(sp.lora_B)  # a trained-looking update (B starts at zero)
    nn.init.normal_(sp.score_layer().weight)
    return sp


@pytest.mark.parametrize("eta", [0.3, 0.5, 0.9, 0.99])
def test_energy_mask_matches_reference(eta):
    scores = torch.rand(5, 7, 16, dtype=torch.float64)
    mask = energy_mask(scores, eta)
    assert torch.equal(mask, reference_mask(scores, eta))
    kept = (scores.pow(2) * mask).sum(-1) / scores.pow(2).sum(-1)
    assert (kept >= eta - 1e-12).all() and (mask.sum(-1) >= 1).all()


@pytest.mark.parametrize("cut_from", [0, 10**12], ids=["cut-from-sorted-values", "stable-sort"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_both_mask_paths_match_the_reference_ties_and_empty_rows_included(monkeypatch, cut_from, dtype):
    # Scores from a few values tie at the cut in many rows; the reference keeps the lowest-indexed.
    monkeypatch.setattr(lora_sp, "CPU_CUT_FROM", cut_from)
    g = torch.Generator().manual_seed(0)
    scores = torch.tensor([0.5, 1.0, 1.5, 2.0], dtype=dtype)[torch.randint(0, 4, (40, 64), generator=g)]
    scores[3] = 0.0  # no energy at all: nothing is needed
    for eta in (0.3, 0.5, 0.8):
        assert torch.equal(energy_mask(scores, eta), reference_mask(scores, eta))
    random = torch.rand(6, 50, 16, generator=g, dtype=dtype)
    assert torch.equal(energy_mask(random, 0.7), reference_mask(random, 0.7))


def test_eta_one_keeps_everything_and_one_hot_keeps_one():
    scores = torch.rand(4, 8)
    assert energy_mask(scores, 1.0).all()
    one_hot = torch.zeros(3, 8)
    one_hot[:, 2] = 5.0
    assert torch.equal(energy_mask(one_hot, 0.5), one_hot > 0)


@pytest.mark.parametrize("router_rank", [0, 3])
def test_eta_one_with_constant_router_is_dense_lora(router_rank):
    sp = layer(rank=6, eta=1.0, router_rank=router_rank)
    with torch.no_grad():
        sp.score_layer().weight.zero_()
        sp.score_layer().bias.fill_(0.7)
    x = torch.randn(3, 5, 12)
    c = math.log1p(math.exp(0.7))  # softplus(0.7): every vector's singular value
    dense = sp.base_layer(x) + sp.scale * c * (x @ sp.lora_A.T @ sp.lora_B.T)
    torch.testing.assert_close(sp(x), dense)


def test_every_score_at_one_is_peft_lora_of_rank_r_and_the_same_alpha():
    """The scale convention is peft's (alpha / r, not rsLoRA's alpha / sqrt r), so a LoRA-SP bank
    whose scores are all 1 computes exactly what the LoRA baseline of the same rank does."""
    from peft import LoraConfig, inject_adapter_in_model

    sp = layer(rank=6, eta=1.0)
    with torch.no_grad():
        sp.score_layer().weight.zero_()
        sp.score_layer().bias.fill_(math.log(math.e - 1))  # softplus: 1
    model = nn.Sequential()
    model.add_module("proj", nn.Linear(12, 10))
    model.proj.load_state_dict(sp.base_layer.state_dict())
    inject_adapter_in_model(LoraConfig(r=6, lora_alpha=12.0, target_modules=["proj"]), model)
    with torch.no_grad():
        model.proj.lora_A["default"].weight.copy_(sp.lora_A)
        model.proj.lora_B["default"].weight.copy_(sp.lora_B)
    x = torch.randn(3, 5, 12)
    torch.testing.assert_close(sp(x), model(x))


def test_starts_equal_to_the_base_layer_as_an_ordinary_lora():
    torch.manual_seed(1)
    base = nn.Linear(12, 10)
    sp = LoRASPLinear(base, 8, alpha=16.0, eta=0.5)
    x = torch.randn(4, 12)
    assert torch.equal(sp(x), base(x))
    assert not base.weight.requires_grad and sp.lora_A.requires_grad
    with torch.no_grad():
        scores, _ = sp.gates(torch.randn(256, 12))
    assert abs(float(scores.mean()) - 1) < 0.02  # singular values start about 1, as a LoRA's are
    assert float((scores - 1).abs().mean()) < 0.1


@pytest.mark.parametrize("eta, router_rank", [(0.2, 0), (0.6, 0), (0.95, 0), (0.6, 4)])
def test_gather_path_equals_masked_dense_path(eta, router_rank):
    dense = layer(eta=eta, path="dense", router_rank=router_rank)
    gather = layer(eta=eta, path="gather", router_rank=router_rank)
    x = torch.randn(2, 3, 12)
    x_dense, x_gather = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_dense, y_gather = dense(x_dense), gather(x_gather)
    torch.testing.assert_close(y_gather, y_dense)
    y_dense.square().sum().backward()
    y_gather.square().sum().backward()
    for a, b in (
        (dense.lora_A, gather.lora_A),
        (dense.lora_B, gather.lora_B),
        *zip(dense.router.parameters(), gather.router.parameters()),
    ):
        torch.testing.assert_close(b.grad, a.grad)
    torch.testing.assert_close(x_gather.grad, x_dense.grad)


def test_gather_computes_only_the_active_vectors(monkeypatch):
    sp = layer(rank=16, eta=0.9, path="gather")
    with torch.no_grad():  # two vectors dominate every token
        sp.router.weight.zero_()
        sp.router.bias.fill_(-20.0)
        sp.router.bias[[3, 11]] = 5.0
    seen = []  # the weights multiplied, as d_out x d_in (addmm's second matrix is B transposed)
    linear, addmm = torch.nn.functional.linear, torch.addmm

    def spy_linear(x, w, b=None):
        seen.append(tuple(w.shape))
        return linear(x, w, b)

    def spy_addmm(out, x, w_t, **kw):
        seen.append(tuple(w_t.t().shape))
        return addmm(out, x, w_t, **kw)

    monkeypatch.setattr(torch.nn.functional, "linear", spy_linear)
    monkeypatch.setattr(torch, "addmm", spy_addmm)
    sp(torch.randn(4, 12))
    assert (2, 12) in seen and (10, 2) in seen  # A and B at the width of the two active vectors
    assert sp.active_rank() == 2.0


def test_eta_schedule_advances_with_training_forwards_only():
    sp = layer(eta=0.5, eta_start=1.0, eta_decay_steps=4)
    x = torch.randn(2, 12)
    assert sp.current_eta() == 1.0
    sp.eval()
    sp(x)
    assert int(sp.forward_steps) == 0
    sp.train()
    for _ in range(2):
        sp(x)
    assert sp.current_eta() == pytest.approx(eta_at(2, 0.5, 1.0, 4)) == pytest.approx(0.75)
    for _ in range(5):
        sp(x)
    assert sp.current_eta() == 0.5
    assert sp.state_dict()["forward_steps"] == 7  # saved with the adapter, so resuming keeps the schedule


def test_loaded_step_count_drives_the_schedule():
    trained = layer(eta=0.5, eta_start=1.0, eta_decay_steps=8)
    for _ in range(3):
        trained(torch.randn(2, 12))
    resumed = layer(eta=0.5, eta_start=1.0, eta_decay_steps=8)
    assert resumed.steps_taken() == 0
    resumed.load_state_dict(trained.state_dict())
    assert resumed.steps_taken() == 3 and resumed.current_eta() == trained.current_eta()
    resumed(torch.randn(2, 12))
    assert resumed.steps_taken() == 4 and int(resumed.forward_steps) == 4


@pytest.mark.parametrize(("device", "path"), [("cpu", "dense"), ("meta", "auto")])
def test_training_step_reads_nothing_back_to_the_host(device, path):
    """On a GPU a read-back waits for every queued kernel: the dense path, and 'auto' off the CPU
    (the meta device stands in for an accelerator here), never read one, schedule included."""
    sp = LoRASPLinear(
        nn.Linear(12, 10, device=device), 8, alpha=16.0, eta=0.8, eta_start=1.0, eta_decay_steps=4, path=path
    )
    x = torch.randn(3, 5, 12, device=device, requires_grad=True)
    with host_reads() as reads:
        for _ in range(3):
            (sp(x).sum() + sp.spectral_loss()).backward()
    assert reads == []
    assert sp.steps_taken() == 3 and sp.current_eta() == pytest.approx(eta_at(3, 0.8, 1.0, 4))


@needs_cuda
def test_on_a_gpu_gather_waits_for_it_and_auto_does_not():
    """Why 'auto' is dense off the CPU, seen on the GPU itself (and gpu_waits shown to see a wait)."""
    x = torch.randn(3, 5, 12, device="cuda")
    waits = {}
    for path in ("gather", "auto"):
        sp = layer(path=path).cuda()
        with gpu_waits() as waits[path]:
            (sp(x).sum() + sp.spectral_loss()).backward()
    assert waits["gather"] and waits["auto"] == []


def test_auto_gathers_on_the_cpu_only():
    sp = layer(path="auto")
    assert sp.gathers(torch.device("cpu")) and not sp.gathers(torch.device("cuda"))
    assert layer(path="gather").gathers(torch.device("cuda"))
    assert not layer(path="dense").gathers(torch.device("cpu"))


def test_concentration_loss_bounds():
    one_hot = torch.zeros(3, 8)
    one_hot[:, 0] = 2.0
    assert float(concentration_loss(one_hot)) == pytest.approx(0.0, abs=1e-6)
    assert float(concentration_loss(torch.ones(3, 8))) == pytest.approx(1.0)


def textbook_concentration(scores: torch.Tensor) -> torch.Tensor:
    energy = scores.pow(2)
    p = energy / energy.sum(-1, keepdim=True)
    return -(p * p.log()).sum(-1).mean() / math.log(scores.shape[-1])


def test_concentration_loss_gradient_is_the_formulas():
    scores = (torch.rand(3, 5, 8, dtype=torch.float64) * 2 + 0.05).requires_grad_()
    loss = concentration_loss(scores)
    (grad,) = torch.autograd.grad(loss, scores)
    reference = textbook_concentration(scores)
    (reference_grad,) = torch.autograd.grad(reference, scores)
    assert loss.item() == pytest.approx(reference.item(), abs=1e-14)
    assert torch.allclose(grad, reference_grad, rtol=1e-10, atol=1e-14)
    assert torch.autograd.gradcheck(concentration_loss, (scores.detach().requires_grad_(),))


def test_batched_losses_equal_each_tensors_own_loss_and_gradient():
    """Shapes interleaved (so the batch puts its losses back in order), a single vector included."""
    torch.manual_seed(3)
    shapes = [(2, 5, 8), (4, 8), (2, 5, 8), (3, 1), (4, 8), (2, 5, 8)]
    scores = [(torch.rand(s, dtype=torch.float64) * 2 + 0.05).requires_grad_() for s in shapes]
    weights = torch.rand(len(scores), dtype=torch.float64)
    batched = concentration_losses(scores)
    expected = torch.stack([concentration_loss(s) for s in scores])
    torch.testing.assert_close(batched, expected, rtol=1e-12, atol=1e-15)
    grads = torch.autograd.grad((batched * weights).sum(), scores)
    expected_grads = torch.autograd.grad((expected * weights).sum(), scores)
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-15)


def test_batched_losses_cost_the_same_ops_for_3_or_9_layers_of_one_shape():
    def ops_for(layers: int) -> int:
        scores = [torch.rand(2, 5, 8, requires_grad=True) for _ in range(layers)]
        with dispatched_ops() as ops:
            concentration_losses(scores).sum().backward()
        return sum(not op.is_view for op in ops)

    assert ops_for(3) == ops_for(9)


def test_spectral_loss_is_the_last_training_forwards_and_only_when_asked():
    sp = layer(eta=0.7)
    x = torch.randn(4, 12)
    sp.train()
    assert sp.spectral_loss() is None
    sp(x)
    expected = concentration_loss(torch.nn.functional.softplus(sp.router(x)))
    assert torch.equal(sp.spectral_loss(), expected)
    sp.eval()
    sp(torch.randn(4, 12))  # an evaluation forward leaves it alone
    assert torch.equal(sp.spectral_loss(), expected)


def test_static_delta_reproduces_constant_routing():
    sp = layer(rank=6, eta=1.0)
    with torch.no_grad():
        sp.router.weight.zero_()
        sp.router.bias.copy_(torch.linspace(-2.0, 2.0, 6))  # a different constant score per vector
    x = torch.randn(7, 12)
    sp.reset_statistics()
    y = sp(x)
    folded = nn.Linear(12, 10)
    folded.load_state_dict(sp.base_layer.state_dict())
    with torch.no_grad():
        folded.weight += sp.static_delta(sp.mean_gate())
    torch.testing.assert_close(folded(x), y)


def test_small_router_is_a_bottleneck_with_the_full_routers_initial_spread():
    torch.manual_seed(0)
    full = LoRASPLinear(nn.Linear(256, 256), 64, alpha=128.0, eta=0.8)
    small = LoRASPLinear(nn.Linear(256, 256), 64, alpha=128.0, eta=0.8, router_rank=8)
    assert sum(p.numel() for p in full.router.parameters()) == 256 * 64 + 64
    assert sum(p.numel() for p in small.router.parameters()) == 256 * 8 + 8 * 64 + 64
    x = torch.randn(4096, 256)
    with torch.no_grad():
        spread_full, spread_small = full.router(x).std(), small.router(x).std()
    assert 0.8 < float(spread_small / spread_full) < 1.25
    assert torch.equal(small(x), small.base_layer(x))  # B = 0: starts equal to the base layer


def test_routing_statistics_are_recorded_in_training_and_when_tracked():
    sp = layer(rank=8, eta=0.6)
    x = torch.randn(5, 12)
    sp.eval()
    sp(x)
    assert sp.active_rank() == 0.0 and float(sp.mean_gate().sum()) == 0.0  # eval: nothing recorded
    sp.track_routing = True
    sp(x)
    tracked = sp.active_rank()
    assert tracked == float(sp.gates(x)[1].sum()) / 5
    sp.track_routing = False
    sp.train()
    sp(x)
    assert sp.active_rank() > 0 and sp._tokens == 10
