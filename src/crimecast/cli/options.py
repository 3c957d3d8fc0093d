"""Options shared by several ``crimecast`` commands (one declaration each) and the
checks of the values they share.

Cheap to import (no pydantic, Polars or NumPy): ``crimecast --help`` reads it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from crimecast.config.crime_types import CRIME_TYPES
from crimecast.errors import CrimecastError

if TYPE_CHECKING:
    from crimecast.config import Settings


class CommandGroup(TyperGroup):
    """The group class of ``crimecast`` and its sub-apps (``models``, ``sagemaker``).

    A group's ``--help`` flag is None when not given, and Typer builds a pydantic
    TypeAdapter to coerce that None; so ``crimecast predict --help`` would load pydantic
    for nothing. A False default is a bool, which Typer passes through as is. The help
    text and behaviour are unchanged.
    """

    def get_help_option(self, ctx: Any) -> typer.core.TyperOption | None:
        option = super().get_help_option(ctx)
        if option is not None and option.default is None:
            option.default = False
        return option


ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="Folder with config.yaml, feature_config.yaml, models.yaml."),
]
DataOpt = Annotated[
    list[str] | None,
    typer.Option("--data", help="Incident file: CSV (plain, .gz, .bz2, .xz, .zip) or parquet, "
                 "local or s3://; repeatable."),
]
ObjectiveOpt = Annotated[str | None, typer.Option(
    help="auto (poisson for topk/count labels, binary for zscore), binary, poisson or "
         "lambdarank.")]
GateMetricOpt = Annotated[str | None, typer.Option(
    help="Metric that ranks forecasters on validation: auto (pai@1% for topk/count, pr_auc "
         "for zscore), pai@1%, pai@5%, pai@10%, hit_rate@1%, pei_star@1%, pr_auc, roc_auc or "
         "f1.")]
EncodingOpt = Annotated[str | None, typer.Option(
    "--encoding", help="Text encoding of CSV files (default: data.encoding, utf-8).")]
ShiftOpt = Annotated[int | None, typer.Option(
    "--shift-start-hour", help="Hour (0-23) the first 8 h or 12 h shift starts.")]
ZOpt = Annotated[float | None, typer.Option(
    "--z-threshold", help="zscore label: a bin is a hotspot above this many SDs.")]
# The panel and pipeline flags of features, run and backtest: one declaration each, with the
# packaged default named (config/feature_config.yaml, config/config.yaml).
SpatialUnitOpt = Annotated[str | None, typer.Option(
    help="Places: area (police divisions), district, grid (square cells) or h3 "
         "(default: features.spatial_unit, area).")]
CellSizeOpt = Annotated[float | None, typer.Option(
    help="Grid cell side in metres (default: features.cell_size, 250).")]
TimeBinOpt = Annotated[str | None, typer.Option(
    help="Forecast period: 1h, 8h (shifts), 12h, 1d or 7d (default: features.time_bin, 1h).")]
LabelOpt = Annotated[str | None, typer.Option(
    help="What a hotspot is: zscore (unusually busy for the place), topk (among the busiest "
         "topk_pct% of places) or count (default: features.label, zscore).")]
CrimeTypesOpt = Annotated[str | None, typer.Option(
    "--crime-types", help="Forecast only these crime types, comma-separated: "
    + ", ".join(CRIME_TYPES) + " (default: features.crime_types, all types).")]
ModelTypeOpt = Annotated[str | None, typer.Option(
    help="The learned model: lightgbm, xgboost, catboost, random_forest, extra_trees, "
         "balanced_random_forest or logistic (default: pipeline.model_type, lightgbm).")]
SmoteOpt = Annotated[bool | None, typer.Option(
    "--use-smote/--no-smote", help="Oversample hotspot rows with SMOTE (training rows only) "
                                   "(default: pipeline.use_smote, off).")]
ClassWeightOpt = Annotated[bool | None, typer.Option(
    "--class-weight/--no-class-weight", help="Balanced class weights instead of SMOTE "
                                             "(default: pipeline.class_weight, off).")]
SplitOpt = Annotated[float | None, typer.Option(
    help="Share of the labelled periods used before the test period (time order) "
         "(default: pipeline.train_test_split_ratio, 0.8).")]
F1Opt = Annotated[float | None, typer.Option(
    help="The gate's F1 floor on validation (default: pipeline.f1_threshold, 0.18).")]
SchemaOpt = Annotated[
    str | None,
    typer.Option("--schema", help="auto, lapd, generic or a YAML column map (MAP.yaml)."),
]


def parse_date(value: str, option: str) -> dt.date:
    """The date ``value`` given to ``option``, or a CrimecastError naming the form."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CrimecastError(
            f"{option} must be a date in YYYY-MM-DD form; got '{value}'. "
            f"Pass {option} 2024-01-31."
        ) from None


def data_paths(data: list[str] | None, extra: list[str], settings: Settings) -> list[str]:
    """The input files: ``--data`` values, then the extra arguments, else ``data.paths``."""
    paths = [*(data or []), *extra] or list(settings.data.paths)
    if not paths:
        raise CrimecastError("no input data: pass --data FILE (repeatable).")
    for path in extra:
        if path.startswith("-"):
            raise CrimecastError(f"unknown option '{path}'. Run with --help for the options.")
    return paths
ExecutorOpt = Annotated[str | None, typer.Option(
    "--executor", help="Where blocks run: local (a process pool), dask (a LocalCluster) or "
                       "tcp://HOST:8786 (a Dask scheduler); default compute.executor.")]
RowsOpt = Annotated[str | None, typer.Option(
    "--rows", help="all (the whole panel), sampled (the training design: every row with an "
    "event plus a weighted sample of empty rows, built without the panel; run then scores "
    "the test period in blocks) or auto (sampled above features.whole_panel_rows).")]
