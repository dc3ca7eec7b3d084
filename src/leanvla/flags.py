"""Which options a command line set: the ones away from their defaults, and the ones typed.

tyro hands back a filled dataclass, in which an option typed at its default value
(`--lora.rank 32`) looks untouched; `leanvla` passes the typed tokens along so that checks of
"this option does nothing here" see those too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import MISSING, Field, fields


def set_flags(options, typed: Iterable[str] = (), prefix: str = "--") -> dict[str, str]:
    """{field: the flag that sets it}, in field order, for each field of the dataclass `options`
    away from its default or among the `typed` command-line tokens (as spelt there, e.g.
    `--lora.eta_start=1` or `--no-overwrite`; `prefix` is the dataclass's own, e.g. `--lora.`)."""
    names = {f.name for f in fields(options)}
    given = {}
    for token in typed:
        flag = token.split("=")[0]
        name = flag.removeprefix(prefix).replace("-", "_")
        name = name if name in names else name.removeprefix("no_")  # --lora.no-train-io
        if flag.startswith(prefix) and name in names:
            given[name] = flag
    flags = {}
    for f in fields(options):
        value = getattr(options, f.name)
        if _has_default(f) and value != _default(f):
            flags[f.name] = f"{prefix}{'no-' if value is False else ''}{f.name.replace('_', '-')}"
        elif f.name in given:
            flags[f.name] = given[f.name]
    return flags


def _has_default(f: Field) -> bool:
    return f.default is not MISSING or f.default_factory is not MISSING


def _default(f: Field):
    return f.default if f.default is not MISSING else f.default_factory()
