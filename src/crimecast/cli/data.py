"""CLI commands for data: ``generate``, ``clean``, ``eda``, ``features``, ``weather``, ``schema``.

Registered on the main app by :mod:`crimecast.cli.main`.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from crimecast import __version__
from crimecast.cli.errors import handle_errors, make_console
from crimecast.cli.options import (
    CellSizeOpt,
    ConfigOpt,
    CrimeTypesOpt,
    DataOpt,
    EncodingOpt,
    ExecutorOpt,
    LabelOpt,
    RowsOpt,
    SchemaOpt,
    ShiftOpt,
    SpatialUnitOpt,
    TimeBinOpt,
    ZOpt,
    data_paths,
    parse_date,
)
from crimecast.cli.views import (
    render_calibration,
    render_clean_report,
    render_features,
    render_schema,
    render_synthetic_banner,
    render_weather,
)

console = make_console()


def synthetic_provenance(first: dt.date, last: dt.date, seed: int,
                         volume_scale: float = 1.0) -> dict[str, Any]:
    """The provenance record written beside a synthetic incident file."""
    return {"synthetic": True, "generator": "crimecast generate", "version": __version__,
            "start": str(first), "end": str(last), "seed": seed, "volume_scale": volume_scale}


@handle_errors
def generate(
    out: Annotated[Path, typer.Option("--out", help="Output file: .csv, .csv.gz or .parquet.")],
    start: Annotated[str, typer.Option(help="First day (YYYY-MM-DD).")] = "2020-01-01",
    end: Annotated[str, typer.Option(help="Last day (YYYY-MM-DD), inclusive.")] = "2024-12-31",
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same data.")] = 7,
    report: Annotated[
        bool, typer.Option("--report", help="Compare the output with real LAPD aggregates.")
    ] = False,
    volume_scale: Annotated[float | None, typer.Option(
        help="Multiplier on the calibrated volume (e.g. 3.3 for about 10M records over "
        "2010-2024); generator.volume_scale in config.yaml.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Generate synthetic LAPD-schema incidents calibrated to real LA aggregates."""
    from crimecast.config import load_settings
    from crimecast.data.output import write_incidents, write_json, write_provenance
    from crimecast.synthetic.calibration import build_calibration_report
    from crimecast.synthetic.generate import generate_incidents

    settings = load_settings(config).with_overrides("generator", volume_scale=volume_scale)
    first, last = parse_date(start, "--start"), parse_date(end, "--end")
    began = time.perf_counter()
    with console.status("generating synthetic incidents..."):
        frame = generate_incidents(first, last, seed, settings.generator)
    elapsed = time.perf_counter() - began
    write_incidents(frame, out)
    write_provenance(out, synthetic_provenance(first, last, seed,
                                               settings.generator.volume_scale))
    render_synthetic_banner(console)
    console.print(
        f"wrote [bold]{frame.height:,}[/] synthetic records ({first} to {last}, seed {seed}) "
        f"to {out} in {elapsed:.1f} s"
    )
    if report:
        calibration = build_calibration_report(frame)
        report_path = out.with_name(out.name.split(".")[0] + "_calibration.json")
        write_json(calibration.model_dump(mode="json"), report_path)
        render_calibration(console, calibration)
        console.print(f"calibration report: {report_path}")
        if not calibration.passed:
            raise typer.Exit(code=1)


