"""One interface for running independent blocks: in-process, a process pool, or Dask.

``--executor local`` (the default) runs blocks in a process pool sized to the
machine; ``--executor dask`` starts a :class:`dask.distributed.LocalCluster`;
``--executor tcp://HOST:8786`` uses an existing Dask scheduler. Every executor
has one method, :meth:`Executor.map`: apply ``func(shared, item)`` to each item
and return the results *in the items' order*, so results do not depend on the
executor (a test compares them on a two-worker LocalCluster). ``shared`` is the
large read-only input of every block (events, units, the panel frame); it
travels to each worker once (a pool initializer, or a Dask broadcast scatter),
not once per item.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any, Protocol, TypeVar

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


def _initialise(shared: Any) -> None:
    global _SHARED
    _SHARED = shared


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
        with ProcessPoolExecutor(max_workers=min(self.workers, len(items)),
                                 mp_context=get_context("forkserver"),
                                 initializer=_initialise, initargs=(shared,)) as pool:
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
