"""Influence scores against a plain loop over the definitions; selection's fraction and floor."""

from __future__ import annotations

import pytest
import torch

from leanvla.curate.curvature import ExactInverse
from leanvla.curate.scores import influence, select, self_influence
from leanvla.errors import UserError


def test_scores_follow_their_definitions():
    g = torch.Generator().manual_seed(0)
    phi, val = torch.randn(12, 8, generator=g), torch.randn(6, 8, generator=g)
    tasks, val_tasks = [0, 1, 2] * 4, [0, 1, 2, 0, 1, 2]
    solver = ExactInverse(phi, 0.1)
    result = influence(phi, tasks, val, val_tasks, solver, alpha=0.3)
    fisher = phi.double().T @ phi.double() / 12
    inverse = torch.linalg.inv(fisher + solver.damping * torch.eye(8, dtype=torch.float64))
    for i in range(12):
        z = []
        for k in range(3):
            q = inverse @ val[[j for j in range(6) if val_tasks[j] == k]].double().mean(0)
            column = phi.double() @ q
            assert float(result.raw[i, k]) == pytest.approx(float(column[i]), rel=1e-9)
            z.append(float((column[i] - column.mean()) / column.std(unbiased=False)))
        assert float(result.local[i]) == pytest.approx(z[tasks[i]], rel=1e-9)
        assert float(result.global_[i]) == pytest.approx(sum(z) / 3, rel=1e-9)
        assert float(result.score[i]) == pytest.approx(0.3 * z[tasks[i]] + 0.7 * sum(z) / 3, rel=1e-9)


def test_self_influence_and_typicality_follow_their_definitions():
    g = torch.Generator().manual_seed(2)
    phi, val = torch.randn(9, 5, generator=g), torch.randn(3, 5, generator=g)
    tasks = [0, 0, 0, 0, 1, 1, 1, 1, 1]
    solver = ExactInverse(phi, 0.3)
    result = influence(phi, tasks, val, [0, 1, 0], solver)
    fisher = phi.double().T @ phi.double() / 9
    inverse = torch.linalg.inv(fisher + solver.damping * torch.eye(5, dtype=torch.float64))
    own = torch.stack([phi[i].double() @ inverse @ phi[i].double() for i in range(9)])
    assert torch.allclose(result.self_influence, own, rtol=1e-9)
    for members in ([0, 1, 2, 3], [4, 5, 6, 7, 8]):
        values = own[members]
        expected = -(values - values.mean()) / values.std(unbiased=False)
        assert torch.allclose(result.typicality[members], expected, rtol=1e-9)
    # chunked solves give what one solve gives
    assert torch.allclose(self_influence(phi, solver, chunk=2), own, rtol=1e-9)


def test_the_demo_unlike_its_tasks_others_is_least_typical():
    g = torch.Generator().manual_seed(3)
    shared = torch.randn(16, generator=g)
    phi = shared + 0.05 * torch.randn(12, 16, generator=g)  # one task's demos agree
    outlier = torch.randn(16, generator=g)
    phi[5] = outlier / outlier.norm() * shared.norm() / 2  # off the shared direction, half as long
    result = influence(phi, [0] * 12, phi[:2], [0, 0], ExactInverse(phi, 0.1))
    assert int(result.typicality.argmin()) == 5
    assert float(phi[5].norm()) < float(phi.norm(dim=1).median())  # found by direction, not norm


def test_a_demo_aligned_with_a_tasks_validation_gradient_scores_highest():
    g = torch.Generator().manual_seed(1)
    val = torch.randn(2, 16, generator=g)
    phi = torch.randn(10, 16, generator=g) * 0.1
    phi[3] = val[0] * 2  # pushes task 0's validation gradient: most helpful
    phi[7] = -val[1] * 2  # pushes against task 1's: most harmful
    result = influence(phi, [0] * 5 + [1] * 5, val, [0, 1], ExactInverse(phi, 1.0), alpha=1.0)
    assert int(result.score.argmax()) == 3 and int(result.score.argmin()) == 7


def test_selection_keeps_the_fraction_and_every_tasks_floor():
    tasks = [0] * 8 + [1] * 4
    score = torch.tensor([9.0, 8, 7, 6, 5, 4, 3, 2, -1, -2, -3, -4])
    keep = select(score, tasks, fraction=0.5, task_floor=0.25)
    assert int(keep.sum()) == 6
    assert keep[8] and not keep[9:].any()  # task 1 keeps its floor (1 of 4), its best one
    assert keep[:5].all()  # the rest goes by score
    assert int(select(score, tasks, fraction=0.5, task_floor=0.0)[8:].sum()) == 0


def test_a_tasks_floor_rounds_up_to_whole_demonstrations():
    tasks = [0] * 6 + [1] * 3
    score = torch.tensor([9.0, 8, 7, 6, 5, 4, -1, -2, -3])
    keep = select(score, tasks, fraction=0.5, task_floor=0.5)  # half of task 1's three: two
    assert keep[6:8].all() and not keep[8]
    assert int(keep.sum()) == 5  # round(0.5 x 9) = 4 overall, but the floors already hold 3 + 2


def test_bad_settings_are_user_errors():
    with pytest.raises(UserError, match="--fraction must be in"):
        select(torch.zeros(4), [0, 0, 1, 1], fraction=0.0, task_floor=0.0)
    with pytest.raises(UserError, match="--task-floor"):
        select(torch.zeros(4), [0, 0, 1, 1], fraction=0.5, task_floor=0.6)
    phi = torch.randn(4, 3)
    with pytest.raises(UserError, match="no validation demonstrations"):
        influence(phi, [0, 0, 1, 1], phi[:1], [0], ExactInverse(phi, 0.1))
    with pytest.raises(UserError, match=r"--alpha must be in \[0, 1\], got 1.5"):
        influence(phi, [0, 0, 1, 1], phi, [0, 0, 1, 1], ExactInverse(phi, 0.1), alpha=1.5)
