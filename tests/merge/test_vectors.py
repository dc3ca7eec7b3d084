"""Merge arithmetic is exact: tau = aux - sft, meta = base + lambda_g tau, and combinations match
peft's formulas on hand-made tensors; mismatches name the first bad parameter."""

from __future__ import annotations

import pytest
import torch

from leanvla.errors import UserError
from leanvla.merge.vectors import (
    add_scaled,
    along,
    capability_vector,
    check_same_config,
    combine,
    diagnostics,
    group_of,
)


def sd(seed: int, **shapes) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {name: torch.randn(*shape, generator=g) for name, shape in shapes.items()}


SHAPES = {"backbone.0.w": (4, 3), "expert.layers.0.w": (2, 3), "embed.w": (5,)}
PREFIXES = {"backbone": "backbone", "expert": "expert.layers"}


def test_capability_vector_excludes_aux_only_parameters():
    sft = sd(0, **SHAPES)
    aux = {**sd(1, **SHAPES), "aux_head.w": torch.ones(3)}
    tau = capability_vector(sft, aux)
    assert set(tau) == set(SHAPES)
    for k in SHAPES:
        assert torch.equal(tau[k], aux[k] - sft[k])


def added(base: torch.Tensor, lam: float, tau: torch.Tensor) -> torch.Tensor:
    """The reference: the sum in float64, rounded once to the weights' dtype."""
    return (base.double() + lam * tau.double()).float()


def test_add_scaled_per_group():
    base, tau = sd(2, **SHAPES), sd(3, **SHAPES)
    merged = add_scaled(base, tau, 1.5, {"expert": 0.5}, PREFIXES)
    for name, lam in (("backbone.0.w", 1.5), ("expert.layers.0.w", 0.5), ("embed.w", 1.5)):
        assert torch.equal(merged[name], added(base[name], lam, tau[name])), name
    # base + (aux - sft) at scale 1 with sft == base is aux itself
    aux = sd(4, **SHAPES)
    assert all(
        torch.allclose(v, aux[k])
        for k, v in add_scaled(base, capability_vector(base, aux), 1.0, {}, PREFIXES).items()
    )


def test_a_group_is_a_whole_path_prefix():
    prefixes = {"expert": "expert.layers", "backbone": "backbone"}
    assert group_of("expert.layers.3.q.weight", prefixes) == "expert"
    assert group_of("backbone.0.w", prefixes) == "backbone"
    assert group_of("backbone_norm.weight", prefixes) == "other"  # shares the letters, not the module
    assert group_of("expert.layers_extra.w", prefixes) == "other"


# Density 1 keeps every entry, so the hand formulas need no trimming; peft warns that it prunes nothing.
@pytest.mark.filterwarnings("ignore:The density 1.0 is greater than or equal to 1")
def test_task_arithmetic_and_ties_by_hand():
    a = {"w": torch.tensor([1.0, -2.0, 3.0, 0.5])}
    b = {"w": torch.tensor([-1.0, -1.0, 1.0, 4.0])}
    summed = combine([a, b], [1.0, 2.0], "task-arithmetic", 1.0, 0)
    assert torch.equal(summed["w"], a["w"] + 2 * b["w"])
    # TIES at density 1: elect the sign of the weighted sum, average the agreeing entries' weighted values
    ties = combine([a, b], [1.0, 1.0], "ties", 1.0, 0)["w"]
    assert torch.allclose(ties, torch.tensor([1.0, -1.5, 2.0, 2.25]))  # entry 0: tie goes to +


def test_combining_refuses_an_unknown_method_a_weight_count_or_a_density():
    a, b = {"w": torch.ones(2)}, {"w": torch.zeros(2)}
    with pytest.raises(UserError, match="--method must be one of .*, got 'mean'"):
        combine([a, b], [1.0, 1.0], "mean", 1.0, 0)
    with pytest.raises(UserError, match="1 weights for 2 vectors; give one per vector"):
        combine([a, b], [1.0], "task-arithmetic", 1.0, 0)
    with pytest.raises(UserError, match=r"--density must be in \(0, 1\], got 0"):
        combine([a, b], [1.0, 1.0], "ties", 0.0, 0)


def test_dare_is_seeded_and_keeps_expectation_scale():
    v = [{"w": torch.ones(10000)}]
    first = combine(v, [1.0], "dare-linear", 0.25, seed=7)["w"]
    assert torch.equal(first, combine(v, [1.0], "dare-linear", 0.25, seed=7)["w"])
    assert set(first.unique().tolist()) <= {0.0, 4.0} and abs(first.mean().item() - 1.0) < 0.1


def test_dare_leaves_the_callers_random_streams_as_they_were(monkeypatch):
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    reseeded = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", reseeded.append)  # what torch.manual_seed calls
    combine([{"w": torch.ones(100)}], [1.0], "dare-ties", 0.5, seed=7)
    assert torch.equal(torch.rand(3), expected) and reseeded == []


