"""Time-ordered splits with a gap that keeps every training label known at the forecast.

Rows are split by bin, never shuffled: the last ``1 - train_test_split_ratio`` of
the panel's bins are the test period, and the training period ends ``gap`` bins
before it. The gap protects *labels*, not features: a forecast issued at the
start of the test period (``horizon - 1`` bins before its first bin) may learn
only from bins whose counts were known then, and with delay-aware data a bin's
count settles only ``settle_days`` after it (late reports; LAPD's 99th
percentile is 15 days). So ``gap = (horizon - 1) + settle bins`` when
delay-aware, else ``horizon - 1`` (:func:`label_gap`). Feature windows may
reach back into the training period however long they are: every feature is
as-of (built only from events known before its bin's issue time), exactly as in
deployment, where yesterday's counts are both last training labels and today's
features. The decision threshold and the choice of champion use a validation
fold carved from the end of the training period the same way; tuning uses
expanding-window folds with the same gap.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from crimecast.config import FeatureConfig
from crimecast.errors import ConfigError
from crimecast.features.timebins import TimeBinning


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


def label_gap(config: FeatureConfig) -> int:
    """Bins between the last training bin and the first forecast bin (see module doc)."""
    settle = 0
    if config.delay_aware and config.settle_days > 0:
        binning = TimeBinning(config.time_bin, config.shift_start_hour)
        settle = binning.bins_for(dt.timedelta(days=config.settle_days))
    return config.horizon - 1 + settle


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
            f"{gap}-bin gap (labels settle for settle_days). Use more data, a shorter "
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
