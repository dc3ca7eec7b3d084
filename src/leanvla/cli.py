"""The `leanvla` command: parses options into config dataclasses (tyro), dispatches, prints.

No logic lives here. Bad input raises `UserError` anywhere below; this layer prints it as one
line on stderr and exits with code 2. tyro's own parse errors (an unknown choice, a missing or
malformed option) come as a drawn box; they are flattened to the same one line. Memory or disk
space running out is one line too, with exit code 1 (machine_errors.py); so are Ctrl-C (130) and
SIGTERM (143), which stop a command alike.
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import io
import json
import os
import re
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path

import tyro

import leanvla
from leanvla.cores import fit_torch_threads
from leanvla.data.lerobot_home import DatasetDir, find_datasets
from leanvla.errors import InputWarning, UserError
from leanvla.machine_errors import MEMORY_REMEDY, machine_failure
from leanvla.readable_json import readable_json
from leanvla.stopping import say_stopped, signals_as_interrupt, stopped, stopped_code
from leanvla.streams import STANDARD_OUTPUT, after_a_broken_pipe, flush_output, output_naming_itself


@dataclass
class InfoConfig:
    """Print a LeRobotDataset's summary as JSON: episodes, frames, fps, tasks, each task's episodes
    (as --episodes takes them), features."""

    root: tyro.conf.Positional[DatasetDir]
    """Dataset directory, or the repo id of one in LeRobot's home (lerobot/pusht)."""


def run_info(cfg: InfoConfig) -> None:
    from leanvla.data.reader import LeRobotDataset

    # task strings as written (a Chinese instruction, not its \u escapes)
    print(readable_json(LeRobotDataset(cfg.root).summary()))


@dataclass
class CacheConfig:
    """List the decoded-frame cache as JSON: each entry's dataset and camera, its frames, the size
    and fit they were fitted to, its MB and last use, and the limit (LEANVLA_CACHE sets the
    directory, or turns it off; LEANVLA_CACHE_GB bounds it)."""

    clear: bool = False
    """Remove every entry instead: the next command to read each camera decodes it again."""


def run_cache(cfg: CacheConfig) -> None:
    from leanvla.data import frame_cache

    if cfg.clear and frame_cache.cache_root() is None:
        print("LEANVLA_CACHE=off: nothing is kept, nothing to clear")
    elif cfg.clear:
        listed = frame_cache.listing()
        removed, left = frame_cache.clear()
        entries = "entry" if removed == 1 else "entries"
        print(f"removed {removed} {entries} ({listed['total_mb']:.0f} MB) from {listed['directory']}")
        if left:  # the commands writing them go on
            print(f"left {left} being written by another command; clear again once it ends")
    elif frame_cache.cache_root() is None:
        print(readable_json(frame_cache.listing()))
    else:  # with the bound LEANVLA_CACHE_GB sets, checked here too (--clear needs none)
        limit = frame_cache.limit_bytes()
        limit_mb = None if limit == sys.maxsize else round(limit / 2**20, 1)  # None: no limit
        print(readable_json({**frame_cache.listing(), "limit_mb": limit_mb}))


def run_record(cfg) -> None:
    from leanvla.data.record import record

    summary = record(cfg)
    print(readable_json(summary))


def run_convert(cfg) -> None:
    from leanvla.data.convert import convert

    print(readable_json(convert(cfg)))


def run_stats(cfg) -> int:
    from leanvla.data.refresh_stats import refresh_stats

    report = refresh_stats(cfg)
    print(readable_json(report))
    stale = report["missing"] or report["changed"] or report["removed"]
    return 1 if cfg.check and stale else 0  # as a formatter's --check: scripts can tell


def _main_process() -> bool:
    """Not one of torchrun's other processes (RANK > 0)."""
    return int(os.environ.get("RANK", "0")) == 0


def run_train(cfg) -> None:
    from leanvla.train.loop import train

    run = train(cfg)
    if _main_process():  # under torchrun, one line, not one per process
        print(f"trained: {run / 'policy'}")


def run_eval(cfg) -> None:
    from leanvla.evaluate import evaluate

    result = evaluate(cfg)
    summary = {
        "mean_success": result["mean_success"],
        "per_task": {t: r["success_rate"] for t, r in result["per_task"].items()},
        "out": str(cfg.out) if cfg.out else None,
    }
    print(readable_json(summary))


