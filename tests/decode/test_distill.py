"""Distillation of a bidirectional discrete head into a block-causal one: the KL term, its gradient,
`train --distill.teacher` end to end, and teachers that cannot teach rejected in one line."""

from __future__ import annotations

import copy

import pytest
import torch

from leanvla.decode.distill import DistilledError, token_kl
from leanvla.models.checkpoint import load_policy
from leanvla.train.config import DiscreteOptions, DistillOptions
from leanvla.train.loop import train
from tests.data.helpers import dataset_with
from tests.decode.test_head import discrete
from tests.helpers import tiny_train_config
from tests.models.test_vla import obs
from tests.test_cli import one_line_error, run


def draws(b=2, chunk=4, seed=3):
    g = torch.Generator().manual_seed(seed)
    actions = torch.randn(b, chunk, 4, generator=g)
    return actions, torch.randn(b, chunk, 4, generator=g), torch.rand(b, generator=g) * 0.5 + 0.5


def test_token_kl_matches_its_definition_and_vanishes_on_equal_logits():
    g = torch.Generator().manual_seed(0)
    p_logits, q_logits = torch.randn(3, 5, 7, generator=g), torch.randn(3, 5, 7, generator=g)
    p, q = p_logits.softmax(-1).double(), q_logits.softmax(-1).double()
    reference = (p * (p.log() - q.log())).sum(-1)
    assert torch.allclose(token_kl(p_logits, q_logits).double(), reference, atol=1e-6)
    assert (token_kl(p_logits, q_logits) > 0).all()
    assert torch.allclose(token_kl(p_logits, p_logits), torch.zeros(3, 5), atol=1e-6)


def test_without_weight_or_with_itself_as_teacher_the_error_is_the_plain_token_error():
    student = discrete(block=4)
    o, (actions, noise, t) = obs(), draws()
    plain = student.action_error(o, actions, noise, t)
    assert torch.equal(DistilledError(student, discrete(block=0), 0.0)(o, actions, noise, t), plain)
    itself = DistilledError(student, copy.deepcopy(student), 1.0)(o, actions, noise, t)
    assert torch.allclose(itself, plain, atol=1e-5)


def test_the_kl_gradient_moves_the_student_towards_the_teacher():
    student, teacher = discrete(block=4), discrete(block=0)  # the same initial weights
    with torch.no_grad():  # a teacher that differs from the student
        for p in teacher.expert.logits.parameters():
            p.add_(torch.randn_like(p))
    o, (actions, noise, t) = obs(), draws()
    kl_only = lambda: (  # noqa: E731
        DistilledError(student, teacher, 1.0)(o, actions, noise, t)
        - student.action_error(o, actions, noise, t)
    ).sum()
    before = float(kl_only().detach())
    optimizer = torch.optim.SGD(student.parameters(), lr=0.05)
    for _ in range(5):
        optimizer.zero_grad()
        kl_only().backward()
        optimizer.step()
    assert float(kl_only().detach()) < 0.9 * before


@pytest.fixture(scope="module")
def teacher(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("t") / "teacher"
    train(tiny_train_config(data, out, head="discrete", discrete=DiscreteOptions(vocab=16)), progress=False)
    return out


def test_a_distilled_student_trains_with_the_teachers_bins(data, teacher, tmp_path):
    options = DiscreteOptions(vocab=16, block=8, bins="quantile")  # its own fit would differ
    cfg = tiny_train_config(
        data, tmp_path / "student", head="discrete", discrete=options, distill=DistillOptions(teacher)
    )
    train(cfg, progress=False)
    student, taught = load_policy(tmp_path / "student"), load_policy(teacher)
    assert torch.equal(student.model.expert.bin_edges, taught.model.expert.bin_edges)
    assert student.meta["action_tokens"] == taught.meta["action_tokens"]
    assert student.model.expert.n_blocks == 2


def test_a_teacher_that_cannot_teach_is_one_line(capsys, data, teacher, tmp_path):
    base = ["train", "--data", str(data), "--model.size", "tiny", "--chunk-size", "4"]
    base += ["--n-action-steps", "2", "--steps", "1", "--head", "discrete", "--discrete.block", "8"]
    code, _, err = run(
        capsys, *base, "--out", str(tmp_path / "a"), "--distill.teacher", str(tmp_path / "none")
    )
    one_line_error(code, err, "--distill.teacher", "does not exist")
    code, _, err = run(
        capsys,
        *base,
        "--out",
        str(tmp_path / "b"),
        "--discrete.vocab",
        "8",
        "--distill.teacher",
        str(teacher),
    )
    one_line_error(code, err, "action_vocab=16 but the student has 8")
    flow = tmp_path / "flow"
    train(tiny_train_config(data, flow, steps=1), progress=False)
    code, _, err = run(capsys, *base, "--out", str(tmp_path / "c"), "--distill.teacher", str(flow))
    one_line_error(code, err, "has a 'flow' head; it must be a discrete head")
    flow_student = [arg for arg in base if arg not in ("--head", "discrete", "--discrete.block", "8")]
    code, _, err = run(capsys, *flow_student, "--out", str(tmp_path / "d"), "--distill.teacher", str(teacher))
    one_line_error(
        code, err, "--distill.teacher teaches a discrete head: train the student with --head discrete"
    )
    # the teacher read this data's 16 px images; a student fitting them to 32 px would feed it others
    code, _, err = run(
        capsys,
        *base,
        "--out",
        str(tmp_path / "e"),
        "--discrete.vocab",
        "16",
        "--model.image-size",
        "32",
        "--distill.teacher",
        str(teacher),
    )
    one_line_error(code, err, "has image_size=16 but the student has 32")
    crop = ["--discrete.vocab", "16", "--model.image-fit", "crop", "--distill.teacher", str(teacher)]
    code, _, err = run(capsys, *base, "--out", str(tmp_path / "f"), *crop)
    one_line_error(code, err, "has image_fit=pad but the student has crop")
    elsewhere = dataset_with(tmp_path / "elsewhere", {"side": (16, 16)})
    at = ["--data", str(elsewhere), *base[3:], "--discrete.vocab", "16", "--distill.teacher", str(teacher)]
    code, _, err = run(capsys, "train", *at, "--out", str(tmp_path / "g"))
    one_line_error(code, err, "does not have", "use a teacher trained on this data's cameras")
    assert not any((tmp_path / name / "policy").exists() for name in "abcdefg")


def test_distillation_refuses_an_auxiliary_target_in_the_step_itself(teacher):
    from leanvla.errors import UserError
    from leanvla.models.checkpoint import load_model

    model = load_model(teacher)[0]
    with pytest.raises(UserError, match="distillation does not combine with --aux"):
        DistilledError(model, model, 1.0)(None, None, None, None, future=torch.zeros(1))


def test_a_teacher_is_frozen_and_must_share_the_datas_statistics(teacher):
    from leanvla.decode.distill import load_teacher
    from leanvla.errors import UserError
    from leanvla.models.checkpoint import load_model

    student, meta, stats, _ = load_model(teacher)
    frozen, _ = load_teacher(teacher, student, meta, stats)
    assert not frozen.training and not any(p.requires_grad for p in frozen.parameters())
    shifted = copy.deepcopy(stats)
    shifted[meta["action_key"]]["mean"] = [m + 0.1 for m in stats[meta["action_key"]]["mean"]]
    with pytest.raises(UserError, match="was trained with other 'action' statistics than this data's"):
        load_teacher(teacher, student, meta, shifted)
