"""The MLflow pyfunc definition of a crimecast hotspot model ("models from code").

MLflow stores this *source file* next to the model instead of a pickle of a
Python object: loading the model executes this file, which rebuilds
:class:`CrimecastPyfunc` and, in :meth:`CrimecastPyfunc.load_context`, reads the
saved model directory (artifact ``"model"``) with
:func:`crimecast.models.storage.load_model`, which verifies every file's SHA-256
before reading it. Nothing of crimecast is ever unpickled.

``predict`` takes rows holding the model's feature columns (extra columns are
ignored) and returns a pandas DataFrame with one column,
:data:`PREDICTION_COLUMN`, the positive-class (hotspot) probability per row.

This module deliberately avoids ``from __future__ import annotations``: MLflow
inspects the ``predict`` type hints at class-definition time.
"""

import logging
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import polars as pl
from mlflow.pyfunc import PythonModel

logger = logging.getLogger(__name__)

PREDICTION_COLUMN = "hotspot_probability"
MODEL_ARTIFACT_KEY = "model"


def predict_frame(model: Any, rows: pd.DataFrame | pl.DataFrame) -> pd.DataFrame:
    """Score ``rows`` with a loaded crimecast model; one probability column per row.

    ``model`` is what :func:`crimecast.models.storage.load_model` returns (it has
    ``feature_names`` and ``predict_proba``). Missing feature columns raise
    :class:`crimecast.errors.ModelError` naming them.
    """
    from crimecast.errors import ModelError

    frame = rows if isinstance(rows, pl.DataFrame) else pl.from_pandas(pd.DataFrame(rows))
    missing = [name for name in model.feature_names if name not in frame.columns]
    if missing:
        raise ModelError(
            f"input rows lack the model's feature columns {missing}; the model needs "
            f"{list(model.feature_names)}. Build features with the same feature config."
        )
    probabilities = np.asarray(model.predict_proba(frame.select(model.feature_names)),
                               dtype=np.float64).reshape(-1)
    return pd.DataFrame({PREDICTION_COLUMN: probabilities})


class CrimecastPyfunc(PythonModel):
    """MLflow pyfunc wrapper around a pickle-free crimecast model directory."""

    def __init__(self) -> None:
        self._model: Any = None

    def load_context(self, context: Any) -> None:
        """Load (and integrity-check) the saved model from artifact ``"model"``."""
        from crimecast.models.storage import load_model

        self._model = load_model(context.artifacts[MODEL_ARTIFACT_KEY])
        logger.debug("loaded crimecast %s model for pyfunc serving", self._model.model_type)

    def predict(self, context: Any, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Hotspot probabilities for ``model_input`` rows (column :data:`PREDICTION_COLUMN`)."""
        if self._model is None:
            from crimecast.errors import ModelError

            raise ModelError("the pyfunc model has no loaded model; load it with "
                             "mlflow.pyfunc.load_model so load_context runs first.")
        return predict_frame(self._model, model_input)


mlflow.models.set_model(CrimecastPyfunc())
