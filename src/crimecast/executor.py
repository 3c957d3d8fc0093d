"""One interface for running independent blocks: in-process, a process pool, or Dask.

``--executor local`` (the default) runs blocks in a process pool sized to the
machine; ``--executor dask`` starts a :class:`dask.distributed.LocalCluster`;
``--executor tcp://HOST:8786`` uses an existing Dask scheduler. Every executor
has one method, :meth:`Executor.map`: apply ``func(shared, item)`` to each item
and return the results *in the items' order*, so results do not depend on the
executor (a test compares them on a two-worker LocalCluster). ``shared`` is the
large read-only input of every block (events, units, the panel frame); it
travels to each worker once (a pool initializer, or a Dask broadcast scatter),
not once per item. The process pool writes its large numeric arrays (a panel's
SEPP index and near-repeat pairs: about 1 GB for 250 m cells over five years) to
files once and each worker maps them copy-on-write, instead of receiving a pickled
copy through a pipe: the workers start in a second, not ten, and share those pages.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import pickle
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any, Protocol, TypeVar

import numpy as np

from crimecast.errors import ConfigError, DependencyError

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
_SHARED: Any = None  # the shared input inside a pool worker (set by its initializer)
_SIDE_BY_SIDE = False  # inside limited(): other workers use the other cores


class Executor(Protocol):
    """Runs ``func(shared, item)`` for every item; results in the items' order."""

    workers: int

    def map(self, func: Callable[[Any, T], R], items: Sequence[T], *, shared: Any) -> list[R]:
        """Apply ``func`` to every item with the shared input; ordered results."""
        ...


class SerialExecutor:
    """In this process, one item after the other (no copies of ``shared``)."""

    workers = 1

    def map(self, func: Callable[[Any, T], R], items: Sequence[T], *, shared: Any) -> list[R]:
        """See :class:`Executor`."""
        return [func(shared, item) for item in items]


_MAPPED_BYTES = 1 << 20  # arrays from this size travel to pool workers as mapped files


class _ArrayPickler(pickle.Pickler):
    """Pickles everything but large numeric arrays, which it saves as ``.npy`` files in
    ``folder`` (each array once) and references by path."""

    def __init__(self, file: io.BytesIO, folder: str) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.folder = folder
        self.saved: dict[int, tuple[str, Any]] = {}

    def persistent_id(self, obj: Any) -> Any:
        if type(obj) is not np.ndarray or obj.nbytes < _MAPPED_BYTES or obj.dtype.hasobject:
            return None
        if id(obj) not in self.saved:  # the array stays referenced, so its id stays its own
            path = os.path.join(self.folder, f"{len(self.saved)}.npy")
            np.save(path, obj, allow_pickle=False)
            self.saved[id(obj)] = (path, obj)
        return self.saved[id(obj)][0]


class _ArrayUnpickler(pickle.Unpickler):
    def persistent_load(self, pid: Any) -> Any:
        # Copy-on-write: a worker that writes to an array changes its own pages only.
        return np.load(pid, mmap_mode="c", allow_pickle=False).view(np.ndarray)


def _packed(shared: Any, folder: str) -> bytes:
    """``shared`` pickled with its large arrays as files in ``folder``; a plain pickle
    when the files cannot be written (a full disk), which only costs time."""
    buffer = io.BytesIO()
    try:
        _ArrayPickler(buffer, folder).dump(shared)
    except OSError as exc:
        logger.warning("pool workers receive a pickled copy of the shared input: cannot "
                       "write its arrays to %s (%s)", folder, exc)
        return pickle.dumps(shared, protocol=pickle.HIGHEST_PROTOCOL)
    return buffer.getvalue()


def _initialise(packed: bytes) -> None:
    global _SHARED
    _SHARED = _ArrayUnpickler(io.BytesIO(packed)).load()


def _call(func: Callable[[Any, T], R], item: T) -> R:
    return limited(func, _SHARED, item)


def limited(func: Callable[[Any, T], R], shared: Any, item: T) -> R:
    """``func(shared, item)`` with one BLAS/OpenMP thread: workers share the machine's
    cores, and a fixed thread count keeps floating-point sums (LightGBM histograms,
    BLAS) in the same order on every executor, so their results are identical. While it
    runs, :func:`shares_cores` is true."""
    global _SIDE_BY_SIDE
    from threadpoolctl import threadpool_limits

    before, _SIDE_BY_SIDE = _SIDE_BY_SIDE, True
    try:
        with threadpool_limits(limits=1):
            return func(shared, item)
    finally:
        _SIDE_BY_SIDE = before


