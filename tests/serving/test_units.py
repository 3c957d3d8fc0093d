"""One server, two spatial units: /hotspots?unit=area|grid picks the model."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from crimecast.errors import ServingError
from crimecast.serving.bundle import ModelBundle
from crimecast.serving.server import check_units
from crimecast.serving.state import Loaded

from .conftest import LiveServer


def test_area_and_grid_models_share_one_server(live_server: Callable[..., LiveServer],
                                               loaded: Loaded, bundle: ModelBundle,
                                               grid_bundle: ModelBundle) -> None:
    both = Loaded(bundle=bundle, store=loaded.store, weather=loaded.weather,
                  others=(grid_bundle,))
    with live_server(loaded=both) as server:
        summary = httpx.get(f"{server.url}/model").json()
        assert set(summary["spatial_units"]) == {"area", "grid"}
        assert summary["spatial_units"]["grid"]["horizons"] == ["1d", "7d"]
        grid = httpx.get(f"{server.url}/hotspots", params={
            "at": "2023-08-01T00:00", "horizon": "1d", "top": 10, "unit": "grid"}).json()
        assert grid["properties"]["unit"] == "grid"
        assert grid["properties"]["units_ranked"] == len(grid_bundle.units or ())
        assert grid["properties"]["run_id"] == grid_bundle.run_id
        ids = [f["properties"]["unit_id"] for f in grid["features"]]
        assert len(ids) == 10 and all(u.startswith("g3000_") for u in ids)
        assert all(f["geometry"]["type"] == "Polygon" for f in grid["features"])
        area = httpx.get(f"{server.url}/hotspots", params={
            "at": "2023-08-01T06:00", "horizon": "8h", "top": 3}).json()
        assert area["properties"]["unit"] == "area"  # the primary model by default
        mismatch = httpx.get(f"{server.url}/hotspots", params={"unit": "grid", "horizon": "8h"})
        assert mismatch.status_code == 422
        assert mismatch.json() == {"detail": "horizon must be a positive multiple of the "
                                             "model's 1d bins; got '8h'. Pass --horizon 1d."}


def test_two_models_for_one_unit_are_refused(bundle: ModelBundle) -> None:
    with pytest.raises(ServingError) as err:
        check_units([bundle, bundle])
    assert str(err.value) == ("each --model must forecast a different spatial unit; 'area' is "
                              "given 2 times. Pass one model per spatial unit.")
