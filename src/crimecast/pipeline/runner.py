"""A small step runner with a content-hash cache, lineage and crash safety.

Each :class:`Step` is a plain function with declared inputs (files produced by
earlier steps, or the raw data), outputs and parameters. A step's cache key is
the SHA-256 of the code version, its parameters and the content hashes of its
inputs. Outputs are written to a temporary folder and renamed into
``<runs>/.cache/<step>/<key>/`` only when the step succeeds, so a killed run
leaves no half-written artefact; running the same command again serves the
finished steps from the cache and resumes at the first unfinished one. The run
folder ``<runs>/<run_id>/<step>/`` receives hard links (or copies) of the outputs,
and ``manifest.json`` records the lineage: data hash, parameters, step keys, timings.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import gc
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from crimecast import __version__
from crimecast.errors import CrimecastError, PipelineError, StorageError, as_storage_error
from crimecast.executor import SERIAL, Executor
from crimecast.heap import trim_heap
from crimecast.models.storage import file_sha256

logger = logging.getLogger(__name__)

SUCCESS = "_SUCCESS.json"


@dataclass(frozen=True)
class StepIO:
    """What a step function receives: resolved input files, its output folder, params."""

    inputs: Mapping[str, Path]
    out: Path
    params: Mapping[str, Any]
    run_id: str
    key: str = ""  # the step's cache key: identifies a side effect (registration) on resume
    executor: Executor = SERIAL  # where the step's blocks run; never part of the cache key


@dataclass(frozen=True)
class Step:
    """A pipeline step: ``func(io) -> summary`` with declared inputs and outputs.

    ``inputs`` maps a local name to ``"<step>/<file>"`` (an earlier step's output)
    or ``"data:<n>"`` (the n-th data file). ``cacheable=False`` steps (side effects
    such as registration) run whenever their inputs changed since the last success.
    """

    name: str
    func: Callable[[StepIO], dict[str, Any]]
    inputs: Mapping[str, str]
    outputs: tuple[str, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    when: Callable[[Mapping[str, dict[str, Any]]], bool] | None = None


@cache
def code_version() -> str:
    """crimecast's version plus a hash of its source files (changes invalidate the cache)."""
    digest = hashlib.sha256(__version__.encode())
    root = resources.files("crimecast")
    for path in sorted(Path(str(root)).rglob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return f"{__version__}+{digest.hexdigest()[:12]}"


def hash_payload(payload: Any) -> str:
    """Stable SHA-256 of a JSON-serialisable payload."""
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def new_run_id() -> str:
    """Unique, sortable run id: UTC timestamp plus random suffix."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{uuid.uuid4().hex[:6]}"


def _link_tree(source: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for item in source.rglob("*"):
        dest = target / item.relative_to(source)
        if item.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(item, dest)
        except OSError:
            shutil.copy2(item, dest)


@dataclass
class PipelineRun:
    """Executes steps in order inside ``runs_dir``; see the module docstring."""

    runs_dir: Path
    data_files: list[str]
    run_id: str = field(default_factory=new_run_id)
    on_step: Callable[[str, str], None] | None = None
    executor: Executor = SERIAL
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def run_dir(self) -> Path:
        """This run's folder."""
        return self.runs_dir / self.run_id

    @property
    def cache_dir(self) -> Path:
        """The shared step cache."""
        return self.runs_dir / ".cache"

    def data_hash(self) -> str:
        """Content hash of the input data files (local files; remote URIs by name)."""
        parts = []
        for name in self.data_files:
            path = Path(name)
            parts.append(file_sha256(path) if path.is_file() else f"uri:{name}")
        return hash_payload(parts)

    def _resolve(self, step: Step) -> dict[str, Path]:
        resolved: dict[str, Path] = {}
        for local, ref in step.inputs.items():
            if ref.startswith("data:"):
                resolved[local] = Path(self.data_files[int(ref.split(":")[1])])
                continue
            source, _, filename = ref.partition("/")
            path = self.run_dir / source / filename
            if not path.exists():
                raise PipelineError(
                    f"step '{step.name}' needs '{ref}', which step '{source}' did not produce. "
                    "Re-run the pipeline from the start."
                )
            resolved[local] = path
        return resolved

    def _key(self, step: Step, inputs: Mapping[str, Path]) -> str:
        hashes = {}
        for local, path in inputs.items():
            if path.is_file():
                hashes[local] = file_sha256(path)
            elif path.is_dir():
                hashes[local] = hash_payload(sorted(
                    (str(p.relative_to(path)), file_sha256(p)) for p in path.rglob("*")
                    if p.is_file()))
            else:
                hashes[local] = f"uri:{path}"
        return hash_payload({"step": step.name, "code": code_version(),
                             "params": step.params, "inputs": hashes})[:24]

    def run_step(self, step: Step) -> dict[str, Any]:
        """Run (or fetch from cache) one step; return its summary."""
        if step.when is not None and not step.when(self.summaries):
            self.records[step.name] = {"status": "skipped"}
            self._notify(step.name, "skipped")
            return {}
        inputs = self._resolve(step)
        key = self._key(step, inputs)
        final = self.cache_dir / step.name / key
        began = time.perf_counter()
        if (final / SUCCESS).is_file():
            status = "cached"
        else:
            status = "ran"
            self._notify(step.name, "running")
            _pause_for_tests(step.name)
            self._execute(step, inputs, key, final)
            trim_heap()  # the step's freed memory, before the next step (crimecast.heap)
        summary = json.loads((final / SUCCESS).read_text())
        _link_tree(final, self.run_dir / step.name)
        self.summaries[step.name] = summary
        self.records[step.name] = {"status": status, "key": key,
                                   "seconds": round(time.perf_counter() - began, 3),
                                   "outputs": list(step.outputs)}
        self._notify(step.name, status)
        return summary

    def _execute(self, step: Step, inputs: dict[str, Path], key: str, final: Path) -> None:
        """Run ``step`` into a temporary folder renamed to ``final`` only on success.

        Whatever happens (an error, a full disk, Ctrl-C), the temporary folder is removed,
        so no partial cache entry survives; folders left by killed processes are swept.
        """
        remove_stale_tmp(final.parent)
        tmp = final.parent / f".{key}.tmp-{os.getpid()}"
        try:
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir(parents=True)
            summary = step.func(StepIO(inputs=inputs, out=tmp, params=step.params,
                                       run_id=self.run_id, key=key, executor=self.executor))
            _pause_for_tests(step.name, "AFTER")
            missing = [name for name in step.outputs if not (tmp / name).exists()]
            if missing:
                raise PipelineError(f"step '{step.name}' did not write {missing}.")
            (tmp / SUCCESS).write_text(json.dumps(summary, default=str, indent=2))
            try:
                tmp.rename(final)
            except OSError:
                if not (final / SUCCESS).is_file():
                    raise
                # another process finished the same step meanwhile: keep its copy
        except Exception as exc:
            # Name the runs folder the user chose, not a file inside a temporary folder.
            inside = str(tmp) in str(exc) or not isinstance(exc, StorageError)
            storage = as_storage_error(exc, permission=not isinstance(exc, CrimecastError),
                                       named=str(self.runs_dir) if inside else None)
            if storage is not None and storage is not exc:
                raise storage from exc
            raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _notify(self, step: str, status: str) -> None:
        if self.on_step is not None:
            self.on_step(step, status)

    def write_manifest(self, params: Mapping[str, Any], extra: Mapping[str, Any]) -> Path:
        """Write ``manifest.json`` (atomically) with the run's lineage."""
        manifest = {
            "run_id": self.run_id,
            "created_at": dt.datetime.now(dt.UTC).isoformat(),
            "code_version": code_version(),
            "data_files": self.data_files,
            "data_hash": self.data_hash(),
            "params": dict(params),
            "config_hash": hash_payload(dict(params)),
            "steps": self.records,
            **extra,
        }
        path = self.run_dir / "manifest.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=2, default=str) + "\n")
        tmp.replace(path)
        return path


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block (as it was before, afterwards).

    Importing MLflow or matplotlib and migrating MLflow's database create hundreds of
    thousands of objects; each time they trigger a full collection Python walks every
    object of the process (a quarter of a second here, several times per step). What
    such a step leaves as cyclic garbage is collected after it.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def gc_paused(func: Callable[[StepIO], dict[str, Any]]) -> Callable[[StepIO], dict[str, Any]]:
    """``func`` (a step) run with :func:`collector_paused`."""
    @functools.wraps(func)
    def paused(io: StepIO) -> dict[str, Any]:
        with collector_paused():
            return func(io)

    return paused


def remove_stale_tmp(folder: Path) -> None:
    """Delete ``.<key>.tmp-<pid>`` folders whose process no longer runs (killed runs)."""
    for tmp in folder.glob(".*.tmp-*"):
        pid = tmp.name.rpartition(".tmp-")[2]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _pause_for_tests(step: str, moment: str = "BEFORE") -> None:
    """Sleep around ``step`` when CRIMECAST_PAUSE_BEFORE (or _AFTER) = step:seconds.

    For crash-resume tests: AFTER pauses once the step's work is done but before it is
    marked successful, the window in which a killed run used to register twice.
    """
    setting = os.environ.get(f"CRIMECAST_PAUSE_{moment}", "")
    name, _, seconds = setting.partition(":")
    if name == step and seconds:
        time.sleep(float(seconds))
