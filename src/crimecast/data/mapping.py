"""Reading any city's incident CSV through a YAML column map.

A :class:`ColumnMap` names which source column feeds each canonical field. It
supports a single datetime column or a date column plus a time column (``hhmm``,
``hour`` or ``hh:mm``), coordinates as lat/lon or as x/y in a source CRS (for
example EPSG:2913, Oregon North in feet), and a category column with an optional
value-to-category table. ``GENERIC_MAP`` is the built-in generic schema
``incident_id, occurred_at, reported_at, lat, lon, crime_type, area``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError as PyprojCRSError

from crimecast.data.crime_codes import infer_category
from crimecast.data.parsing import blank_to_null, parse_clock, parse_datetime, parse_float
from crimecast.data.schema import PARSED_SCHEMA, conform
from crimecast.errors import CRSError, MappingError


class ColumnMap(BaseModel):
    """Which source columns feed the canonical schema. Fields hold source column names."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "custom"
    incident_id: str | None = None
    occurred_at: str | None = None
    date: str | None = None
    date_format: str | None = None
    time: str | None = None
    time_format: Literal["hhmm", "hour", "hh:mm"] = "hhmm"
    reported_at: str | None = None
    lat: str | None = None
    lon: str | None = None
    x: str | None = None
    y: str | None = None
    crs: str = "EPSG:4326"
    crime_type: str
    crime_desc: str | None = None
    category_map: dict[str, Literal["violent", "property", "other"]] = {}
    area: str | None = None
    area_name: str | None = None
    district: str | None = None
    premise: str | None = None
    boundary: str | None = None
    boundary_id_property: str = "id"
    boundary_name_property: str | None = None
    timezone: str = "America/Los_Angeles"

    @model_validator(mode="after")
    def _check_fields(self) -> ColumnMap:
        if (self.occurred_at is None) == (self.date is None):
            raise ValueError("set exactly one of 'occurred_at' or 'date'")
        if self.time is not None and self.date is None:
            raise ValueError("'time' needs 'date' (use 'occurred_at' for one datetime column)")
        has_latlon = self.lat is not None and self.lon is not None
        has_xy = self.x is not None and self.y is not None
        if has_latlon == has_xy:
            raise ValueError("set either both 'lat' and 'lon' or both 'x' and 'y'")
        return self

    def source_columns(self) -> dict[str, str]:
        """Return {map field: source column} for every field that names a column."""
        fields = ("incident_id", "occurred_at", "date", "time", "reported_at", "lat", "lon",
                  "x", "y", "crime_type", "crime_desc", "area", "area_name", "district",
                  "premise")
        return {f: getattr(self, f) for f in fields if getattr(self, f) is not None}


GENERIC_MAP = ColumnMap(
    name="generic",
    incident_id="incident_id",
    occurred_at="occurred_at",
    reported_at="reported_at",
    lat="lat",
    lon="lon",
    crime_type="crime_type",
    area="area",
)
_OPTIONAL_GENERIC = {"reported_at", "area", "incident_id"}


def load_column_map(path: Path) -> ColumnMap:
    """Load a YAML column map, with errors that name the file and the bad key."""
    from crimecast.config import read_yaml

    if not path.is_file():
        raise MappingError(f"column map '{path}' does not exist. Pass --schema with a YAML file.")
    content = read_yaml(path)
    content.setdefault("name", path.stem)
    try:
        return ColumnMap.model_validate(content)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "(map)"
        raise MappingError(
            f"column map '{path}' is invalid at '{loc}': {first['msg']}. "
            "See config/maps/portland_nij.yaml for a working example."
        ) from exc


def _transformer(crs: str, map_name: str) -> Transformer:
    try:
        source = CRS.from_user_input(crs)
    except PyprojCRSError as exc:
        raise CRSError(
            f"column map '{map_name}' names an unknown CRS '{crs}'. "
            "Use an EPSG code such as EPSG:2913 or EPSG:4326."
        ) from exc
    return Transformer.from_crs(source, CRS.from_epsg(4326), always_xy=True)


def _check_columns(raw: pl.DataFrame, column_map: ColumnMap, path: str) -> ColumnMap:
    available = [c for c in raw.columns if not c.startswith("_")]
    missing = {f: c for f, c in column_map.source_columns().items() if c not in raw.columns}
    if column_map is GENERIC_MAP:
        for field in _OPTIONAL_GENERIC & set(missing):
            missing.pop(field)
        if missing:
            raise MappingError(
                f"data file '{path}' lacks generic-schema column(s) {sorted(missing.values())}; "
                f"found {available}. Rename the columns or pass --schema MAP.yaml."
            )
        present = {f: c for f, c in column_map.source_columns().items() if c in raw.columns}
        return column_map.model_copy(
            update={f: None for f in _OPTIONAL_GENERIC if f not in present}
        )
    if missing:
        field, column = next(iter(missing.items()))
        raise MappingError(
            f"column map '{column_map.name}' maps {field} to column '{column}', which data file "
            f"'{path}' does not have; available: {available}. Fix the map's '{field}' entry."
        )
    return column_map


