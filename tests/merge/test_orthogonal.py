"""The orthogonal penalty: zero for an orthogonal update, a gradient that reduces the alignment, the
LoRA form equal to the dense form of B A, the batched penalty equal to its per-matrix definition, and
nothing in a call that a GPU would wait for or copy from the host."""

from __future__ import annotations

import torch
from torch import nn

from leanvla.merge.orthogonal import OrthogonalPenalty, lora_squared_cosine, squared_cosine
from tests.helpers import dispatched_ops, gpu_waits, host_reads, needs_cuda


def test_zero_for_orthogonal_update_one_for_parallel():
    tau = torch.zeros(3, 4)
    tau[0, 0] = 2.0
    orthogonal = torch.zeros(3, 4)
    orthogonal[1, 2] = 5.0
    assert float(squared_cosine(orthogonal, tau)) == 0.0
    assert float(squared_cosine(-3 * tau, tau)) == torch.tensor(1.0).item()


def test_squared_cosine_equals_the_textbook_formula():
    torch.manual_seed(2)
    u, t = torch.randn(4, 9, dtype=torch.float64), torch.randn(4, 9, dtype=torch.float64)
    expected = (u * t).sum() ** 2 / ((u**2).sum() * (t**2).sum())
    torch.testing.assert_close(squared_cosine(u, t), expected, rtol=1e-12, atol=0)


def test_gradient_points_away_from_alignment():
    torch.manual_seed(0)
    model = nn.Linear(6, 5, bias=False)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    tau = {"weight": torch.randn(5, 6)}
    penalty = OrthogonalPenalty(model, tau, start)
    with torch.no_grad():
        model.weight += 0.3 * tau["weight"] + 0.3 * torch.randn(5, 6)  # an update partly along tau
    before = penalty()
    before.backward()
    grad = model.weight.grad
    update = model.weight.detach() - start["weight"]
    # Descending the gradient shrinks the update's component along tau...
    along = lambda u: float((u * tau["weight"]).sum())  # noqa: E731
    assert along(-grad) * along(update) < 0
    # ...and a small step lowers the penalty.
    with torch.no_grad():
        model.weight -= 1e-2 * grad / grad.norm()
    assert float(penalty().detach()) < float(before.detach())


def test_lora_form_equals_dense_form():
    torch.manual_seed(1)
    a, b, t = torch.randn(3, 7), torch.randn(5, 3), torch.randn(5, 7)
    dense = squared_cosine(0.5 * b @ a, t)
    torch.testing.assert_close(lora_squared_cosine(a, b, 0.5, t), dense)


def test_penalty_on_peft_lora_matches_dense_update():
    from peft import LoraConfig, inject_adapter_in_model

    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(6, 5, bias=False))
    tau = {"0.weight": torch.randn(5, 6)}
    inject_adapter_in_model(LoraConfig(r=2, lora_alpha=4, target_modules=["0"]), model)
    layer = model[0]
    nn.init.normal_(layer.lora_B["default"].weight)
    penalty = OrthogonalPenalty(model, tau, start=None)
    assert penalty.matrices == 1
    update = layer.scaling["default"] * layer.lora_B["default"].weight @ layer.lora_A["default"].weight
    torch.testing.assert_close(penalty(), squared_cosine(update, tau["0.weight"]))


def stack_of_layers(same: int) -> tuple[nn.Sequential, dict, dict]:
    """`same` Linear layers of one shape, two of others, a conv; peft LoRA on two of the same-shape
    layers and on the last: float64, random, B non-zero, every matrix with its tau."""
    from peft import LoraConfig, inject_adapter_in_model

    torch.manual_seed(4)
    layers = [nn.Linear(6, 6, bias=False) for _ in range(same)] + [nn.Linear(6, 3), nn.Linear(3, 6)]
    model = nn.Sequential(*layers, nn.Conv2d(2, 3, 3)).double()
    tau = {f"{i}.weight": torch.randn(m.weight.shape) for i, m in enumerate(model)}
    adapted = ["0", "1", str(same + 1)]
    inject_adapter_in_model(LoraConfig(r=2, lora_alpha=4, target_modules=adapted), model)
    for name in (*[str(i) for i in range(2, same)], str(same), f"{same + 2}"):
        model.get_submodule(name).weight.requires_grad_(True)  # trained in full beside the adapters
    start = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model, tau, start


def per_matrix_penalty(model: nn.Sequential, tau: dict, start: dict) -> torch.Tensor:
    """The penalty as its definition reads: cos^2 of each layer's update with tau, one by one."""
    terms = []
    for i, layer in enumerate(model):
        if hasattr(layer, "lora_A"):
            a, b = layer.lora_A["default"].weight, layer.lora_B["default"].weight
            terms.append(lora_squared_cosine(a, b, layer.scaling["default"], tau[f"{i}.weight"].double()))
        elif layer.weight.requires_grad:
            terms.append(squared_cosine(layer.weight - start[f"{i}.weight"], tau[f"{i}.weight"].double()))
    return torch.stack(terms).mean()


