"""Every text file leanvla reads or writes is UTF-8 whatever the locale: Python's default is the
locale's encoding, and under a Latin-1 or ASCII one a task named in Chinese was a
UnicodeEncodeError traceback once `leanvla probe` had measured everything (its report.md)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src" / "leanvla"
# Files of the kernel's (/proc, /sys), ASCII whatever the locale.
KERNELS = {"cores.py", "memory.py", "cgroups.py", "environment.py"}


def text_calls_without_an_encoding(source: str) -> list[int]:
    """Lines of read_text/write_text/open calls in text mode that name no encoding."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or any(k.arg == "encoding" for k in node.keywords):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in ("read_text", "write_text"):
            lines.append(node.lineno)
        elif isinstance(func, ast.Name) and func.id == "open":
            mode = (
                node.args[1]
                if len(node.args) > 1
                else next((k.value for k in node.keywords if k.arg == "mode"), None)
            )
            if not (isinstance(mode, ast.Constant) and "b" in mode.value):
                lines.append(node.lineno)
    return lines


def test_the_checker_finds_what_it_looks_for():
    source = (
        'p.read_text()\np.write_text("x", encoding="utf-8")\nopen(p, "a")\nopen(p, "rb")\nopen(p, mode="w")\n'
    )
    assert text_calls_without_an_encoding(source) == [1, 3, 5]


def test_every_text_file_is_opened_as_utf_8():
    unnamed = [
        f"{path.relative_to(SOURCE)}:{line}"
        for path in sorted(SOURCE.rglob("*.py"))
        if path.name not in KERNELS
        for line in text_calls_without_an_encoding(path.read_text(encoding="utf-8"))
    ]
    assert unnamed == []


def test_json_in_chinese_reads_back_under_an_ascii_locale(tmp_path):
    path = tmp_path / "info.json"
    path.write_text(json.dumps({"task": "把方块放进盒子"}, ensure_ascii=False), encoding="utf-8")
    script = (
        "import sys\n"
        "from leanvla.json_values import read_json\n"
        f"sys.stdout.buffer.write(read_json({str(path)!r})['task'].encode('utf-8'))\n"
    )
    env = {**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0"}  # the C locale without UTF-8 mode: ASCII
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, env=env)
    assert (done.returncode, done.stdout.decode("utf-8")) == (0, "把方块放进盒子"), done.stderr.decode()