def _coordinates(raw: pl.DataFrame, cmap: ColumnMap) -> tuple[pl.Series, pl.Series]:
    if cmap.lat is not None and cmap.lon is not None:
        lat = raw.select(parse_float(blank_to_null(pl.col(cmap.lat)))).to_series()
        lon = raw.select(parse_float(blank_to_null(pl.col(cmap.lon)))).to_series()
        transformer = None if cmap.crs.upper() == "EPSG:4326" else _transformer(cmap.crs, cmap.name)
        if transformer is None:
            return lat, lon
        xs, ys = lon.to_numpy(), lat.to_numpy()
    else:
        assert cmap.x is not None and cmap.y is not None
        transformer = _transformer(cmap.crs, cmap.name)
        xs = raw.select(parse_float(blank_to_null(pl.col(cmap.x)))).to_series().to_numpy()
        ys = raw.select(parse_float(blank_to_null(pl.col(cmap.y)))).to_series().to_numpy()
    xs = np.asarray(xs, dtype=np.float64)
    ys = np.asarray(ys, dtype=np.float64)
    lon_out, lat_out = transformer.transform(xs, ys)
    # A zero easting or northing is a "no location" marker, as LAT = LON = 0 is in LAPD
    # data; keep it recognisable for the cleaner instead of projecting it somewhere real.
    zero = (xs == 0) | (ys == 0)
    lat_arr = np.where(zero, 0.0, lat_out)
    lon_arr = np.where(zero, 0.0, lon_out)
    return pl.Series("lat", lat_arr), pl.Series("lon", lon_arr)


def parse_mapped(raw: pl.DataFrame, column_map: ColumnMap, path: str) -> pl.DataFrame:
    """Parse a raw table (all text) through ``column_map`` into the canonical schema."""
    cmap = _check_columns(raw, column_map, path)

    def col(name: str | None) -> pl.Expr:
        return blank_to_null(pl.col(name)) if name is not None else pl.lit(None, pl.String)

    date_formats = (cmap.date_format,) if cmap.date_format else None
    if cmap.occurred_at is not None:
        occurred_raw = col(cmap.occurred_at)
        occurred = parse_datetime(occurred_raw, date_formats, cmap.timezone)
        time_raw = pl.lit(None, pl.String)
        time_invalid = pl.lit(False)
        estimated = (occurred.dt.minute() == 0) & (occurred.dt.second() == 0)
    else:
        occurred_raw = col(cmap.date)
        day = parse_datetime(occurred_raw, date_formats).dt.truncate("1d")
        if cmap.time is not None:
            time_raw = col(cmap.time)
            minutes, time_invalid = parse_clock(time_raw, cmap.time_format)
            occurred = day + pl.duration(minutes=minutes)
            estimated = minutes % 60 == 0
        else:
            # Date-only sources: the time of day is unknown, so it is flagged estimated.
            time_raw, time_invalid = pl.lit(None, pl.String), pl.lit(False)
            occurred, estimated = day, pl.lit(True)
    lat, lon = _coordinates(raw, cmap)
    crime_type = col(cmap.crime_type)
    mapped = {k.upper(): v for k, v in cmap.category_map.items()}
    category = crime_type.str.to_uppercase().replace_strict(
        mapped, default=None, return_dtype=pl.String
    ) if mapped else pl.lit(None, pl.String)
    description = col(cmap.crime_desc) if cmap.crime_desc else crime_type
    row_id = pl.format("{}:{}", pl.lit(Path(path).name), pl.col("_source_row"))
    parsed = raw.with_columns(lat.alias("_lat_num"), lon.alias("_lon_num")).select(
        incident_id=col(cmap.incident_id) if cmap.incident_id else row_id,
        occurred_at=occurred,
        reported_at=parse_datetime(col(cmap.reported_at), None, cmap.timezone)
        if cmap.reported_at else pl.lit(None, pl.Datetime("us")),
        lat=pl.col("_lat_num"),
        lon=pl.col("_lon_num"),
        area_id=col(cmap.area),
        area_name=col(cmap.area_name) if cmap.area_name else col(cmap.area),
        district_id=col(cmap.district),
        crime_code=crime_type,
        crime_desc=description.str.strip_chars(),
        crime_category=pl.coalesce(category, infer_category(description)),
        premise=col(cmap.premise),
        time_is_estimated=estimated,
        source_file=pl.col("_source_file"),
        source_row=pl.col("_source_row"),
        _occurred_raw=occurred_raw,
        _time_raw=time_raw,
        _time_invalid=time_invalid,
        _reported_raw=col(cmap.reported_at),
        _lat_raw=col(cmap.lat or cmap.y),
        _lon_raw=col(cmap.lon or cmap.x),
        _area_raw=col(cmap.area),
        _area_known=pl.lit(True),
    )
    return conform(parsed, PARSED_SCHEMA)
