"""Options that list names, comma-separated (`--stacks backbone,expert`, `--cameras corner2`), or
give a value per name (`--group-scale backbone=1,expert=0.5`): what they hold, in order, blanks
left out. A name given twice is refused, naming it: it was used twice (a camera observed twice),
or the last value won, without a word."""

from __future__ import annotations

from leanvla.errors import UserError, require


def listed(spec: str, flag: str) -> list[str]:
    """'backbone, expert' -> ['backbone', 'expert']; `flag` names the option in errors."""
    names = []
    for name in (s.strip() for s in spec.split(",")):
        if name:
            require(name not in names, f"{flag} names '{name}' twice; give each once")
            names.append(name)
    return names


def parse_groups(spec: str, flag: str, kind: type) -> dict:
    """'vision=64,expert=16' -> {'vision': 64, 'expert': 16}, each value a `kind`."""
    out = {}
    for item in listed(spec, flag):
        name, sep, value = item.partition("=")
        require(sep == "=", f"{flag} item '{item}' must look like stack=value")
        require(name.strip() not in out, f"{flag} names '{name.strip()}' twice; give each once")
        try:
            out[name.strip()] = kind(value)
        except ValueError as exc:
            raise UserError(f"{flag} value '{value}' for '{name}' is not a {kind.__name__}") from exc
    return out