def shares_cores() -> bool:
    """Whether this process runs an item side by side with other workers (inside
    :func:`limited`), so a computation should not start threads of its own."""
    return _SIDE_BY_SIDE


class LocalExecutor:
    """A process pool on this machine (``workers`` processes; 1 runs in-process)."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)

    def map(self, func: Callable[[Any, T], R], items: Sequence[T], *, shared: Any) -> list[R]:
        """See :class:`Executor`; a pool only when there are several items and workers."""
        if self.workers == 1 or len(items) < 2:
            return SERIAL.map(func, items, shared=shared)
        # forkserver: workers never inherit a half-initialised thread pool from the parent.
        with tempfile.TemporaryDirectory(prefix="crimecast-shared-") as folder, \
                ProcessPoolExecutor(max_workers=min(self.workers, len(items)),
                                    mp_context=get_context("forkserver"), initializer=_initialise,
                                    initargs=(_packed(shared, folder),)) as pool:
            return list(pool.map(_call, [func] * len(items), items))


class DaskExecutor:
    """A Dask cluster: a new LocalCluster, or the scheduler at ``address``."""

    def __init__(self, address: str | None = None, workers: int | None = None) -> None:
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - dask is a core dependency
            raise DependencyError("--executor dask needs dask[distributed]: "
                                  "pip install 'dask[distributed]'.") from exc
        self._cluster = None
        if address is None:
            environment = dict(os.environ)
            self._cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1,
                                         processes=True, dashboard_address=None)
            # Dask writes its workers' settings (OMP_NUM_THREADS=1...) into this process's
            # environment; later subprocesses and libraries must not inherit them.
            os.environ.clear()
            os.environ.update(environment)
            address = self._cluster.scheduler_address
        try:
            self.client = Client(address, timeout="10s")
        except OSError as exc:
            raise ConfigError(f"executor: cannot reach the Dask scheduler at {address} "
                              f"({exc}). Start one with dask scheduler, or pass --executor "
                              "local.") from exc
        self.workers = max(1, len(self.client.scheduler_info()["workers"]))
        logger.info("Dask executor at %s with %d worker(s)", address, self.workers)

    def map(self, func: Callable[[Any, T], R], items: Sequence[T], *, shared: Any) -> list[R]:
        """See :class:`Executor`; ``shared`` is scattered to every worker once."""
        if not items:
            return []
        remote = self.client.scatter(shared, broadcast=True)
        futures = [self.client.submit(limited, func, remote, item, pure=False)
                   for item in items]
        results: list[R] = self.client.gather(futures)
        return results

    def close(self) -> None:
        """Disconnect; stop the LocalCluster this executor started."""
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


SERIAL = SerialExecutor()


def streamed_executor(executor: Executor | None) -> Executor:
    """Where a streamed panel's chunks and blocks (a training design, a large panel's test
    blocks) run: a Dask cluster as given, but in this process rather than a local pool. On
    one machine the work is memory-bound: each pool worker would hold a chunk in flight and
    compute what the chunks share again, for no gain on two cores; in this process two
    threads share each chunk's work (measured in BENCHMARKS.md: the 250 m × 1 d design took
    55.4 s and 7.1 GB in a pool, 40.3 s and 4.9 GB here)."""
    if executor is None or isinstance(executor, LocalExecutor):
        return SERIAL
    return executor


def executor_from(spec: str, workers: int | None = None) -> Executor:
    """``local``, ``serial``, ``dask`` or ``tcp://HOST:PORT`` as an executor."""
    if spec == "local":
        return LocalExecutor(workers)
    if spec == "serial":
        return SERIAL
    if spec == "dask":
        return DaskExecutor(None, workers)
    if spec.startswith("tcp://"):
        return DaskExecutor(spec)
    raise ConfigError(f"executor must be local, dask or tcp://HOST:PORT; got '{spec}'. "
                      "Pass --executor local.")


@contextlib.contextmanager
def opened(spec: str, workers: int | None = None) -> Iterator[Executor]:
    """The executor ``spec`` names, closed (cluster stopped) when the block ends."""
    executor = executor_from(spec, workers)
    try:
        yield executor
    finally:
        close_executor(executor)


def close_executor(executor: Executor) -> None:
    """Release what ``executor`` holds (a Dask client or cluster); nothing for the others."""
    close = getattr(executor, "close", None)
    if callable(close):
        close()
