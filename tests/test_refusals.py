"""tools/refusals.py finds every refusal site, records the ones that fire, and its list of
unreachable sites still matches the code (running the whole suite under it takes ~2.5 minutes;
these checks, a second)."""

from __future__ import annotations

import importlib.util

import pytest

from tests.helpers import loaded_tool


@pytest.fixture(scope="module")
def refusals():
    with loaded_tool("refusals") as module:
        yield module


MODULE = """from leanvla.errors import UserError, require


def check(x):
    require(x > 0, "x must be > 0")
    require(
        x < 10,
        "x must be < 10",
    )
    if x == 5:
        raise UserError("not 5")
    raise ValueError("a bug, not a refusal")
"""


def test_every_require_and_user_error_is_a_site(refusals, tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "checks.py").write_text(MODULE)
    sites = refusals.refusal_sites(tmp_path)
    assert [(s.path, s.line, s.end_line) for s in sites] == [
        ("pkg/checks.py", 5, 5),
        ("pkg/checks.py", 6, 9),
        ("pkg/checks.py", 11, 11),
    ]
    assert sites[2].text == 'raise UserError("not 5")'


def test_the_recorder_notes_the_refusals_that_fire_and_only_those(refusals, tmp_path):
    import leanvla.errors
    from leanvla.errors import UserError

    (tmp_path / "checks.py").write_text(MODULE)
    before = leanvla.errors.require, leanvla.errors.UserError.__init__
    recorder = refusals.Recorder()
    recorder.install()
    try:  # a module imported now binds the recording require, as the suite's modules do
        spec = importlib.util.spec_from_file_location("leanvla_refusal_checks", tmp_path / "checks.py")
        checks = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(checks)
        for x in (3, 0, 5):  # passes, then x > 0 and the raise fire; x < 10 never does
            try:
                checks.check(x)
            except (UserError, ValueError):
                pass
    finally:
        recorder.uninstall()
    sites = refusals.refusal_sites(tmp_path)
    assert recorder.fired(sites, tmp_path) == {sites[0], sites[2]}
    assert (leanvla.errors.require, leanvla.errors.UserError.__init__) == before  # put back


def test_each_unreachable_entry_names_exactly_one_site(refusals):
    sites = refusals.refusal_sites()
    found, problems = refusals.unreachable_sites(sites)
    assert problems == [] and len(found) == len(refusals.UNREACHABLE)
    assert len(sites) >= 240