def run_probe(cfg) -> None:
    from leanvla.probe.run import RESULT, probe

    fit_torch_threads()
    out = probe(cfg)
    result = json.loads((out / RESULT).read_text(encoding="utf-8"))
    summary = {"out": str(out)}
    for group, found in result["groups"].items():
        overall = found["summary"]["all"]
        summary[group] = {
            "frames": overall["frames"],
            "executed": overall["executed"],
            "swapped": overall["swapped"],
        }
    print(readable_json(summary))


def run_prune(cfg) -> None:
    from leanvla.prune.run import REPORT, prune

    fit_torch_threads()
    out = prune(cfg)
    report = json.loads((out / REPORT).read_text(encoding="utf-8"))
    summary = {
        "out": str(out),
        "parameters": report["parameters"],
        "removed": {name: s["removed"] for name, s in report["stacks"].items()},
    }
    print(readable_json(summary))


def run_curate(cfg) -> None:
    from leanvla.curate.run import SELECTION, TIMING, curate

    fit_torch_threads()
    out = curate(cfg)
    if _main_process():  # under torchrun, only the main process has results
        timing = json.loads((out / TIMING).read_text(encoding="utf-8"))
        kept = json.loads((out / SELECTION).read_text(encoding="utf-8"))["episodes"]
        print(readable_json({"out": str(out), "selected": len(kept), **timing}))


def run_export(cfg) -> None:
    from leanvla.adapt.export import export_checkpoint

    fit_torch_threads()
    print(f"exported: {export_checkpoint(cfg)}")


def run_merge(cfg) -> None:
    from leanvla.merge.run import REPORT, merge

    fit_torch_threads()
    out = merge(cfg)
    report = json.loads((out / REPORT).read_text(encoding="utf-8"))
    print(
        readable_json(
            {"out": str(out), "vector_norm": report["vector_norm"], "group_norms": report["group_norms"]}
        )
    )


def run_demo(cfg) -> None:
    from leanvla.demo import demo

    fit_torch_threads()
    report = demo(cfg)
    print(f"report: {report}")


def _commands() -> dict[tuple[str, ...], tuple[type, Callable, str]]:
    from leanvla.adapt.export import ExportConfig
    from leanvla.curate.run import CurateConfig
    from leanvla.data.convert import ConvertConfig
    from leanvla.data.record import RecordConfig
    from leanvla.data.refresh_stats import StatsConfig
    from leanvla.demo import DemoConfig
    from leanvla.evaluate import EvalConfig
    from leanvla.merge.run import MergeConfig
    from leanvla.probe.run import ProbeConfig
    from leanvla.prune.run import PruneConfig
    from leanvla.train.config import TrainConfig

    return {
        ("data", "metaworld"): (RecordConfig, run_record, "record Meta-World scripted-expert demonstrations"),
        ("data", "convert"): (
            ConvertConfig,
            run_convert,
            "rewrite a LeRobotDataset v2.1 or v2.0 as v3.0 (no lerobot needed)",
        ),
        ("data", "stats"): (
            StatsConfig,
            run_stats,
            "compute a v3 dataset's statistics again from its frames, quantiles too, in place",
        ),
        ("info",): (InfoConfig, run_info, "summarise a LeRobotDataset as JSON"),
        ("cache",): (CacheConfig, run_cache, "list (or clear) the decoded-frame cache"),
        ("train",): (TrainConfig, run_train, "train a policy (resumable; torchrun for data parallel)"),
        ("eval",): (EvalConfig, run_eval, "closed-loop success in Meta-World on held-out positions"),
        ("probe",): (
            ProbeConfig,
            run_probe,
            "a policy's chunks against a dataset's demonstrations, and what it reads (no simulator)",
        ),
        ("curate",): (
            CurateConfig,
            run_curate,
            "score demonstrations by influence (ATHENA) and select the best fraction per task",
        ),
        ("prune",): (PruneConfig, run_prune, "remove redundant layers (CKA-guided, CLP) from a policy"),
        ("merge",): (
            MergeConfig,
            run_merge,
            "add capability vectors to a policy (CapVector, task arithmetic, TIES, DARE)",
        ),
        ("export",): (ExportConfig, run_export, "fold a policy's LoRA / LoRA-SP adapters into plain weights"),
        ("demo",): (DemoConfig, run_demo, "the whole pipeline on the built-in default, with a report"),
    }