@handle_errors
def clean(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Output folder.")],
    data: DataOpt = None,
    schema: SchemaOpt = None,
    encoding: EncodingOpt = None,
    min_date: Annotated[str | None, typer.Option(help="Earliest occurrence kept.")] = None,
    max_date: Annotated[str | None, typer.Option(help="Latest occurrence kept.")] = None,
    include_enforcement: Annotated[
        bool,
        typer.Option(
            "--include-enforcement-driven", help="Keep enforcement-driven crime types."
        ),
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Load incident files, clean them, and write clean, quarantine and report files.

    Extra file names after --data are read too: --data a.csv b.csv.
    """
    from crimecast.config import load_settings
    from crimecast.data.prepare import prepare_incidents, write_clean_outputs

    settings = load_settings(config)
    settings = settings.with_overrides(
        "cleaning",
        min_date=parse_date(min_date, "--min-date") if min_date else None,
        max_date=parse_date(max_date, "--max-date") if max_date else None,
        exclude_enforcement_driven=False if include_enforcement else None,
    )
    paths = data_paths(data, list(ctx.args), settings)
    with console.status(f"cleaning {len(paths)} file(s)..."):
        result = prepare_incidents(
            paths,
            schema=schema or settings.data.schema_name,
            config=settings.cleaning,
            encoding=encoding or settings.data.encoding,
        )
        written = write_clean_outputs(result, out)
    render_clean_report(console, result.report)
    console.print(f"wrote {written['clean']}, {written['quarantine']} and {written['report']}")


@handle_errors
def features(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Output folder.")],
    data: DataOpt = None,
    schema: SchemaOpt = None,
    spatial_unit: SpatialUnitOpt = None,
    cell_size: CellSizeOpt = None,
    time_bin: TimeBinOpt = None,
    label: LabelOpt = None,
    crime_types: CrimeTypesOpt = None,
    horizon: Annotated[int | None, typer.Option(help="Bins ahead the forecast is issued.")] = None,
    weather_mode: Annotated[
        str | None, typer.Option("--weather", help="same_bin, lagged or none.")
    ] = None,
    delay_aware: Annotated[
        bool | None,
        typer.Option("--delay-aware/--no-delay-aware", help="Use report dates for as-of."),
    ] = None,
    max_date: Annotated[str | None, typer.Option(help="Latest occurrence kept.")] = None,
    shift_start_hour: ShiftOpt = None,
    z_threshold: ZOpt = None,
    encoding: EncodingOpt = None,
    executor: ExecutorOpt = None,
    rows: RowsOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Clean incidents and build the leak-free feature panel with labels."""
    from crimecast.config import load_settings
    from crimecast.executor import opened
    from crimecast.features.job import stream_features

    settings = load_settings(config).with_overrides(
        "features", spatial_unit=spatial_unit, cell_size=cell_size, time_bin=time_bin,
        label=label, horizon=horizon, weather=weather_mode, delay_aware=delay_aware,
        shift_start_hour=shift_start_hour, z_threshold=z_threshold, rows=rows,
        crime_types=crime_types,
    ).with_overrides(
        "cleaning", max_date=parse_date(max_date, "--max-date") if max_date else None
    )
    paths = data_paths(data, list(ctx.args), settings)
    began = time.perf_counter()
    with console.status("cleaning and building features..."), opened(
            executor or settings.compute.executor, settings.compute.workers) as blocks:
        meta = stream_features(paths, schema or settings.data.schema_name, settings.cleaning,
                               settings.features, out,
                               encoding=encoding or settings.data.encoding, executor=blocks,
                               seed=settings.models.random_state)
    render_features(console, meta, time.perf_counter() - began)
    design = meta.get("design")
    what = (f"the training design: {design['sampled_event_rows']:,} of "
            f"{design['event_rows']:,} rows with events and "
            f"{design['sampled_empty_rows']:,} of {design['empty_rows']:,} empty rows, weight "
            f"{design['empty_weight']:.1f}" if design
            else f"{meta['panel']['blocks']} time block(s)")
    console.print(f"wrote {out / 'features.parquet'} ({what}) and {out / 'features_meta.json'}")


@handle_errors
def eda(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Output folder (eda.html is written there).")],
    data: DataOpt = None,
    schema: SchemaOpt = None,
    encoding: EncodingOpt = None,
    sample: Annotated[int | None, typer.Option(
        help="Plot a seeded sample of this many clean records (for large inputs); "
             "default: all.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Exploratory analysis: write OUT/eda.html, one self-contained page of plots.

    Extra file names after --data are read too: --data a.csv b.csv.
    """
    import polars as pl

    from crimecast.cards.eda import eda_sections, render_eda_html
    from crimecast.config import load_settings
    from crimecast.data.prepare import prepare_incidents
    from crimecast.data.weather import load_daily_weather
    from crimecast.errors import ConfigError

    if sample is not None and sample < 1:
        raise ConfigError(f"sample must be >= 1 records; got {sample}. Pass --sample 100000.")
    settings = load_settings(config)
    paths = data_paths(data, list(ctx.args), settings)
    with console.status(f"reading and cleaning {len(paths)} file(s)..."):
        result = prepare_incidents(paths, schema=schema or settings.data.schema_name,
                                   config=settings.cleaning,
                                   encoding=encoding or settings.data.encoding)
    clean = result.clean
    drawn = None
    if sample is not None and clean.height > sample:
        drawn = (sample, clean.height)
        clean = clean.sample(n=sample, seed=settings.models.random_state)
    with console.status("drawing the plots..."):
        sections = eda_sections(clean.select(pl.exclude("source_file")), result.report,
                                result.areas, load_daily_weather())
        page = render_eda_html(sections, result.report, paths, drawn)
    out.mkdir(parents=True, exist_ok=True)
    target = out / "eda.html"
    partial = target.with_suffix(".html.partial")
    partial.write_text(page, encoding="utf-8")
    partial.replace(target)  # never a half-written page
    console.print(f"wrote {target} ({len(sections)} sections, {len(page) / 1e6:.1f} MB)")


@handle_errors
def weather(
    start: Annotated[str, typer.Option(help="First day.")] = "2010-01-01",
    end: Annotated[str, typer.Option(help="Last day.")] = "2024-12-31",
) -> None:
    """Summarise the embedded Los Angeles weather series and report its gaps."""
    first, last = parse_date(start, "--start"), parse_date(end, "--end")
    from crimecast.data.weather import load_daily_weather, weather_gaps  # after the checks

    daily = load_daily_weather()
    render_weather(console, daily, weather_gaps(daily, first, last))


def schema() -> None:
    """Print the canonical incident schema and the cleaning rules."""
    render_schema(console)
