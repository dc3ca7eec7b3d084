"""A missing optional package is one clear line that says how to install it."""

from __future__ import annotations

import sys

import pytest

from leanvla.errors import UserError
from leanvla.optional import require_module


def test_an_installed_module_is_returned():
    assert require_module("json") is sys.modules["json"]


def test_a_missing_package_names_itself_and_its_install_command(monkeypatch):
    with pytest.raises(
        UserError,
        match=r"the optional package 'no_such_pkg', which is not installed \(.*\); install it with: pip install no_such_pkg$",
    ):
        require_module("no_such_pkg.sub")
    monkeypatch.setitem(sys.modules, "av", None)  # as if PyAV were not installed
    with pytest.raises(UserError, match=r"install it with: pip install 'leanvla\[video\]'"):
        require_module("av")
