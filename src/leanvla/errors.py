"""The exception type for bad user input, and the warning type for input that is usable but doubtful.

Library code raises `UserError` when the caller gave something unusable (a missing directory, a
shape that does not match, an unknown task). The CLI turns it into one line on stderr and exit
code 2; anything else is a bug and keeps its traceback. `InputWarning` is printed as one line too,
and the command goes on.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input: the message says what is wrong, where, and what to do about it."""

    exit_code = 2


class InputWarning(UserWarning):
    """Usable input with a caveat the user should know of (what it means for the results)."""


def require(condition: bool, message: str) -> None:
    """Raise `UserError(message)` unless `condition` holds."""
    if not condition:
        raise UserError(message)
