"""Drift measures: the population stability index and a mean with a bootstrap interval.

The **population stability index** (PSI) compares a recent distribution with a
reference one over the same buckets::

    PSI = sum_i (r_i - e_i) * ln(r_i / e_i)

where ``e_i`` and ``r_i`` are the reference and recent shares of bucket ``i``
(Siddiqi 2006, *Credit Risk Scorecards*; the usual reading: below 0.1 stable,
0.1–0.25 a moderate shift, above 0.25 a large one). A share of 0 is floored at
``PSI_FLOOR`` so that a bucket empty on one side counts as a large but finite
shift. Numeric values are bucketed at the reference's deciles (fewer buckets when
the reference has fewer distinct values); categories are their own buckets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from crimecast.evaluation.bootstrap import summarise_resamples
from crimecast.evaluation.metrics import json_float

PSI_FLOOR = 1e-4
PSI_BUCKETS = 10


def _psi_of_counts(reference: np.ndarray, recent: np.ndarray) -> float | None:
    if reference.sum() <= 0 or recent.sum() <= 0:
        return None
    expected = np.maximum(reference / reference.sum(), PSI_FLOOR)
    actual = np.maximum(recent / recent.sum(), PSI_FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def population_stability_index(reference: np.ndarray, recent: np.ndarray,
                               buckets: int = PSI_BUCKETS) -> float | None:
    """PSI of numeric ``recent`` values against ``reference`` (module docstring), over the
    reference's quantile buckets; NaN values are left out; None when a side is empty."""
    ref = np.asarray(reference, dtype=np.float64)
    new = np.asarray(recent, dtype=np.float64)
    ref, new = ref[np.isfinite(ref)], new[np.isfinite(new)]
    if ref.size == 0 or new.size == 0:
        return None
    inner = np.unique(np.quantile(ref, np.linspace(0, 1, buckets + 1)[1:-1]))
    # bucket i holds values <= edge i: a value equal to an edge goes with the lower bucket
    ref_counts = np.bincount(np.searchsorted(inner, ref, side="left"), minlength=inner.size + 1)
    new_counts = np.bincount(np.searchsorted(inner, new, side="left"), minlength=inner.size + 1)
    return _psi_of_counts(ref_counts.astype(np.float64), new_counts.astype(np.float64))


def mix_stability_index(reference: Mapping[str, float], recent: Mapping[str, float]
                        ) -> float | None:
    """PSI of a categorical mix (counts per category, e.g. events per area), over the
    categories of either side."""
    names = sorted(set(reference) | set(recent))
    return _psi_of_counts(np.array([float(reference.get(n, 0)) for n in names]),
                          np.array([float(recent.get(n, 0)) for n in names]))


def mean_with_interval(values: Sequence[float | None], n_resamples: int = 200,
                       seed: int = 0) -> dict[str, float | None]:
    """The mean of the defined values with a percentile bootstrap interval (resampling the
    values, e.g. one per time bin): ``value, ci_low, ci_high, standard_deviation, n``."""
    array = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    array = array[np.isfinite(array)]
    if array.size == 0:
        return {"value": None, "ci_low": None, "ci_high": None, "standard_deviation": None,
                "n": 0}
    rng = np.random.default_rng(seed)
    draws = array[rng.integers(0, array.size, size=(n_resamples, array.size))].mean(axis=1)
    return {"value": json_float(array.mean()), **summarise_resamples(draws), "n": int(array.size)}
