"""JSON for a person to read as well as a script to parse: what fits on a line stays on it.

`json.dumps(indent=2)` puts every list item on a line of its own, so `leanvla info`'s feature
shapes took five lines each ([64, 64, 3]) and `leanvla prune`'s removed layers one a line.
"""

from __future__ import annotations

import json

WIDTH = 100


def readable_json(value, width: int = WIDTH, indent: int = 2) -> str:
    """`value` as JSON that `json.loads` reads back as `json.dumps(value)` does: each list or object
    on one line where it fits in `width` columns at its place, else one item a line, indented (at
    width 0, exactly `json.dumps(value, indent=indent)`). Text is written as is, not as escapes."""
    return _dumped(value, 0, 0, width, indent)


def _dumped(value, level: int, used: int, width: int, indent: int) -> str:
    """`value` at nesting `level`, `used` columns of its line already taken (indent and key); one
    column more is kept for the comma that may follow it."""
    flat = json.dumps(value, ensure_ascii=False)
    if not isinstance(value, (dict, list, tuple)) or not value or used + len(flat) < width:
        return flat
    inner = " " * (indent * (level + 1))
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            # a key as json writes it: text as is, 1 as "1", True as "true", None as "null"
            name = json.dumps(key if isinstance(key, str) else json.dumps(key), ensure_ascii=False)
            prefix = f"{inner}{name}: "
            lines.append(prefix + _dumped(item, level + 1, len(prefix), width, indent))
        opened, closed = "{", "}"
    else:
        lines = [inner + _dumped(item, level + 1, len(inner), width, indent) for item in value]
        opened, closed = "[", "]"
    return opened + "\n" + ",\n".join(lines) + "\n" + " " * (indent * level) + closed