def test_mismatch_names_first_parameter():
    sft = sd(0, **SHAPES)
    aux = {**sd(1, **SHAPES), "expert.layers.0.w": torch.zeros(3, 3)}
    with pytest.raises(UserError, match=r"parameter 'expert.layers.0.w' has shape \[2, 3\]"):
        capability_vector(sft, aux)
    missing = {k: v for k, v in sd(1, **SHAPES).items() if k != "embed.w"}
    with pytest.raises(UserError, match="parameter 'embed.w' of the SFT checkpoint is missing"):
        capability_vector(sft, missing)
    with pytest.raises(UserError, match="model config 'width' is 64 in a but 128 in b"):
        check_same_config({"a": {"width": 64, "aux_horizon": 0}, "b": {"width": 128, "aux_horizon": 4}})
    check_same_config({"a": {"width": 64, "aux_horizon": 0}, "b": {"width": 64, "aux_horizon": 4}})


def test_diagnostics_cosines():
    x = {"backbone.0.w": torch.tensor([[1.0, 0.0]]), "embed.w": torch.tensor([1.0, 1.0])}
    y = {"backbone.0.w": torch.tensor([[0.0, 2.0]]), "embed.w": torch.tensor([2.0, 2.0])}
    d = diagnostics({"x": x, "y": y}, PREFIXES)
    pair = d["cosines"]["x vs y"]
    assert pair["per_parameter"]["backbone.0.w"] == pytest.approx(0.0)
    assert pair["per_parameter"]["embed.w"] == pytest.approx(1.0)
    assert pair["per_group"]["backbone"] == pytest.approx(0.0) and pair["per_group"][
        "other"
    ] == pytest.approx(1.0)
    assert d["norms"]["embed.w"]["y"] == pytest.approx(8**0.5)


def slow_dot(x: torch.Tensor, y: torch.Tensor) -> float:
    return sum(a * b for a, b in zip(x.double().flatten().tolist(), y.double().flatten().tolist()))


def test_along_recovers_the_share_of_tau_an_update_undid():
    tau = sd(5, **SHAPES)
    noise = sd(6, **SHAPES)
    # update = -0.25 tau + a part orthogonal to tau, parameter by parameter
    update = {k: -0.25 * t + (noise[k] - slow_dot(noise[k], t) / slow_dot(t, t) * t) for k, t in tau.items()}
    got = along(update, tau)
    assert got["coefficient"] == pytest.approx(-0.25, abs=1e-6)
    dots = {k: slow_dot(update[k], tau[k]) for k in tau}
    norms = {k: (slow_dot(update[k], update[k]), slow_dot(tau[k], tau[k])) for k in tau}
    assert got["cosine"] == pytest.approx(
        sum(dots.values()) / (sum(u for u, _ in norms.values()) * sum(t for _, t in norms.values())) ** 0.5
    )
    assert got["norm_ratio"] == pytest.approx(
        (sum(u for u, _ in norms.values()) / sum(t for _, t in norms.values())) ** 0.5
    )
    matrices = [k for k in SHAPES if len(SHAPES[k]) == 2]  # the 1-d embed.w counts in the sums only
    cosines = {k: dots[k] / (norms[k][0] * norms[k][1]) ** 0.5 for k in matrices}
    assert got["mean_squared_cosine"] == pytest.approx(sum(c * c for c in cosines.values()) / len(matrices))
    assert got["random_squared_cosine"] == pytest.approx((1 / 12 + 1 / 6) / 2)
    worst = max(cosines, key=lambda k: abs(cosines[k]))
    assert got["most_aligned"][0] == worst and got["most_aligned"][1] == pytest.approx(cosines[worst])
    assert cosines[worst] < 0  # the update points against tau


def test_along_is_the_penalty_measure_and_needs_a_shared_matrix():
    from torch import nn

    from leanvla.merge.orthogonal import OrthogonalPenalty

    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    start = {k: v.clone() for k, v in model.state_dict().items()}
    tau = {k: torch.randn(v.shape) for k, v in start.items()}
    with torch.no_grad():
        for p in model.parameters():
            p += torch.randn(p.shape)
    update = {k: v - start[k] for k, v in model.state_dict().items()}
    penalty = float(OrthogonalPenalty(model, tau, start)().detach())
    assert along(update, tau)["mean_squared_cosine"] == pytest.approx(penalty, rel=1e-5)
    with pytest.raises(UserError, match="share no matrix"):
        along(update, {"other.weight": torch.ones(2, 2)})


def test_dare_is_refused_where_peft_is_too_old_to_rescale_what_it_keeps(monkeypatch):
    """peft before 0.19 dropped DARE's rescaling: the merge shrank by the density, silently (the
    suite found it at pyproject's old floor, peft 0.17; LeRobot's wallx extra pins 0.17.1)."""
    import peft

    v = [{"w": torch.ones(100)}]
    monkeypatch.setattr(peft, "__version__", "0.17.1")
    with pytest.raises(UserError) as refused:
        combine(v, [1.0], "dare-ties", 0.5, seed=7)
    assert str(refused.value) == (
        "--method dare-ties needs peft 0.19 or newer: peft 0.17.1, installed here, does not rescale what "
        "DARE keeps (its merge would shrink by --density); pip install 'peft>=0.19', or use --method ties "
        "or task-arithmetic"
    )
    assert combine(v, [1.0], "ties", 0.5, seed=7)["w"].shape == (100,)  # no DARE: no refusal
    monkeypatch.setattr(peft, "__version__", "0.19.0.dev0")
    assert set(combine(v, [1.0], "dare-linear", 0.5, seed=7)["w"].unique().tolist()) <= {0.0, 2.0}
