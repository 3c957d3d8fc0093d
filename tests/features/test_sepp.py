"""SEPP: parameter recovery on a simulated Hawkes process, as-of decay exactness and messages."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crimecast.errors import ModelError
from crimecast.features.decay import EPOCH, decay_index, first_epoch_row
from crimecast.features.sepp import (
    DEFAULT_PARAMS,
    SeppFit,
    SeppParams,
    decayed_counts,
    expected_counts,
    fit_sepp,
)

SIDE_M = 5000.0
TRUE = SeppParams(background_per_day=8.0, theta=0.3, omega_per_day=0.5, sigma_m=100.0)


def simulate_hawkes(
    rng: np.random.Generator, params: SeppParams, days: float, side_m: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Branching construction: uniform background, Poisson(θ) offspring per event, recursively.

    Offspring later than ``days`` are dropped (the observation window); offspring
    outside the square are kept.
    """
    n0 = rng.poisson(params.background_per_day * days)
    gen = (rng.uniform(0, side_m, n0), rng.uniform(0, side_m, n0), rng.uniform(0, days, n0))
    xs, ys, ts = [gen[0]], [gen[1]], [gen[2]]
    px, py, pt = gen
    while px.size:
        parent = np.repeat(np.arange(px.size), rng.poisson(params.theta, px.size))
        cx = px[parent] + rng.normal(0.0, params.sigma_m, parent.size)
        cy = py[parent] + rng.normal(0.0, params.sigma_m, parent.size)
        ct = pt[parent] + rng.exponential(1.0 / params.omega_per_day, parent.size)
        keep = ct < days
        px, py, pt = cx[keep], cy[keep], ct[keep]
        xs.append(px)
        ys.append(py)
        ts.append(pt)
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(ts)


@pytest.fixture(scope="module")
def simulated() -> tuple[np.ndarray, np.ndarray, np.ndarray, SeppFit]:
    x, y, t = simulate_hawkes(np.random.default_rng(0), TRUE, 400.0, SIDE_M)
    fit = fit_sepp(x, y, t, np.full(x.size, 1.0 / SIDE_M**2), 400.0)
    return x, y, t, fit


def test_fit_recovers_simulated_parameters(
    simulated: tuple[np.ndarray, np.ndarray, np.ndarray, SeppFit],
) -> None:
    x, _, _, fit = simulated
    got = fit.params
    assert fit.converged and 1 < fit.iterations < 100
    assert fit.n_events == x.size and fit.n_pairs > x.size
    assert math.isfinite(fit.log_likelihood) and fit.seconds > 0
    assert got.background_per_day == pytest.approx(TRUE.background_per_day, rel=0.15)
    assert got.theta == pytest.approx(TRUE.theta, rel=0.20)
    assert 1 / got.omega_per_day == pytest.approx(1 / TRUE.omega_per_day, rel=0.20)
    assert got.sigma_m == pytest.approx(TRUE.sigma_m, rel=0.20)


def test_fit_is_a_fixed_point_and_respects_max_iter(
    simulated: tuple[np.ndarray, np.ndarray, np.ndarray, SeppFit],
) -> None:
    x, y, t, fit = simulated
    density = np.full(x.size, 1.0 / SIDE_M**2)
    again = fit_sepp(x, y, t, density, 400.0, initial=fit.params, tol=1e-4)
    assert again.converged and again.iterations <= 3
    for name, value in fit.params.as_dict().items():
        assert again.params.as_dict()[name] == pytest.approx(value, rel=1e-3)
    assert again.log_likelihood == pytest.approx(fit.log_likelihood, abs=1e-2)
    one = fit_sepp(x, y, t, density, 400.0, max_iter=1)
    assert (one.iterations, one.converged) == (1, False)
    assert one.log_likelihood < fit.log_likelihood


def test_fit_ignores_simultaneous_events_and_clips() -> None:
    # Two copies of every event at the same time and place: no pairs between copies.
    x = np.array([0.0, 0.0, 5000.0, 5000.0])
    t = np.array([1.0, 1.0, 3.0, 3.0])
    fit = fit_sepp(x, x, t, np.full(4, 1e-6), 10.0, max_distance_m=100.0)
    assert fit.n_pairs == 0
    assert fit.params.theta == 0.0 and fit.params.background_per_day == pytest.approx(0.4)
    assert fit.converged
    # One close pair with a tiny lag: the delay and width floors bind.
    fit = fit_sepp(np.array([0.0, 1.0]), np.zeros(2), np.array([0.0, 0.001]), np.full(2, 1e-9),
                   1.0, min_sigma_m=10.0, min_delay_days=0.5, max_iter=5)
    assert fit.n_pairs == 1
    assert fit.params.sigma_m == 10.0 and fit.params.omega_per_day == 2.0


