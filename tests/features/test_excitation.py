"""The SEPP's decay index built band by band equals the index of every pair at once."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from crimecast.data.geo import to_projected
from crimecast.features.decay import decay_index
from crimecast.features.excitation import _bands, sepp_index, unit_areas_m2
from crimecast.features.sepp import SeppParams
from crimecast.features.trigger import FEW_UNITS, trigger_weights
from crimecast.features.units import UnitSet, build_units

ORIGIN = (34.05, -118.25)


def _grid(cell_size: float) -> UnitSet:
    """A real grid of a 3 km x 2 km area (several hundred cells)."""
    xs, ys = np.meshgrid(np.linspace(-1.5, 1.5, 31), np.linspace(-1.0, 1.0, 21))
    lat, lon = ORIGIN[0] + ys.ravel() / 111.0, ORIGIN[1] + xs.ravel() / 92.0
    return build_units("grid", lat, lon, cell_size=cell_size,
                       history_mask=np.ones(lat.size, dtype=bool))


UNITS = {cell: _grid(cell) for cell in (100.0, 150.0)}


def _events(units: UnitSet, seed: int, n: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    lat = ORIGIN[0] + rng.uniform(-1.0, 1.0, n) / 111.0
    lon = ORIGIN[1] + rng.uniform(-1.5, 1.5, n) / 92.0
    t_days = np.sort(rng.uniform(0.0, 200.0, n))
    delay = rng.choice([0, 0, 1, 3, 20], n)  # several events per (unit, row); late reports
    events = pl.DataFrame({"_u": units.assign(lat, lon), "t_days": t_days,
                           "avail": np.floor(t_days).astype(np.int64) + 1 + delay,
                           "lat": lat, "lon": lon})
    return events.filter(pl.col("_u") >= 0)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 600),
       cell=st.sampled_from([100.0, 150.0]), sigma=st.floats(30.0, 300.0),
       omega=st.sampled_from([0.05, 0.5, 3.0]), band_pairs=st.integers(1, 3000))
def test_a_banded_index_equals_one_pass_over_every_pair(
        seed: int, n: int, cell: float, sigma: float, omega: float, band_pairs: int) -> None:
    units = UNITS[cell]
    events = _events(units, seed, n)
    xy = to_projected(events["lat"].to_numpy(), events["lon"].to_numpy(), units.crs)
    areas = unit_areas_m2(units)
    params = SeppParams(background_per_day=0.0, theta=0.2, omega_per_day=omega, sigma_m=sigma)
    banded = sepp_index(events, xy, units, areas, params, 1.0, band_pairs)
    e_idx, u_idx, weight = trigger_weights(*xy, units.centroids, areas, sigma, cell)
    whole = decay_index(u_idx, events["t_days"].to_numpy()[e_idx],
                        events["avail"].to_numpy()[e_idx], weight, 1.0, omega)
    # The bands' contributions, end to end, are the whole index's (keys, sums, groups).
    parts = banded.parts
    assert np.array_equal(np.concatenate([p.running for p in parts]), whole.running)
    assert np.array_equal(np.concatenate([p.carried for p in parts]), whole.carried)
    offsets = np.cumsum([0] + [p.keys.size for p in parts[:-1]])
    starts = [p.starts + o for p, o in zip(parts, offsets, strict=True)]
    assert np.array_equal(np.concatenate(starts), whole.starts)
    rows = np.arange(-3, 230)
    unit = np.repeat(np.arange(len(units)), rows.size)
    row = np.tile(rows, len(units))
    assert np.array_equal(banded.at(unit, row), whole.at(unit, row))


def test_bands_hold_more_than_a_few_units_and_cover_every_unit() -> None:
    units = UNITS[100.0]
    events = _events(units, 7, 2_000)
    xy = to_projected(events["lat"].to_numpy(), events["lon"].to_numpy(), units.crs)
    params = SeppParams(background_per_day=0.0, theta=0.2, omega_per_day=0.5, sigma_m=150.0)
    cuts = _bands(events, xy, units, unit_areas_m2(units), params, band_pairs=1)
    assert cuts[0] == 0 and cuts[-1] == len(units) and len(cuts) > 2
    assert min(np.diff(cuts)) > FEW_UNITS
    assert _bands(events, xy, units, unit_areas_m2(units), params, 10**12) == [0, len(units)]
