"""Influence scores and the selection they drive.

For task k, g_k is the mean projected gradient of its validation demonstrations and
q_k = (F + lambda I)^-1 g_k. The raw score S(i, k) = q_k . phi_i is positive when a gradient step
on training demonstration i lowers task k's validation loss.

Scores of different tasks live on different scales, so each task's column is standardised over
the training demonstrations first. Then, for demonstration i of task t(i):
    local(i)  = Z(i, t(i))                how much it helps its own task
    global(i) = mean over k of Z(i, k)    how much it helps all tasks together
    score(i)  = alpha local(i) + (1 - alpha) global(i)          the interactive score

Self-influence, phi_i . (F + lambda I)^-1 phi_i, needs no validation data: it is large for a
demonstration whose gradient the others do not share, one the model can only fit by memorising it
(Koh & Liang 2017; kronfluence's self-scores). Standardised within each task and negated, it is the
demonstration's typicality, the other ranking `curate --select-by` offers: on our corrupted DEMO5
data it finds bad demonstrations far better than the validation-based scores (docs/RESULTS.md).

Selection keeps the best `fraction` overall, but first the best `task_floor` of every task's own
demonstrations, so curation never starves a task.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from leanvla.errors import require


@dataclass
class Influence:
    tasks: list[int]  # the K task indices, column order of `raw`
    raw: torch.Tensor  # N x K, q_k . phi_i
    local: torch.Tensor  # N
    global_: torch.Tensor  # N
    score: torch.Tensor  # N
    self_influence: torch.Tensor  # N, phi_i . (F + lambda I)^-1 phi_i
    typicality: torch.Tensor  # N, -self_influence standardised within each task

    def ranking(self, select_by: str) -> torch.Tensor:
        """What `curate --select-by` ranks by (a key of RANKINGS)."""
        return {"influence": self.score, "typicality": self.typicality}[select_by]


# `curate --select-by` choices and how reports name them.
RANKINGS = {
    "influence": "interactive influence score",
    "typicality": "typicality (-self-influence, per-task z)",
}


def task_queries(phi_val: torch.Tensor, val_tasks: list[int], tasks: list[int]) -> torch.Tensor:
    """P x K: each task's mean validation gradient."""
    val = torch.tensor(val_tasks)
    columns = []
    for k in tasks:
        members = val == k
        require(
            bool(members.any()),
            f"task {k} has training demonstrations but no validation demonstrations to score them against",
        )
        columns.append(phi_val[members].double().mean(0))
    return torch.stack(columns, dim=1)


def influence(
    phi_train: torch.Tensor,
    train_tasks: list[int],
    phi_val: torch.Tensor,
    val_tasks: list[int],
    solver,
    alpha: float = 0.5,
) -> Influence:
    require(0.0 <= alpha <= 1.0, f"--alpha must be in [0, 1], got {alpha}")
    tasks = sorted(set(train_tasks))
    if val_tasks:
        queries = solver.solve(task_queries(phi_val, val_tasks, tasks))  # P x K
        raw = phi_train.double() @ queries  # N x K
    else:  # no validation demonstrations (label-free typicality): no influence on anything to measure
        raw = torch.full((len(train_tasks), len(tasks)), math.nan, dtype=torch.float64)
    z = standardise(raw)
    column = torch.tensor([tasks.index(t) for t in train_tasks])
    local = z[torch.arange(len(train_tasks)), column]
    global_ = z.mean(1)
    own = self_influence(phi_train, solver)
    typicality = torch.empty_like(own)
    task_of = torch.tensor(train_tasks)
    for k in tasks:
        members = task_of == k
        typicality[members] = -standardise(own[members])
    return Influence(tasks, raw, local, global_, alpha * local + (1 - alpha) * global_, own, typicality)


def standardise(values: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit (population) standard deviation along the first dimension."""
    return (values - values.mean(0)) / values.std(0, unbiased=False).clamp(min=1e-30)


def self_influence(phi: torch.Tensor, solver, chunk: int = 256) -> torch.Tensor:
    """N: phi_i . (F + lambda I)^-1 phi_i, solved `chunk` demonstrations at a time so memory
    stays at P x chunk however many demonstrations there are."""
    parts = []
    for start in range(0, phi.shape[0], chunk):
        block = phi[start : start + chunk].double()
        parts.append((block * solver.solve(block.T).T).sum(1))
    return torch.cat(parts)


def select(score: torch.Tensor, tasks: list[int], fraction: float, task_floor: float) -> torch.Tensor:
    """Bool N: the best `fraction` of all demos, after the best `task_floor` of each task's own."""
    require(0.0 < fraction <= 1.0, f"--fraction must be in (0, 1], got {fraction}")
    require(
        0.0 <= task_floor <= fraction,
        f"--task-floor must be in [0, --fraction = {fraction}], got {task_floor}",
    )
    n = len(tasks)
    keep = torch.zeros(n, dtype=torch.bool)
    task_of = torch.tensor(tasks)
    for k in sorted(set(tasks)):
        members = torch.nonzero(task_of == k).flatten()
        floor = math.ceil(task_floor * len(members))
        best = members[score[members].argsort(descending=True)[:floor]]
        keep[best] = True
    remaining = max(int(round(fraction * n)) - int(keep.sum()), 0)
    order = score.argsort(descending=True)
    keep[order[~keep[order]][:remaining]] = True
    return keep