# The options that ask for less memory, named when a command runs out of it.
LESS_MEMORY = {
    ("data", "metaworld"): "fewer --workers need less",
    ("train",): (
        "a smaller --batch-size needs less (so do fewer --flow-samples or --val-samples, a smaller model, "
        "and --precision bf16 on a GPU)"
    ),
    ("eval",): "fewer --workers need less",
    ("probe",): "a smaller --batch-size needs less",
    ("curate",): "a smaller --batch-size needs less",
    ("prune",): "fewer --samples or a smaller --batch-size need less",
    ("export",): "fewer --samples or a smaller --batch-size need less",
}


def unwrapped_help(text: str) -> str:
    """A docstring as help text: its lines joined into paragraphs (blank lines and "- " / "* " items
    kept), so that the terminal wraps it, not the source's line breaks."""
    lines = []
    for line in inspect.cleandoc(text).splitlines():
        line = line.strip()
        if lines and lines[-1] and line and not line.startswith(("- ", "* ")):
            lines[-1] += " " + line
        else:
            lines.append(line)
    return "\n".join(lines)


def _unwrap_tyro_help() -> None:
    """tyro keeps a docstring's line break wherever the next line does not start with a letter,
    and its continuation lines start indented, so every option's help broke where the source
    did. Its one helper for this is swapped for `unwrapped_help`; if a tyro release moves it,
    help keeps tyro's own wrapping."""
    strings = getattr(tyro, "_strings", None)
    if strings is not None and hasattr(strings, "remove_single_line_breaks"):
        strings.remove_single_line_breaks = unwrapped_help


def _usage(commands, group: tuple[str, ...] = ()) -> str:
    """The list of commands, or of one group's (`leanvla data --help`)."""
    prefix = " ".join(("leanvla", *group))
    lines = [
        f"usage: {prefix} COMMAND [OPTIONS]   ({prefix} COMMAND --help for its options)",
        "",
        "commands:",
    ]
    for words, (_, _, help_text) in commands.items():
        if words[: len(group)] == group:
            lines.append(f"  {' '.join(words[len(group) :]):<16} {help_text}")
    if not group:
        lines += ["", "leanvla --version prints the version."]
    return "\n".join(lines)


def _groups(commands) -> set[str]:
    """The first words that name several commands (`data`)."""
    return {words[0] for words in commands if len(words) > 1}


