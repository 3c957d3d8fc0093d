"""Fixtures shared by the SageMaker tests: small seeded data and one local run on it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest

from crimecast.config import Settings
from crimecast.data.output import write_incidents, write_provenance
from crimecast.pipeline.run import RunSummary, run_pipeline
from crimecast.synthetic.generate import generate_incidents

# Execution-time parameters that differ from the configuration defaults, so the
# tests prove the overrides reach the steps.
MODEL_TYPE = "logistic"
SPLIT_RATIO = 0.75
BOOTSTRAP = 20


@dataclass(frozen=True)
class LocalRun:
    """A local ``crimecast run`` and what produced it."""

    data: Path
    settings: Settings
    summary: RunSummary


def base_settings(runs: Path) -> Settings:
    """Small daily panel by area; the gate threshold low enough to register."""
    settings = Settings().with_overrides("features", time_bin="1d", spatial_unit="area")
    return settings.with_overrides("pipeline", runs_dir=str(runs), f1_threshold=0.0)


@pytest.fixture(scope="session")
def sagemaker_local_run(tmp_path_factory: pytest.TempPathFactory) -> LocalRun:
    """One year of synthetic incidents run through the local pipeline."""
    base = tmp_path_factory.mktemp("sagemaker_local")
    data = base / "incoming" / "lapd_2023.csv"
    write_incidents(generate_incidents(dt.date(2023, 1, 1), dt.date(2023, 12, 31), seed=3), data)
    write_provenance(data, {"synthetic": True, "seed": 3})
    settings = base_settings(base / "runs")
    summary = run_pipeline(
        settings.with_overrides("pipeline", model_type=MODEL_TYPE,
                                train_test_split_ratio=SPLIT_RATIO),
        [str(data)], schema="lapd", bootstrap_resamples=BOOTSTRAP)
    return LocalRun(data=data, settings=settings, summary=summary)