def test_params_round_trip() -> None:
    assert SeppParams.from_dict(TRUE.as_dict()) == TRUE
    assert DEFAULT_PARAMS.as_dict() == {"background_per_day": 0.0, "theta": 0.2,
                                        "omega_per_day": 1 / 7, "sigma_m": 150.0}


# --- decayed_counts ------------------------------------------------------------------------


@st.composite
def panels(draw: st.DrawFn) -> dict[str, Any]:
    """A small panel and contributions that honour the caller contract."""
    n_units = draw(st.integers(1, 4))
    n_rows = draw(st.integers(1, 6))
    step = draw(st.sampled_from([0.25, 1.0, 7.0]))
    start = draw(st.floats(-50.0, 50.0))
    contributions = draw(st.lists(st.tuples(
        st.integers(0, n_units - 1), st.integers(-3, n_rows + 2),
        st.floats(0.0, 5.0), st.floats(0.0, 10.0)), max_size=12))
    return {
        "n_units": n_units,
        "row_start_days": start + step * np.arange(n_rows),
        "omega_per_day": draw(st.floats(0.0, 3.0)),
        "contributions": contributions,
        "start": start,
        "step": step,
    }


def _arrays(panel: dict[str, Any], contributions: list[tuple[int, int, float, float]]) -> dict[
        str, np.ndarray]:
    unit = np.array([c[0] for c in contributions], dtype=np.int64)
    avail = np.array([c[1] for c in contributions], dtype=np.int64)
    weight = np.array([c[2] for c in contributions], dtype=np.float64)
    before = np.array([c[3] for c in contributions], dtype=np.float64)
    # Known at the start of its avail row at the latest (``before == 0``: exactly then).
    t = (panel["start"] + avail * panel["step"]) - before
    return {"unit_idx": unit, "t_days": t, "avail_row": avail, "weight": weight}


def _decayed(panel: dict[str, Any], contributions: list[tuple[int, int, float, float]]) -> (
        np.ndarray):
    return decayed_counts(**_arrays(panel, contributions),
                          row_start_days=panel["row_start_days"],
                          omega_per_day=panel["omega_per_day"], n_units=panel["n_units"])


@settings(max_examples=100, deadline=None)
@given(panels())
def test_decayed_counts_matches_brute_force(panel: dict[str, Any]) -> None:
    got = _decayed(panel, panel["contributions"])
    a = _arrays(panel, panel["contributions"])
    starts = panel["row_start_days"]
    want = np.zeros((panel["n_units"], starts.size))
    for u in range(panel["n_units"]):
        for row in range(starts.size):
            for k in range(a["t_days"].size):
                if a["unit_idx"][k] == u and a["avail_row"][k] <= row:
                    want[u, row] += a["weight"][k] * math.exp(
                        -panel["omega_per_day"] * (starts[row] - a["t_days"][k]))
    assert got.shape == want.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


@settings(max_examples=100, deadline=None)
@given(panels(), st.data())
def test_decayed_counts_never_leaks_later_contributions(
    panel: dict[str, Any], data: st.DataObject
) -> None:
    n_rows = panel["row_start_days"].size
    cutoff = data.draw(st.integers(0, n_rows - 1))
    base = panel["contributions"]
    later = st.tuples(st.integers(0, panel["n_units"] - 1), st.integers(cutoff + 1, n_rows + 2),
                      st.floats(0.0, 5.0), st.floats(0.0, 10.0))
    changed = [c if c[1] <= cutoff else data.draw(later) for c in base]
    kept = [c for c in changed if c[1] <= cutoff or data.draw(st.booleans())]
    altered = kept + data.draw(st.lists(later, max_size=6))
    before = _decayed(panel, base)
    after = _decayed(panel, altered)
    assert np.array_equal(before[:, : cutoff + 1], after[:, : cutoff + 1])


