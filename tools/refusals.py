r"""Refusals no test triggers: which of src/leanvla's bad-input checks does the suite never reach?

    python tools/refusals.py                   # the whole suite: about 7 minutes on 2 CPU cores
    python tools/refusals.py tests/data -x     # pytest's arguments narrow the run

Every `require(condition, message)` and `raise UserError(...)` in src/leanvla is a promise that a
bad input gets one clear line and exit code 2. This runs the test suite in this process with both
instrumented, records where each refusal fired (file and line), and lists the sites where none did.
A listed site is either untested (write the test that gives it its bad input) or cannot be reached
by any input (then it belongs in UNREACHABLE below, with the reason). Refusals in subprocesses
(torchrun's workers, the console-script test) are not seen.

Exit code 1 when a site outside UNREACHABLE never fired or a test failed; 2 on bad input (an
UNREACHABLE entry that no longer matches exactly one site: the code moved on, update the entry).
tests/test_refusals.py checks the entries in every CI run.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "leanvla"


@dataclass(frozen=True)
class Site:
    path: str  # under src/leanvla/
    line: int  # first line of the call or raise
    end_line: int
    text: str  # its source


# Sites no input can reach: (file under src/leanvla, a phrase of its message, why).
UNREACHABLE = [
    (
        "adapt/inject.py",
        "holds no Linear modules in this model",
        "a stack named in --lora.targets that has no layers is refused above it; only the default "
        "targets on a model whose every stack is empty would get here",
    ),
    (
        "curate/run.py",
        "is missing gradients after collection",
        "another torchrun process failed to write its share of the store; one process always "
        "completes its own",
    ),
]


def refusal_sites(root: Path = SRC) -> list[Site]:
    """Every `require(...)` call and `raise UserError(...)` under `root` (errors.py, their home, aside)."""
    sites = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "errors.py":
            continue
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            call = node.exc if isinstance(node, ast.Raise) else node
            if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
                continue
            if (isinstance(node, ast.Raise) and call.func.id == "UserError") or (
                isinstance(node, ast.Call) and call.func.id == "require"
            ):
                text = ast.get_source_segment(source, node)
                sites.append(Site(str(path.relative_to(root)), node.lineno, node.end_lineno, text))
    return sorted(sites, key=lambda s: (s.path, s.line))


def unreachable_sites(sites: list[Site]) -> tuple[set[Site], list[str]]:
    """The sites UNREACHABLE names, and a problem line for each entry matching no site or several."""
    found, problems = set(), []
    for path, phrase, _why in UNREACHABLE:
        matches = [s for s in sites if s.path == path and phrase in s.text]
        if len(matches) != 1:
            problems.append(f"UNREACHABLE entry '{phrase}' matches {len(matches)} sites in {path}, not one")
        found.update(matches)
    return found, problems


class Recorder:
    """While installed, notes the caller's file and line of every refusal that fires.

    Modules bind `require` when they import it, so install this before any other leanvla module
    is imported; `uninstall` puts the originals back."""

    def __init__(self):
        self.hits: set[tuple[str, int]] = set()

    def install(self) -> None:
        import leanvla.errors as errors

        self._errors, self._require, self._init = errors, errors.require, errors.UserError.__init__
        hits, require, init = self.hits, self._require, self._init

        def recording_require(condition, message):
            if not condition:
                frame = sys._getframe(1)
                hits.add((frame.f_code.co_filename, frame.f_lineno))
            return require(condition, message)

        def recording_init(error, *args, **kwargs):
            frame = sys._getframe(1)
            if frame.f_code.co_filename != errors.__file__:  # require's own raise is noted above
                hits.add((frame.f_code.co_filename, frame.f_lineno))
            init(error, *args, **kwargs)

        errors.require, errors.UserError.__init__ = recording_require, recording_init

    def uninstall(self) -> None:
        self._errors.require, self._errors.UserError.__init__ = self._require, self._init

    def fired(self, sites: list[Site], root: Path = SRC) -> set[Site]:
        """The sites at which a refusal was recorded."""
        lines: dict[str, set[int]] = {}
        for filename, line in self.hits:
            lines.setdefault(str(Path(filename).resolve()), set()).add(line)
        return {
            s
            for s in sites
            if any(s.line <= n <= s.end_line for n in lines.get(str((root / s.path).resolve()), ()))
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], epilog="Any other argument is passed to pytest."
    )
    _, pytest_args = parser.parse_known_args(argv)
    sites = refusal_sites()
    unreachable, problems = unreachable_sites(sites)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 2

    os.chdir(REPO)
    sys.path.insert(0, str(REPO / "src"))
    sys.path.insert(0, str(REPO))
    recorder = Recorder()
    recorder.install()
    import pytest

    try:
        code = pytest.main(["-p", "no:cacheprovider", *pytest_args])
    finally:
        recorder.uninstall()
    fired = recorder.fired(sites)
    never = [s for s in sites if s not in fired and s not in unreachable]
    print(
        f"\n{len(sites)} refusal sites in src/leanvla: {len(fired)} fired in the tests, "
        f"{len(unreachable)} unreachable (UNREACHABLE), {len(never)} never fired"
    )
    for site in never:
        print(f"  src/leanvla/{site.path}:{site.line}  {site.text.splitlines()[0].strip()}")
    if code != 0:
        print(f"pytest exited {int(code)}: the tests must pass for this count to mean anything")
    return 1 if never or code != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
