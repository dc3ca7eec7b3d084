r"""Seeded faults: would the test suite notice a wrong line in src/leanvla? (mutation testing)

    python tools/mutants.py                      # every mutant: about 75 minutes on 2 CPU cores
    python tools/mutants.py --only orth-sum      # one (repeat --only for more)
    python tools/mutants.py --list               # the catalogue

Each mutant changes a line of src/leanvla (or deletes a short block) as a plausible bug would (a
sign, an off-by-one, a dropped factor or term, the wrong reduction, a rule applied to the wrong
sample) and names the tests that must then fail. The sources and tests are copied to a temporary
directory (with ../shared beside it, as the tests expect); each mutant is applied there, its tests
run with `pytest -x`, and the file is put back. The working tree is never touched.

A mutant whose tests pass *survived*: the tests miss that fault (write the test that catches it),
or the change is harmless (then it does not belong here). A mutant that makes its tests run past
--timeout (a decoding loop that never ends, say) counts as caught: a hang does not go unnoticed.
Exit code 1 when any survives; 2 on bad input, including a mutant whose line is no longer in its
file (the code moved on: update the entry). tests/test_mutants.py checks, in every CI run, that
each entry still applies.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str  # under src/leanvla/
    old: str  # the exact text replaced (it must occur once in the file)
    new: str
    tests: tuple[str, ...] | str  # pytest paths that must fail

    @property
    def test_paths(self) -> tuple[str, ...]:
        return (self.tests,) if isinstance(self.tests, str) else self.tests


LSP = ("tests/adapt/test_lora_sp.py", "tests/adapt/test_inject.py", "tests/adapt/test_export.py")
ORTH = "tests/merge/test_orthogonal.py"
VEC = ("tests/merge/test_vectors.py", "tests/merge/test_run.py")
CURV = "tests/curate/test_curvature.py"
SCO = ("tests/curate/test_scores.py", "tests/curate/test_run.py")
SEL = ("tests/prune/test_select.py", "tests/prune/test_run.py")
SIM = "tests/prune/test_similarity.py"
DEC = "tests/decode"
FC = "tests/data/test_frame_cache.py"
FD = "tests/data/test_file_digests.py"
CONV = "tests/data/test_convert.py"
LR = "tests/data/test_lerobot_interop.py"  # LeRobot's own dataset code: what leanvla's tolerates, it may not

# One mutant per line, as a table (name, file under src/leanvla, the line's text, its mutation, tests).
# fmt: off
MUTANTS = [
    # adapt/config.py
    Mutant("demo-simulator-found-late", "demo.py", '    require_module("metaworld")  # the demo', '    pass  # the demo', "tests/test_demo.py"),
    Mutant("train-lora-peft-unchecked", "train/config.py", '        if self.adapter == "lora":  # peft', '        if False:  # peft', "tests/train/test_config.py"),
    Mutant("inject-peft-imported-plainly", "adapt/inject.py", '        peft = require_module("peft")', '        peft = __import__("peft")', "tests/adapt/test_inject.py"),
    Mutant("config-alpha-per-rank", "adapt/config.py", "(self.alpha if self.alpha is not None else 2.0 * self.rank) * rank / self.rank", "(self.alpha if self.alpha is not None else 2.0 * self.rank)", "tests/adapt"),
    # adapt/export.py
    Mutant("export-calibration-contract-unchecked", "adapt/export.py", "        check_contract(model_cfg, dataset,", "        (lambda *given: None)(model_cfg, dataset,", "tests/adapt/test_export.py"),
    Mutant("export-size-dropped", "adapt/export.py", "ChunkDataset.for_policy(dataset, model_cfg)", 'ChunkDataset(dataset, model_cfg["cameras"], model_cfg["chunk_size"])', "tests/adapt/test_export.py"),
    Mutant("export-track-off", "adapt/export.py", "        layer.track_routing = True\n", "        layer.track_routing = False\n", "tests/adapt/test_export.py"),
    # adapt/inject.py
    Mutant("inject-match", "adapt/inject.py", "if isinstance(module, nn.Linear) and pattern.search(name)", "if isinstance(module, nn.Linear) and pattern.match(name)", "tests/adapt"),
    Mutant("inject-eta-start", "adapt/inject.py", "eta_start=max(opts.eta_start, opts.eta_for(stack)),", "eta_start=opts.eta_start,", "tests/adapt"),
    Mutant("inject-group-spectral", "adapt/inject.py", "spectral_weight=opts.spectral_weight_for(stack),", "spectral_weight=opts.spectral_weight,", "tests/adapt"),
    Mutant("inject-group-eta", "adapt/inject.py", "                eta=opts.eta_for(stack),\n", "                eta=opts.eta,\n", "tests/adapt"),
    Mutant("inject-rank-limit", "adapt/inject.py", "            rank <= limit,\n", "            rank <= max(module.in_features, module.out_features),\n", "tests/adapt"),
    # adapt/lora_sp.py
    Mutant("lsp-needed-le", "adapt/lora_sp.py", "return (cumulative - descending) < eta * cumulative[..., -1:]", "return (cumulative - descending) <= eta * cumulative[..., -1:]", LSP),
    Mutant("lsp-ties-lt", "adapt/lora_sp.py", "tied.cumsum(-1) <= tied.sum(-1, keepdim=True) - surplus", "tied.cumsum(-1) < tied.sum(-1, keepdim=True) - surplus", LSP),
    Mutant("lsp-grad-scale", "adapt/lora_sp.py", "grad.mul(-2.0 / ctx.normaliser)", "grad.mul(-1.0 / ctx.normaliser)", LSP),
    Mutant("lsp-normaliser", "adapt/lora_sp.py", "ctx.normaliser = scores.shape[1] * math.log(scores.shape[-1])", "ctx.normaliser = scores.shape[1]", LSP),
    Mutant("lsp-cosine-half", "adapt/lora_sp.py", "(eta_start - eta) * 0.5 * (1 + math.cos", "(eta_start - eta) * (1 + math.cos", LSP),
    Mutant("lsp-scale-sqrt", "adapt/lora_sp.py", "self.rank, self.scale = rank, alpha / rank", "self.rank, self.scale = rank, alpha / math.sqrt(rank)", LSP),
    Mutant("lsp-tokens", "adapt/lora_sp.py", "self._tokens += gate.numel() // self.rank", "self._tokens += gate.numel()", LSP),
    Mutant("lsp-static-nogate", "adapt/lora_sp.py", "(self.lora_B * mean_gate.to(self.lora_B)) @ self.lora_A", "self.lora_B @ self.lora_A", LSP),
    Mutant("lsp-bias-init", "adapt/lora_sp.py", "nn.init.constant_(scores.bias, math.log(math.e - 1))", "nn.init.constant_(scores.bias, 0.0)", LSP),
    Mutant("lsp-no-step-buffer", "adapt/lora_sp.py", "            self.forward_steps += 1\n", "", ("tests/adapt/test_lora_sp.py", "tests/adapt/test_inject.py", "tests/adapt/test_export.py", "tests/train/test_resume.py")),
    Mutant("lsp-gather-gate", "adapt/lora_sp.py", "* gate.index_select(-1, index)", "* gate[..., : index.numel()]", LSP),
    Mutant("lsp-gate-sum", "adapt/lora_sp.py", "self._gate_sum += gate.reshape(-1, self.rank).sum(0)", "self._gate_sum += gate.reshape(-1, self.rank).mean(0)", LSP),
    # adapt/report.py
    Mutant("arank-first-quarter", "adapt/report.py", "tail = rows[-max(1, len(rows) // 4) :]", "tail = rows[: max(1, len(rows) // 4)]", "tests/adapt/test_report.py"),
    Mutant("arank-shut-half", "adapt/report.py", "2 * len(shut) < len(held)", "2 * len(shut) <= len(held)", "tests/adapt/test_report.py"),
    Mutant("arank-shut-strict", "adapt/report.py", "shut = [name for name in held if settled[name] <= SHUT]", "shut = [name for name in held if settled[name] < SHUT]", "tests/adapt/test_report.py"),
    Mutant("arank-shut-no-loss", "adapt/report.py", "if first.spectral_weight == 0 or 2 * len(shut)", "if 2 * len(shut)", "tests/adapt/test_report.py"),
    # atomic.py
    Mutant("atomic-being-written-any-name", "atomic.py", "    if not (path.name.startswith(\".\") and \".tmp-\" in path.name) or path.is_symlink():\n", "    if path.is_symlink():\n", "tests/test_atomic.py"),
    Mutant("lock-held-elsewhere-kept", "run_lock.py", "        free = self._flock()\n        self.release()\n", "        free = self._flock()\n", "tests/test_run_lock.py"),
    Mutant("atomic-old-output-kept", "atomic.py", "                abandoned = Path(target).exists()\n", "                abandoned = False\n", "tests/test_atomic.py"),
    Mutant("atomic-only-copy-removed", "atomic.py", "                abandoned = Path(target).exists()\n", "                abandoned = True\n", "tests/test_atomic.py"),
    Mutant("atomic-old-output-unlisted", "atomic.py", '(".tmp-" in e.name or ".old-" in e.name)', '".tmp-" in e.name', "tests/test_atomic.py"),
    Mutant("atomic-full-disk-unnamed", "atomic.py", "        if exc.filename is None:\n            named = Path(output)\n", "        if False:\n            named = Path(output)\n", "tests/test_atomic.py"),
    Mutant("atomic-names-any-error", "atomic.py", "        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):\n            raise\n", "        if exc.errno is None:\n            raise\n", "tests/test_atomic.py"),
    Mutant("figure-written-in-place", "report.py", "            fig.savefig(tmp, dpi=dpi, format=Path(out).suffix.lstrip(\".\") or None)", "            fig.savefig(out, dpi=dpi)", "tests/test_report.py"),
    Mutant("render-cleanup-noisy", "data/metaworld_env.py", "    quiet, sys.unraisablehook = sys.unraisablehook, lambda _: None", "    quiet = sys.unraisablehook", "tests/data/test_metaworld_env.py"),
    Mutant("render-failure-raw", "data/metaworld_env.py", "            failed = cannot_render(exc)\n", "            raise\n", "tests/data/test_metaworld_env.py"),
    Mutant("render-import-failure-raw", "optional.py", "        if name not in (\"metaworld\", \"mujoco\") or not _loading_a_renderer(exc):\n            raise\n", "        raise\n", "tests/test_optional.py"),
    Mutant("atomic-written-meanwhile-raw", "atomic.py", "                shutil.rmtree(tmp, ignore_errors=True)\n                raise UserError(", "                raise FileExistsError(target)\n                raise UserError(", "tests/test_atomic.py"),
    Mutant("metrics-full-disk-unnamed", "train/loop.py", "    with naming_a_full_disk(path), open(path, \"a\", encoding=\"utf-8\") as f:", "    with open(path, \"a\", encoding=\"utf-8\") as f:", "tests/test_cli.py"),
    Mutant("atomic-long-name-unchecked", "atomic.py", "        if written_as > longest:\n", "        if False:\n", "tests/test_atomic.py"),
    Mutant("atomic-long-name-off-by-one", "atomic.py", "        if written_as > longest:\n", "        if written_as >= longest:\n", "tests/test_atomic.py"),
    Mutant("atomic-output-name-unchecked", "atomic.py", "    require_short_enough(Path(path), flag)\n    require_new(", "    require_new(", "tests/test_atomic.py"),
    Mutant("atomic-users-lookalikes-removed", "atomic.py", "(?:tmp-[a-z0-9_]{{8}}|old-[0-9]+)\")", "(?:tmp-|old-).*\")", "tests/test_atomic.py"),
    Mutant("render-any-import-failure", "optional.py", " or not _loading_a_renderer(exc):", ":", "tests/test_optional.py"),
    Mutant("atomic-full-disk-temporary-named", "atomic.py", "        elif written_as is not None and Path(exc.filename).is_relative_to(written_as):\n", "        elif False:\n", "tests/test_atomic.py"),
    Mutant("export-replaces-meanwhile", "adapt/export.py", ", replace=cfg.overwrite)", ")", "tests/adapt/test_export.py"),
    Mutant("atomic-path-unlocked", "atomic.py", "    writing.try_take()\n    try:\n        remove_abandoned(path)\n", "    try:\n        remove_abandoned(path)\n", "tests/test_atomic.py"),
    Mutant("atomic-path-leftovers-kept", "atomic.py", "        remove_abandoned(path)\n", "        pass\n", "tests/test_atomic.py"),
    Mutant("atomic-listed-every-write", "atomic.py", "    if key not in _CANDIDATES:\n", "    if True:\n", "tests/test_atomic.py"),
    Mutant("atomic-leftovers-kept", "atomic.py", "        remove_abandoned(target)\n", "        pass\n", "tests/test_atomic.py"),
    Mutant("atomic-leftovers-in-use-removed", "atomic.py", "abandoned = lock.try_take() and time.time()", "abandoned = True and time.time()", "tests/test_atomic.py"),
    Mutant("atomic-leftovers-fresh-removed", "atomic.py", " and time.time() - _last_change(leftover) > ABANDONED_AFTER_S\n", "\n", "tests/test_atomic.py"),
    Mutant("atomic-writer-unlocked", "atomic.py", "    writing.try_take()\n    try:\n        remove_abandoned(target)\n", "    try:\n        remove_abandoned(target)\n", "tests/test_atomic.py"),
    Mutant("atomic-leftover-top-only", "atomic.py", "                latest = max(latest, os.lstat(os.path.join(root, name)).st_mtime)", "                pass", "tests/test_atomic.py"),
    Mutant("atomic-new-output-replaced", "atomic.py", "    if not overwrite and Path(path).exists():", "    if False:", ("tests/test_atomic.py", "tests/merge/test_run.py")),
    Mutant("own-any-files-replaced", "atomic.py", "    if (path / mark).exists() or not any(path.iterdir()):", "    if True:", ("tests/test_atomic.py", "tests/test_cli.py")),
    Mutant("own-working-directory-replaced", "atomic.py", "    if overwrite and (target == here or target in here.parents):", "    if overwrite and target == here:", "tests/test_atomic.py"),
    Mutant("own-file-replaced", "atomic.py", "    if not path.is_dir():\n        raise UserError(f\"{flag} {path} is a file, not {what}", "    if False:\n        raise UserError(f\"{flag} {path} is a file, not {what}", "tests/test_atomic.py"),
    Mutant("train-writes-among-others", "train/state.py", '    require_own(run, "--out", "a training run", CONFIG_FILE, cfg.overwrite)\n', "", "tests/test_cli.py"),
    Mutant("curate-inputs-undigested", "curate/run.py", "        **input_digests(source, [(dataset, episodes), (val_dataset, None)], data.cameras, progress),\n", "", "tests/curate/test_run.py"),
    Mutant("curate-data-files-unhashed", "curate/run.py", "{*meta, *dataset.data_files, *videos}", "{*meta, *videos}", "tests/curate/test_run.py"),
    Mutant("curate-store-files-named-first", "curate/store.py", "        if key not in INPUT_FILES and before.get(key) != now[key]:", "        if before.get(key) != now[key]:", "tests/curate/test_store.py"),
    Mutant("curate-store-old-unsaid", "curate/store.py", "            if before.get(key) is None:\n", "            if False:\n", "tests/curate/test_store.py"),
    Mutant("curate-writes-among-others", "curate/run.py", '    require_own(Path(cfg.out), "--out", "a curation", GRADIENTS, cfg.overwrite)\n', "", "tests/test_cli.py"),
    Mutant("demo-writes-among-others", "demo.py", '    require_own(out, "--out", "a demo\'s output", "base", overwrite=False)', "    pass", "tests/test_cli.py"),
    Mutant("run-lock-shared", "run_lock.py", "fcntl.LOCK_EX | fcntl.LOCK_NB", "fcntl.LOCK_SH | fcntl.LOCK_NB", "tests/test_run_lock.py"),
    Mutant("run-lock-never-released", "run_lock.py", "            os.close(self._fd)  # closing", "            os.dup(self._fd)  # closing", "tests/test_run_lock.py"),
    Mutant("train-overwrite-new-directory", "train/state.py", "            empty_directory(run)\n", "            __import__('shutil').rmtree(run)\n", "tests/test_run_lock.py"),
    Mutant("curate-lock-late", "curate/run.py", "        lock.take()  # another curation may be collecting there", "        pass  # another curation may be collecting there", "tests/test_run_lock.py"),
    Mutant("curate-lock-only-if-out-existed", "curate/run.py", "        out.mkdir(parents=True, exist_ok=True)  # the lock is on the directory itself\n        lock.take()", "        if out.is_dir():\n            lock.take()", "tests/test_run_lock.py"),
    Mutant("train-lock-late", "train/state.py", "        lock.take()  # before anything is read or deleted", "        pass  # before anything is read or deleted", "tests/test_run_lock.py"),
    Mutant("train-lock-new-directory", "train/loop.py", "            lock.take()\n", "", "tests/test_run_lock.py"),
    Mutant("output-inputs-told-late", "atomic.py", "    require_creatable(Path(path), flag, inputs)\n    require_short_enough(Path(path), flag)\n    require_new(path, flag, overwrite)\n", "    require_new(path, flag, overwrite)\n    require_creatable(Path(path), flag, inputs)\n", "tests/test_atomic.py"),
    Mutant("atomic-keep-tmp", "atomic.py", "        except BaseException:\n            shutil.rmtree(tmp, ignore_errors=True)\n            raise\n", "        except BaseException:\n            raise\n", "tests/test_atomic.py"),
    Mutant("atomic-old-kept", "atomic.py", "        shutil.rmtree(old, ignore_errors=True)\n", "", "tests/test_atomic.py"),
    Mutant("atomic-file-tmp-kept", "atomic.py", "    except BaseException:\n        Path(tmp).unlink(missing_ok=True)\n", "    except BaseException:\n", "tests/test_atomic.py"),
    Mutant("atomic-creatable-under-a-file", "atomic.py", "    if not home.is_dir():\n", "    if False:\n", ("tests/test_atomic.py", "tests/test_cli.py")),
    Mutant("atomic-creatable-untried", "atomic.py", "        os.rmdir(tempfile.mkdtemp(prefix=\".leanvla-check-\", dir=home))", "        pass", ("tests/test_atomic.py", "tests/test_cli.py")),
    Mutant("atomic-file-out-a-directory", "atomic.py", "    if Path(path).is_dir():\n", "    if False:\n", ("tests/test_evaluate.py", "tests/test_cli.py")),
    Mutant("atomic-input-replaced", "atomic.py", "            if given is not None and (here == Path(given).resolve() or here in Path(given).resolve().parents):", "            if False:", ("tests/test_atomic.py", "tests/data/test_convert.py")),
    Mutant("atomic-input-only-itself", "atomic.py", " or here in Path(given).resolve().parents):", "):", ("tests/test_atomic.py", "tests/data/test_convert.py")),
    Mutant("atomic-creatable-leaves-its-check", "atomic.py", "        os.rmdir(tempfile.mkdtemp(prefix=\".leanvla-check-\", dir=home))", "        tempfile.mkdtemp(prefix=\".leanvla-check-\", dir=home)", "tests/test_atomic.py"),
    # cli.py
    Mutant("cli-user-error-code", "cli.py", "                return exc.exit_code\n", "                return 1\n", "tests/test_cli.py"),
    Mutant("cli-early-interrupt-traceback", "cli.py", "    except KeyboardInterrupt:  # Ctrl-C before a command began", "    except ZeroDivisionError:  # Ctrl-C before a command began", "tests/test_cli.py"),
    Mutant("workers-ctrl-c-inherited", "workers.py", "    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)", "    previous = signal.getsignal(signal.SIGINT)", "tests/test_workers.py"),
    Mutant("workers-tracker-killed-by-hangups", "workers.py", "    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)", "    previous = signal.getsignal(signal.SIGHUP)", "tests/test_workers.py"),
    Mutant("cli-interrupt-code", "cli.py", "                return stopped_code()\n", "                return 1\n", "tests/test_cli.py"),
    Mutant("cli-interrupt-every-rank", "cli.py", "                if _main_process():  # torchrun stops every process", "                if True:  # torchrun stops every process", "tests/test_cli.py"),
    Mutant("stopping-sigterm-default", "stopping.py", "        signal.signal(signum, interrupt)\n", "", "tests/test_stopping.py"),
    Mutant("stopping-sigterm-kept", "stopping.py", "            signal.signal(signum, signal.SIG_DFL)\n", "            pass\n", "tests/test_stopping.py"),
    Mutant("stopping-sigterm-over-callers", "stopping.py", " for signum in STOPPING_SIGNALS if signal.getsignal(signum) is signal.SIG_DFL]", " for signum in STOPPING_SIGNALS]", "tests/test_stopping.py"),
    Mutant("streams-stdout-unnamed", "streams.py", "            exc.filename = exc.filename or STANDARD_OUTPUT\n", "            pass\n", "tests/test_streams.py"),
    Mutant("cli-stdout-flushed-at-exit", "cli.py", "                    flush_output()\n", "", "tests/test_streams.py"),
    Mutant("cli-help-flushed-at-exit", "cli.py", "            flush_output()  # the usage", "            pass  # the usage", "tests/test_streams.py"),
    Mutant("streams-stdout-rest-flushed-again", "streams.py", "            _written_nowhere_from_now(self._stream)\n", "", "tests/test_streams.py"),
    Mutant("cli-help-broken-pipe-traceback", "cli.py", "        except BrokenPipeError:  # `leanvla train --help | head`", "        except ZeroDivisionError:  # `leanvla train --help | head`", "tests/test_streams.py"),
    Mutant("streams-closed-stdout-wrapped", "streams.py", "    if sys.stdout is None:  # closed", "    if False:  # closed", "tests/test_streams.py"),
    Mutant("streams-stdout-unencodable-a-traceback", "streams.py", "        except UnicodeEncodeError:\n            encoding = self._stream.encoding\n", "        except ZeroDivisionError:\n            encoding = self._stream.encoding\n", "tests/test_streams.py"),
    Mutant("streams-broken-stderr-flushed-at-exit", "streams.py", "            _written_nowhere_from_now(stream)\n    return 128 + 13", "            pass\n    return 128 + 13", "tests/test_streams.py"),
    Mutant("rollouts-name-length-unchecked", "report.py", "    require_short_enough(results, flag, output=directory)\n", "", "tests/test_report.py"),
    Mutant("cli-warning-as-error-a-traceback", "cli.py", "            except InputWarning as exc:  # raised", "            except ZeroDivisionError as exc:  # raised", "tests/test_cli.py"),
    Mutant("cli-home-unexpanded", "cli.py", "            _home_expanded(cfg)\n", "", "tests/test_cli.py"),
    Mutant("cli-home-nested-unexpanded", "cli.py", "        if is_dataclass(value):\n            _home_expanded(value)\n", "        if False:\n            pass\n", "tests/test_cli.py"),
    Mutant("merge-vectors-home-unexpanded", "merge/run.py", "    return [Path(os.path.expanduser(entry)) for entry", "    return [Path(entry) for entry", "tests/merge/test_run.py"),
    Mutant("cli-version-unknown", "cli.py", '    if argv[:1] in (["--version"], ["-V"]):', '    if False:', "tests/test_cli.py"),
    Mutant("stopping-sighup-unhandled", "stopping.py", ', signal.SIGHUP: "hung up (SIGHUP)"}', "}", "tests/test_stopping.py"),
    Mutant("stopping-stopped-line-to-a-closed-terminal", "stopping.py", "        print(line, file=sys.stderr, flush=True)\n    except OSError:\n", "        print(line, file=sys.stderr, flush=True)\n    except ValueError:\n", "tests/test_stopping.py"),
    Mutant("stopping-sigterm-code", "stopping.py", "    return 128 + _TERMINATED[0] if _TERMINATED else 130", "    return 130", "tests/test_stopping.py"),
    Mutant("cli-choices-set-order", "cli.py", "key=lambda n: (n != \"None\", n)", "key=lambda n: 0", "tests/test_cli.py"),
    Mutant("cli-help-source-breaks", "cli.py", "    _unwrap_tyro_help()\n", "", "tests/test_cli.py"),
    Mutant("streams-pipe-code", "streams.py", "return 128 + 13  # as if killed by SIGPIPE", "return 0  # as if killed by SIGPIPE", "tests/test_streams.py"),
    Mutant("cli-interrupt-unsaid", "cli.py", "{stopped()}{f' {exc}' if str(exc) else ''}", "{stopped()}", "tests/test_cli.py"),
    Mutant("cli-machine-failure-code-2", "cli.py", "                print(f\"{prog}: error: {said}\", file=sys.stderr)\n                return 1\n", "                print(f\"{prog}: error: {said}\", file=sys.stderr)\n                return 2\n", "tests/test_cli.py"),
    Mutant("cli-memory-remedy-generic", "cli.py", "machine_failure(exc, LESS_MEMORY.get(words, MEMORY_REMEDY))", "machine_failure(exc)", "tests/test_cli.py"),
    Mutant("cli-every-failure-one-line", "cli.py", "                if said is None:  # a bug: its traceback\n                    raise\n", "                said = said or str(exc)\n", "tests/test_cli.py"),
    Mutant("cli-warning-as-source", "cli.py", "if issubclass(category, InputWarning):", "if False:", "tests/test_evaluate.py"),
    Mutant("cli-prune-torch-threads-as-they-were", "cli.py", "    fit_torch_threads()\n    out = prune(cfg)", "    out = prune(cfg)", "tests/test_cli.py"),
    Mutant("cli-group-listed-in-full", "cli.py", "{' '.join(words[len(group) :]):<16}", "{' '.join(words):<16}", "tests/test_cli.py"),
    Mutant("cli-group-help-unknown", "cli.py", "    if argv[0] in _groups(commands) and (len(argv) == 1 or", "    if False and (len(argv) == 1 or", "tests/test_cli.py"),
    Mutant("cli-group-alone-succeeds", "cli.py", "        return 0 if len(argv) > 1 else 2\n", "        return 0\n", "tests/test_cli.py"),
    Mutant("cli-unknown-shows-options", "cli.py", "unknown command '{argv[0]}'", "unknown command '{' '.join(argv[:2])}'", "tests/test_cli.py"),
    Mutant("cli-no-nearest-command", "cli.py", "    close = difflib.get_close_matches(argv[0], firsts, n=1)\n", "    close = []\n", "tests/test_cli.py"),
    Mutant("cli-group-command-unnamed", "cli.py", "    if argv[0] in _groups(commands):\n", "    if False:\n", "tests/test_cli.py"),
    # cores.py
    Mutant("cores-threads-unbounded", "cores.py", "        threads is None or threads <= cores,", "        True,", ("tests/train/test_config.py", "tests/test_evaluate.py")),
    Mutant("cores-machines-not-affinity", "cores.py", "return len(os.sched_getaffinity(0)) if hasattr(os, \"sched_getaffinity\") else os.cpu_count() or 1", "return os.cpu_count() or 1", "tests/test_cores.py"),
    Mutant("cores-quota-ignored", "cores.py", "return max(1, cores if quota is None else min(cores, math.ceil(quota)))", "return max(1, cores)", "tests/test_cores.py"),
    Mutant("cores-quota-rounded-down", "cores.py", "min(cores, math.ceil(quota))", "min(cores, int(quota))", "tests/test_cores.py"),
    Mutant("cores-not-shared", "cores.py", "return max(1, usable_cores() // int(os.environ.get(\"LOCAL_WORLD_SIZE\", 1)))", "return usable_cores()", "tests/test_cores.py"),
    Mutant("cores-torch-threads-raised", "cores.py", "max(1, min(torch.get_num_threads(), cores_per_process()))", "cores_per_process()", "tests/test_cores.py"),
    Mutant("cores-largest-quota", "cores.py", "return min((q for q in quotas if q is not None), default=None)", "return max((q for q in quotas if q is not None), default=None)", "tests/test_cores.py"),
    Mutant("cores-v1-unlimited-as-quota", "cores.py", "return quota / period if quota > 0 else None", "return quota / period", "tests/test_cores.py"),
    Mutant("cores-decoder-threads-when-all-usable", "cores.py", "    if cores >= affinity_cores():\n        return None\n", "", "tests/test_cores.py"),
    Mutant("cores-decoder-threads-no-spare", "cores.py", "min(cores + 1, FFMPEG_MAX_AUTO_THREADS)", "min(cores, FFMPEG_MAX_AUTO_THREADS)", "tests/test_cores.py"),
    Mutant("cores-decoder-threads-uncapped", "cores.py", "min(cores + 1, FFMPEG_MAX_AUTO_THREADS)", "cores + 1", "tests/test_cores.py"),
    Mutant("cores-decoder-two-on-one-core", "cores.py", "return 1 if cores == 1 else min(", "return min(", "tests/test_cores.py"),
    # cgroups.py
    Mutant("cgroups-leaf-only", "cgroups.py", "for n in range(len(parts), -1, -1)]", "for n in range(len(parts), len(parts) - 1, -1)]", ("tests/test_cgroups.py", "tests/test_cores.py", "tests/test_memory.py")),
    Mutant("cgroups-any-controller", "cgroups.py", "elif controller in controllers.split(\",\"):", "elif controllers:", ("tests/test_cgroups.py", "tests/test_cores.py", "tests/test_memory.py")),
    Mutant("cgroups-no-hybrid-mount", "cgroups.py", 'version, roots = 2, (mount, mount / "unified")', "version, roots = 2, (mount,)", ("tests/test_cgroups.py", "tests/test_cores.py", "tests/test_memory.py")),
    # curate/collect.py
    Mutant("collect-episode-seed", "curate/collect.py", "draw = torch.Generator().manual_seed(self.seed * 1_000_003 + episode)", "draw = torch.Generator().manual_seed(self.seed * 1_000_003)", "tests/curate"),
    Mutant("collect-microbatch-count", "curate/collect.py", "loss = (err * batch.action_mask[s].to(device)).sum() / count.to(device)", "loss = (err * batch.action_mask[s].to(device)).sum() / batch.action_mask[s].sum().clamp(min=1).to(device)", "tests/curate"),
    Mutant("collect-first-frames", "curate/collect.py", "rows = rows[torch.linspace(0, len(rows) - 1, self.frames).round().long()]", "rows = rows[: self.frames]", "tests/curate"),
    Mutant("collect-no-restore", "curate/collect.py", "            p.requires_grad_(flag)\n", "            pass\n", "tests/curate"),
    # curate/curvature.py
    Mutant("curate-damping-infinite-taken", "curate/curvature.py", "    require(0 < damping < math.inf,", "    require(0 < damping,", (CURV, "tests/curate/test_run.py")),
    Mutant("curv-shrink", "curate/curvature.py", "shrink = self.values / (self.values + self.damping)", "shrink = self.values / (self.values + 2 * self.damping)", CURV),
    Mutant("curv-kernel-damp", "curate/curvature.py", "kernel.diagonal().add_(n * self.damping)", "kernel.diagonal().add_(self.damping)", CURV),
    Mutant("curv-woodbury-div", "curate/curvature.py", "return (rhs - self.phi.T @ inner) / self.damping", "return rhs - self.phi.T @ inner", CURV),
    Mutant("curv-no-power", "curate/curvature.py", "for _ in range(power_iterations):", "for _ in range(0):", CURV),
    Mutant("curv-mean-eig", "curate/curvature.py", "return float(phi.double().pow(2).sum() / (n * p))", "return float(phi.double().pow(2).sum() / n)", CURV),
    # curate/projection.py
    Mutant("proj-no-reset", "curate/projection.py", "        for b in self.blocks.values():\n            b.zero_()\n", "", "tests/curate"),
    Mutant("proj-overwrite", "curate/projection.py", "self.blocks[name] += gp.T @ xp", "self.blocks[name] = gp.T @ xp", "tests/curate"),
    Mutant("proj-frozen-grad-kept", "curate/projection.py", "                if not saved[name]:\n                    linear.weight.grad = None\n", "", "tests/curate"),
    Mutant("proj-dense-grad-kept", "curate/projection.py", "            for p in self.dense.values():\n                p.grad = None\n", "", "tests/curate"),
    # curate/report.py
    Mutant("creport-ranking", "curate/report.py", "ranking, label = scores.ranking(cfg.select_by), RANKINGS[cfg.select_by]", "ranking, label = scores.score, RANKINGS[cfg.select_by]", "tests/curate/test_run.py"),
    Mutant("creport-task-mean", "curate/report.py", "mean = sum(values[i] for i in mine) / len(mine)", "mean = sum(values[i] for i in mine) / len(tasks)", "tests/curate/test_report.py"),
    Mutant("creport-typicality-mean", "curate/report.py", "self_influence = [float(scores.self_influence[i]) for i in by_task]", "self_influence = [float(scores.typicality[i]) for i in by_task]", "tests/curate/test_run.py"),
    Mutant("creport-kept-count", "curate/report.py", "kept = sum(selected[i] for i in mine)", "kept = sum(selected)", "tests/curate/test_report.py"),
    # curate/run.py
    Mutant("curate-val-contract-unchecked", "curate/run.py", "for read in (dataset, val_dataset):", "for read in (dataset,):", "tests/curate/test_run.py"),
    Mutant("curate-empty-scored", "curate/run.py", "    return [e for e, length in zip(episodes, chosen) if length > 0]", "    return episodes", "tests/curate/test_run.py"),
    Mutant("curate-empty-validation-counted", "curate/run.py", "[val_dataset.episode_tasks()[e] for e in offered]", "val_dataset.episode_tasks()", "tests/curate/test_run.py"),
    Mutant("curate-size-dropped", "curate/run.py", 'ChunkDataset.for_policy(\n        dataset, meta["model"], episodes,', 'ChunkDataset(\n        dataset, meta["model"]["cameras"], meta["model"]["chunk_size"], episodes,', "tests/curate/test_run.py"),
    Mutant("curate-auto-always-rta", "curate/run.py", 'cfg.curvature == "auto" and min(n, p) <= EXACT_MAX_DIM', 'cfg.curvature == "auto" and min(n, p) < 0', "tests/curate"),
    Mutant("curate-rank-ignored", "curate/run.py", "rank = cfg.rank or max(1, min(n, p) // 4)", "rank = max(1, min(n, p) // 4)", "tests/curate"),
    Mutant("curate-split-size", "curate/run.py", "order = torch.randperm(len(members), generator=generator)[:per_task]", "order = torch.randperm(len(members), generator=generator)[: per_task + 1]", "tests/curate"),
    Mutant("curate-split-check", "curate/run.py", "            len(members) > per_task,\n", "            len(members) >= per_task,\n", "tests/curate"),
    Mutant("curate-interrupt-kept", "curate/run.py", "kept = len(rows) - len(store.pending())", "kept = len(store.pending())", "tests/curate/test_run.py"),
    # curate/scores.py
    Mutant("sco-global-sum", "curate/scores.py", "global_ = z.mean(1)", "global_ = z.sum(1)", SCO),
    Mutant("sco-unbiased", "curate/scores.py", "values.std(0, unbiased=False)", "values.std(0, unbiased=True)", SCO),
    Mutant("sco-floor", "curate/scores.py", "floor = math.ceil(task_floor * len(members))", "floor = math.floor(task_floor * len(members))", SCO),
    Mutant("sco-typ-sign", "curate/scores.py", "typicality[members] = -standardise(own[members])", "typicality[members] = standardise(own[members])", SCO),
    Mutant("sco-remaining", "curate/scores.py", "keep[order[~keep[order]][:remaining]] = True", "keep[order[:remaining]] = True", SCO),
    # curate/store.py
    Mutant("store-difference-unnamed", "curate/store.py", "        if key not in INPUT_FILES and before.get(key) != now[key]:", "        if False:", "tests/curate/test_store.py"),
    Mutant("store-redo-done", "curate/store.py", "for i in range(rank, len(self.rows), world_size) if not self.done[i]]", "for i in range(rank, len(self.rows), world_size)]", "tests/curate"),
    # data/augment.py
    Mutant("dropout-per-dim", "data/augment.py", "keep = torch.rand(state.shape[0], 1, generator=generator) >= p", "keep = torch.rand(state.shape, generator=generator) >= p", ("tests/data/test_augment.py", "tests/train/test_state_augment.py")),
    Mutant("shift-range", "data/augment.py", "torch.randint(-pad, pad + 1, (b * n, 2), generator=generator)", "torch.randint(-pad, pad, (b * n, 2), generator=generator)", "tests/data/test_augment.py"),
    # data/convert.py
    Mutant("convert-replaces-any-directory", "data/convert.py", '"a LeRobotDataset", fmt.INFO_PATH, inputs)', '"a LeRobotDataset", ".", inputs)', CONV),
    Mutant("convert-chunks-size-any", "data/convert.py", "        is_whole(chunks_size, 1),", "        True,", CONV),
    Mutant("convert-length-any", "data/convert.py", '            is_whole(line["length"], 0),', "            True,", CONV),
    Mutant("convert-file-size-ignored", "data/convert.py", "if writer is None or held_mb + size_mb > limit_mb:", "if writer is None:", CONV),
    Mutant("convert-chunk-never-full", "data/convert.py", "if file + 1 == chunks_size else", "if file + 1 > chunks_size else", CONV),
    Mutant("convert-frames-not-counted", "data/convert.py", "first_frame += table.num_rows", "first_frame += 0", CONV),
    Mutant("convert-video-end-in-frames", "data/convert.py", "start, start + frames / fps)", "start, start + frames)", CONV),
    Mutant("convert-linked-end-in-frames", "data/convert.py", 'seconds = int(dataset.episodes[episode]["length"]) / dataset.info["fps"]', 'seconds = float(dataset.episodes[episode]["length"])', CONV),
    Mutant("convert-videos-linked-by-default", "data/convert.py", 'videos: Literal["join", "link"] = "join"', 'videos: Literal["join", "link"] = "link"', CONV),
    Mutant("convert-video-file-size-ignored", "data/convert.py", "full = joined is not None and joined.bytes + path.stat().st_size > limit", "full = False", CONV),
    Mutant("convert-any-stream-joined", "data/convert.py", "if joined is None or full or not joined.takes(source):", "if joined is None or full:", CONV),
    Mutant("join-times-not-moved", "data/video_join.py", "offset, ends = self._end, [0]", "offset, ends = 0, [0]", CONV),
    Mutant("join-start-at-zero", "data/video_join.py", "return float(offset * time_base)", "return 0.0", CONV),
    Mutant("join-end-by-packets-only", "data/video_join.py", "self._end = offset + max(max(ends), length)", "self._end = offset + max(ends)", CONV),
    Mutant("join-end-by-length-only", "data/video_join.py", "self._end = offset + max(max(ends), length)", "self._end = offset + length", CONV),
    Mutant("join-codec-parameters-ignored", "data/video_join.py", '            bytes(context.extradata or b""),\n', "", CONV),
    Mutant("join-flush-packets-kept", "data/video_join.py", "                if packet.size == 0:\n                    continue\n", "", CONV),
    Mutant("convert-videos-copied-always", "data/convert.py", "os.link(source, target)  #", "shutil.copyfile(source, target)  #", CONV),
    Mutant("convert-episode-column-unchecked", "data/convert.py", 'table.column("episode_index").to_numpy() == episode)', 'table.column("episode_index").to_numpy() >= 0)', CONV),
    Mutant("convert-columns-not-reordered", "data/convert.py", "return table.select(schema.names).cast(schema)", "return table", CONV),
    Mutant("convert-out-replaces-source", "data/convert.py", '[("the dataset being converted", source)]', "[]", CONV),
    Mutant("convert-space-unchecked", "data/convert.py", "        need <= free,\n", "        True,\n", CONV),
    Mutant("convert-space-videos-ignored", "data/convert.py", 'if not (videos == "link" and one_filesystem):', "if False:", CONV),
    Mutant("convert-space-link-counts-videos", "data/convert.py", 'if not (videos == "link" and one_filesystem):', "if True:", CONV),
    Mutant("convert-space-link-always-offered", "data/convert.py", 'linking_helps = videos == "join" and one_filesystem and dataset.cameras', "linking_helps = True", CONV),
    Mutant("convert-frame-stats-unwritten", "data/convert.py", "stats=aggregate_features(per_episode))\n            write_meta(dataset, tmp, rows)\n", "stats=aggregate_features(per_episode))\n", CONV),
    Mutant("convert-v21-counts-kept", "data/convert.py", 'for gone in ("total_chunks", "total_videos"):', "for gone in ():", LR),
    Mutant("convert-frame-total-unchecked", "data/convert.py", 'total == info["total_frames"],', "True,", CONV),
    Mutant("convert-quantiles-assumed", "data/stats.py", "if all(name in s for s in per_episode):", "if True:", CONV),
    Mutant("convert-v20-stats-dropped", "data/convert.py", "episode_stats, stats = None, _dataset_stats(root / fmt.STATS_PATH)", "episode_stats, stats = None, {}", CONV),
    # data/format.py
    Mutant("format-chunk-digits", "data/format.py", 'DATA_PATH = "data/chunk-{chunk_index:03d}/', 'DATA_PATH = "data/chunk-{chunk_index:02d}/', "tests/data"),
    Mutant("format-list-length", "data/format.py", "return pa.list_(scalar, shape[0])", "return pa.list_(scalar)", "tests/data"),
    Mutant("format-hf-length", "data/format.py", '        "length": int(feature["shape"][0]),\n', "", "tests/data"),
    Mutant("format-tasks-index", "data/format.py", '"index_columns": ["__index_level_0__"],', '"index_columns": [],', "tests/data"),
    # data/metaworld_env.py
    Mutant("mw-done-late", "data/metaworld_env.py", "return self.steps >= self.max_steps", "return self.steps > self.max_steps", ("tests/data", "tests/test_evaluate.py")),
    Mutant("mw-width-ignored", "data/metaworld_env.py", "            width=image_width,\n", "            width=image_size,\n", ("tests/data", "tests/test_evaluate.py")),
    Mutant("mw-renders-in-the-current-context", "data/metaworld_env.py", "        self._viewer.make_context_current()\n        for cam, cam_id", "        for cam, cam_id", "tests/data/test_metaworld_env.py"),
    Mutant("mw-closed-env-kept-alive", "data/metaworld_env.py", "        _LIVE_ENVS.remove(self.env)\n", "", "tests/data/test_metaworld_env.py"),
    Mutant("mw-meshes-freed-when-collected", "data/metaworld_env.py", "        self._viewer.con.free()\n", "", "tests/data/test_metaworld_env.py"),
    Mutant("mw-meshes-freed-from-the-current-context", "data/metaworld_env.py", "        self._viewer.make_context_current()\n        self._viewer.con.free()\n", "        self._viewer.con.free()\n", "tests/data/test_metaworld_env.py"),
    Mutant("mw-closed-twice", "data/metaworld_env.py", "        if self.env not in _LIVE_ENVS:  # closed already, or no cameras: no rendering context\n            return\n", "", "tests/data/test_metaworld_env.py"),
    Mutant("mw-env-kept-across-tasks", "data/metaworld_env.py", "        if settings != self._settings:", "        if self._env is None:", "tests/data/test_metaworld_env.py"),
    Mutant("mw-env-before-not-closed", "data/metaworld_env.py", "            self.close()\n            height, width = image_shape\n", "            height, width = image_shape\n", "tests/data/test_metaworld_env.py"),
    Mutant("mw-env-steps-kept", "data/metaworld_env.py", "        self._env.max_steps = min(max_steps, EPISODE_LIMIT)\n", "", "tests/data/test_metaworld_env.py"),
    Mutant("mw-env-steps-unbounded", "data/metaworld_env.py", "self._env.max_steps = min(max_steps, EPISODE_LIMIT)", "self._env.max_steps = max_steps", "tests/data/test_metaworld_env.py"),
    # machine_errors.py
    Mutant("machine-disk-full-a-traceback", "machine_errors.py", "    errno.ENOSPC: ", "    errno.ENOENT: ", ("tests/test_machine_errors.py", "tests/test_cli.py")),
    Mutant("machine-file-unnamed", "machine_errors.py", "        where = f\": {exc.filename}\" if exc.filename else \"\"", "        where = \"\"", "tests/test_machine_errors.py"),
    Mutant("machine-cpu-bytes-as-gib", "machine_errors.py", "{int(cpu.group(1)) / 2**30:.1f} GiB{room}", "{int(cpu.group(1)):.1f} GiB{room}", "tests/test_machine_errors.py"),
    Mutant("machine-gpu-whole-message", "machine_errors.py", "        return \"; \".join(sentences[1:3]).rstrip(\".\") or sentences[0]", "        return text", "tests/test_machine_errors.py"),
    Mutant("machine-any-runtime-error", "machine_errors.py", "    if type(exc).__name__ == \"OutOfMemoryError\" or \"out of memory\" in text.lower():", "    if True:", "tests/test_machine_errors.py"),
    # memory.py
    Mutant("memory-largest-room", "memory.py", "return min((room for room in rooms if room is not None), default=None)", "return max((room for room in rooms if room is not None), default=None)", "tests/test_memory.py"),
    Mutant("memory-meminfo-ignored", "memory.py", "    rooms = [_meminfo_available(meminfo)]\n", "    rooms = []\n", "tests/test_memory.py"),
    Mutant("memory-meminfo-in-kb", "memory.py", "return int(line.split()[1]) * 1024", "return int(line.split()[1])", "tests/test_memory.py"),
    Mutant("memory-v1-no-limit-as-limit", "memory.py", 'if limit == "max" or int(limit) >= NO_LIMIT:', 'if limit == "max":', "tests/test_memory.py"),
    Mutant("memory-page-cache-as-used", "memory.py", "return max(0, int(limit) - used + _stat(directory, inactive_key))", "return max(0, int(limit) - used)", "tests/test_memory.py"),
    Mutant("memory-room-below-zero", "memory.py", "return max(0, int(limit) - used + _stat(directory, inactive_key))", "return int(limit) - used + _stat(directory, inactive_key)", "tests/test_memory.py"),
    Mutant("memory-v1-own-inactive-only", "memory.py", '"memory.usage_in_bytes", "total_inactive_file")', '"memory.usage_in_bytes", "inactive_file")', "tests/test_memory.py"),
    Mutant("memory-v1-as-v2", "memory.py", "rooms.append(_v2_room(directory) if version == 2 else _v1_room(directory))", "rooms.append(_v2_room(directory))", "tests/test_memory.py"),
    # data/metaworld_tasks.py
    Mutant("tasks-repeats", "data/metaworld_tasks.py", "tasks += [t for t in names if t not in tasks]", "tasks += names", "tests/data/test_metaworld_env.py"),
    Mutant("tasks-no-v3-suffix", "data/metaworld_tasks.py", 'elif f"{item}-v3" in INSTRUCTIONS:', 'elif False:', "tests/data/test_metaworld_env.py"),
    Mutant("tasks-ml45-overlap", "data/metaworld_tasks.py", "ML45_TRAIN = [t for t in MT50 if t not in ML45_TEST]", "ML45_TRAIN = MT50[:45]", "tests/data/test_metaworld_env.py"),
    Mutant("tasks-blank-kept", "data/metaworld_tasks.py", "        if not item:\n            continue\n", "", "tests/data/test_metaworld_env.py"),
    # data/episodes_table.py
    Mutant("episodes-columns-unchecked", "data/episodes_table.py", "absent = [c for c in NUMBERED if c not in table.column_names]", "absent = []", "tests/data/test_episodes_table.py"),
    Mutant("episodes-kinds-unchecked", "data/episodes_table.py", "pa.types.is_integer(column.type) and column.null_count == 0,", "True,", "tests/data/test_episodes_table.py"),
    Mutant("episodes-nulls-taken", "data/episodes_table.py", "pa.types.is_integer(column.type) and column.null_count == 0,", "pa.types.is_integer(column.type),", "tests/data/test_episodes_table.py"),
    Mutant("episodes-numbering-unchecked", "data/episodes_table.py", "misplaced = np.flatnonzero(numbers != np.arange(n))", "misplaced = np.flatnonzero(numbers < 0)", "tests/data/test_episodes_table.py"),
    Mutant("episodes-tasks-unchecked", "data/episodes_table.py", '    if "tasks" in table.column_names:\n', "    if False:\n", "tests/data/test_episodes_table.py"),
    Mutant("episodes-tasks-required", "data/episodes_table.py", '    if "tasks" in table.column_names:\n', "    if True:\n", ("tests/data/test_episodes_table.py", LR)),
    Mutant("episodes-empty-tasks-taken", "data/episodes_table.py", "if not (named and all(", "if not (True and all(", "tests/data/test_episodes_table.py"),
    Mutant("episodes-unsorted", "data/episodes_table.py", '    table = table.sort_by("episode_index")\n', "", "tests/data/test_episodes_table.py"),
    # data/frame_labels.py
    Mutant("labels-frame-episodes-unchecked", "data/frame_labels.py", "wrong = np.flatnonzero(held != np.repeat(np.arange(len(lengths)), lengths))", "wrong = np.flatnonzero(held < 0)", "tests/data/test_frame_labels.py"),
    Mutant("labels-lengths-sum-unchecked", "data/frame_labels.py", "int(lengths.sum()) == len(held),", "True,", "tests/data/test_frame_labels.py"),
    Mutant("labels-frame-tasks-unchecked", "data/frame_labels.py", "outside = np.flatnonzero((held < 0) | (held >= len(dataset.tasks)))", "outside = np.flatnonzero(held < 0)", "tests/data/test_frame_labels.py"),
    # data/info.py
    Mutant("info-v20-sent-to-lerobot", "data/info.py", 'if version in ("v2.0", "v2.1"):', 'if version == "v2.1":', (CONV, "tests/data/test_info.py")),
    Mutant("info-v1-sent-to-convert", "data/info.py", 'if version in ("v2.0", "v2.1"):', 'if version.startswith("v"):', (CONV, "tests/data/test_info.py")),
    Mutant("info-v4-sent-to-lerobot", "data/info.py", 'if version.startswith(("v1.", "v0.")):', "if True:", "tests/data/test_info.py"),
    Mutant("info-fps-unchecked", "data/info.py", "is_number(fps) and fps > 0 and math.isfinite(fps),", "True,", ("tests/data/test_reader.py", CONV)),
    Mutant("info-fps-zero-taken", "data/info.py", "is_number(fps) and fps > 0 and", "is_number(fps) and fps >= 0 and", "tests/data/test_info.py"),
    Mutant("info-fps-infinite-taken", "data/info.py", "fps > 0 and math.isfinite(fps),", "fps > 0,", "tests/data/test_info.py"),
    Mutant("info-totals-unchecked", "data/info.py", "require(is_whole(value, 0),", "require(True,", "tests/data/test_info.py"),
    Mutant("info-features-kind-unchecked", "data/info.py", 'isinstance(feature, dict) and isinstance(feature.get("dtype"), str),', "True,", "tests/data/test_info.py"),
    Mutant("info-shape-unchecked", "data/info.py", "isinstance(shape, list) and shape and all(is_whole(n, 1) for n in shape),", "isinstance(shape, list),", "tests/data/test_info.py"),
    Mutant("info-templates-unchecked", "data/info.py", '        if template is None and key != "data_path":', "        if True:", (CONV, "tests/data/test_info.py")),
    Mutant("info-null-data-path-taken", "data/info.py", '        if template is None and key != "data_path":', "        if template is None:", "tests/data/test_info.py"),
    # data/normalize.py
    Mutant("normalize-stats-kind-unchecked", "data/normalize.py", 'values.dtype.kind in "iuf", ', "True, ", "tests/data/test_normalize.py"),
    Mutant("normalize-stats-size-unchecked", "data/normalize.py", "values.size == size, ", "True, ", "tests/data/test_normalize.py"),
    Mutant("normalize-stats-nan-taken", "data/normalize.py", "if not np.isfinite(values).all():", "if False:", "tests/data/test_normalize.py"),
    Mutant("norm-unaction", "data/normalize.py", "return x * self.action_std + self.action_mean", "return (x + self.action_mean) * self.action_std", ("tests/data", "tests/models")),
    # data/episode_stats.py
    Mutant("episode-stats-counted-between-decodes", "data/episode_stats.py", "counter.submit(image_stats, frames)", "counter.submit(lambda stats: stats, image_stats(frames))", "tests/data/test_episode_stats.py"),
    Mutant("episode-stats-given-to-the-next-episode", "data/episode_stats.py", "                yield counted, stats.result()", "                yield episode, stats.result()", "tests/data/test_episode_stats.py"),
    Mutant("episode-stats-large-overlapped", "data/episode_stats.py", "left_counting = 1 if frames.nbytes <= OVERLAPPED_BYTES else 0", "left_counting = 1", "tests/data/test_episode_stats.py"),
    Mutant("episode-stats-frames-held-while-next-decodes", "data/episode_stats.py", "            del frames  # held by", "            pass  # held by", "tests/data/test_episode_stats.py"),
    Mutant("episode-stats-bounds", "data/episode_stats.py", "values[bounds[episode] : bounds[episode + 1]]", "values[bounds[episode] : bounds[episode + 1] - 1]", "tests/data/test_episode_stats.py"),
    # data/refresh_stats.py
    Mutant("refresh-stats-json-unwritten", "data/refresh_stats.py", "        write_json_atomic(dataset.root / fmt.STATS_PATH", "        0 and write_json_atomic(dataset.root / fmt.STATS_PATH", "tests/data/test_refresh_stats.py"),
    Mutant("refresh-stats-check-writes", "data/refresh_stats.py", "    if not cfg.check:\n        for path in files:", "    if True:\n        for path in files:", "tests/data/test_refresh_stats.py"),
    Mutant("refresh-stats-stale-unreported", "data/refresh_stats.py", "if same_shape and np.allclose(old, new, rtol=SAME_RTOL, atol=SAME_ATOL):", "if same_shape:", "tests/data/test_refresh_stats.py"),
    Mutant("refresh-stats-placed-last", "data/refresh_stats.py", "        at = sum(1 for name in names[:first] if not name.startswith(STATS_PREFIX))", "        at = len(kept)", "tests/data/test_refresh_stats.py"),
    Mutant("refresh-stats-writable-unchecked", "data/refresh_stats.py", "os.access(directory, os.W_OK),", "True,", "tests/data/test_refresh_stats.py"),
    Mutant("cli-stats-check-exit-zero", "cli.py", "return 1 if cfg.check and stale else 0", "return 0", "tests/data/test_refresh_stats.py"),
    Mutant("refresh-stats-old-kept", "data/refresh_stats.py", "kept = [name for name in names if not name.startswith(STATS_PREFIX)]", "kept = [name for name in names if name not in statistics.column_names]", "tests/data/test_refresh_stats.py"),
    Mutant("episode-stats-cameras-unchecked", "data/episode_stats.py", "    for key in dataset.camera_keys:  # one it cannot read refused before any decodes\n        dataset.camera_feature(key)\n", "", "tests/data/test_refresh_stats.py"),
    Mutant("reader-camera-any-channels", "data/reader.py", "len(shape) == 3 and _hwc(feature)[2] == 3,", "len(shape) == 3,", "tests/data/test_reader.py"),
    Mutant("build-cameras-checked-late", "train/build.py", "        dataset.camera_feature(key)\n    return cams", "        pass\n    return cams", "tests/train/test_build.py"),
    Mutant("writer-full-directory-taken", "data/writer.py", "if self.root.exists() and any(self.root.iterdir()):", "if False:", "tests/data/test_writer.py"),
    Mutant("refresh-stats-empty-unchecked", "data/refresh_stats.py", "    require_frames(\n        dataset.root,\n", "    (lambda *given: None)(\n        dataset.root,\n", "tests/data/test_refresh_stats.py"),
    Mutant("episode-stats-empty-missed", "data/episode_stats.py", "for episode, length in zip(episodes, lengths) if length == 0]", "for episode, length in zip(episodes, lengths) if length < 0]", "tests/data/test_refresh_stats.py"),
    Mutant("episode-stats-empty-singular", "data/episode_stats.py", 'them="them" if len(empty) > 1 else "it"', 'them="them"', "tests/data/test_refresh_stats.py"),
    Mutant("convert-empty-unchecked", "data/convert.py", '    if cfg.stats == "frames":\n        require_frames(', '    if False:\n        require_frames(', "tests/data/test_convert.py"),
    Mutant("writer-extra-overwrites", "data/writer.py", 'taken = sorted(k for k in extra or {} if k in EPISODE_COLUMNS or k.startswith("stats/"))', "taken = []", "tests/data/test_writer.py"),
    Mutant("writer-undeclared-dropped", "data/writer.py", "        if undeclared:  # else dropped without a word", "        if False:  # else dropped without a word", "tests/data/test_writer.py"),
    Mutant("writer-image-type-unchecked", "data/writer.py", 'if values.dtype != np.uint8 or list(values.shape[1:]) != list(feature["shape"]):', 'if list(values.shape[1:]) != list(feature["shape"]):', "tests/data/test_writer.py"),
    Mutant("writer-empty-episode-taken", "data/writer.py", "        if length == 0:  # nothing to take", "        if False:  # nothing to take", "tests/data/test_writer.py"),
    # data/reader.py
    Mutant("reader-file-as-missing", "data/reader.py", "            not self.root.is_file(),", "            True,", "tests/test_cli.py"),
    Mutant("reader-nulls-taken", "data/reader.py", "if not (column.null_count or (nested and column.flatten().null_count)):", "if True:", "tests/data/test_reader.py"),
    Mutant("reader-null-inside-unfound", "data/reader.py", "if nested and not missing.any():", "if False:", "tests/data/test_reader.py"),
    Mutant("reader-episode-frame-left", "data/reader.py", 'episode = int(np.searchsorted(starts, row, side="right")) - 1', 'episode = int(np.searchsorted(starts, row, side="left")) - 1', ("tests/data/test_reader.py", "tests/data/test_frame_labels.py")),
    Mutant("reader-spans-unchecked", "data/episodes_table.py", "bad = np.flatnonzero(end - start != lengths)", "bad = np.flatnonzero(end - start < 0)", "tests/data/test_reader.py"),
    Mutant("reader-no-frames-plural", "data/reader.py", "return f\"episode{'s' if many else ''} {listed}", "return f\"episodes {listed}", "tests/data/test_reader.py"),
    Mutant("reader-episode-frames-one-by-one", "data/reader.py", "            yield from video_episode_frames(self, key)\n", "            for episode in range(self.num_episodes):\n                yield episode, self._decode_images(key, False, None, None, \"pad\", episodes=np.array([episode]))\n", "tests/data/test_video.py"),
    Mutant("video-rows-ignored", "data/reader.py", "return frames if rows is None else frames[rows]", "return frames", "tests/data"),
    Mutant("reader-resize-skipped", "data/reader.py", "resized = target != (height, width)", "resized = False", "tests/data/test_resize.py"),
    Mutant("reader-episodes-same-columns", "data/episodes_table.py", 'promote_options="permissive"', 'promote_options="none"', LR),
    Mutant("reader-empty-batch-decoded", "data/reader.py", "                if len(column):  # episodes left out may fill whole batches\n                    yield", "                if True:\n                    yield", "tests/data/test_reader.py"),
    Mutant("reader-fit-dropped", "data/reader.py", "out[start : start + len(decoded)] = fit_square(decoded, size, fit)", "out[start : start + len(decoded)] = fit_square(decoded, size)", "tests/data/test_resize.py"),
    Mutant("reader-part-images-kept", "data/reader.py", 'if feature["dtype"] != "video" and rows is not None:', "if False:", FC),
    Mutant("reader-cached-rows-ignored", "data/reader.py", "return frames, np.arange(len(frames)) if within is None else within", "return frames, np.arange(len(frames))", FC),
    Mutant("reader-every-row-is-part", "data/reader.py", "            rows = None  # every frame", "            pass  # every frame", FC),
    Mutant("reader-unwritable-rows-ignored", "data/reader.py", "(frames, None) if within is None else (frames[within], None)", "(frames, None)", FC),
    Mutant("reader-png-offset-stuck", "data/reader.py", "                offset += len(batch)\n", "                pass\n", "tests/data/test_reader.py"),
    Mutant("reader-png-batches-unmasked", "data/reader.py", "                if mask is not None:\n                    column = column.filter(", "                if False:\n                    column = column.filter(", "tests/data/test_reader.py"),
    Mutant("reader-damaged-png-raw", "data/reader.py", "            except (OSError, ValueError, SyntaxError) as exc:  # PIL's", "            except ZeroDivisionError as exc:  # PIL's", "tests/data/test_reader.py"),
    Mutant("reader-png-one-thread", "data/reader.py", "start, threads = 0, cores_per_process()", "start, threads = 0, 1", "tests/data/test_reader.py"),
    Mutant("reader-png-index-per-batch", "data/reader.py", "partial(self._png_frames_into, key, decoded, start, blobs", "partial(self._png_frames_into, key, decoded, 0, blobs", "tests/data/test_reader.py"),
    Mutant("reader-png-slices-skip", "data/reader.py", "[batch[i : i + step] for i in batch[::step]]", "[batch[i : i + step - 1] for i in batch[::step]]", "tests/data/test_reader.py"),
    Mutant("reader-png-slices-short", "data/reader.py", "-(-len(blobs) // threads)", "len(blobs) // threads", "tests/data/test_reader.py"),
    Mutant("episode-frames-split", "data/reader.py", "take = int(lengths[episode]) - held", "take = int(lengths[episode])", "tests/data/test_reader.py"),
    Mutant("png-decoded-not-into", "data/reader.py", "                    decoded = into[start:stop]\n", "                    decoded = np.empty_like(into[start:stop])\n", "tests/data/test_reader.py"),
    Mutant("reader-png-total-unchecked", "data/reader.py", "        self._require_total_frames(sum(map(data_file_rows, self.data_files)))\n", "", "tests/data/test_reader.py"),
    # data/frame_cache.py
    Mutant("cache-clear-removes-a-live-write", "data/frame_cache.py", "        if being_written(path):\n", "        if False:\n", FC),
    Mutant("cache-clear-forgets-a-live-digest", "data/file_digests.py", "            if not being_written(path):\n", "            if True:\n", FC),
    Mutant("cache-clear-leaves-unsaid", "cli.py", "        if left:  # the commands writing them go on\n", "        if False:\n", FC),
    Mutant("cache-not-mapped", "data/frame_cache.py", "    return frames, name\n", "    return np.array(frames), name\n", FC),
    Mutant("cache-map-writable", "data/frame_cache.py", "    out.flags.writeable = False", "    pass", FC),
    Mutant("cache-unreserved", "data/frame_cache.py", "            _reserve(tmp, out)\n", "", FC),
    Mutant("cache-reserve-unsupported-refused", "data/frame_cache.py", "if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):", "if True:", FC),
    Mutant("cache-hash-one-thread", "data/file_digests.py", "ThreadPoolExecutor(cores_per_process()) as pool", "ThreadPoolExecutor(1) as pool", FC),
    Mutant("cache-memory-error-raw", "data/frame_cache.py", "        except MemoryError:", "        except ZeroDivisionError:", FC),
    Mutant("cache-decode-error-blamed", "data/frame_cache.py", "        if decoding:  # the dataset's error", "        if False:  # the dataset's error", FC),
    Mutant("cache-contents-unhashed", "data/file_digests.py", "digest.update(contents)", "pass", FC),
    Mutant("cache-fit-unnamed", "data/frame_cache.py", "key, str(size), fit, which]", "key, str(size), which]", FC),
    Mutant("cache-shape-unchecked", "data/frame_cache.py", "if frames.shape != (frame_count(dataset, episodes), size, size, 3) or frames.dtype != np.uint8:", "if False:", FC),
    Mutant("cache-evicts-newest", "data/frame_cache.py", "if kept > limit and rank > 0:", "if kept > limit:", FC),
    Mutant("cache-evicts-recent-first", "data/frame_cache.py", "key=lambda entry: entry[0].st_mtime, reverse=True)", "key=lambda entry: entry[0].st_mtime)", FC),
    Mutant("cache-read-not-recent", "data/frame_cache.py", "        os.utime(path)  #", "        pass  #", FC),
    Mutant("cache-read-only-refused", "data/frame_cache.py", "with contextlib.suppress(OSError):  # a cache shared read-only", "with contextlib.suppress():  # a cache shared read-only", FC),
    Mutant("digests-not-kept-in-process", "data/file_digests.py", "        _in_process[key] = digest\n    return _in_process[key]", "        return digest\n    return _in_process[key]", (FD, FC)),
    Mutant("digests-unremembered", "data/file_digests.py", "                _remember(directory, key, stat, digest)", "                pass", (FD, FC)),
    Mutant("digests-remembered-ignored", "data/file_digests.py", '    return digest if note.get("file") == key[0] else None', "    return None", (FD, FC)),
    Mutant("digests-another-files-note-taken", "data/file_digests.py", '    return digest if note.get("file") == key[0] else None', "    return digest", FD),
    Mutant("digests-racy-file-remembered", "data/file_digests.py", "time.time() - max(stat.st_mtime, stat.st_ctime) < SETTLED_S", "False", FD),
    Mutant("digests-change-time-unkeyed", "data/file_digests.py", "stat.st_mtime_ns, stat.st_ctime_ns", "stat.st_mtime_ns", FD),
    Mutant("digests-written-while-read-remembered", "data/file_digests.py", "            if _key(path.stat(), path) == key:", "            if True:", FD),
    Mutant("digests-damaged-note-fails", "data/file_digests.py", "    except (OSError, ValueError, KeyError, TypeError):  # none, or damaged", "    except OSError:  # none, or damaged", FD),
    Mutant("digests-current-forgotten", "data/file_digests.py", "        if current != path:", "        if True:", (FD, FC)),
    Mutant("digests-known-in-process-only", "data/file_digests.py", "    return key in _in_process or _remembered(directory, key) is not None", "    return key in _in_process", (FD, FC)),
    Mutant("cache-clear-keeps-digests", "data/frame_cache.py", '    file_digests.forget_remembered(root / DIGESTS)\n    if not', "    if not", FC),
    Mutant("cache-stale-digests-kept", "data/frame_cache.py", '    file_digests.forget_stale(root / DIGESTS)\n', "", FC),
    Mutant("cache-limit-checked-late", "data/frame_cache.py", "    limit_bytes()  # a bad limit", "    pass  # a bad limit", FC),
    Mutant("cache-code-unnamed", "data/frame_cache.py", "for part in [*_code_and_decoders(), key, str(size), fit, which]:", "for part in [key, str(size), fit, which]:", FC),
    Mutant("cache-png-at-size-never-kept", "data/frame_cache.py", "    return dataset.num_frames * size * size * 3 >= PNG_KEPT_FROM\n", "    return False\n", FC),
    Mutant("cache-png-at-size-kept-past-the-limit-only", "data/frame_cache.py", "    return dataset.num_frames * size * size * 3 >= PNG_KEPT_FROM\n", "    return dataset.num_frames * size * size * 3 > PNG_KEPT_FROM\n", FC),
    Mutant("cache-native-size-kept", "data/frame_cache.py", '    if dataset.features[key]["dtype"] == "video" or dataset.image_shape(key) != (size, size):', "    if True:", FC),
    Mutant("cache-listing-oldest-first", "data/frame_cache.py", "for stat, path in _entries(directory):", "for stat, path in _entries(directory)[::-1]:", FC),
    Mutant("cache-vanished-entry-fails", "data/frame_cache.py", "        except FileNotFoundError:  # another process", "        except ZeroDivisionError:  # another process", FC),
    Mutant("cache-clear-leaves-files", "data/frame_cache.py", "        if path.is_file():\n            path.unlink(missing_ok=True)\n", "        if path.suffix == \".npy\":\n            path.unlink(missing_ok=True)\n", FC),
    Mutant("cache-off-ignored", "data/frame_cache.py", 'if setting.lower() == "off":', "if False:", FC),
    # data/resize.py
    Mutant("resize-shorter-side", "data/resize.py", "scale = size / max(height, width)", "scale = size / min(height, width)", "tests/data/test_resize.py"),
    Mutant("resize-pad-one-side", "data/resize.py", "top, left = (size - inner_h) // 2, (size - inner_w) // 2", "top, left = 0, 0", "tests/data/test_resize.py"),
    Mutant("resize-crop-corner", "data/resize.py", "top, left = (height - side) // 2, (width - side) // 2", "top, left = 0, 0", "tests/data/test_resize.py"),
    Mutant("resize-aliased", "data/resize.py", 'mode="bilinear", antialias=True', 'mode="bilinear", antialias=False', "tests/data/test_resize.py"),
    # data/record.py
    Mutant("record-labels-inside-out", "data/record.py", "            Path(cfg.out).resolve() not in Path(cfg.labels_out).resolve().parents,", "            True,", "tests/test_cli.py"),
    Mutant("record-labels-replaced-silently", "data/record.py", '        require_new(cfg.labels_out, "--labels-out", cfg.overwrite)', "        pass", "tests/test_cli.py"),
    Mutant("record-cached-labels-refused", "data/record.py", "overwrite=True, **options))", "overwrite=path.exists(), **options))", "tests/data/test_record.py"),
    Mutant("record-expert-remedy-always-max-steps", "data/record.py", "        if job.max_steps < EPISODE_LIMIT\n", "        if True\n", "tests/data/test_record.py"),
    Mutant("record-noise-infinite-taken", "data/record.py", "        0 <= cfg.noise_std < math.inf, f", "        0 <= cfg.noise_std, f", "tests/test_cli.py"),
    Mutant("record-two-workers-on-one-core", "data/record.py", "_run_jobs(jobs, min(worker_count(cfg.workers), len(jobs)))", "_run_jobs(jobs, cfg.workers or 2)", "tests/data/test_record.py"),
    Mutant("record-one-env-per-episode", "data/record.py", "    env = _WORKER_ENVS.get(job.task, job.cameras, job.image_shape, job.max_steps)\n", "    env = OneEnvAtATime().get(job.task, job.cameras, job.image_shape, job.max_steps)\n", "tests/data/test_record.py"),
    Mutant("record-workers-past-the-jobs", "data/record.py", "_run_jobs(jobs, min(worker_count(cfg.workers), len(jobs)))", "_run_jobs(jobs, worker_count(cfg.workers))", "tests/data/test_record.py"),
    Mutant("record-last-env-kept", "data/record.py", "            _WORKER_ENVS.close()\n", "            pass\n", "tests/data/test_record.py"),
    Mutant("record-width-ignored", "data/record.py", "return self.image_size, self.image_size if self.image_width is None else self.image_width", "return self.image_size, self.image_size", ("tests/data/test_record.py", "tests/test_evaluate.py")),
    Mutant("record-keeps-expert-failures", "data/record.py", '            if not ep["success"]:\n                continue  # an expert failure is not a demonstration: try the next seed\n', "", "tests/data/test_record.py"),
    Mutant("record-wrong-task-may-be-own", "data/record.py", "others = [t for t in tasks if t != task]", "others = list(tasks)", "tests/data/test_record.py"),
    Mutant("record-bad-with-replacement", "data/record.py", "rng.choice(cfg.episodes, size=n_bad, replace=False)", "rng.choice(cfg.episodes, size=n_bad, replace=True)", "tests/data/test_record.py"),
    Mutant("record-truncated-succeeds", "data/record.py", '                    "success": False,\n', '                    "success": True,\n', "tests/data/test_record.py"),
    Mutant("record-counts-first-frame", "data/record.py", "EncodedImages(pngs[c], np.stack(counts[c]), shapes[c])", "EncodedImages(pngs[c], np.stack(counts[c][:1] * len(counts[c])), shapes[c])", "tests/data/test_record.py"),
    # data/episode_selection.py
    Mutant("selection-bool-taken", "data/episode_selection.py", "all(is_whole(e) for e in episodes)", "all(isinstance(e, int) for e in episodes)", "tests/data/test_episode_selection.py"),
    Mutant("selection-file-before-written-out-ignored", "data/episode_selection.py", "    return _INLINE.fullmatch(str(given)) is not None and not Path(given).is_file()", "    return _INLINE.fullmatch(str(given)) is not None", "tests/data/test_episode_selection.py"),
    Mutant("selection-range-end-kept", "data/episode_selection.py", "        episodes.extend(range(first, stop))", "        episodes.extend(range(first, stop + 1))", "tests/data/test_episode_selection.py"),
    Mutant("selection-range-past-the-end-unchecked", "data/episode_selection.py", "            stop <= num_episodes,", "            True,", "tests/data/test_episode_selection.py"),
    Mutant("selection-empty-range-unchecked", "data/episode_selection.py", "            first < stop,", "            True,", "tests/data/test_episode_selection.py"),
    Mutant("selection-brackets-kept", "data/episode_selection.py", "        body = body[1:-1]", "        pass", "tests/data/test_episode_selection.py"),
    Mutant("selection-empty-item-skipped", "data/episode_selection.py", '        if not item and body.strip() == "":', "        if not item:", "tests/data/test_episode_selection.py"),
    Mutant("selection-duplicates-kept", "data/episode_selection.py", "    return sorted(set(episodes))", "    return sorted(episodes)", "tests/data/test_episode_selection.py"),
    Mutant("written-out-runs-of-two-as-ranges", "data/episode_selection.py", "        if stop - start >= 2:", "        if stop - start >= 1:", "tests/data/test_episode_selection.py"),
    Mutant("written-out-range-end-kept", "data/episode_selection.py", 'items.append(f"{ordered[start]}:{ordered[stop] + 1}")', 'items.append(f"{ordered[start]}:{ordered[stop]}")', "tests/data/test_episode_selection.py"),
    Mutant("info-episode-of-many-tasks-first-only", "data/reader.py", "            for task in [tasks] if isinstance(tasks, str) else tasks:", "            for task in [tasks] if isinstance(tasks, str) else tasks[:1]:", "tests/data/test_episodes_table.py"),
    Mutant("info-episodes-by-task-dropped", "data/reader.py", "            **self._episodes_by_task(),\n", "", "tests/data/test_episodes_table.py"),
    Mutant("selection-val-flag-unnamed", "train/loop.py", 'read_episode_selection(cfg.val_episodes, dataset.num_episodes, "--val-episodes")', "read_episode_selection(cfg.val_episodes, dataset.num_episodes)", "tests/train"),
    # data/samples.py
    Mutant("samples-frame-tasks-unchecked", "data/samples.py", "torch.from_numpy(frame_tasks(dataset)[keep])", 'torch.from_numpy(dataset.read_array("task_index").astype(np.int64)[keep])', "tests/data/test_samples.py"),
    Mutant("samples-frame-episodes-unchecked", "data/samples.py", "episode_index = frame_episodes(dataset)", 'episode_index = dataset.read_array("episode_index").astype(np.int64)', "tests/data/test_samples.py"),
    Mutant("samples-no-frames-unchecked", "data/samples.py", "        if not keep.any():", "        if False:", "tests/data/test_samples.py"),
    Mutant("samples-stats-chunk-skipped", "data/samples.py", "for start in range(0, len(sample), 64)", "for start in range(0, len(sample), 128)", "tests/data/test_samples.py"),
    Mutant("samples-size-dropped", "data/samples.py", "dataset.camera_frames(key, progress, keep, image_size, image_fit)", "dataset.camera_frames(key, progress, keep)", "tests/train/test_build.py"),
    Mutant("samples-fit-dropped", "data/samples.py", "dataset.camera_frames(key, progress, keep, image_size, image_fit)", "dataset.camera_frames(key, progress, keep, image_size)", "tests/train/test_build.py"),
    Mutant("samples-mapped-rows-unindexed", "data/samples.py", "per_camera = [frames[index[rows]] for", "per_camera = [frames[rows] for", FC),
    Mutant("samples-camera-order", "data/samples.py", "np.stack(per_camera, axis=1)", "np.stack(per_camera[::-1], axis=1)", "tests/train/test_build.py"),
    Mutant("samples-policy-fit-dropped", "data/samples.py", 'image_fit=model["image_fit"],', 'image_fit="pad",', "tests/data/test_samples.py"),
    Mutant("samples-like-fit-dropped", "data/samples.py", "image_fit=self.image_fit,", 'image_fit="pad",', "tests/data/test_samples.py"),
    Mutant("samples-mask-le", "data/samples.py", "mask = steps < end", "mask = steps <= end", "tests/data/test_samples.py"),
    Mutant("samples-task-start", "data/samples.py", "self._task_start = torch.cumsum(counts, 0) - counts", "self._task_start = torch.zeros_like(counts)", "tests/data/test_samples.py"),
    Mutant("samples-nan-unchecked", "data/samples.py", "            if values is not None:  # before the images decode", "            if False:  # before the images decode", "tests/data/test_samples.py"),
    Mutant("samples-nan-frame-is-row", "data/samples.py", "frame = row - int(np.flatnonzero(episode_index == episode)[0])", "frame = row", "tests/data/test_samples.py"),
    # data/seeds.py
    Mutant("seeds-one-stream", "data/seeds.py", "        _SPLITS[split],\n", "        0,\n", ("tests/data", "tests/test_evaluate.py")),
    # data/stats.py
    Mutant("stats-pooled-std", "data/stats.py", '"std": np.sqrt(np.maximum(second_moment - mean**2, 0.0)),', '"std": wsum("std"),', "tests/data"),
    Mutant("stats-unweighted", "data/stats.py", "w = counts / counts.sum()", "w = np.full(len(counts), 1.0 / len(counts))", "tests/data"),
    Mutant("stats-image-scale", "data/stats.py", "values = np.arange(256, dtype=np.float64) / 255.0", "values = np.arange(256, dtype=np.float64)", ("tests/data", "tests/train")),
    # data/video.py
    Mutant("video-batch-unbounded", "data/video.py", "min(BATCH, RAW_BATCH_BYTES // image.nbytes)", "BATCH", "tests/data/test_video.py"),
    Mutant("video-batch-stale-frames", "data/video.py", 'done, times, filled = np.asarray(times), [], 0', 'done, times = np.asarray(times), []', "tests/data/test_video.py"),
    Mutant("stats-quantile-rank", "data/stats.py", "position = q * (pixels[c] - 1)", "position = q * pixels[c]", "tests/data/test_stats.py"),
    Mutant("stats-max-past-last", "data/stats.py", "sorted_value(c, pixels[c] - 1))\n", "sorted_value(c, pixels[c] - 2))\n", "tests/data/test_stats.py"),
    Mutant("stats-image-flat", "data/stats.py", "np.asarray(v, dtype=np.float64).reshape(-1, 1, 1) for k, v in out.items()", "np.asarray(v, dtype=np.float64) for k, v in out.items()", LR),
    Mutant("stats-std-uncentred", "data/stats.py", "(values[None] - mean[:, None]) ** 2", "values[None] ** 2", "tests/data/test_stats.py"),
    Mutant("stats-rank-left", "data/stats.py", 'side="right")]', 'side="left")]', "tests/data/test_stats.py"),
    Mutant("stats-pair-marginals-swapped", "data/stats.py", "counts[2 * phase % channels] += joint.sum(axis=0)", "counts[2 * phase % channels] += joint.sum(axis=1)", "tests/data/test_stats.py"),
    Mutant("stats-pair-phase-channel", "data/stats.py", "counts[(2 * phase + 1) % channels] += joint.sum(axis=1)", "counts[(phase + 1) % channels] += joint.sum(axis=1)", "tests/data/test_stats.py"),
    Mutant("stats-pair-rest-dropped", "data/stats.py", "        counts[channel] += np.bincount(rest[:, channel], minlength=256)\n", "        pass\n", "tests/data/test_stats.py"),
    Mutant("stats-pair-endian", "data/stats.py", 'view("<u2")', 'view(">u2")', "tests/data/test_stats.py"),
    Mutant("stats-pair-stale-indices", "data/stats.py", "np.bincount(indices[: len(part)], minlength=65536)", "np.bincount(indices, minlength=65536)", "tests/data/test_stats.py"),
    Mutant("stats-threads-last-frames", "data/stats.py", "bounds = np.linspace(0, len(images), threads + 1).astype(int)", "bounds = np.linspace(0, len(images) - 1, threads + 1).astype(int)", "tests/data/test_stats.py"),
    Mutant("stats-threads-shared-with-fork", "data/stats.py", "key = (os.getpid(), threads)", "key = (0, threads)", "tests/data/test_stats.py"),
    Mutant("video-out-not-advanced", "data/video.py", 'first_row = np.cumsum(lengths[read]) - lengths[read]', 'first_row = np.zeros_like(lengths[read])', FC),
    Mutant("video-lengths-unchecked", "data/video.py", '            len(out) == total,', '            True,', "tests/data/test_video.py"),
    Mutant("video-episode-offset", "data/video.py", 'return episode, frame, starts[episode] + frame / fps', 'return episode, frame, frame / fps', "tests/data"),
    Mutant("video-size-dropped", "data/video.py", '_batches(path, size, fit, bar, windows=windows)) as batches:', '_batches(path, bar=bar, windows=windows)) as batches:', "tests/data/test_video.py"),
    Mutant("video-fit-dropped", "data/video.py", '_batches(path, size, fit, bar, windows=windows)) as batches:', '_batches(path, size, bar=bar, windows=windows)) as batches:', "tests/data/test_video.py"),
    Mutant("video-file-index-ignored", "data/video.py", "chunk_index=chunk, file_index=file)", "chunk_index=chunk, file_index=0)", "tests/data/test_video.py"),
    Mutant("video-progress-uncounted", "data/video.py", '            bar.update(len(times))\n', '            pass\n', "tests/data/test_video.py"),
    Mutant("video-shorter-than-episodes", "data/video.py", "miss.max() > 0.5 / fps", "miss.max() > 5 / fps", "tests/data/test_video.py"),
    Mutant("video-nearest-tie-later", "data/video.py", "later = np.abs(ordered[after] - wanted) < np.abs(", "later = np.abs(ordered[after] - wanted) <= np.abs(", "tests/data/test_video.py"),
    Mutant("video-nearest-not-first-of-equals", "data/video.py", "first = np.searchsorted(ordered, ordered[nearest], side=\"left\")", "first = nearest", "tests/data/test_video.py"),
    Mutant("video-nearest-unsorted", "data/video.py", "else np.argsort(times, kind=\"stable\")", "else np.arange(len(times))", "tests/data/test_video.py"),
    Mutant("video-held-not-copied", "data/video.py", "else frames[first_of_last].copy()),", "else frames[first_of_last]),", "tests/data/test_video.py"),
    Mutant("video-held-replaced-by-an-equal", "data/video.py", "(held[0] if first_of_last < 0 else frames[first_of_last].copy())", "frames[max(first_of_last, 0)].copy()", "tests/data/test_video.py"),
    Mutant("video-held-last-not-first", "data/video.py", 'first_of_last = int(np.searchsorted(times, times[-1], side="left"))', 'first_of_last = len(times) - 1', "tests/data/test_video.py"),
    Mutant("video-settled-at-once", "data/video.py", 'upto = int(np.searchsorted(ordered, times[-1], side="right"))', 'upto = len(ordered)', "tests/data/test_video.py"),
    Mutant("video-held-ignored", "data/video.py", "        before = 0 if held is None else 1  # the nearest frame may be the one shown before this batch\n        if held is not None:\n", "        before = 0\n        if False:\n", "tests/data/test_video.py"),
    Mutant("video-frames-at-consecutive-copied", "data/video.py", "        return frames[indices[0] : indices[-1] + 1]\n", "        return frames[indices[0] : indices[-1] + 1].copy()\n", "tests/data/test_video.py"),
    Mutant("video-frames-at-span-not-run", "data/video.py", "bool(np.all(np.diff(indices) == 1))", "indices[-1] - indices[0] == len(indices) - 1", "tests/data/test_video.py"),
    Mutant("video-decoder-threads-ignored", "data/video.py", "                stream.codec_context.thread_count = threads\n", "                pass\n", "tests/data/test_video.py"),
    Mutant("video-frames-at-before-dropped", "data/video.py", "    return np.concatenate([before[None], frames])[indices + 1]\n", "    return frames[indices.clip(0)]\n", "tests/data/test_video.py"),
    Mutant("video-order-unchecked", "data/video.py", '        if np.any(times[1:] < times[:-1]):\n', '        if False:\n', "tests/data/test_video.py"),
    Mutant("video-after-last-unplaced", "data/video.py", '    if count and settled < len(wanted):', '    if False:', "tests/data/test_video.py"),
    Mutant("video-recount-uncorrected", "data/video.py", '                    bar.update(-back.decoded)\n', '                    pass\n', "tests/data/test_video.py"),
    Mutant("video-reread-not-advanced", "data/video.py", '            first += len(batch_times)\n', '', "tests/data/test_video.py"),
    Mutant("video-file-sizes-unchecked", "data/video.py", '            frames.shape[1:] == self.frames.shape[1:],', '            True,', "tests/data/test_video.py"),
    Mutant("video-part-over-half", "data/reader.py", '        if 2 * int(decoded.sum()) > len(rows):\n', '        if False:\n', "tests/data/test_video.py"),
    Mutant("video-part-never", "data/reader.py", '        if 2 * int(decoded.sum()) > len(rows):\n', '        if True:\n', "tests/data/test_video.py"),
    Mutant("video-part-rows-misplaced", "data/reader.py", 'return episodes, (np.cumsum(decoded) - 1)[rows]', 'return episodes, np.flatnonzero(rows)', "tests/data"),
    Mutant("video-windows-unwidened", "data/video.py", "zip(starts - widened, starts + (lengths - 1) / fps + widened)", "zip(starts, starts + (lengths - 1) / fps)", "tests/data/test_video.py"),
    Mutant("video-windows-widened-a-frame", "data/video.py", "WIDENED = 0.75", "WIDENED = 1.0", (CONV, "tests/data/test_video.py")),
    Mutant("video-seek-to-window-start", "data/video.py", "start = _first_at_or_after(shown_at, first) if windows else first", "start = first", (CONV, "tests/data/test_video.py")),
    Mutant("video-seek-tick-floored", "data/video.py", "ticks = math.floor(first / stream.time_base + 1e-6)", "ticks = math.floor(first / stream.time_base)", (CONV, "tests/data/test_video.py")),
    Mutant("video-first-frame-after", "data/video.py", 'at = int(np.searchsorted(times, moment, side="left"))', 'at = int(np.searchsorted(times, moment, side="right"))', "tests/data/test_video.py"),
    Mutant("video-windows-unjoined", "data/video.py", '        if joined and first <= joined[-1][1]:\n', '        if False:\n', "tests/data/test_video.py"),
    Mutant("video-seek-always", "data/video.py", "if decoded is None or _last_at_or_before(keyframes, start) > position:", "if True:", "tests/data/test_video.py"),
    Mutant("video-seek-never", "data/video.py", "if decoded is None or _last_at_or_before(keyframes, start) > position:", "if decoded is None:", "tests/data/test_video.py"),
    Mutant("video-waiting-dropped", "data/video.py", '                        waiting = frame\n', '                        pass\n', "tests/data/test_video.py"),
    Mutant("video-episodes-ignored", "data/video.py", '                if episodes is None\n                else _windows(', '                if True\n                else _windows(', "tests/data/test_video.py"),
    Mutant("video-seconds-floored", "data/video.py", "return ticks * numerator / denominator", "return ticks * numerator // denominator", "tests/data/test_video.py"),
    Mutant("video-episode-given-early", "data/video.py", "            if not left[ep]:\n                complete.append(ep)", "            if ep not in complete:\n                complete.append(ep)", "tests/data/test_video.py"),
    Mutant("video-episode-frames-misplaced", "data/video.py", "held[ep][frame[chosen[first:stop]]] = frames[first:stop]", "held[ep][: stop - first] = frames[first:stop]", "tests/data/test_video.py"),
    Mutant("video-episode-given-twice", "data/video.py", "for ep in sorted(set(episodes.tolist()) - set(given)):", "for ep in episodes.tolist():", "tests/data/test_video.py"),
    Mutant("video-episodes-given-at-the-end", "data/video.py", "            for _ in _placed_as_decoded(batches, wanted, put, miss):\n                while complete:", "            for _ in _placed_as_decoded(batches, wanted, put, miss):\n                pass\n            while complete:", "tests/data/test_video.py"),
    Mutant("cache-part-unnamed", "data/frame_cache.py", '    which = "every episode" if episodes is None else "episodes " + ",".join(map(str, episodes))\n', '    which = "every episode"\n', FC),
    Mutant("cache-whole-not-consulted", "data/reader.py", "        if episodes is not None:  # the whole camera's entry serves", "        if False:  # the whole camera's entry serves", FC),
    Mutant("cache-whole-looked-up-at-any-cost", "data/frame_cache.py", '    sources = source_files(dataset, key, episodes) if if_digests_known else []\n', '    sources = []\n', FC),
    # data/writer.py
    Mutant("writer-fps-unchecked", "data/writer.py", "if not (is_number(fps) and fps > 0 and math.isfinite(fps)):", "if False:", "tests/data/test_writer.py"),
    Mutant("writer-robot-type-unchecked", "data/writer.py", "if robot_type is not None and not isinstance(robot_type, str):", "if False:", "tests/data/test_writer.py"),
    Mutant("writer-defaults-declarable", "data/writer.py", "    if key in fmt.DEFAULT_FEATURES:\n        raise", "    if False:\n        raise", "tests/data/test_writer.py"),
    Mutant("writer-dtype-unchecked", "data/writer.py", "if dtype not in fmt.WRITTEN_DTYPES:", "if False:", "tests/data/test_writer.py"),
    Mutant("writer-shape-unchecked", "data/writer.py", "if not (isinstance(shape, list | tuple) and shape and all(_positive_int(n) for n in shape)):", "if False:", "tests/data/test_writer.py"),
    Mutant("writer-bool-a-size", "data/writer.py", "not isinstance(n, bool) and n >= 1", "n >= 1", "tests/data/test_writer.py"),
    Mutant("writer-numpy-shape-kept", "data/writer.py", '"shape": [int(n) for n in f["shape"]]', '"shape": f["shape"]', "tests/data/test_writer.py"),
    Mutant("writer-task-unchecked", "data/writer.py", "if not isinstance(task, str):", "if False:", "tests/data/test_writer.py"),
    Mutant("writer-computed-columns-replaced", "data/writer.py", "        if computed:  # else replaced without a word", "        if False:  # else replaced without a word", "tests/data/test_writer.py"),
    Mutant("writer-episode-end", "data/writer.py", '"dataset_to_index": self.total_frames + length,', '"dataset_to_index": self.total_frames + length - 1,', LR),
    Mutant("writer-index", "data/writer.py", '"index": self.total_frames + frame_index,', '"index": frame_index,', "tests/data"),
    Mutant("writer-counts-not-cut", "data/writer.py", "return EncodedImages(self.pngs[frames], self.counts[frames], self.shape)", "return EncodedImages(self.pngs[frames], self.counts, self.shape)", "tests/data/test_record.py"),
    Mutant("writer-pngs-encoded-again", "data/writer.py", "[encode_png(image) for image in images] if pngs is None else pngs", "[encode_png(image) for image in images]", "tests/data/test_writer.py"),
    Mutant("writer-image-count", "data/writer.py", "stats_from_histogram(values.counts.sum(axis=0), len(values))", "stats_from_histogram(values.counts.sum(axis=0), len(values.counts[0]))", "tests/data/test_writer.py"),
    Mutant("writer-non-finite-written", "data/writer.py", "                _refuse_non_finite(key, array)\n", "", "tests/data/test_writer.py"),
    Mutant("writer-infinity-written", "data/writer.py", "bad = np.argwhere(~np.isfinite(values))", "bad = np.argwhere(np.isnan(values))", "tests/data/test_writer.py"),
    Mutant("writer-refused-task-listed", "data/writer.py", "        episode_index = len(self.episode_rows)\n", "        episode_index = len(self.episode_rows)\n        self.task_index(task)\n", "tests/data/test_writer.py"),
    Mutant("writer-timestamp", "data/writer.py", '"timestamp": (frame_index / self.fps).astype(np.float32),', '"timestamp": (frame_index * 1.0).astype(np.float32),', "tests/data"),
    # decode/bidirectional.py
    Mutant("bidir-ranks-committed", "decode/bidirectional.py", "priority = torch.where(masked, priority, torch.full_like(priority, -math.inf))", "priority = priority.clone()", "tests/decode/test_decoders.py"),
    Mutant("bidir-left-all", "decode/bidirectional.py", "int(masked.sum(1).min()) - 1)", "int(masked.sum(1).min()))", "tests/decode"),
    # decode/distill.py
    Mutant("distill-direction", "decode/distill.py", "(p_log.exp() * (p_log - F.log_softmax(student_logits, -1))).sum(-1)", "(F.softmax(student_logits, -1) * (F.log_softmax(student_logits, -1) - p_log)).sum(-1)", "tests/decode/test_distill.py"),
    Mutant("distill-teacher-camera-remedy-default", "decode/distill.py", ', remedy="use a teacher trained on this data\'s cameras"', "", "tests/decode/test_distill.py"),
    Mutant("distill-weight", "decode/distill.py", "token_cross_entropy(logits, targets) + self.weight * kl", "token_cross_entropy(logits, targets) + kl", "tests/decode/test_distill.py"),
    Mutant("distill-stats-check", "decode/distill.py", "np.allclose(stats[key][moment], teacher_stats[key][moment], atol=1e-5),", "True,", "tests/decode"),
    Mutant("distill-bin-edges", "decode/distill.py", "    student.expert.bin_edges.copy_(teacher.expert.bin_edges)\n", "", "tests/decode"),
    Mutant("distill-teacher-trains", "decode/distill.py", "teacher.eval().requires_grad_(False)", "teacher.eval()", "tests/decode"),
    # decode/fast.py
    Mutant("fast-cache-unfinished", "decode/fast.py", "while ready < started and bool(finished[ready]):", "while ready < started:", DEC),
    Mutant("fast-activation-max", "decode/fast.py", "if float(last.float().mean(-1).min()) < activation:", "if float(last.float().mean(-1).max()) < activation:", DEC),
    Mutant("fast-threshold-strict", "decode/fast.py", "commit = masked & ((confidence >= threshold) | best.view(batch, t))", "commit = masked & ((confidence > threshold) | best.view(batch, t))", "tests/decode"),
    Mutant("fast-best-committed", "decode/fast.py", "    confidence = torch.where(masked, confidence, torch.full_like(confidence, -1.0))\n", "", "tests/decode"),
    Mutant("fast-finished-any-sample", "decode/fast.py", "finished = committed.view(batch, n_blocks, size).all(-1).all(0)", "finished = committed.view(batch, n_blocks, size).all(-1).any(0)", "tests/decode"),
    # decode/head.py
    Mutant("head-mask-cdf", "decode/head.py", "torch.erf(noise.reshape(b, h * a) / math.sqrt(2.0))", "torch.erf(noise.reshape(b, h * a))", "tests/decode"),
    Mutant("head-ratio-layout", "decode/head.py", ".repeat_interleave(self.block, dim=1)", ".repeat(1, self.block)", "tests/decode"),
    # decode/masks.py
    Mutant("mask-front", "decode/masks.py", "front = (1.0 - t[:, None]) * (n_blocks - 1 + window)", "front = (1.0 - t[:, None]) * (n_blocks + window)", DEC),
    # decode/options.py
    Mutant("decoding-flow-noise-any-head", "decode/options.py", 'head == "flow" or "flow_noise" not in chosen,', "True,", "tests/decode/test_options.py"),
    Mutant("decoding-decoder-any-head", "decode/options.py", 'head == "discrete" or not set(chosen) & set(DISCRETE),', "True,", "tests/decode/test_options.py"),
    Mutant("decoding-unchecked-values", "decode/options.py", "            decoding_config(meta, chosen)  # validates the values\n", "            pass\n", "tests/decode/test_options.py"),
    Mutant("decoding-passes-per-chunk", "decode/options.py", '"forward_passes_per_chunk": passes / max(1, chunks),', '"forward_passes_per_chunk": passes / max(1, chunks + 1),', "tests/decode/test_options.py"),
    Mutant("decoding-tokens-per-pass", "decode/options.py", '"tokens_per_pass": tokens * chunks / max(1, passes),', '"tokens_per_pass": tokens / max(1, passes),', "tests/decode/test_options.py"),
    # decode/stats.py
    Mutant("dstats-ratio", "decode/stats.py", "return self.tokens / max(1, self.forward_passes)", "return self.forward_passes / max(1, self.tokens)", "tests/decode"),
    # decode/tokenizer.py
    Mutant("tok-right", "decode/tokenizer.py", "torch.searchsorted(inner, flat.to(inner.dtype), right=True)", "torch.searchsorted(inner, flat.to(inner.dtype), right=False)", "tests/decode/test_tokenizer.py"),
    # demo.py
    Mutant("demo-cache-unchecked", "demo.py", '    require_creatable(Path(cfg.cache), "--cache")\n', "", "tests/test_cli.py"),
    Mutant("demo-cache-a-file", "demo.py", "        not Path(cfg.cache).is_file(), f", "        True, f", "tests/test_cli.py"),
    Mutant("demo-lock-dropped", "demo.py", "    lock.take()  # one demo at a time in --out", "    pass  # one demo at a time in --out", "tests/test_run_lock.py"),
    Mutant("demo-fast-threshold-dropped", "demo.py", "        commit_threshold=plan.decode_commit_threshold,\n", "", "tests/test_demo.py"),
    # environment.py
    Mutant("env-threads-plural", "environment.py", "({threads} thread{'s' * (threads != 1)})", "({threads} threads)", "tests/test_environment.py"),
    Mutant("env-torch-twice", "environment.py", 'torch_version = packages.pop("torch")', 'torch_version = packages.get("torch")', "tests/test_environment.py"),
    Mutant("env-gpu-left-out", "environment.py", "where += f\", {environment['cuda_device']}\"", "where += \"\"", "tests/test_environment.py"),
    Mutant("env-missing-listed", "environment.py", "for name, version in packages.items() if version is not None]", "for name, version in packages.items()]", "tests/test_environment.py"),
    Mutant("env-cpu-line-whole", "environment.py", 'return line.split(":", 1)[1].strip()', "return line.strip()", "tests/test_environment.py"),
    Mutant("env-usable-cores-unsaid", "environment.py", 'where += f" ({usable} usable)"', 'where += ""', "tests/test_environment.py"),
    # evaluate.py
    Mutant("eval-rollouts-unchecked", "evaluate.py", '            check_rollouts_directory(Path(cfg.out), "--out")\n', "            pass\n", "tests/test_evaluate.py"),
    Mutant("rollouts-among-earlier", "report.py", "    with atomic_dir(directory, replace=True) as tmp:", "    directory.mkdir(parents=True, exist_ok=True)\n    with __import__('contextlib').nullcontext(directory) as tmp:", "tests/test_report.py"),
    Mutant("rollouts-foreign-replaced", "report.py", "    if foreign:\n", "    if False:\n", "tests/test_report.py"),
    Mutant("eval-partial-positions-checked", "evaluate.py", "held_out_known = positions is not None and not unknown", "held_out_known = positions is not None", "tests/test_evaluate.py"),
    Mutant("eval-two-workers-on-one-core", "evaluate.py", "workers = min(worker_count(cfg.workers, cfg.threads), jobs)", "workers = min(cfg.workers or 2, jobs)", "tests/test_evaluate.py"),
    Mutant("eval-workers-past-the-jobs", "evaluate.py", "workers = min(worker_count(cfg.workers, cfg.threads), jobs)", "workers = worker_count(cfg.workers, cfg.threads)", "tests/test_evaluate.py"),
    Mutant("eval-last-env-kept", "evaluate.py", "                    _ENVS.close()\n", "", "tests/test_evaluate.py"),
    Mutant("eval-policy-kept", "evaluate.py", "                    _WORKER.clear()\n", "", "tests/test_evaluate.py"),
    Mutant("eval-workers-threads-ignored", "evaluate.py", "workers = min(worker_count(cfg.workers, cfg.threads), jobs)", "workers = min(worker_count(cfg.workers), jobs)", "tests/test_evaluate.py"),
    Mutant("eval-workers-weights-ignored", "evaluate.py", "worker_count(cfg.workers, cfg.threads, WORKER_MEMORY + weights)", "worker_count(cfg.workers, cfg.threads, WORKER_MEMORY)", "tests/test_evaluate.py"),
    Mutant("eval-one-env-per-episode", "evaluate.py", "    env = _ENVS.get(task, cameras, shape, max_steps)\n", "    env = OneEnvAtATime().get(task, cameras, shape, max_steps)\n", "tests/test_evaluate.py"),
    Mutant("eval-workers-recorded-as-asked", "evaluate.py", '"workers": workers},', '"workers": cfg.workers},', "tests/test_evaluate.py"),
    Mutant("eval-renders-square", "evaluate.py", "    shape = render_shape(meta, provenance)\n", '    shape = (meta["model"]["image_size"],) * 2\n', "tests/test_evaluate.py"),
    Mutant("eval-render-shape-mixed", "evaluate.py", "return shapes.pop() if len(shapes) == 1 else (size, size)", "return shapes.pop() if len(shapes) == 1 else min(shapes)", "tests/test_evaluate.py"),
    Mutant("wilson-term", "evaluate.py", "math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))", "math.sqrt(p * (1 - p) / n)", "tests/test_evaluate.py"),
    Mutant("eval-mean-ci", "evaluate.py", '"mean_ci95": wilson(total, n),', '"mean_ci95": wilson(total, n, z=1.0),', "tests/test_evaluate.py"),
    Mutant("eval-default-tasks", "evaluate.py", 'else policy_tasks(provenance.get("instructions", meta["instructions"]))', 'else policy_tasks(meta["instructions"])', "tests/test_evaluate.py"),
    Mutant("eval-mean-steps-success", "evaluate.py", '"mean_steps_success": float(np.mean([e["steps"] for e in rows if e["success"]]))', '"mean_steps_success": float(np.mean([e["steps"] for e in rows]))', "tests/test_evaluate.py"),
    Mutant("eval-decoding-ignored", "evaluate.py", '    apply_overrides(_WORKER["policy"], decode)\n', "", "tests/test_evaluate.py"),
    Mutant("eval-ms-per-episode", "evaluate.py", '1000.0 * sum(e["inference_s"] for e in episodes) / max(1, chunks)', '1000.0 * sum(e["inference_s"] for e in episodes) / max(1, len(episodes))', ("tests/test_evaluate.py", "tests/decode")),
    Mutant("eval-skips-uncounted", "evaluate.py", '"seeds_skipped_for_training_positions": int(sum(e["skipped_seeds"] for e in episodes)),', '"seeds_skipped_for_training_positions": 0,', "tests/test_evaluate.py"),
    Mutant("eval-interrupt-uncounted", "evaluate.py", "yield _run_job(job)\n                        done += 1\n", "yield _run_job(job)\n", "tests/test_evaluate.py"),
    # flags.py
    Mutant("flags-no-prefix", "flags.py", 'name = name if name in names else name.removeprefix("no_")', "name = name", "tests/test_flags.py"),
    Mutant("flags-other-prefix", "flags.py", "if flag.startswith(prefix) and name in names:", "if name in names:", "tests/test_flags.py"),
    Mutant("flags-no-for-false", "flags.py", "{'no-' if value is False else ''}", "{''}", "tests/test_flags.py"),
    Mutant("flags-factory-default", "flags.py", "return f.default if f.default is not MISSING else f.default_factory()", "return f.default", "tests/test_flags.py"),
    Mutant("flags-typed-ignored", "flags.py", "            given[name] = flag\n", "            pass\n", "tests/test_flags.py"),
    # merge/orthogonal.py
    Mutant("orth-vector-nan-taken", "merge/orthogonal.py", "        bool(torch.isfinite(tau).all()),\n", "        True,\n", "tests/merge/test_orthogonal.py"),
    Mutant("orth-lora-abs", "merge/orthogonal.py", "        return inner.square() / (norm2 * self.tau_norm2 + EPS)", "        return inner.abs() / (norm2 * self.tau_norm2 + EPS)", ORTH),
    Mutant("orth-no-start", "merge/orthogonal.py", "update = torch.stack(self.params).flatten(1) - self.start", "update = torch.stack(self.params).flatten(1)", ORTH),
    Mutant("orth-ref-scale", "merge/orthogonal.py", "norm2 = scale**2 * ((b.T @ b)", "norm2 = scale * ((b.T @ b)", ORTH),
    Mutant("orth-sum", "merge/orthogonal.py", "for group in self.groups]).mean()", "for group in self.groups]).sum()", ORTH),
    Mutant("orth-inner-noscale", "merge/orthogonal.py", "inner = self.scale * (torch.bmm(bt, self.tau) * a).sum((1, 2))", "inner = (torch.bmm(bt, self.tau) * a).sum((1, 2))", ORTH),
    # merge/run.py
    Mutant("merge-overflow-written", "merge/run.py", "    require_finite(\n        merged, \"the merge\",", "    (\n        merged, \"the merge\",", "tests/merge/test_run.py"),
    Mutant("merge-one-checkpoint-as-both", "merge/run.py", "        sft_dir.resolve() != aux_dir.resolve(),", "        True,", "tests/merge/test_run.py"),
    Mutant("merge-zero-vector-silent", "merge/run.py", "    if not any(v.any() for v in vector.values()):", "    if False:", "tests/merge/test_run.py"),
    Mutant("merge-inputs-unchecked", "merge/run.py", '    require_finite(tensors, path, "a merge', '    (lambda *given: None)(tensors, path, "a merge', "tests/merge/test_run.py"),
    Mutant("refusal-said-of-a-readable-file", "machine_errors.py", '        with open(path, "rb"):\n            return None\n', '        with open(path, "rb"):\n            return OSError(errno.EACCES, "Permission denied", str(path))\n', "tests/test_machine_errors.py"),
    Mutant("refusal-said-of-a-missing-file", "machine_errors.py", "        return exc if exc.errno in FILESYSTEM_REMEDIES else None", "        return exc", "tests/test_machine_errors.py"),
    Mutant("parquet-refusal-said-damaged", "data/data_files.py", "        if refused is not None:\n            raise refused from exc\n", "", "tests/data/test_data_files.py"),
    Mutant("weights-refusal-said-missing", "models/checkpoint.py", "        if refused is not None:\n            raise refused from exc\n        raise UserError(f\"{path} does not exist\")", "        raise UserError(f\"{path} does not exist\")", "tests/models/test_checkpoint.py"),
    Mutant("video-refusal-said-damaged", "data/video.py", "        if refused is not None:\n            raise refused from exc\n", "", "tests/data/test_video.py"),
    Mutant("joined-video-refusal-said-damaged", "data/video_join.py", "        return refusal_to_open(self.path) or UserError(", "        return UserError(", "tests/data/test_convert.py"),
    Mutant("tasks-table-damage-a-traceback", "data/reader.py", "        table = read_parquet(path)\n        names = table.column_names", "        table = __import__('pyarrow.parquet', fromlist=['x']).read_table(path)\n        names = table.column_names", "tests/data/test_reader.py"),
    Mutant("episodes-table-damage-a-traceback", "data/episodes_table.py", "[read_parquet(f) for f in files]", "[__import__('pyarrow.parquet', fromlist=['x']).read_table(f) for f in files]", "tests/data/test_reader.py"),
    Mutant("output-changeability-unchecked", "atomic.py", "        require_changeable(path, flag)  # only now", "        pass  # only now", "tests/test_atomic.py"),
    Mutant("output-replaceability-unchecked", "atomic.py", "    require_own(path, flag, what, mark, overwrite)\n    require_replaceable(Path(path), flag)", "    require_own(path, flag, what, mark, overwrite)", "tests/test_atomic.py"),
    Mutant("file-replaceability-unchecked", "atomic.py", "    require_replaceable(Path(path), flag)\n\n\n@contextmanager", "\n\n@contextmanager", "tests/test_atomic.py"),
    Mutant("output-sticky-owner-unchecked", "atomic.py", "    if parent_status.st_mode & stat.S_ISVTX and os.geteuid() not in (0, owner, parent_status.st_uid):", "    if False:", "tests/test_atomic.py"),
    Mutant("output-sticky-anyone-refused", "atomic.py", "    if parent_status.st_mode & stat.S_ISVTX and os.geteuid() not in (0, owner, parent_status.st_uid):", "    if parent_status.st_mode & stat.S_ISVTX:", "tests/test_atomic.py"),
    Mutant("output-unwritable-inside-unchecked", "atomic.py", "        if not os.access(directory, os.W_OK | os.X_OK):", "        if False:", "tests/test_atomic.py"),
    Mutant("rename-failed-old-not-put-back", "atomic.py", "            if aside is not None:\n                os.replace(aside, target)\n", "", "tests/test_atomic.py"),
    Mutant("rename-failed-temporary-left", "atomic.py", "\n    except BaseException:\n        shutil.rmtree(tmp, ignore_errors=True)\n        raise", "\n    except BaseException:\n        raise", "tests/test_atomic.py"),
    Mutant("nearby-holding-dataset-unseen", "nearby.py", "    for above in list(Path(path).absolute().parents)[:3]:", "    for above in []:", "tests/test_nearby.py"),
    Mutant("nearby-looked-through-whole", "nearby.py", "                if looked == LOOKED_INTO:\n                    return found\n", "", "tests/test_nearby.py"),
    Mutant("nearby-hidden-looked-into", "nearby.py", " if e.is_dir() and not e.name.startswith(\".\"))", " if e.is_dir())", "tests/test_nearby.py"),
    Mutant("nearby-every-one-named", "nearby.py", "str(directory) for directory in found[:NAMED])", "str(directory) for directory in found)", "tests/test_nearby.py"),
    Mutant("nearby-one-level-only", "nearby.py", "    for _ in range(2):", "    for _ in range(1):", "tests/test_nearby.py"),
    Mutant("checkpoint-nearby-unsaid", "models/checkpoint.py", "subdirectory){nearby(path, CONFIG, 'checkpoint')}", "subdirectory)", "tests/test_nearby.py"),
    Mutant("reader-nearby-unsaid", "data/reader.py", "data/){nearby(self.root, fmt.INFO_PATH, 'dataset')}", "data/)", "tests/test_nearby.py"),
    Mutant("lerobot-home-hf-home-variables-unexpanded", "data/lerobot_home.py", "hf_home = os.path.expandvars(os.path.expanduser(", "hf_home = os.path.expanduser((", "tests/data/test_lerobot_home.py"),
    Mutant("lerobot-home-own-variable-ignored", "data/lerobot_home.py", 'return Path(os.getenv("HF_LEROBOT_HOME", Path(hf_home) / "lerobot")).expanduser()', 'return (Path(hf_home) / "lerobot").expanduser()', "tests/data/test_lerobot_home.py"),
    Mutant("lerobot-home-xdg-ignored", "data/lerobot_home.py", 'cache = os.getenv("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache"))', 'cache = os.path.join(os.path.expanduser("~"), ".cache")', "tests/data/test_lerobot_home.py"),
    Mutant("lerobot-home-before-here", "data/lerobot_home.py", "    if Path(path).exists() or not is_repo_id(path):", "    if not is_repo_id(path):", "tests/data/test_lerobot_home.py"),
    Mutant("repo-id-any-depth", "data/lerobot_home.py", "        and len(parts) == 2\n", "        and len(parts) >= 2\n", "tests/data/test_lerobot_home.py"),
    Mutant("repo-id-dots-allowed", "data/lerobot_home.py", 'part in (".", "..") or ', "", "tests/data/test_lerobot_home.py"),
    Mutant("lerobot-home-half-download-unseen", "data/lerobot_home.py", "    return found if found.is_dir() else None", '    return found if (found / "meta" / "info.json").is_file() else None', "tests/data/test_lerobot_home.py"),
    Mutant("lerobot-home-optional-option-unseen", "data/lerobot_home.py", "    return any(_names_a_dataset(arg) for arg in typing.get_args(hint) if arg is not type(None))", "    return False", "tests/data/test_lerobot_home.py"),
    Mutant("lerobot-home-unsaid", "cli.py", "                if _main_process():\n                    print(f\"{prog}: reading", "                if False:\n                    print(f\"{prog}: reading", "tests/data/test_lerobot_home.py"),
    Mutant("lerobot-home-said-by-every-process", "cli.py", "                if _main_process():\n                    print(f\"{prog}: reading", "                if True:\n                    print(f\"{prog}: reading", "tests/data/test_lerobot_home.py"),
    Mutant("reader-lerobot-home-unnamed", "data/reader.py", "does not exist{where_looked(self.root)}; record", "does not exist; record", "tests/data/test_lerobot_home.py"),
    Mutant("json-read-in-the-locales-encoding", "json_values.py", 'json.loads(Path(path).read_text(encoding="utf-8"))', "json.loads(Path(path).read_text())", "tests/test_text_encoding.py"),
    Mutant("probe-report-in-the-locales-encoding", "probe/report.py", '.write_text(markdown(result), encoding="utf-8")', ".write_text(markdown(result))", "tests/test_text_encoding.py"),
    Mutant("merge-vector-file-unchecked", "merge/run.py", "vector = _finite(read_weights(path), path)", "vector = read_weights(path)", "tests/merge/test_run.py"),
    Mutant("mergerun-scale", "merge/run.py", "merged = add_scaled(base, vector, cfg.scale, group_scale, prefixes)", "merged = add_scaled(base, vector, 1.0, group_scale, prefixes)", "tests/merge"),
    Mutant("mergerun-undone-sign", "merge/run.py", 'round(-100 * along_merged["coefficient"], 1)', 'round(100 * along_merged["coefficient"], 1)', "tests/merge"),
    Mutant("mergerun-along-scale", "merge/run.py", 'add_scaled(zeros, tau, scales["scale"], scales["group_scale"], _group_prefixes(meta_info))', 'add_scaled(zeros, tau, 1.0, scales["group_scale"], _group_prefixes(meta_info))', "tests/merge"),
    # merge/vectors.py
    Mutant("vec-old-peft-dare-taken", "merge/vectors.py", "            installed >= DARE_RESCALED_SINCE,", "            True,", VEC),
    Mutant("vec-old-peft-everything-refused", "merge/vectors.py", '    if method.startswith("dare"):', "    if True:", VEC),
    Mutant("vec-dare-seeds-every-device", "merge/vectors.py", "torch.default_generator.manual_seed(seed)", "torch.manual_seed(seed)", VEC),
    Mutant("vec-dare-stream-taken", "merge/vectors.py", "with torch.random.fork_rng(devices=[]):", "with torch.no_grad():", VEC),
    Mutant("vec-sign", "merge/vectors.py", "(aux[k].double() - v.double())", "(v.double() - aux[k].double())", VEC),
    Mutant("vec-group-ignored", "merge/vectors.py", "lam = group_scale.get(group_of(name, prefixes), scale)", "lam = scale", VEC),
    Mutant("vec-prefix-dot", "merge/vectors.py", 'if name.startswith(prefix + "."):', "if name.startswith(prefix):", VEC),
    Mutant("vec-coef", "merge/vectors.py", '"coefficient": dot / max(tau_sq, 1e-30),', '"coefficient": dot / max(tau_sq, 1e-30) ** 0.5,', VEC),
    Mutant("vec-training-keys", "merge/vectors.py", 'TRAINING_ONLY_KEYS = {"aux_horizon", "aux_env_dim", "aux_pixels"}', 'TRAINING_ONLY_KEYS = {"aux_horizon", "aux_env_dim"}', VEC),
    Mutant("vec-group-cos", "merge/vectors.py", "v[0] / max(1e-30, (v[1] * v[2]) ** 0.5)", "v[0] / max(1e-30, (v[1] * v[2]))", VEC),
    # json_values.py
    Mutant("read-json-remedy-dropped", "json_values.py", "{'; ' + remedy if remedy else ''}", "", ("tests/test_json_values.py", "tests/train/test_resume.py")),
    Mutant("read-json-what-dropped", "json_values.py", "{what + ' ' if what else ''}", "", ("tests/test_json_values.py", "tests/data/test_episode_selection.py")),
    Mutant("json-fields-unchecked", "json_values.py", "if f.name in values and not fits(values[f.name], hints[f.name]):", "if False:", ("tests/models/test_contract.py", "tests/adapt/test_inject.py")),
    Mutant("json-list-items-unchecked", "json_values.py", "isinstance(value, list) and all(fits(v, args[0]) for v in value)", "isinstance(value, list)", "tests/models/test_contract.py"),
    Mutant("json-int-not-a-float", "json_values.py", "        return is_number(value)\n", "        return isinstance(value, float)\n", ("tests/models/test_contract.py", "tests/adapt/test_inject.py")),
    Mutant("json-bool-an-int", "json_values.py", "        return is_whole(value)\n", "        return isinstance(value, int)\n", "tests/models/test_contract.py"),
    Mutant("json-literal-unchecked", "json_values.py", "        return value in args\n", "        return True\n", "tests/adapt/test_inject.py"),
    Mutant("json-bool-a-whole-number", "json_values.py", "return isinstance(value, int) and not isinstance(value, bool) and (least is None", "return isinstance(value, int) and (least is None", ("tests/data/test_info.py", "tests/models/test_contract.py")),
    Mutant("json-bool-a-number", "json_values.py", "return isinstance(value, int | float) and not isinstance(value, bool)", "return isinstance(value, int | float)", ("tests/data/test_info.py", "tests/models/test_contract.py")),
    Mutant("json-least-ignored", "json_values.py", "(least is None or value >= least)", "True", "tests/data/test_info.py"),
    # models/contract.py
    Mutant("contract-absent-unchecked", "models/contract.py", "absent = [f.name for f in fields(DataContract) if f.name not in values]", "absent = []", "tests/models/test_contract.py"),
    # models/auxiliary.py
    Mutant("aux-future", "models/auxiliary.py", "torch.minimum(rows + horizon, episode_end[rows] - 1)", "torch.minimum(rows + horizon, episode_end[rows])", "tests/models/test_auxiliary.py"),
    # models/checkpoint.py
    Mutant("checkpoint-io-error-raw", "models/checkpoint.py", "        raise OSError(int(number.group(1)), os.strerror(int(number.group(1))), str(path)) from exc\n", "        raise\n", "tests/models/test_checkpoint.py"),
    Mutant("state-saved-by-path", "train/state.py", "        save_torch(state, tmp / TRAINING_STATE)\n", "        torch.save(state, tmp / TRAINING_STATE)\n", "tests/test_cli.py"),
    Mutant("state-save-error-unnamed", "train/state.py", "        raise OSError(failed.errno, failed.strerror, str(path)) from exc\n", "        raise failed\n", "tests/train/test_state.py"),
    Mutant("checkpoint-weights-private", "models/checkpoint.py", "    os.chmod(path, default_mode(0o666))\n", "", "tests/models/test_checkpoint.py"),
    Mutant("merge-vector-private", "merge/run.py", "        save_tensors({k: v.contiguous() for k, v in vector.items()}, tmp / VECTOR)", "        __import__(\"safetensors.torch\", fromlist=[\"x\"]).save_file({k: v.contiguous() for k, v in vector.items()}, str(tmp / VECTOR))", "tests/merge/test_run.py"),
    Mutant("checkpoint-inputs-run-only", "models/checkpoint.py", 'for part in ("", "policy", "last")]', 'for part in ("",)]', "tests/test_cli.py"),
    Mutant("ckpt-instructions-unchecked", "models/checkpoint.py", "        isinstance(instructions, list) and instructions and all(", "        True or all(", "tests/models/test_checkpoint.py"),
    Mutant("ckpt-stats-unchecked-on-load", "models/checkpoint.py", "    check_stats(stats, ", "    (lambda *given: None)(stats, ", "tests/models/test_checkpoint.py"),
    Mutant("ckpt-positions-values-unchecked", "models/checkpoint.py", "isinstance(p, list) and all(is_number(x) for x in p)", "isinstance(p, list)", "tests/models/test_checkpoint.py"),
    Mutant("ckpt-record-not-an-object", "models/checkpoint.py", "require(isinstance(adapter, dict), ", "require(True, ", "tests/models/test_checkpoint.py"),
    Mutant("ckpt-record-unchecked", "models/checkpoint.py", "            key in adapter and fits(adapter[key], kind),", "            key in adapter,", "tests/adapt/test_export.py"),
    Mutant("ckpt-nan-weights-taken", "models/checkpoint.py", "if tensor.is_floating_point() and not bool(torch.isfinite(tensor.sum(dtype=torch.float64))):", "if False:", ("tests/models/test_checkpoint.py", "tests/merge/test_run.py")),
    Mutant("ckpt-finite-sum-float32", "models/checkpoint.py", "torch.isfinite(tensor.sum(dtype=torch.float64))", "torch.isfinite(tensor.sum())", "tests/models/test_checkpoint.py"),
    Mutant("ckpt-load-nan-unchecked", "models/checkpoint.py", "    require_finite(state, source, ", "    (lambda *given: None)(state, source, ", "tests/models/test_checkpoint.py"),
    Mutant("ckpt-provenance-unchecked", "models/checkpoint.py", "        if key in provenance and not holds(provenance[key]):", "        if False:", "tests/models/test_checkpoint.py"),
    Mutant("ckpt-positions-null-refused", "models/checkpoint.py", "p is None or (isinstance(p, list)", "(isinstance(p, list)", "tests/models/test_checkpoint.py"),
    Mutant("ckpt-last-unsaid", "models/checkpoint.py", 'if candidate.name == "last" and candidate != path:', "if False:", "tests/models/test_checkpoint.py"),
    Mutant("ckpt-json-any-type", "models/checkpoint.py", "    require(isinstance(obj, dict), ", "    require(True, ", "tests/models/test_checkpoint.py"),
    Mutant("ckpt-meta-keys-unchecked", "models/checkpoint.py", "absent = [key for key in META_KEYS if key not in meta]", "absent = []", "tests/models/test_checkpoint.py"),
    Mutant("ckpt-stats-values-unchecked", "models/checkpoint.py", "        all(isinstance(s, dict) for s in obj.values()),", "        True,", "tests/models/test_checkpoint.py"),
    Mutant("ckpt-sha", "models/checkpoint.py", 'file_sha256(base / WEIGHTS) == adapter["base_sha256"],', "True,", ("tests/adapt/test_export.py", "tests/models/test_checkpoint.py")),
    Mutant("ckpt-shape-unchecked", "models/checkpoint.py", "if name not in given or tuple(given[name].shape) != tuple(tensor.shape):", "if name not in given:", ("tests/models", "tests/adapt")),
    Mutant("ckpt-extra-ignored", "models/checkpoint.py", "extra = [n for n in state if n not in own]", "extra = []", ("tests/models", "tests/adapt")),
    Mutant("ckpt-metadata-hash-order", "models/checkpoint.py", 'metadata={"format": "pt"})', 'metadata={"format": "pt", "saved_by": "leanvla"})', "tests/models/test_checkpoint.py"),
    Mutant("ckpt-old-fit-unset", "models/checkpoint.py", 'fit = model.setdefault("image_fit", "pad")', 'fit = model.get("image_fit", "pad")', "tests/models/test_checkpoint.py"),
    Mutant("checkpoint-legacy-words-unicode", "models/checkpoint.py", 'setdefault("instruction_words", "ascii")', 'setdefault("instruction_words", "unicode")', "tests/models/test_checkpoint.py"),
    # models/cnn_policy.py
    Mutant("cnn-l1", "models/cnn_policy.py", "return (self(obs) - actions).pow(2).mean(-1)", "return (self(obs) - actions).abs().mean(-1)", ("tests/models", "tests/train")),
    # models/config.py
    Mutant("flow-noise-infinite-taken", "models/config.py", "        if not 0 <= self.flow_noise < math.inf:", "        if not self.flow_noise >= 0:", "tests/decode/test_options.py"),
    Mutant("config-decoder-auto", "models/config.py", 'return "fast" if 0 < self.token_block < n_tokens else "bidirectional"', 'return "fast" if 0 < self.token_block <= n_tokens else "bidirectional"', ("tests/decode", "tests/models")),
    # models/layers.py
    Mutant("rms-sum", "models/layers.py", "x.pow(2).mean(-1, keepdim=True)", "x.pow(2).sum(-1, keepdim=True)", "tests/models"),
    Mutant("rotary-sign", "models/layers.py", "x2 * cos + x1 * sin", "x2 * cos - x1 * sin", "tests/models"),
    # models/layout.py
    Mutant("layout-stack-filter", "models/layout.py", "if stacks is not None and stack.name not in stacks:", "if stacks is not None and stack.name in stacks:", ("tests/models", "tests/adapt")),
    Mutant("layout-expert-depth", "models/layout.py", 'Stack("expert", "expert.layers", BLOCK_LINEARS, depth_key="expert_layers"),', 'Stack("expert", "expert.layers", BLOCK_LINEARS, depth_key="layers"),', "tests/prune"),
    Mutant("layout-io-state", "models/layout.py", '        "state_proj",\n', "", ("tests/adapt", "tests/merge")),
    # models/pixel_decoder.py
    Mutant("pixel-one-grid", "models/pixel_decoder.py", "grids = self.inp(summary).view(b * self.cameras, self.channels, self.grid, self.grid)", "grids = self.inp(summary)[:, : self.channels * self.grid**2].repeat_interleave(self.cameras, 0).view(b * self.cameras, self.channels, self.grid, self.grid)", "tests/models/test_auxiliary.py"),
    Mutant("pixel-stages-forward", "models/pixel_decoder.py", "zip(channels[:0:-1], channels[-2::-1])", "zip(channels[:-1], channels[1:])", "tests/models/test_auxiliary.py"),
    # models/policy.py
    Mutant("policy-state-nan-taken", "models/policy.py", "if not bool(torch.isfinite(state).all()):", "if False:", "tests/models/test_policy.py"),
    Mutant("policy-task-range-unchecked", "models/policy.py", "if batch and not (0 <= int(task_index.min()) and int(task_index.max()) < known):", "if False:", "tests/models/test_policy.py"),
    Mutant("policy-state-type-kept", "models/policy.py", "state.to(self.device, torch.float32)", "state.to(self.device)", "tests/models/test_policy.py"),
    Mutant("policy-index-bool-taken", "models/policy.py", "torch.int8, torch.uint8)", "torch.int8, torch.uint8, torch.bool)", "tests/models/test_policy.py"),
    Mutant("policy-frames-unfitted", "models/policy.py", "return torch.stack([fit_square_chw(frames, size, fit) for frames in images], 1)", "return torch.stack(list(images), 1)", ("tests/models", "tests/test_readme.py")),
    Mutant("policy-fit-ignored", "models/policy.py", "fit_square_chw(frames, size, fit)", "fit_square_chw(frames, size)", "tests/models"),
    Mutant("policy-batch-unchecked", "models/policy.py", "frames.dim() == 4 and frames.shape[0] == batch and frames.shape[1] == 3", "frames.dim() == 4 and frames.shape[1] == 3", "tests/models"),
    Mutant("policy-noise-ignored", "models/policy.py", "        if noise is None:\n            noise = torch.randn(shape, generator=generator)\n", "        if True:\n            noise = torch.randn(shape, generator=generator)\n", "tests/models/test_policy.py"),
    Mutant("policy-task-index-as-given", "models/policy.py", "task_index.to(self.device, torch.long)", "task_index.to(self.device)", "tests/models/test_policy.py"),
    Mutant("policy-noise-type-kept", "models/policy.py", "        return noise.float()\n", "        return noise\n", "tests/models/test_policy.py"),
    Mutant("policy-noise-nan-taken", "models/policy.py", "bool(torch.isfinite(noise).all())", "True", "tests/models/test_policy.py"),
    Mutant("policy-empty-batch-predicted", "models/policy.py", "        if not shape[0]:  # no samples", "        if False:  # no samples", "tests/models/test_policy.py"),
    Mutant("policy-empty-frames-taken", "models/policy.py", "frames.shape[2] > 0 and frames.shape[3] > 0", "True", "tests/models/test_policy.py"),
    Mutant("policy-instruction-type-unchecked", "models/policy.py", "require(isinstance(instruction, str),", "require(True,", "tests/models/test_policy.py"),
    Mutant("policy-task-exact-only", "models/policy.py", "if self.model.tokenizer.encode(known) == words\n", "if known == instruction\n", "tests/models/test_policy.py"),
    # models/tokenizer.py
    Mutant("tok-case", "models/tokenizer.py", 'unicodedata.normalize("NFKC", text).lower()', 'unicodedata.normalize("NFKC", text)', "tests/models"),
    Mutant("tok-no-nfkc", "models/tokenizer.py", 'unicodedata.normalize("NFKC", text).lower()', "text.lower()", "tests/models"),
    Mutant("tok-ascii-only", "models/tokenizer.py", '"unicode": re.compile(f"[{_CJK}]|[^\\\\W_{_CJK}]+"),', '"unicode": re.compile(r"[a-z0-9]+"),', "tests/models"),
    Mutant("tok-cjk-one-word", "models/tokenizer.py", 'f"[{_CJK}]|[^\\\\W_{_CJK}]+"', 'f"[^\\\\W_]+"', "tests/models"),
    Mutant("tok-no-truncation", "models/tokenizer.py", "return ids[: self.max_length]", "return ids", "tests/models"),
    Mutant("tok-mask-all", "models/tokenizer.py", "return ids, ids != PAD", "return ids, torch.ones_like(ids, dtype=torch.bool)", "tests/models"),
    # models/vision.py
    Mutant("vision-no-pos", "models/vision.py", "x = x.flatten(2).transpose(1, 2).reshape(b, n_cam, g * g, c) + self.pos  # B x N x g*g x C", "x = x.flatten(2).transpose(1, 2).reshape(b, n_cam, g * g, c)  # B x N x g*g x C", "tests/models"),
    Mutant("vision-camera-order", "models/vision.py", "x = self.stem(images.flatten(0, 1))  # (B*N) x C x g x g", "x = self.stem(images.transpose(0, 1).flatten(0, 1))  # (B*N) x C x g x g", "tests/models/test_vision.py"),
    # models/vla.py
    Mutant("vla-pad-mask", "models/vla.py", "mask = valid[:, None, None, :].expand(b, 1, p, p)", "mask = torch.ones_like(valid)[:, None, None, :].expand(b, 1, p, p)", "tests/models"),
    Mutant("vla-expert-map", "models/vla.py", "cache=prefix.kv[self.cfg.expert_to_backbone[i]]", "cache=prefix.kv[i]", ("tests/models", "tests/prune")),
    Mutant("vla-positions-padded", "models/vla.py", "positions = valid.long().cumsum(1) - 1", "positions = torch.arange(p, device=x.device).expand(b, p)", "tests/models"),
    Mutant("vla-interp-swapped", "models/vla.py", "x_t = tt * noise + (1 - tt) * actions", "x_t = (1 - tt) * noise + tt * actions", "tests/models"),
    Mutant("vla-velocity-sign", "models/vla.py", 'target = actions if self.cfg.flow_target == "action" else noise - actions', 'target = actions if self.cfg.flow_target == "action" else actions - noise', "tests/models"),
    Mutant("vla-euler-time", "models/vla.py", "t = torch.full((x.shape[0],), 1.0 - k / steps, device=x.device)", "t = torch.full((x.shape[0],), k / steps, device=x.device)", "tests/models"),
    Mutant("vla-euler-sign", "models/vla.py", "x = x - self.velocity(prefix, x, t) / steps", "x = x + self.velocity(prefix, x, t) / steps", "tests/models"),
    Mutant("vla-flow-noise", "models/vla.py", "x = noise * self.cfg.flow_noise", "x = noise", ("tests/models", "tests/test_evaluate.py")),
    Mutant("vla-samples-sum", "models/vla.py", "return err.view(b, k, -1).mean(1)", "return err.view(b, k, -1).sum(1)", ("tests/models", "tests/train")),
    Mutant("vla-action-velocity", "models/vla.py", "return (x_t - out) / t[:, None, None]", "return (out - x_t) / t[:, None, None]", "tests/models"),
    Mutant("vla-expert-positions", "models/vla.py", "positions = prefix.next_position() + torch.arange(h, device=x.device)  # B x H", "positions = torch.arange(h, device=x.device).expand(b, h)  # B x H", ("tests/models", "tests/decode")),
    # option_lists.py
    Mutant("lists-twice-taken", "option_lists.py", "            require(name not in names, f\"{flag} names '{name}' twice; give each once\")\n", "", ("tests/test_option_lists.py", "tests/test_cli.py")),
    Mutant("lists-blank-kept", "option_lists.py", "        if name:\n", "        if True:\n", "tests/test_option_lists.py"),
    Mutant("groups-last-wins", "option_lists.py", "        require(name.strip() not in out, f\"{flag} names '{name.strip()}' twice; give each once\")\n", "", ("tests/test_option_lists.py", "tests/adapt/test_inject.py", "tests/merge/test_run.py")),
    # probe/measure.py
    Mutant("probe-stride-global", "probe/measure.py", "offsets = np.arange(len(data)) - np.repeat(starts, lengths)", "offsets = np.arange(len(data))", "tests/probe/test_measure.py"),
    Mutant("probe-counterpart-previous", "probe/measure.py", "following[members] = np.roll(members, -1)", "following[members] = np.roll(members, 1)", "tests/probe/test_measure.py"),
    Mutant("probe-counterpart-offset", "probe/measure.py", "at = starts[other] + offset * lengths[other] // lengths[episode]", "at = starts[other] + np.minimum(offset, lengths[other] - 1)", "tests/probe/test_measure.py"),
    Mutant("probe-past-the-end", "probe/measure.py", "compared[part] = batch.action_mask.bool()", "compared[part] = torch.ones_like(batch.action_mask, dtype=torch.bool)", "tests/probe/test_measure.py"),
    Mutant("probe-state-unswapped", "probe/measure.py", "state = batch.state if state_from is None else data.state[state_from[part]]", "state = batch.state", "tests/probe/test_measure.py"),
    Mutant("probe-noise-by-batch", "probe/measure.py", "noise=noise[part]", "noise=noise[: len(batch.state)]", "tests/probe"),
    Mutant("probe-passes-uncounted", "probe/measure.py", "passes.append(decoded.forward_passes)", "passes.append(1)", "tests/probe/test_run.py"),
    # probe/run.py
    Mutant("probe-decoding-ignored", "probe/run.py", "    apply_overrides(policy, decode)\n", "", "tests/probe/test_run.py"),
    Mutant("probe-fast-batched", "probe/run.py", "batch_size = 1 if couples_samples(policy) else cfg.batch_size", "batch_size = cfg.batch_size", "tests/probe/test_run.py"),
    Mutant("probe-positions-ignored", "probe/run.py", 'if provenance.get("positions") is not None and', 'if False and provenance.get("positions") is not None and', "tests/probe/test_run.py"),
    Mutant("probe-tasks-unchecked", "probe/run.py", "    check_tasks(dataset, episodes, policy)\n", "", "tests/probe/test_run.py"),
    Mutant("probe-task-exact-only", "probe/run.py", "policy.instruction_index(tasks[episode]) is not None,", "tasks[episode] in policy.instructions,", "tests/probe/test_run.py"),
    # probe/summary.py
    Mutant("probe-executed-whole-chunk", "probe/summary.py", "head = (slice(None), slice(0, executed))", "head = (slice(None), slice(None))", "tests/probe"),
    Mutant("probe-swap-other-frames", "probe/summary.py", "own = executed_error(errors[has_counterpart], compared[has_counterpart], executed)", "own = executed_error(errors, compared, executed)", "tests/probe/test_summary.py"),
    # prune/calibrate.py
    Mutant("calib-padding-counted", "prune/calibrate.py", "tokens = stacked[:, mask] if mask is not None else stacked.flatten(1, -2)", "tokens = stacked.flatten(1, -2)", "tests/prune"),
    # prune/remove.py
    Mutant("prune-remap", "prune/remove.py", "out.append(kept.index(later[0]) if later else len(kept) - 1)", "out.append(kept.index(later[0]) if later else 0)", "tests/prune"),
    Mutant("remove-depth-key", "prune/remove.py", "            setattr(config, stack.depth_key, len(kept))\n", "            pass\n", "tests/prune"),
    Mutant("remove-targets", "prune/remove.py", "targets = [cfg.expert_to_backbone[i] for i in experts]", "targets = cfg.expert_to_backbone[: len(experts)]", "tests/prune"),
    # prune/run.py
    Mutant("prune-size-dropped", "prune/run.py", 'ChunkDataset.for_policy(dataset, meta["model"], episodes, progress=progress)', 'ChunkDataset(dataset, meta["model"]["cameras"], meta["model"]["chunk_size"], episodes, progress=progress)', "tests/prune/test_run.py"),
    Mutant("prune-adjacent-diag", "prune/run.py", "return [float(matrix[i - 1, i]) for i in range(1, matrix.shape[0])]", "return [float(matrix[i, i]) for i in range(1, matrix.shape[0])]", "tests/prune"),
    Mutant("prune-bi-complement", "prune/run.py", '"block_influence": [1 - v for v in adjacent(matrices["block-influence"])],', '"block_influence": adjacent(matrices["block-influence"]),', "tests/prune"),
    Mutant("prune-keep-unnamed", "prune/run.py", "return {s: given.get(s, 1.0) for s in stacks}", "return {s: given.get(s, 0.5) for s in stacks}", "tests/prune"),
    Mutant("prune-empty-stacks-taken", "prune/run.py", "    require(stacks, \"--stacks is empty; name the stacks to prune", "    require(True, \"--stacks is empty; name the stacks to prune", "tests/prune/test_run.py"),
    Mutant("prune-chosen-cka", "prune/run.py", 'chosen = "cka" if cfg.criterion == "drop-last" else cfg.criterion', 'chosen = "cka"', "tests/prune"),
    Mutant("prune-layers-after", "prune/run.py", '"layers_after": depth - len(removed),', '"layers_after": depth,', "tests/prune"),
    Mutant("prune-provenance", "prune/run.py", "            shutil.copy(provenance, tmp / PROVENANCE)\n", "            pass\n", "tests/prune"),
    Mutant("prune-threshold-zero", "prune/run.py", "cfg.threshold is None or 0 < cfg.threshold <= 1", "cfg.threshold is None or 0 <= cfg.threshold <= 1", "tests/prune"),
    # prune/select.py
    Mutant("sel-last", "prune/select.py", "for pos in range(1, len(kept) - 1):", "for pos in range(1, len(kept)):", SEL),
    Mutant("sel-greedy-prev", "prune/select.py", "value = float(similarity[prev, kept[pos]])", "value = float(similarity[kept[pos] - 1, kept[pos]])", SEL),
    Mutant("sel-contig-first", "prune/select.py", "for start in range(1, num_layers - count):", "for start in range(0, num_layers - count):", SEL),
    Mutant("sel-keep-floor", "prune/select.py", "kept = max(1, math.ceil(keep * num_layers - 1e-9))", "kept = max(1, math.floor(keep * num_layers))", SEL),
    # prune/similarity.py
    Mutant("sim-centre", "prune/similarity.py", "centred = xy - torch.outer(sx, sy) / n  # Xc^T Yc", "centred = xy  # Xc^T Yc", SIM),
    Mutant("sim-unbiased-cross", "prune/similarity.py", "- 2.0 / (n - 2) * cross", "- 1.0 / (n - 2) * cross", SIM),
    # readable_json.py
    Mutant("readable-json-never-flat", "readable_json.py", "or used + len(flat) < width:", "or False:", "tests/test_readable_json.py"),
    Mutant("readable-json-tuple-kept-whole", "readable_json.py", "isinstance(value, (dict, list, tuple))", "isinstance(value, (dict, list))", "tests/test_readable_json.py"),
    Mutant("readable-json-no-comma-column", "readable_json.py", "or used + len(flat) < width:", "or used + len(flat) <= width:", "tests/test_readable_json.py"),
    Mutant("readable-json-key-unused", "readable_json.py", "lines.append(prefix + _dumped(item, level + 1, len(prefix), width, indent))", "lines.append(prefix + _dumped(item, level + 1, len(inner), width, indent))", "tests/test_readable_json.py"),
    Mutant("readable-json-key-as-python", "readable_json.py", "json.dumps(key if isinstance(key, str) else json.dumps(key), ensure_ascii=False)", "json.dumps(str(key), ensure_ascii=False)", "tests/test_readable_json.py"),
    Mutant("readable-json-escaped", "readable_json.py", "    flat = json.dumps(value, ensure_ascii=False)\n", "    flat = json.dumps(value)\n", "tests/test_readable_json.py"),
    Mutant("readable-json-item-unindented", "readable_json.py", "    inner = \" \" * (indent * (level + 1))\n", "    inner = \" \" * indent\n", "tests/test_readable_json.py"),
    # report.py
    Mutant("report-fitting-unsaid", "report.py", "if (height, width) != (size, size)", "if height != width", ("tests/test_report.py", "tests/test_evaluate.py")),
    Mutant("report-ci-order", "report.py", 'cells.append(f"{pct(r[\'success_rate\'])} [{pct(lo)}, {pct(hi)}]")', 'cells.append(f"{pct(r[\'success_rate\'])} [{pct(hi)}, {pct(lo)}]")', "tests/test_report.py"),
    Mutant("report-strip-first", "report.py", "picks = np.linspace(0, len(frames) - 1, min(strip_frames, len(frames))).round().astype(int)", "picks = np.arange(min(strip_frames, len(frames)))", "tests/test_report.py"),
    # rollout.py
    Mutant("rollout-reuses-positions", "rollout.py", "        return any(\n", "        return False and any(\n", "tests/test_evaluate.py"),
    Mutant("rollout-whole-chunk", "rollout.py", "for k, action in enumerate(chunk[:n_action_steps]):", "for k, action in enumerate(chunk):", "tests/test_evaluate.py"),
    Mutant("rollout-noise-base-seed", "rollout.py", "generator = torch.Generator().manual_seed(seed)  # the policy's noise", "generator = torch.Generator().manual_seed(base_seed)  # the policy's noise", "tests/test_evaluate.py"),
    Mutant("rollout-frame-twice", "rollout.py", "if keep_frames and (ended or k < n_action_steps - 1):", "if keep_frames and k > 0:", "tests/test_evaluate.py"),
    Mutant("rollout-step-after-done", "rollout.py", "ended = success or env.done", "ended = success", "tests/test_evaluate.py"),
    # train/build.py
    Mutant("train-camera-twice-by-key", "train/build.py", "            require(key not in cams, f\"--cameras names '{key}' twice; give each once\")", "            pass", "tests/train/test_build.py"),
    Mutant("aux-horizon-past-episodes", "train/build.py", "        horizon < longest,", "        True,", "tests/train/test_build.py"),
    Mutant("aux-horizon-every-episode", "train/build.py", "for e in (range(len(lengths)) if episodes is None else episodes)", "for e in range(len(lengths))", "tests/train/test_build.py"),
    Mutant("train-shift-past-the-image", "train/build.py", "        cfg.augment_shift < size,", "        True,", "tests/train/test_build.py"),
    Mutant("build-init-camera-remedy-default", "train/build.py", '        remedy="record that camera, or train from scratch (leave out --init)",\n', "", "tests/train/test_build.py"),
    Mutant("provenance-unknown-positions-silent", "train/build.py", "        if unknown:  # episodes another recorder added", "        if False:  # episodes another recorder added", "tests/train/test_build.py"),
    Mutant("build-camera-shapes-unkept", "train/build.py", 'out["camera_shapes"] = {key: list(dataset.image_shape(key)) for key in dataset.camera_keys}', 'out["camera_shapes"] = {}', ("tests/train", "tests/test_evaluate.py")),
    Mutant("build-teacher-size", "train/build.py", "            image_size=start.image_size,\n", "", "tests/decode/test_distill.py"),
    Mutant("build-init-size", "train/build.py", 'model_cfg["chunk_size"], model_cfg["image_size"]', 'model_cfg["chunk_size"], None', "tests/train/test_build.py"),
    Mutant("build-init-fit", "train/build.py", 'fit = model_cfg["image_fit"]', 'fit = "pad"', "tests/train/test_build.py"),
    Mutant("build-fit-unsaved", "train/build.py", "        image_fit=start.image_fit,\n        state_dim", "        state_dim", "tests/train/test_build.py"),
    Mutant("build-size-from-data", "train/build.py", "size = size or next(iter(sizes.values()))[0]", "size = next(iter(sizes.values()))[0]", "tests/train/test_build.py"),
    Mutant("build-positions-all", "train/build.py", 'out["positions"] = [positions[e] for e in episodes]', 'out["positions"] = positions', ("tests/train", "tests/test_evaluate.py")),
    Mutant("build-instructions-all", "train/build.py", "trained = sorted({tasks[e] for e in episodes}, key=dataset.tasks.index)", "trained = list(dataset.tasks)", ("tests/train", "tests/test_evaluate.py")),
    Mutant("build-decay-steps", "train/build.py", "decay_steps = round(cfg.lora.eta_decay * cfg.steps)", "decay_steps = cfg.steps", ("tests/adapt", "tests/train")),
    Mutant("build-init-tokens", "train/build.py", 'tokens = init_meta.get("action_tokens")  # a fine-tuned', "tokens = None  # a fine-tuned", ("tests/decode", "tests/train")),
    Mutant("build-fps-unwarned", "train/build.py", "if fps is not None and fps != dataset.fps:", "if False:", "tests/train/test_build.py"),
    Mutant("build-indistinct-unwarned", "train/build.py", 'for group in model.tokenizer.indistinct(instructions):', "for group in []:", "tests/train/test_build.py"),
    # train/config.py
    Mutant("warmup-past-steps-silent", "train/config.py", "and self.warmup_steps >= self.steps:", "and self.warmup_steps > 10**9:", "tests/train/test_config.py"),
    Mutant("state-noise-infinite-taken", "train/config.py", "        math.isfinite(state_noise) and state_noise >= 0,", "        state_noise >= 0,", "tests/train/test_state_augment.py"),
    Mutant("trainconfig-orth-dir-unread", "train/config.py", "return path / VECTOR if path.is_dir() else path", "return path", ("tests/train/test_config.py", "tests/merge/test_run.py")),
    # train/distributed.py
    Mutant("world-shard-overlap", "train/distributed.py", "return self.rank * per, (self.rank + 1) * per", "return self.rank, self.rank + per", "tests/train/test_ddp.py"),
    # train/log_window.py
    Mutant("logwin-world-mean", "train/log_window.py", "            totals = totals / world_size\n", "            pass\n", ("tests/train/test_log_window.py", "tests/train/test_ddp.py")),
    # train/loop.py
    Mutant("loop-threads-as-torch-had-them", "train/loop.py", "torch.set_num_threads(cfg.threads or cores_per_process())", "torch.set_num_threads(cfg.threads or torch.get_num_threads())", "tests/train/test_loop.py"),
    Mutant("loop-world-size", "train/loop.py", "/ batch.action_mask.sum().clamp(min=1) * world.size", "/ batch.action_mask.sum().clamp(min=1)", "tests/train/test_ddp.py"),
    Mutant("loop-no-clip", "train/loop.py", 'cfg.grad_clip if cfg.grad_clip > 0 else float("inf")', 'float("inf")', "tests/train"),
    Mutant("loop-aux-weight", "train/loop.py", "objective = objective + cfg.aux.weight * aux_loss", "objective = objective + aux_loss", ("tests/models/test_auxiliary.py", "tests/train")),
    Mutant("loop-orth-weight", "train/loop.py", "objective = objective + cfg.orth.weight * penalty", "objective = objective + penalty", ("tests/merge", "tests/train")),
    Mutant("loop-ema-not-final", "train/loop.py", "        final.load_state_dict(ema.state_dict_for(model))\n", "        final = model\n", "tests/train"),
    Mutant("loop-lr-ahead", "train/loop.py", "lr = lr_at(self.step, cfg.lr, cfg.warmup_steps, cfg.steps, cfg.min_lr_ratio)", "lr = lr_at(self.step + 1, cfg.lr, cfg.warmup_steps, cfg.steps, cfg.min_lr_ratio)", "tests/train"),
    Mutant("loop-no-final-save", "train/loop.py", "if step % cfg.save_every == 0 or step == cfg.steps:", "if step % cfg.save_every == 0:", "tests/train"),
    Mutant("loop-no-final-log", "train/loop.py", "if step % cfg.log_every == 0 or step == cfg.steps:", "if step % cfg.log_every == 0:", ("tests/train", "tests/adapt")),
    Mutant("loop-val-overlap", "train/loop.py", "shared = sorted(set(episodes) & set(data.episodes))", "shared = []", "tests/train"),
    Mutant("loop-once-any-steps", "train/loop.py", 'if not ((run / "policy").is_dir() and saved_step(run) == cfg.steps):', 'if not (run / "policy").is_dir():', ("tests/train", "tests/test_demo.py")),
    Mutant("loop-ranks-kept", "train/loop.py", "        truncate_metrics(run, trainer.step, ACTIVE_RANK)\n", "", ("tests/train", "tests/adapt")),
    Mutant("loop-interrupt-unsaid", "train/loop.py", "raise KeyboardInterrupt(interrupted_run(run, trainer.step, cfg.steps, trainer.saved)) from None", "raise", "tests/test_cli.py"),
    Mutant("loop-saved-step-stale", "train/loop.py", "        self.saved = self.step\n", "", "tests/test_cli.py"),
    Mutant("loop-nan-loss-unchecked", "train/loop.py", 'require(math.isfinite(record["loss"]),', "require(True,", "tests/train/test_loop.py"),
    Mutant("loop-nan-weights-saved", "train/loop.py", "require(bool(finite),", "require(True,", "tests/train/test_loop.py"),
    Mutant("loop-bf16-ignored", "train/loop.py", 'enabled=cfg.precision == "bf16"', "enabled=False", "tests/train/test_precision.py"),
    Mutant("loop-bf16-unwarned", "train/loop.py", 'if cfg.precision == "bf16" and world.device.type == "cpu":', "if False:", "tests/train/test_precision.py"),
    # train/optimizer.py
    Mutant("opt-decay-rest", "train/optimizer.py", '{"params": rest, "weight_decay": 0.0}', '{"params": rest, "weight_decay": weight_decay}', "tests/train/test_optimizer.py"),
    # train/schedule.py
    Mutant("sched-warmup", "train/schedule.py", "return peak * (step + 1) / warmup", "return peak * step / warmup", "tests/train/test_schedule.py"),
    Mutant("sched-ema", "train/schedule.py", "self.shadow[k].lerp_(v, 1.0 - self.decay)", "self.shadow[k].lerp_(v, self.decay)", "tests/train"),
    # train/state.py
    Mutant("train-inputs-unchecked", "train/state.py", '    require_creatable(run, "--out", _inputs(cfg) if cfg.overwrite else ())', '    require_creatable(run, "--out")', "tests/test_cli.py"),
    Mutant("state-environment-unchecked", "train/state.py", '        and all(isinstance(s, dict) and is_whole(s.get("from_step"), 0) for s in starts),\n', '        and True,\n', "tests/train/test_resume.py"),
    Mutant("state-values-unchecked", "train/state.py", "                    fits(value, kind),\n", "                    True,\n", "tests/train/test_state.py"),
    Mutant("state-paths-unchecked", "train/state.py", "isinstance(value, str) or (value is None and kind is not Path),", "True,", "tests/train/test_state.py"),
    Mutant("state-required-path-null", "train/state.py", "(value is None and kind is not Path)", "value is None", "tests/train/test_state.py"),
    Mutant("metrics-cut-line-fatal", "train/state.py", "            if number == lines[-1][0]:\n                break", "            if False:\n                break", "tests/train/test_resume.py"),
    Mutant("train-config-read-raw", "train/state.py", "config_from_json(_read_json(path), str(path))", "config_from_json(json.loads(path.read_text()), str(path))", "tests/train/test_resume.py"),
    Mutant("state-ema-not-saved", "train/state.py", '"ema": ema.shadow if ema is not None else None,', '"ema": None,', "tests/train/test_resume.py"),
    Mutant("state-truncate-lt", "train/state.py", '        if record.get("step", 0) <= step:', '        if record.get("step", 0) < step:', ("tests/train/test_resume.py", "tests/train/test_state.py")),
    Mutant("state-env-le", "train/state.py", 'starts = [s for s in starts if s["from_step"] < step]', 'starts = [s for s in starts if s["from_step"] <= step]', ("tests/train/test_resume.py", "tests/train/test_state.py")),
    Mutant("state-out-fixed", "train/state.py", '_RESUMABLE_CHANGES = {\n    "out",\n', "_RESUMABLE_CHANGES = {\n", "tests/train/test_resume.py"),
    Mutant("state-paths-as-spelt", "train/state.py", "saved, now = _paths_resolved(saved), _paths_resolved(config_json(cfg))", "now = config_json(cfg)", "tests/train/test_resume.py"),
    Mutant("state-predated-options-refused", "train/state.py", "saved = config_json(config_from_json(_read_json(path), str(path))) if path.is_file() else {}", "saved = _read_json(path) if path.is_file() else {}", "tests/train/test_resume.py"),
    Mutant("resume-data-unchecked", "train/loop.py", "            check_same_data(cfg, parts.stats, parts.provenance)", "            pass", "tests/train/test_resume.py"),
    Mutant("resume-stats-unchecked", "train/state.py", "        if feature is not None:\n", "        if False:\n", "tests/train/test_resume.py"),
    Mutant("resume-episodes-unchecked", "train/state.py", '("episodes", "training episodes")', '("instructions", "training episodes")', "tests/train/test_resume.py"),
    Mutant("state-change-whole-group", "train/state.py", "    if isinstance(before, dict) and isinstance(after, dict):", "    if False:", "tests/train/test_resume.py"),
    # train/validation.py
    Mutant("val-mode", "train/validation.py", "model.train(was_training)", "model.train(True)", "tests/train/test_validation.py"),
    Mutant("val-count", "train/validation.py", "return total / max(count, 1.0)", "return total / max(len(self.rows), 1)", "tests/train/test_validation.py"),
    # workers.py
    Mutant("workers-two-on-any-cores", "workers.py", "fit = cores_per_process() // threads", "fit = 2", "tests/test_workers.py"),
    Mutant("workers-threads-ignored", "workers.py", "fit = cores_per_process() // threads", "fit = cores_per_process()", "tests/test_workers.py"),
    Mutant("workers-memory-ignored", "workers.py", "return max(1, fit if room is None else min(fit, room // each))", "return max(1, fit)", "tests/test_workers.py"),
    Mutant("workers-none-where-no-room", "workers.py", "return max(1, fit if room is None else min(fit, room // each))", "return fit if room is None else min(fit, room // each)", "tests/test_workers.py"),
    Mutant("workers-jobs-reordered", "workers.py", "results = [pool.submit(fn, job) for job in jobs]", "results = [pool.submit(fn, job) for job in list(jobs)[::-1]]", "tests/test_workers.py"),
    Mutant("workers-killed-on-a-jobs-error", "workers.py", "    except (KeyboardInterrupt, GeneratorExit, SystemExit):", "    except BaseException:", "tests/test_workers.py"),
    Mutant("workers-left-running", "workers.py", "            process.terminate()\n", "            pass\n", "tests/test_workers.py"),
]
# fmt: on


def check_catalogue(mutants: list[Mutant], root: Path = REPO) -> list[str]:
    """What is wrong with the entries (one line each): a line no longer in its file exactly once, a
    change that changes nothing, a test path that does not exist, a name used twice."""
    problems, names = [], set()
    for m in mutants:
        found = (root / "src" / "leanvla" / m.path).read_text().count(m.old)
        if found != 1:
            problems.append(f"{m.name}: its line occurs {found} times in src/leanvla/{m.path}, not once")
        if m.old == m.new:
            problems.append(f"{m.name}: changes nothing")
        problems += [f"{m.name}: no test path {t}" for t in m.test_paths if not (root / t).exists()]
        if m.name in names:
            problems.append(f"{m.name}: named twice")
        names.add(m.name)
    return problems


def copy_tree(into: Path) -> Path:
    """src, tests, tools (tests run tools/lerobot_*.py) and pyproject.toml copied to INTO/repo,
    with ../shared linked beside it."""
    repo = into / "repo"
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache")
    for part in ("src", "tests", "tools"):
        shutil.copytree(REPO / part, repo / part, ignore=skip)
    shutil.copy2(REPO / "pyproject.toml", repo / "pyproject.toml")
    (into / "shared").symlink_to(REPO.parent / "shared")
    return repo


def run_tests(repo: Path, mutant: Mutant, timeout_s: float) -> tuple[bool, str]:
    """(whether the tests failed or hung, the first failing test or the last line pytest printed). A
    mutant that stops the tests from being collected at all (pytest's exit code 2) is caught too."""
    env = {**os.environ, "PYTHONPATH": str(repo / "src")}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *mutant.test_paths]
    # A session of its own: a hang is killed with every process the tests started (torchrun's too).
    with subprocess.Popen(
        command,
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    ) as pytest:
        try:
            stdout, _ = pytest.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(pytest.pid, signal.SIGKILL)
            pytest.communicate()
            return True, f"the tests ran past --timeout {timeout_s:g} s (a hang)"
    lines = stdout.strip().splitlines() or [""]
    failed = [line for line in lines if line.startswith("FAILED ")]
    if pytest.returncode not in (0, 1, 2):  # 3-5: an internal or usage error, or no tests: the entry's fault
        print(f"{mutant.name}: pytest exited {pytest.returncode}: {lines[-1]}", file=sys.stderr)
        sys.exit(2)
    return pytest.returncode != 0, (failed[0][len("FAILED ") :] if failed else lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", action="append", default=[], metavar="NAME", help="run this mutant only")
    parser.add_argument("--list", action="store_true", help="list the catalogue and stop")
    parser.add_argument(
        "--timeout",
        type=float,
        default=180.0,
        metavar="SECONDS",
        help="a mutant's tests running longer count as hung, so caught (default 180; the slowest here take under a minute)",
    )
    args = parser.parse_args()
    if not args.timeout > 0:
        parser.error(f"--timeout must be a positive number of seconds, got {args.timeout}")
    by_name = {m.name: m for m in MUTANTS}
    unknown = [n for n in args.only if n not in by_name]
    if unknown:
        parser.error(f"no mutant named {', '.join(unknown)}; `--list` shows the catalogue")
    if args.list:
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `--list | head` ends quietly
        for m in MUTANTS:
            print(f"{m.name:24s} src/leanvla/{m.path}")
        return
    problems = check_catalogue(MUTANTS)
    if problems:
        parser.error("; ".join(problems))
    chosen = [by_name[n] for n in args.only] or MUTANTS

    from tqdm import tqdm

    survivors = []
    with tempfile.TemporaryDirectory(prefix="leanvla-mutants-") as tmp:
        repo = copy_tree(Path(tmp))
        bar = tqdm(chosen, desc="mutants", unit="mutant")
        for mutant in bar:
            target = repo / "src" / "leanvla" / mutant.path
            original = target.read_text()
            target.write_text(original.replace(mutant.old, mutant.new))
            started = time.perf_counter()
            try:
                caught, detail = run_tests(repo, mutant, args.timeout)
            finally:
                target.write_text(original)
            verdict = "caught" if caught else "SURVIVED"
            bar.write(f"{mutant.name:24s} {verdict:8s} {time.perf_counter() - started:4.0f} s  {detail}")
            if not caught:
                survivors.append(mutant.name)
    print(
        f"{len(chosen) - len(survivors)} of {len(chosen)} mutants caught"
        + (f"; survived: {', '.join(survivors)}" if survivors else "")
    )
    sys.exit(1 if survivors else 0)


if __name__ == "__main__":
    main()
