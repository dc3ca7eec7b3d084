"""Distilling a bidirectional discrete head into a block-causal one (Fast-dVLA's optional step).

A block-causal student commits few tokens per pass when it is unsure, and every extra pass costs
latency. Its teacher, a trained bidirectional discrete head (`--discrete.block 0`), sees the whole
chunk at once and is more confident. Distillation adds, on the tokens the training step masked,

    weight * KL(teacher(. | masked chunk) || student(. | masked chunk))

to the student's cross-entropy. The teacher sees exactly the student's masked input (the same
draws), is frozen, and runs without gradient. Tokens must mean the same bins in both, so the
student takes the teacher's bin edges.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from leanvla.decode.head import per_step, token_cross_entropy
from leanvla.errors import require

SHARED = (
    "head",
    "cameras",
    "chunk_size",
    "action_vocab",
    "image_size",
    "image_fit",
    "state_dim",
    "action_dim",
)


def check_teacher(path, student: dict, dataset) -> None:
    """Before any image is decoded: the teacher is a discrete head on this data, and shares the
    student's settings of SHARED (those `student` names)."""
    from leanvla.models.checkpoint import read_meta, resolve_checkpoint
    from leanvla.train.build import check_contract

    directory = resolve_checkpoint(path)
    meta = read_meta(directory)
    theirs = meta["model"]
    source = f"--distill.teacher {directory}"
    require(
        student.get("head") == "discrete",
        "--distill.teacher teaches a discrete head: train the student with --head discrete",
    )
    require(
        theirs.get("head") == "discrete",
        f"{source} has a '{theirs.get('head', 'flow')}' head; it must be a discrete head",
    )
    check_contract(
        theirs, dataset, source, meta.get("fps"), remedy="use a teacher trained on this data's cameras"
    )
    _require_shared(theirs, student, source)


def _require_shared(teacher: dict, student: dict, source: str) -> None:
    for key in SHARED:
        if key in student:
            require(
                teacher.get(key) == student[key],
                f"{source} has {key}={teacher.get(key)} but the student has {student[key]}; "
                "teacher and student must share cameras, shapes and vocabulary",
            )


def load_teacher(path, student: nn.Module, student_meta: dict, stats: dict) -> tuple[nn.Module, dict]:
    """(frozen teacher in eval mode, its action-token record); the student takes its bin edges.
    `check_teacher` has passed; what only the loaded checkpoint tells is checked here."""
    from leanvla.models.checkpoint import load_model

    teacher, meta, teacher_stats, directory = load_model(path)
    _require_shared(meta["model"], student_meta["model"], f"--distill.teacher {directory}")
    # The bins live in normalised action units: other statistics would give tokens other meanings.
    for key in (student_meta["action_key"], student_meta["state_key"]):
        for moment in ("mean", "std"):
            require(
                np.allclose(stats[key][moment], teacher_stats[key][moment], atol=1e-5),
                f"--distill.teacher {directory} was trained with other '{key}' statistics than this data's; "
                "distil from a teacher trained on the same dataset",
            )
    student.expert.bin_edges.copy_(teacher.expert.bin_edges)
    teacher.eval().requires_grad_(False)
    return teacher, meta.get("action_tokens")


class DistilledError(nn.Module):
    """The student's B x H training error: masked-token cross-entropy plus weight x KL to the teacher,
    both on the masked tokens, averaged over each step's dimensions (as `token_error`)."""

    def __init__(self, student: nn.Module, teacher: nn.Module, weight: float):
        super().__init__()
        self.student, self.teacher, self.weight = student, teacher, weight

    def forward(self, obs, actions: torch.Tensor, noise: torch.Tensor, t: torch.Tensor, future=None):
        require(future is None, "distillation does not combine with --aux")
        expert = self.student.expert
        targets, inputs, masked = expert.masked_chunk(actions, noise, t)
        index = torch.arange(targets.shape[1], device=targets.device)
        logits, _ = expert(self.student.prefix_of(obs), inputs, index)
        with torch.no_grad():
            taught, _ = self.teacher.expert(self.teacher.prefix_of(obs), inputs, index)
        kl = token_kl(taught, logits).reshape(-1)
        return per_step(token_cross_entropy(logits, targets) + self.weight * kl, masked, actions.shape)


def token_kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) per token (... x vocab -> ...), in nats."""
    p_log = F.log_softmax(teacher_logits, -1)
    return (p_log.exp() * (p_log - F.log_softmax(student_logits, -1))).sum(-1)
