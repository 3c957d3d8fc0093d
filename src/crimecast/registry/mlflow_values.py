"""Fitting values to MLflow: parameter/metric/tag sanitising, pinned requirements, quiet calls."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import warnings
from collections.abc import Iterator, Mapping
from importlib import metadata
from typing import Any

logger = logging.getLogger(__name__)

MAX_KEY, MAX_PARAM_VALUE = 250, 6000  # MLflow's limits (mlflow.utils.validation)
_BAD_KEY_CHARS = re.compile(r"[^\w\-./ :]")
_PROGRESS_ENV = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
_REQUIREMENTS = ("crimecast", "numpy", "pandas", "polars", "pyarrow", "scikit-learn", "skops",
                 "imbalanced-learn", "xgboost", "xgboost-cpu", "lightgbm", "catboost")


@contextlib.contextmanager
def quiet_mlflow() -> Iterator[None]:
    """Mute MLflow's INFO chatter, progress bars and warnings during library calls."""
    levels = {name: logging.getLogger(name).level for name in ("mlflow", "alembic")}
    progress = os.environ.get(_PROGRESS_ENV)
    os.environ[_PROGRESS_ENV] = "false"
    try:
        for name in levels:
            logging.getLogger(name).setLevel(logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        if progress is None:
            os.environ.pop(_PROGRESS_ENV, None)
        else:
            os.environ[_PROGRESS_ENV] = progress


def clean_key(name: object) -> str:
    return _BAD_KEY_CHARS.sub("_", str(name))[:MAX_KEY]


def clean_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Flatten nested mappings (``a.b``), stringify and truncate to MLflow's limits."""
    cleaned: dict[str, str] = {}
    for name, value in params.items():
        if isinstance(value, Mapping):
            cleaned.update(clean_params(value, prefix=f"{prefix}{name}."))
            continue
        text = str(value)
        if len(text) > MAX_PARAM_VALUE:
            logger.warning("parameter %s%s truncated to %d characters", prefix, name,
                           MAX_PARAM_VALUE)
            text = text[: MAX_PARAM_VALUE - 1] + "…"
        cleaned[clean_key(f"{prefix}{name}")] = text
    return cleaned


def clean_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Finite numeric metrics only; None, NaN, infinities and non-numbers are skipped."""
    cleaned: dict[str, float] = {}
    for name, value in metrics.items():
        with contextlib.suppress(TypeError, ValueError):
            if math.isfinite(number := float(value)):
                cleaned[clean_key(name)] = number
    return cleaned


def pip_requirements() -> list[str]:
    """Pinned versions of the installed packages a crimecast model may need."""
    import mlflow

    pins = [f"mlflow=={mlflow.__version__}"]
    for dist in _REQUIREMENTS:
        with contextlib.suppress(metadata.PackageNotFoundError):
            pins.append(f"{dist}=={metadata.version(dist)}")
    return pins


@contextlib.contextmanager
def pins_trusted() -> Iterator[None]:
    """Inside the block MLflow does not check that a model's pinned requirements are
    installed: :func:`pip_requirements` pins the installed versions, and the check reads
    the metadata of every installed distribution (about a second)."""
    from mlflow.utils import environment

    name = "warn_dependency_requirement_mismatches"
    check = getattr(environment, name, None)
    if check is None:  # another MLflow: nothing to skip
        yield
        return
    setattr(environment, name, lambda *args, **kwargs: None)
    try:
        yield
    finally:
        setattr(environment, name, check)


def error_code(exc: BaseException) -> str:
    return str(getattr(exc, "error_code", ""))


def as_tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (tags or {}).items()}
