"""Time-ordered splits with a gap, and the features a split can honestly afford.

Rows are split by bin, never shuffled: the last ``1 - train_test_split_ratio`` of
the panel's bins are the test period, and the training period ends ``gap`` bins
before it, where ``gap`` is the longest look-back of any model feature (see
:func:`crimecast.features.catalog.lookback_days`). Features whose look-back would
need a gap longer than ``max_gap_share`` of the whole span are left out of the
model for that run (and listed), rather than shrinking the gap. The decision
threshold is chosen on a validation fold carved from the end of the training
period the same way; tuning uses expanding-window folds with the same gap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from crimecast.config import FeatureConfig
from crimecast.errors import ConfigError
from crimecast.features.build import AUTO_Z_WINDOW
from crimecast.features.catalog import lookback_days
from crimecast.features.timebins import STEPS_HOURS


@dataclass(frozen=True)
class TimeSplit:
    """Bin indices (positions in the sorted list of panel bins) of each part."""

    train_end: int  # exclusive
    test_start: int
    n_bins: int
    gap: int

    def describe(self) -> dict[str, int]:
        """Counts of bins per part, for reports."""
        return {"train_bins": self.train_end, "gap_bins": self.gap,
                "test_bins": self.n_bins - self.test_start}


def feature_lookbacks(features: list[str], config: FeatureConfig) -> dict[str, float]:
    """Look-back in days of each feature under ``config``."""
    z_window = config.z_window or AUTO_Z_WINDOW[config.time_bin]
    return {
        name: lookback_days(
            name, bin_hours=STEPS_HOURS[config.time_bin], z_window_bins=z_window,
            settle_days=config.settle_days, horizon=config.horizon, weather=config.weather,
            near_repeat_hours=config.near_repeat_hours,
        )
        for name in features
    }


def affordable_features(
    features: list[str], config: FeatureConfig, n_bins: int, max_gap_share: float
) -> tuple[list[str], list[str], int]:
    """(kept features, dropped features, gap in bins) for a panel of ``n_bins`` bins."""
    bin_days = STEPS_HOURS[config.time_bin] / 24
    budget_days = max_gap_share * n_bins * bin_days
    lookback = feature_lookbacks(features, config)
    kept = [f for f in features if lookback[f] <= budget_days]
    dropped = [f for f in features if f not in kept]
    longest = max((lookback[f] for f in kept), default=0.0)
    return kept, dropped, math.ceil(longest / bin_days - 1e-9)


def time_split(n_bins: int, ratio: float, gap: int) -> TimeSplit:
    """Split ``n_bins`` ordered bins: train, then ``gap`` unused bins, then test."""
    if not 0 < ratio < 1:
        raise ConfigError(
            f"train_test_split_ratio must be between 0 and 1; got {ratio}. "
            "Pass --train-test-split-ratio 0.8."
        )
    test_start = min(max(1, round(n_bins * ratio)), n_bins - 1)
    train_end = test_start - gap
    if train_end < 2 or n_bins - test_start < 1:
        raise ConfigError(
            f"the data spans {n_bins} bins, too few for a split at ratio {ratio} with a "
            f"{gap}-bin gap (the longest feature look-back). Use more data, a shorter "
            "--time-bin, or a higher --train-test-split-ratio."
        )
    return TimeSplit(train_end=train_end, test_start=test_start, n_bins=n_bins, gap=gap)


def expanding_folds(n_bins: int, n_folds: int, gap: int) -> list[tuple[int, int, int]]:
    """Expanding-window folds as (train_end, valid_start, valid_end), no shuffling."""
    size = n_bins // (n_folds + 1)
    folds = []
    for k in range(1, n_folds + 1):
        valid_start = k * size
        valid_end = n_bins if k == n_folds else (k + 1) * size
        train_end = valid_start - gap
        if train_end >= 2 and valid_end > valid_start:
            folds.append((train_end, valid_start, valid_end))
    if not folds:
        raise ConfigError(
            f"{n_bins} training bins cannot hold {n_folds} time-series folds with a {gap}-bin "
            "gap. Use fewer --tune folds or more data."
        )
    return folds


def best_f1_threshold(y_true: np.ndarray, prob: np.ndarray) -> float:
    """The probability threshold that maximises F1 on a validation fold."""
    from sklearn.metrics import precision_recall_curve

    if y_true.sum() == 0:
        return 0.5
    precision, recall, thresholds = precision_recall_curve(y_true, prob)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall + 1e-12),
                  0.0)[:-1]
    return float(thresholds[int(np.argmax(f1))]) if thresholds.size else 0.5
