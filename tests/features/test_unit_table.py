"""units.parquet round-trips to the same UnitSet (so served features equal trained ones)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from crimecast.errors import DataError
from crimecast.features.unit_table import unit_table, units_from_table
from crimecast.features.units import build_units

LAT = np.array([34.0459, 34.0522, 34.1, 33.95, 34.2, 34.05, 34.01])
LON = np.array([-118.2545, -118.30, -118.35, -118.28, -118.45, -118.25, -118.40])


@pytest.mark.parametrize(("kind", "cell"), [("area", 250.0), ("grid", 500.0)])
def test_units_round_trip_exactly(kind: str, cell: float, tmp_path: Path) -> None:
    units = build_units(kind, LAT, LON, area_id=np.array([1, 2, 6, 3, 19, 1, 8]),
                        cell_size=cell)
    unit_table(units).write_parquet(tmp_path / "units.parquet")
    back = units_from_table(pl.read_parquet(tmp_path / "units.parquet"), kind,
                            units.crs.to_string(), cell if kind == "grid" else None)
    assert back.ids == units.ids and back.names == units.names and back.region == units.region
    np.testing.assert_array_equal(back.centroids, units.centroids)
    np.testing.assert_array_equal(back.population, units.population)
    assert (back.adjacency != units.adjacency).nnz == 0
    np.testing.assert_array_equal(back.assign(LAT, LON), units.assign(LAT, LON))


def test_a_table_without_geometry_is_refused() -> None:
    with pytest.raises(DataError) as err:
        units_from_table(pl.DataFrame({"unit_id": ["1"]}), "area", "EPSG:32611")
    assert str(err.value) == ("the unit table lacks column(s) ['name', 'region', "
                              "'population']; it must come from a crimecast run's "
                              "units.parquet.")