@settings(max_examples=100, deadline=None)
@given(panels(), st.integers(1, 400))
def test_the_event_indexed_decay_index_matches_the_dense_reference(
        panel: dict[str, Any], stretch: int) -> None:
    """What the panel builder reads (DecayIndex) against the recursive filter, on rows
    stretched far apart so the index's reference times are crossed many times."""
    step = panel["step"] * stretch
    stretched = {**panel, "start": 0.0, "step": step,
                 "row_start_days": step * np.arange(panel["row_start_days"].size)}
    a = _arrays(stretched, panel["contributions"])
    want = _decayed(stretched, panel["contributions"])
    index = decay_index(a["unit_idx"], a["t_days"], a["avail_row"], a["weight"], step,
                        panel["omega_per_day"])
    unit = np.repeat(np.arange(panel["n_units"]), want.shape[1])
    row = np.tile(np.arange(want.shape[1]), panel["n_units"])
    got = index.at(unit, row).reshape(want.shape)
    # Contributions two epochs back are left out by definition (each < its weight × e^-40).
    dropped = a["weight"].sum() * math.exp(-EPOCH)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=dropped + 1e-300)


@settings(max_examples=150, deadline=None)
@given(panels(), st.integers(1, 400), st.data())
def test_a_block_local_decay_index_equals_the_whole_history_index(
        panel: dict[str, Any], stretch: int, data: st.DataObject) -> None:
    """An index of only the contributions a block can read (its epochs and the one before)
    gives the whole-history index's values bit for bit at the block's rows."""
    step = panel["step"] * stretch
    n_rows = panel["row_start_days"].size
    a = _arrays({**panel, "start": 0.0, "step": step}, panel["contributions"])
    whole = decay_index(a["unit_idx"], a["t_days"], a["avail_row"], a["weight"], step,
                        panel["omega_per_day"])
    first = data.draw(st.integers(0, n_rows - 1))
    last = data.draw(st.integers(first, n_rows - 1))
    local = (a["avail_row"] >= first_epoch_row(first, step, panel["omega_per_day"])) & (
        a["avail_row"] <= last)
    block = decay_index(a["unit_idx"][local], a["t_days"][local], a["avail_row"][local],
                        a["weight"][local], step, panel["omega_per_day"])
    unit = np.repeat(np.arange(panel["n_units"]), last - first + 1)
    row = np.tile(np.arange(first, last + 1), panel["n_units"])
    assert np.array_equal(block.at(unit, row), whole.at(unit, row))


def test_decayed_counts_edge_cases() -> None:
    empty = decayed_counts(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64),
                           np.zeros(0), np.array([0.0, 1.0, 2.0]), 0.5, 3)
    assert np.array_equal(empty, np.zeros((3, 3)))
    one_row = decayed_counts(np.array([1, 0, 0]), np.array([9.0, -1.0, 10.5]),
                             np.array([0, -2, 1]), np.array([2.0, 1.0, 5.0]),
                             np.array([10.0]), math.log(2.0), 2)
    # Unit 1: 2·2^-1 = 1; unit 0: 1·2^-11; the avail-row-1 contribution is never in the panel.
    np.testing.assert_allclose(one_row, [[2.0**-11], [1.0]], rtol=1e-12)
    assert decayed_counts(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64),
                          np.zeros(0), np.array([0.0]), 1.0, 0).shape == (0, 1)


# --- expected_counts -----------------------------------------------------------------------


def test_expected_counts_by_hand() -> None:
    params = SeppParams(background_per_day=1.0, theta=0.2, omega_per_day=0.5, sigma_m=100.0)
    got = expected_counts(np.array([[0.5, 0.0]]), np.array([[3.0, 0.0]]), params, bin_days=2.0,
                          lead_days=1.0)
    # 0.5/day · 2 days = 1; θ e^{-ω·lead} (1 - e^{-ωΔ}) · 3
    #   = 0.2 · 0.60653066 · 0.63212056 · 3 = 0.23004030.
    np.testing.assert_allclose(got, [[1.2300403, 0.0]], rtol=1e-7)
    no_lead = expected_counts(np.array([[0.0]]), np.array([[1.0]]), params, bin_days=1.0)
    # The integral of θ ω e^{-ωs} over s in [0, 1) for one event known exactly at the bin start.
    assert no_lead[0, 0] == pytest.approx(0.2 * (1 - math.exp(-0.5)), rel=1e-12)


