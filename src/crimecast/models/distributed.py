"""Training rows that do not fit one machine: LightGBM's own Dask estimators.

:func:`fit_lightgbm_dask` fits the learned forecaster on Parquet parts (a training
design written by ``crimecast features --rows sampled``, or panel parts) that are
read lazily by the workers of a Dask cluster, with ``lightgbm.DaskLGBMRegressor``
(Poisson) or ``DaskLGBMClassifier`` (binary): LightGBM's distributed training,
where each worker builds histograms of its own partitions and the trees are
agreed over the network. Nothing is gathered on the client but the fitted trees
and, for the Poisson objective, three columns (score, label, weight) for the
two-parameter probability calibration. The result is an ordinary
:class:`~crimecast.models.estimators.HotspotModel` (its estimator the local copy
of the distributed one), saved and served like any other.

Distributed histograms are not bit-identical to a single machine's (rows are
binned per worker); tests check that the distributed model ranks rows like the
local one, not that its trees are equal.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from crimecast.errors import ConfigError, DependencyError
from crimecast.features.design import WEIGHT
from crimecast.models.calibration import platt
from crimecast.models.estimators import ESTIMATORS, HotspotModel

logger = logging.getLogger(__name__)

LABEL = "target_hotspot"
COUNT = "target_count"
OBJECTIVES = ("poisson", "binary")


def fit_lightgbm_dask(
    parts: str | Sequence[str], features: list[str], objective: str, params: dict[str, Any],
    random_state: int, client: Any,
) -> HotspotModel:
    """Fit LightGBM with ``objective`` on the Parquet ``parts`` through the Dask ``client``
    (see the module doc); rows without a label are left out, ``_weight`` weighs the loss
    and the calibration when the parts carry it."""
    if objective not in OBJECTIVES:
        raise ConfigError(f"distributed training supports objective {' or '.join(OBJECTIVES)}; "
                          f"got {objective!r}. Pass --objective poisson.")
    try:
        import dask.dataframe as dd
        import lightgbm
    except ImportError as exc:  # pragma: no cover - both are core dependencies
        raise DependencyError("distributed training needs dask[distributed] and lightgbm: "
                              "pip install 'dask[distributed]' lightgbm.") from exc

    frame = dd.read_parquet(list(parts) if not isinstance(parts, str) else parts)
    weighted = WEIGHT in frame.columns
    frame = frame[[*features, LABEL, COUNT, *([WEIGHT] if weighted else [])]]
    # Held in the workers' memory for the boosting rounds; explicit partition lengths give
    # the arrays known chunks (what LightGBM's Dask interface needs).
    frame = client.persist(frame.dropna(subset=[LABEL]))
    lengths = tuple(int(n) for n in client.compute(frame.map_partitions(len), sync=True))
    X = frame[features].astype("float32").to_dask_array(lengths=lengths)
    label = frame[LABEL].astype("int8").to_dask_array(lengths=lengths)
    target = frame[COUNT].astype("float64").to_dask_array(lengths=lengths) \
        if objective == "poisson" else label
    weight = frame[WEIGHT].to_dask_array(lengths=lengths) if weighted else None
    model = HotspotModel("lightgbm", features, params, "none", random_state, objective)
    local = ESTIMATORS["lightgbm"](dict(params), random_state, objective)
    settings = {k: v for k, v in local.get_params().items() if k != "n_jobs"}
    make = lightgbm.DaskLGBMRegressor if objective == "poisson" else lightgbm.DaskLGBMClassifier
    distributed = make(client=client, **settings)
    distributed.fit(X, target, sample_weight=weight)
    model.estimator_ = distributed.to_local()
    model.preprocessor_ = None  # LightGBM takes the features as they are (NaN native)
    if objective == "poisson":
        raw = distributed.predict(X)
        score, labels = client.compute([raw, label], sync=True)
        weights = None if weight is None else np.asarray(client.compute(weight, sync=True))
        model.calibration_ = platt(np.asarray(score, dtype=np.float64), np.asarray(labels),
                                   weights=weights)
    logger.info("fitted lightgbm (%s) on %d rows through Dask (%d partitions)", objective,
                int(X.shape[0]), frame.npartitions)
    return model