def test_batched_penalty_and_its_gradient_equal_the_per_matrix_definition():
    model, tau, start = stack_of_layers(same=4)
    penalty = OrthogonalPenalty(model, tau, start)
    assert penalty.matrices == 7  # 3 LoRA, 4 dense (2 same-shape Linears, 1 other, the conv)
    trained = [p for p in model.parameters() if p.requires_grad]
    got = penalty()
    got_grads = torch.autograd.grad(got, trained)
    expected = per_matrix_penalty(model, tau, start)
    expected_grads = torch.autograd.grad(expected, trained)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=0)
    for g, e in zip(got_grads, expected_grads):
        torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-15)


def test_penalty_ops_do_not_grow_with_matrices_of_one_shape():
    """One batched call per shape: on a GPU every op is a kernel launch, whatever its size. (Views,
    such as each matrix's slice of the stacked gradient, launch none and are not counted.)"""

    def ops_for(same: int) -> int:
        model, tau, start = stack_of_layers(same)
        penalty = OrthogonalPenalty(model, tau, start)
        with dispatched_ops() as ops:
            penalty().backward()
        return sum(not op.is_view for op in ops)

    assert ops_for(same=3) == ops_for(same=9)


def test_a_vector_of_another_shape_is_refused_naming_the_parameter():
    import pytest

    from leanvla.errors import UserError
    from leanvla.merge.orthogonal import check_vector_fits

    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    vector = {"0.weight": torch.zeros(3, 4), "1.weight": torch.zeros(2, 5)}
    message = r"--orth.vector holds '1.weight' of shape \[2, 5\], but the model's is \[2, 3\]"
    with pytest.raises(UserError, match=message):
        check_vector_fits(model, vector)
    with pytest.raises(UserError, match=message):
        OrthogonalPenalty(model, vector, {k: v.clone() for k, v in model.state_dict().items()})


def test_a_vector_holding_a_nan_is_refused_naming_the_parameter():
    import pytest

    from leanvla.errors import UserError
    from leanvla.merge.orthogonal import check_vector_fits

    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    vector = {"0.weight": torch.zeros(3, 4), "1.weight": torch.full((2, 3), float("nan"))}
    message = (
        r"^--orth.vector's '1.weight' holds a NaN or an infinity; merge it again from finite checkpoints$"
    )
    with pytest.raises(UserError, match=message):  # it was reported as a training that diverged
        check_vector_fits(model, vector)
    with pytest.raises(UserError, match=message):
        OrthogonalPenalty(model, vector, {k: v.clone() for k, v in model.state_dict().items()})


def test_a_vector_that_shares_no_matrix_or_an_update_without_a_start_is_refused():
    import pytest

    from leanvla.errors import UserError

    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    start = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(UserError, match="--orth.vector shares no trainable matrix with the model"):
        OrthogonalPenalty(model, {"decoder.weight": torch.zeros(3, 4)}, start)
    with pytest.raises(UserError, match="no starting value for '0.weight' to measure its update from"):
        OrthogonalPenalty(model, {"0.weight": torch.zeros(3, 4)}, None)


def lora_and_dense_penalty(device: str = "cpu", dtype: torch.dtype = torch.float32) -> OrthogonalPenalty:
    """The penalty over one peft LoRA layer and one Linear trained in full, on `device` in `dtype`,
    its vector (float32) left on the host, as `leanvla train` reads it from a file."""
    from peft import LoraConfig, inject_adapter_in_model

    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(6, 5, bias=False), nn.Linear(5, 4, bias=False))
    tau = {"0.weight": torch.randn(5, 6), "1.weight": torch.randn(4, 5)}
    inject_adapter_in_model(LoraConfig(r=2, lora_alpha=4, target_modules=["0"]), model)
    model[1].weight.requires_grad_(True)  # trained in full beside the adapter
    model.to(device, dtype)
    penalty = OrthogonalPenalty(model, tau, start={k: v.clone() for k, v in model.state_dict().items()})
    assert penalty.matrices == 2  # one through peft's LoRA, one dense
    return penalty


def test_penalty_reads_nothing_back_to_the_host():
    """Computed every step: on a GPU a read-back in it would wait for every queued kernel."""
    penalty = lora_and_dense_penalty()
    with host_reads() as reads:
        penalty().backward()
    assert reads == []


def test_penalty_converts_its_vector_once_not_in_every_call():
    """A float32 vector for a float64 model: converted when the penalty is built. Converting it in
    every call is, on a GPU, a copy of the whole vector from the host in every training step."""
    penalty = lora_and_dense_penalty(dtype=torch.float64)
    with dispatched_ops() as ops:
        value = penalty()
    conversions = [op for op in ops if op.overloadpacket.__name__ in ("_to_copy", "copy_")]
    assert value.dtype == torch.float64
    assert conversions == []


@needs_cuda
def test_penalty_on_a_gpu_never_waits_for_it():
    penalty = lora_and_dense_penalty("cuda")
    with gpu_waits() as waits:
        penalty().backward()
    assert waits == []
