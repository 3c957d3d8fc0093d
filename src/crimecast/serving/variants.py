"""Champion and challenger: which model answers a request, and the shadow scores.

Like SageMaker's production variants, a share of requests (``serving.challenger_share``)
is answered by the challenger; a request may force a variant with the header
``X-Crimecast-Variant`` (or SageMaker's ``X-Amzn-SageMaker-Target-Variant``) set to
``champion`` or ``challenger``. The split draws from a seeded :class:`random.Random`,
so a sequence of requests is split the same way every time.

Whichever model answers, the :class:`Recorder` logs its answer (``served=True``) and
has the other model score the same request in shadow (``served=False``), on one worker
thread fed after the response is sent: the caller never waits for the shadow.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Protocol

import numpy as np
import pyarrow as pa

from crimecast.errors import ServingError
from crimecast.serving.bundle import ModelBundle
from crimecast.serving.forecast import Forecaster
from crimecast.serving.forecast_log import ForecastLog
from crimecast.serving.records import FRAME_ABOVE, invocation_rows, stamped, window_template

logger = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
VARIANT_HEADER = "X-Crimecast-Variant"
SAGEMAKER_VARIANT_HEADER = "X-Amzn-SageMaker-Target-Variant"
WARN_EVERY_S = 60.0


def asked_variant(headers: Mapping[str, str], has_challenger: bool = True) -> str | None:
    """The variant a request forces, or None. ``X-Crimecast-Variant`` is strict (any value
    but champion or challenger is a 400). SageMaker's ``X-Amzn-SageMaker-Target-Variant``
    is advisory: SageMaker routes between its production variants itself, and each runs
    a container with one model, so a value this server cannot honour (``AllTraffic``, or
    ``challenger`` without one) is ignored rather than refused."""
    value = headers.get(VARIANT_HEADER)
    if value is not None:
        variant = value.strip().lower()
        if variant not in (CHAMPION, CHALLENGER):
            raise ServingError(f"{VARIANT_HEADER} must be champion or challenger; got "
                               f"'{value[:40]}'. Send {VARIANT_HEADER}: champion, or leave "
                               "the header out.")
        return variant
    advised = (headers.get(SAGEMAKER_VARIANT_HEADER) or "").strip().lower()
    if advised == CHAMPION or (advised == CHALLENGER and has_challenger):
        return advised
    return None


class TrafficSplit:
    """Picks the answering variant: a forced one, else the challenger for ``share`` of
    requests (drawn from ``random.Random(seed)``)."""

    def __init__(self, share: float = 0.0, seed: int | None = 0) -> None:
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"challenger_share must be between 0 and 1; got {share}.")
        self.share = share
        self.seed = seed
        self._rng = random.Random(seed)

    def choose(self, asked: str | None, has_challenger: bool, pinned: bool = False) -> str:
        """``champion`` or ``challenger``. ``pinned`` requests (the map) get the champion
        unless they ask otherwise; asking for a challenger none serves is a 400."""
        if asked == CHALLENGER and not has_challenger:
            raise ServingError(f"{VARIANT_HEADER} asks for the challenger, but this server "
                               "serves none here. Start it with crimecast serve --challenger "
                               f"REF, or send {VARIANT_HEADER}: champion.")
        if asked is not None:
            return asked
        if not has_challenger or pinned or self.share <= 0.0:
            return CHAMPION
        return CHALLENGER if self._rng.random() < self.share else CHAMPION


def check_challenger(champion: ModelBundle, challenger: ModelBundle) -> None:
    """Refuse a challenger that does not forecast like the champion: the same kind of
    place, time bin, lead and crime types (one request, two answers). A retrained
    challenger may deploy another forecaster with other features (a naive one, the
    ensemble): it then answers ``/hotspots`` only."""
    ours, theirs = champion.feature_config, challenger.feature_config
    pairs = {"spatial unit": (ours.spatial_unit, theirs.spatial_unit),
             "time bin": (ours.time_bin, theirs.time_bin),
             "lead (bins ahead)": (ours.horizon, theirs.horizon),
             "crime types": (champion.audit()["crime_types"], challenger.audit()["crime_types"])}
    fix = (f"Pass --challenger with a model trained like the champion (crimecast run "
           f"--spatial-unit {ours.spatial_unit} --time-bin {ours.time_bin}).")
    for what, (mine, other) in pairs.items():
        if mine != other:
            raise ServingError(f"the challenger must forecast the champion's {what}; the "
                               f"champion's is {mine!r}, the challenger's {other!r}. {fix}")
    if champion.features != challenger.features:
        # /hotspots builds each model's own features; /invocations rows come in the
        # champion's feature order, so only the champion can read them.
        logger.warning("the challenger reads other features than the champion: /invocations "
                       "is answered and logged by the champion alone; /hotspots by both")


def reads_champion_rows(champion: ModelBundle, challenger: ModelBundle) -> bool:
    """Whether the challenger can score ``/invocations`` rows (the champion's features, in
    the champion's order)."""
    return champion.features == challenger.features


class Answerer(Protocol):
    """A model in a role (``champion`` or ``challenger``) with its forecaster (the
    server's :class:`~crimecast.serving.state.UnitView` is one)."""

    @property
    def role(self) -> str: ...

    @property
    def bundle(self) -> ModelBundle: ...

    @property
    def forecaster(self) -> Forecaster: ...


class Recorder:
    """Logs answers and runs shadow scoring on one worker thread.

    Its methods are called on the event loop once the response is sent: an answer whose
    rows are cheap to build (a few row mappings, a window already seen) is logged right
    there; anything that computes (a large answer, a new window, a shadow score) is
    queued for the worker. Every served answer is logged, but once more than
    ``max_backlog`` jobs wait, shadow scores are skipped (counted, warned once a minute)
    so an overloaded server catches up."""

    def __init__(self, log: ForecastLog, max_backlog: int = 2000,
                 cached_windows: int = 256) -> None:
        self.log = log
        self.max_backlog = max_backlog
        self.cached_windows = cached_windows
        self.shadow_skipped = 0
        self.failures = 0
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._waiting = 0
        self._idle = threading.Condition()
        self._windows: OrderedDict[tuple[object, ...], pa.Table] = OrderedDict()
        self._windows_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._warned = 0.0

    # ------------------------------------------------------------------ answers

    def invocations(self, *, request_id: str, issued_at: dt.datetime, served: Answerer,
                    scores: np.ndarray, matrix: np.ndarray, shadow: Answerer | None) -> None:
        """Log an ``/invocations`` answer and queue the other model's shadow score."""

        def log(scored: np.ndarray, who: Answerer, answered: bool) -> None:
            self.log.append(invocation_rows(scored, who.bundle, request_id=request_id,
                                            role=who.role, served=answered,
                                            issued_at=issued_at))

        if len(scores) <= FRAME_ABOVE:
            self._now(lambda: log(scores, served, True))
        else:
            self.submit(lambda: log(scores, served, True))
        if shadow is not None and self._may_shadow():
            self.submit(lambda: log(np.asarray(shadow.bundle.model.predict_proba(matrix)),
                                    shadow, False))

    def hotspots(self, *, request_id: str, issued_at: dt.datetime, served: Answerer,
                 shadow: Answerer | None, moment: dt.datetime, window: str,
                 allow_stale: bool, top: int) -> None:
        """Log a ``/hotspots`` answer and queue the other model's forecast of the same
        window (``served=False``)."""

        def log(who: Answerer, answered: bool, rows: pa.Table | None = None) -> None:
            if rows is None:
                rows = self._window_rows(who, moment, window, allow_stale, top)
            self.log.append(stamped(rows, endpoint="hotspots", request_id=request_id,
                                    role=who.role, served=answered, issued_at=issued_at))

        known = self._known_rows(served, moment, window, top)
        if known is not None:
            self._now(lambda: log(served, True, known))
        else:
            self.submit(lambda: log(served, True))
        if shadow is not None and self._may_shadow():
            self.submit(lambda: log(shadow, False))

    def _key(self, who: Answerer, moment: dt.datetime, window: str,
             top: int) -> tuple[object, ...]:
        return (who.role, who.bundle.feature_config.spatial_unit,
                *who.forecaster.key(moment, window), top)

    def _known_rows(self, who: Answerer, moment: dt.datetime, window: str,
                    top: int) -> pa.Table | None:
        with self._windows_lock:
            return self._windows.get(self._key(who, moment, window, top))

    def _window_rows(self, who: Answerer, moment: dt.datetime, window: str,
                     allow_stale: bool, top: int) -> pa.Table:
        """The rows of ``who``'s window (on the worker: may compute the forecast)."""
        key = self._key(who, moment, window, top)
        with self._windows_lock:
            rows = self._windows.get(key)
        if rows is None:  # once per window (the forecaster caches the forecast itself)
            rows = window_template(who.forecaster.forecast(moment, window, allow_stale),
                                   who.bundle, top)
            with self._windows_lock:
                self._windows[key] = rows
                while len(self._windows) > self.cached_windows:
                    self._windows.popitem(last=False)
        return rows

    def _now(self, job: Callable[[], None]) -> None:
        """Run ``job`` here (it only builds a few rows); a failure is logged, never raised."""
        try:
            job()
        except Exception as exc:
            self.failures += 1
            logger.warning("forecast log: could not record an answer: %s: %s",
                           type(exc).__name__, exc)

    def _may_shadow(self) -> bool:
        if self._waiting <= self.max_backlog:
            return True
        self.shadow_skipped += 1
        now = time.monotonic()
        if now - self._warned > WARN_EVERY_S:
            self._warned = now
            logger.warning("forecast log: %d jobs waiting, more than %d; skipping shadow "
                           "scores until the backlog clears (%d skipped so far)",
                           self._waiting, self.max_backlog, self.shadow_skipped)
        return False

    # ------------------------------------------------------------------ worker

    def submit(self, job: Callable[[], None]) -> None:
        """Queue ``job`` for the worker thread (cheap; never raises)."""
        with self._idle:
            if self._closed:
                logger.warning("forecast log: the recorder is closed; an answer was not "
                               "logged")
                return
            self._waiting += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="crimecast-recorder",
                                                daemon=True)
                self._thread.start()
        self._jobs.put(job)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job()
            except Exception as exc:  # a shadow or log failure never reaches a caller
                self.failures += 1
                logger.warning("forecast log: could not record an answer: %s: %s",
                               type(exc).__name__, exc)
            finally:
                with self._idle:
                    self._waiting -= 1
                    if self._waiting == 0:
                        self._idle.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every queued job has run; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._waiting == 0, timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Run the queued jobs (up to ``timeout`` seconds) and stop the worker; the log
        stays open (its owner closes it)."""
        with self._idle:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._jobs.put(None)
            thread.join(timeout)
            if thread.is_alive():
                logger.error("forecast log: %d answer(s) still unlogged after %.0f s at "
                             "shutdown", self._waiting, timeout)