# --- messages ------------------------------------------------------------------------------

ONE = np.ones(3)
TIMES = np.array([0.0, 1.0, 2.0])


def _fit(**overrides: Any) -> Callable[[], object]:
    args: dict[str, Any] = {"x": ONE, "y": ONE, "t_days": TIMES, "background_density": ONE,
                            "duration_days": 3.0}
    args.update(overrides)
    return lambda: fit_sepp(**args)


def _decay(**overrides: Any) -> Callable[[], object]:
    args: dict[str, Any] = {"unit_idx": np.array([0]), "t_days": np.array([0.5]),
                            "avail_row": np.array([1]), "weight": np.array([1.0]),
                            "row_start_days": TIMES, "omega_per_day": 1.0, "n_units": 2}
    args.update(overrides)
    return lambda: decayed_counts(**args)


def _expected(**overrides: Any) -> Callable[[], object]:
    args: dict[str, Any] = {"background": np.ones((2, 3)), "decayed": np.ones((2, 3)),
                            "params": TRUE, "bin_days": 1.0}
    args.update(overrides)
    return lambda: expected_counts(**args)


MESSAGES: list[tuple[Callable[[], object], str]] = [
    (lambda: SeppParams(-1.0, 0.2, 1.0, 1.0),
     "background_per_day must be a finite number >= 0; got -1.0. Pass the background rate in "
     "events per day (0 lets fit_sepp scale it from the data)."),
    (lambda: SeppParams(1.0, 1.0, 1.0, 1.0),
     "theta must be in [0, 1) (the branching ratio); got 1.0. A value >= 1 makes the process "
     "explosive; pass a smaller theta."),
    (lambda: SeppParams(1.0, 0.2, 0.0, 1.0),
     "omega_per_day must be a finite number > 0; got 0.0. Pass the trigger decay rate, "
     "1 / (mean trigger delay in days)."),
    (lambda: SeppParams(1.0, 0.2, 1.0, math.nan),
     "sigma_m must be a finite number > 0; got nan. Pass the trigger kernel's spatial standard "
     "deviation in metres."),
    (lambda: SeppParams.from_dict({"theta": 0.2, "omega_per_day": 1.0, "sigma_m": 9.0, "m": 1}),
     "SEPP parameters must have exactly the keys background_per_day, theta, omega_per_day, "
     "sigma_m; missing ['background_per_day'], unknown ['m']. Pass the output of as_dict()."),
    (_fit(y=np.ones(2)),
     "x, y, t_days and background_density must have equal lengths; got 3, 2, 3 and 3. Pass one "
     "value per event in each."),
    (_fit(x=ONE[:1], y=ONE[:1], t_days=TIMES[:1], background_density=ONE[:1]),
     "fit_sepp needs at least 2 events; got 1. Use a longer window or a larger area."),
    (_fit(t_days=np.array([0.0, math.inf, 1.0])),
     "x, y and t_days must be finite; got a non-finite value at 1 event(s). Drop events without "
     "a location or time before fitting."),
    (_fit(background_density=np.array([1.0, math.nan, math.nan])),
     "background_density must be finite at every event; got nan at 2 event(s). Evaluate the "
     "background inside the study area only."),
    (_fit(background_density=np.array([0.0, 1.0, -0.0])),
     "background_density must be > 0 at every event; got 0 at 2 event(s). Smooth the background "
     "(a larger bandwidth) so every event's location has positive density."),
    (_fit(duration_days=0.0),
     "duration_days must be a finite number > 0; got 0.0. Pass the length of the observation "
     "window in days."),
    (_fit(max_iter=0),
     "max_iter must be >= 1; got 0. Pass a number of EM iterations."),
    (_fit(tol=-1.0),
     "tol must be a finite number > 0; got -1.0. Pass a small relative change such as 1e-5."),
    (_fit(max_lag_days=0.0),
     "max_lag_days must be a finite number > 0; got 0.0. Pass the longest parent-child delay."),
    (_fit(max_distance_m=math.inf),
     "max_distance_m must be a finite number > 0; got inf. Pass the farthest parent-child "
     "distance."),
    (_fit(min_sigma_m=0.0),
     "min_sigma_m must be a finite number > 0; got 0.0. Pass a floor such as 10 metres."),
    (_fit(min_delay_days=0.0),
     "min_delay_days must be a finite number > 0; got 0.0. Pass a floor such as 1/24 day."),
    (_decay(weight=np.ones(2)),
     "unit_idx, t_days, avail_row and weight must have equal lengths; got 1, 1, 1 and 2. Pass "
     "one value per contribution in each."),
    (_decay(row_start_days=np.zeros(0)),
     "row_start_days must hold at least one finite row start; got 0 row(s) with 0 non-finite. "
     "Pass the panel's row starts."),
    (_decay(row_start_days=np.array([0.0, 1.0, 3.0])),
     "row_start_days must be strictly increasing and equally spaced; got steps from 1 to 2 "
     "days. Pass the start of every panel row, including empty ones."),
    (_decay(omega_per_day=-0.5),
     "omega_per_day must be a finite number >= 0; got -0.5. Pass the fitted decay rate."),
    (_decay(unit_idx=np.array([2])),
     "unit_idx must lie in [0, n_units) with n_units >= 0; got n_units=2 and unit_idx from 2 "
     "to 2. Pass unit indices into the panel."),
    (_decay(weight=np.array([math.nan])),
     "t_days and weight must be finite; got 1 non-finite value(s). Drop contributions without "
     "a time or weight."),
    (_decay(t_days=np.array([1.5])),
     "avail_row must be a row that starts at or after the contribution's time; 1 "
     "contribution(s) are available before they occur (first: t_days=1.5, avail_row=1). Set "
     "avail_row to the first row whose start is after the event is known."),
    (_decay(t_days=np.array([-0.5]), avail_row=np.array([-1])),
     "avail_row must be a row that starts at or after the contribution's time; 1 "
     "contribution(s) are available before they occur (first: t_days=-0.5, avail_row=-1). Set "
     "avail_row to the first row whose start is after the event is known."),
    (_expected(decayed=np.ones((2, 2))),
     "background and decayed must be (n_units, n_rows) matrices of one shape; got (2, 3) and "
     "(2, 2). Evaluate both on the same panel."),
    (_expected(bin_days=0.0),
     "bin_days must be a finite number > 0; got 0.0. Pass the bin length in days."),
    (_expected(lead_days=-1.0),
     "lead_days must be a finite number >= 0; got -1.0. Pass how many days before the bin "
     "starts the forecast is issued."),
]