def _unknown_command(commands, argv: list[str]) -> str:
    """What was typed, what it may have meant, and where the list is: `leanvla data stat` names
    the data commands; a misspelt `trian` is told `train`."""
    if argv[0] in _groups(commands):
        names = [words[1] for words in commands if words[0] == argv[0]]
        close = difflib.get_close_matches(argv[1], names, n=1)
        hint = f"did you mean '{argv[0]} {close[0]}'? " if close else ""
        return (
            f"unknown {argv[0]} command '{argv[1]}'; {hint}choose from {', '.join(names)} "
            f"(run `leanvla {argv[0]} --help`)"
        )
    firsts = list(dict.fromkeys(words[0] for words in commands))
    close = difflib.get_close_matches(argv[0], firsts, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"unknown command '{argv[0]}'; {hint}run `leanvla --help` for the list"


def one_line_parse_error(box: str) -> str:
    """tyro's error box as one line: its title, then its text up to the box's first inner rule."""
    lines = [line.strip().strip("│").strip() for line in box.strip().splitlines()]
    title = re.sub(r"^[╭─\s]+|[─╮\s]+$", "", lines[0]) if lines else "parse error"
    text = []
    for line in lines[1:]:
        if line.startswith(("─", "╰")):
            break
        text.append(line)
    text = " ".join(" ".join(text).split())
    text = _CHOICES.sub(_sorted_choices, text)
    return text if text.lower().startswith(title.lower()) else f"{title.lower()}: {text}"


_CHOICES = re.compile(r"Expected one of \(([^()]*)\)")


def _sorted_choices(match: re.Match) -> str:
    """tyro lists an optional choice's values in set order, a different one each run: sorted here,
    None first, so that the same mistake always reads the same."""
    names = sorted(
        (name.strip().strip("'") for name in match.group(1).split(",")), key=lambda n: (n != "None", n)
    )
    return "Expected one of: " + ", ".join(names)


def _input_warnings_in_one_line(prog: str, show: Callable) -> Callable:
    """A `warnings.showwarning` that prints leanvla's InputWarnings as its errors read (`leanvla eval:
    warning: ...`), not as a source file, line and code; other warnings as `show` does."""

    def shown(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, InputWarning):
            print(f"{prog}: warning: {message}", file=file or sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    return shown


def main(argv: list[str] | None = None) -> int:
    with signals_as_interrupt(), output_naming_itself():
        try:
            code = _main(argv)
            flush_output()  # the usage or the help (a command's own is flushed in _main)
            return code
        except KeyboardInterrupt:  # Ctrl-C before a command began (importing it, parsing): one line too
            say_stopped(f"leanvla: {stopped()}")
            return stopped_code()
        except BrokenPipeError:  # `leanvla train --help | head`: as a command's output, below
            return after_a_broken_pipe()
        except OSError as exc:  # the help on a full disk
            said = machine_failure(exc) if exc.filename == STANDARD_OUTPUT else None
            if said is None:
                raise
            print(f"leanvla: error: {said}", file=sys.stderr)
            return 1


def _home_expanded(cfg) -> None:
    """Each path option given as `~/...` read as under the home directory: the shell expands a word
    that starts with `~`, not `--out=~/runs`, and leanvla then wrote into a directory named `~` in
    the working directory (and `--data=~/data` did not exist)."""
    for field in fields(cfg):
        value = getattr(cfg, field.name)
        if is_dataclass(value):
            _home_expanded(value)
        elif isinstance(value, Path) and str(value).startswith("~"):
            setattr(cfg, field.name, Path(os.path.expanduser(value)))


def _main(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["--version"], ["-V"]):  # for a bug report: before the commands' slow imports
        print(f"leanvla {leanvla.__version__}")
        return 0
    commands = _commands()
    _unwrap_tyro_help()
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage(commands))
        return 0 if argv else 2
    if argv[0] in _groups(commands) and (len(argv) == 1 or argv[1] in ("-h", "--help")):
        print(_usage(commands, group=(argv[0],)))
        return 0 if len(argv) > 1 else 2
    for words, (config_cls, runner, _) in commands.items():
        if tuple(argv[: len(words)]) == words:
            prog = f"leanvla {' '.join(words)}"
            captured = io.StringIO()
            try:
                with contextlib.redirect_stderr(captured):
                    cfg = tyro.cli(config_cls, args=argv[len(words) :], prog=prog)
            except SystemExit as exc:
                if not exc.code:  # --help
                    return 0
                detail = one_line_parse_error(captured.getvalue())
                print(f"{prog}: error: {detail} (run `{prog} --help`)", file=sys.stderr)
                return 2
            _home_expanded(cfg)
            for given, found in find_datasets(cfg):
                if _main_process():
                    print(f"{prog}: reading {given} from LeRobot's home: {found}", file=sys.stderr)
            try:
                with warnings.catch_warnings():  # restores the usual display afterwards
                    warnings.showwarning = _input_warnings_in_one_line(prog, warnings.showwarning)
                    # An option typed at its default value looks untouched in cfg: pass what was typed.
                    if hasattr(cfg, "check_options_used"):
                        cfg.check_options_used([arg for arg in argv[len(words) :] if arg.startswith("--")])
                    code = runner(cfg)  # None, or an exit code of its own (`data stats --check`)
                    # Written now, where its failure is answered below: at Python's exit, a closed
                    # pipe or a full disk was "Exception ignored" and exit code 120.
                    flush_output()
            except UserError as exc:
                print(f"leanvla {' '.join(words)}: error: {exc}", file=sys.stderr)
                return exc.exit_code
            except InputWarning as exc:  # raised, where warnings are errors (PYTHONWARNINGS=error)
                print(f"{prog}: error: {exc}", file=sys.stderr)
                return 2
            except KeyboardInterrupt as exc:  # it may say where the command stood (training does)
                if _main_process():  # torchrun stops every process: one line, not one each
                    say_stopped(f"{prog}: {stopped()}{f' {exc}' if str(exc) else ''}")
                return stopped_code()
            except BrokenPipeError:  # `leanvla info DATA | head`: the reader left; so do we, quietly
                return after_a_broken_pipe()
            except (MemoryError, RuntimeError, OSError) as exc:
                said = machine_failure(exc, LESS_MEMORY.get(words, MEMORY_REMEDY))
                if said is None:  # a bug: its traceback
                    raise
                print(f"{prog}: error: {said}", file=sys.stderr)
                return 1
            return code or 0
    print(f"leanvla: error: {_unknown_command(commands, argv)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
