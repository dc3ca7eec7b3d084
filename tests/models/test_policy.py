"""A loaded policy acts on the instructions it was trained on, and says so of any other."""

from __future__ import annotations

import pytest

from leanvla.errors import UserError
from leanvla.models.checkpoint import load_policy
from tests.models.test_checkpoint import _save


def test_an_instruction_the_policy_never_saw_is_one_clear_error(tmp_path):
    _, path = _save(tmp_path)
    policy = load_policy(path)
    assert policy.task_id("reach the goal position") == 0
    with pytest.raises(
        UserError,
        match="the policy was not trained on the instruction 'open the door' \\(it knows: \\['reach the goal position'\\]\\)",
    ):
        policy.task_id("open the door")