@pytest.mark.parametrize(("call", "message"), MESSAGES)
def test_error_messages(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ModelError) as err:
        call()
    assert str(err.value) == message


def test_first_epoch_row_of_a_decay_too_slow_to_matter_is_every_row() -> None:
    # An epoch of 40/1e-308 days overflows: the index must then hold every contribution.
    assert first_epoch_row(0, 0.25, 1.1125369292536007e-308) == -(2**62)
    assert first_epoch_row(10, 1.0, 0.0) == -(2**62)
    # 40-day epochs of 1-day rows: row 100 is in epoch 2, so the index starts at epoch 1.
    assert first_epoch_row(100, 1.0, 1.0) == 39


def test_int32_keys_read_as_int64_keys_would() -> None:
    """The index narrows its keys to int32 where they fit; queries beyond int32 (a unit
    with no contributions, far out) still read nothing, as with int64 keys."""
    units, avail = np.array([0, 0, 1, 2, 2, 2]), np.array([1, 3, 2, 1, 5, 9])
    index = decay_index(units, avail - 0.5, avail, np.ones(6), 1.0, 0.3)
    assert index.keys.dtype == np.int32
    wide = dataclasses.replace(index, keys=index.keys.astype(np.int64))
    q_unit = np.array([0, 0, 1, 2, 2, 3, 10**9, 2**40])
    q_row = np.array([0, 4, 7, 5, 12, 6, 8, 3])
    got = index.at(q_unit, q_row)
    assert np.array_equal(got, wide.at(q_unit, q_row)) and (got[-3:] == 0).all()
    far = decay_index(np.array([0, 1]), np.array([0.5, 3e9]), np.array([1, 3 * 10**9]),
                      np.ones(2), 1.0, 0.3)
    assert far.keys.dtype == np.int64
    assert far.at(np.array([0, 1]), np.array([2, 3 * 10**9]))[1] > 0
