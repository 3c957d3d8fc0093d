"""A LightGBM model's scores on its own training rows, read off the booster instead of
predicted again.

While it boosts, LightGBM keeps every training row's score: the leaf values of the
trees the row falls in, added tree by tree in the order a prediction adds them and
passed through the same output transform (the sigmoid of the binary objective, the
exponential of the Poisson one). A tree routes a training row by its feature's bin and
a prediction routes the raw value by that bin's upper bound, so after the last
iteration these scores equal ``predict`` on the training matrix bit for bit.

The ensemble's scale and every count or rank model's calibration need the scores of
all training rows; predicting some 700,000 rows again costs seconds. So
:func:`capture_train_scores` reads them at the last iteration, and
:func:`matches_predictions` compares a spread of rows with ``predict`` before they
are used: on any difference the caller predicts as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

CHECKED_ROWS = 256


def capture_train_scores(store: dict[str, np.ndarray]) -> Callable[[Any], None]:
    """A LightGBM training callback that puts the training rows' (transformed) scores
    after the last iteration into ``store["scores"]``."""
    def capture(env: Any) -> None:
        if env.iteration != env.end_iteration - 1:
            return

        def keep(scores: np.ndarray, _data: Any) -> tuple[str, float, bool]:
            store["scores"] = np.array(scores, dtype=np.float64)  # a copy of LightGBM's buffer
            return "captured_train_scores", 0.0, True

        env.model.eval_train(feval=keep)

    return capture


def matches_predictions(scores: np.ndarray, predict: Callable[[np.ndarray], np.ndarray],
                        matrix: np.ndarray) -> bool:
    """Whether ``predict`` on a spread of rows of ``matrix`` (first, last and evenly
    between) gives exactly ``scores`` there."""
    n = matrix.shape[0]
    if scores.ndim != 1 or scores.shape[0] != n:
        return False
    if n == 0:
        return True
    rows = np.unique(np.linspace(0, n - 1, min(n, CHECKED_ROWS)).astype(np.int64))
    return bool(np.array_equal(predict(matrix[rows]), scores[rows]))
