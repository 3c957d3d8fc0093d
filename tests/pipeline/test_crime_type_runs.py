"""A model for one crime type: the type reaches the card, the registry's tags and every
forecast, and the served data store holds only that type (issue #13)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from crimecast.config import Settings
from crimecast.data.output import write_incidents
from crimecast.pipeline.run import run_pipeline
from crimecast.registry.store import ModelRegistry
from crimecast.serving.bundle import load_bundle
from crimecast.serving.server import check_units, load_served
from crimecast.synthetic.generate import generate_incidents


def test_a_property_crime_model_says_so_everywhere(tmp_path: Path) -> None:
    data = tmp_path / "la.csv"
    write_incidents(generate_incidents(dt.date(2023, 1, 1), dt.date(2023, 6, 30), seed=9), data)
    settings = Settings().with_overrides(
        "features", time_bin="1d", spatial_unit="area", crime_types="property",
        weather="none").with_overrides(
        "pipeline", runs_dir=str(tmp_path / "runs"), f1_threshold=0.0, model_type="logistic",
        register_best=True)
    summary = run_pipeline(settings, [str(data)], schema="lapd", bootstrap_resamples=10)
    card = json.loads(summary.card_json.read_text())
    assert "property" in json.dumps(card["training_details"])
    assert "Crime_types</dt><dd>property" in summary.card_html.read_text().replace(
        "crime_types", "Crime_types")
    version = summary.registration["version"]
    assert version is not None
    registry = ModelRegistry(state_dir=tmp_path / "runs" / ".mlflow")
    assert registry.get_version(version).tags["crime_types"] == "property"
    bundle = load_bundle(summary.run_id, runs_dir=tmp_path / "runs")
    assert bundle.audit()["crime_types"] == "property"
    loaded = load_served([bundle], [str(data)], settings)
    assert loaded.store is not None
    assert set(loaded.store.events["crime_category"].unique()) == {"property"}
    other = load_bundle(summary.run_id, runs_dir=tmp_path / "runs")
    object.__setattr__(other, "feature_config", bundle.feature_config.model_copy(
        update={"crime_types": ["violent"], "spatial_unit": "grid"}))
    with pytest.raises(Exception, match="the models forecast different crime types "
                                        r"\(property; violent\); one server serves one set"):
        check_units([bundle, other])
    # predict, brief and serve take --crime-types as a check on the model they load.
    from typer.testing import CliRunner

    from crimecast.cli import app

    refused = CliRunner().invoke(app, [
        "predict", "--runs-dir", str(tmp_path / "runs"), "--run", summary.run_id,
        "--data", str(data), "--at", "2023-06-20T00:00", "--horizon", "1d",
        "--crime-types", "violent"])
    assert refused.exit_code == 2
    assert ("crime_types must match the model's; the model forecasts property, --crime-types "
            "asked for violent. Pass --model with a model trained with crimecast run "
            "--crime-types violent.") in " ".join(refused.output.split())
    served = CliRunner().invoke(app, [
        "predict", "--runs-dir", str(tmp_path / "runs"), "--run", summary.run_id,
        "--data", str(data), "--at", "2023-06-20T00:00", "--horizon", "1d", "--top", "3",
        "--crime-types", "property"])
    assert served.exit_code == 0, served.output
    doc = json.loads(served.stdout[served.stdout.index("{"):])
    assert doc["properties"]["crime_types"] == "property"
    assert {f["properties"]["crime_types"] for f in doc["features"]} == {"property"}
