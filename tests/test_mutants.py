"""tools/mutants.py's catalogue of seeded faults still applies to the code: each entry's line occurs
exactly once in its file and its tests exist (running the mutants takes ~15 minutes; this check,
under a second)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[1] / "tools" / "mutants.py"


@pytest.fixture(scope="module")
def mutants():
    spec = importlib.util.spec_from_file_location("leanvla_mutants", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_every_mutant_still_applies(mutants):
    assert mutants.check_catalogue(mutants.MUTANTS) == []
    assert len(mutants.MUTANTS) >= 185


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
