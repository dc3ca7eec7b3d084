"""tools/mutants.py's catalogue of seeded faults still applies to the code: each entry's line occurs
exactly once in its file and its tests exist (running the mutants takes ~50 minutes; this check,
under a second)."""

from __future__ import annotations

import pytest

from tests.helpers import loaded_tool


@pytest.fixture(scope="module")
def mutants():
    with loaded_tool("mutants") as module:
        yield module


def test_every_mutant_still_applies(mutants):
    assert mutants.check_catalogue(mutants.MUTANTS) == []
    assert len(mutants.MUTANTS) >= 803


def test_a_stale_entry_is_named(mutants, tmp_path):
    (tmp_path / "src" / "leanvla").mkdir(parents=True)
    (tmp_path / "src" / "leanvla" / "m.py").write_text("x = 1\nx = 1\n")
    (tmp_path / "tests").mkdir()
    stale = mutants.Mutant("twice", "m.py", "x = 1", "x = 2", "tests")
    missing = mutants.Mutant("gone", "m.py", "y = 1", "y = 2", "tests/nothing.py")
    assert mutants.check_catalogue([stale, missing], root=tmp_path) == [
        "twice: its line occurs 2 times in src/leanvla/m.py, not once",
        "gone: its line occurs 0 times in src/leanvla/m.py, not once",
        "gone: no test path tests/nothing.py",
    ]


def test_a_mutant_is_caught_by_a_failing_test_or_a_hang_and_survives_a_pass(mutants, tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(
        "import time\n\n"
        "def test_passes():\n    pass\n\n"
        "def test_fails():\n    assert False\n\n"
        "def test_hangs():\n    time.sleep(60)\n"
    )

    def verdict(test: str, timeout_s: float = 30.0) -> tuple[bool, str]:
        return mutants.run_tests(
            tmp_path, mutants.Mutant("m", "m.py", "a", "b", f"tests/test_x.py::{test}"), timeout_s
        )

    assert verdict("test_passes")[0] is False
    assert verdict("test_fails") == (True, "tests/test_x.py::test_fails - assert False")
    assert verdict("test_hangs", timeout_s=2) == (True, "the tests ran past --timeout 2 s (a hang)")
