"""The registry's shortcuts change how fast it writes, never what it writes."""

from __future__ import annotations

import gc
from pathlib import Path

import sqlalchemy

from crimecast.pipeline.runner import collector_paused
from crimecast.registry.database import _create_schema, _unsynced, schema_is_complete
from crimecast.registry.mlflow_values import pins_trusted


def _pragmas(uri: str) -> tuple[int, str]:
    engine = sqlalchemy.create_engine(uri)
    try:
        with engine.connect() as connection:
            sync = connection.exec_driver_sql("PRAGMA synchronous").scalar_one()
            journal = connection.exec_driver_sql("PRAGMA journal_mode").scalar_one()
    finally:
        engine.dispose()
    return int(sync), str(journal)


def test_only_the_database_being_created_skips_syncing(tmp_path: Path) -> None:
    target, other = tmp_path / "new.db", tmp_path / "other.db"
    with _unsynced(target):
        assert _pragmas(f"sqlite:///{target}") == (0, "memory")
        assert _pragmas(f"sqlite:///{other}") != (0, "memory")
    assert _pragmas(f"sqlite:///{target}") != (0, "memory")


def test_the_schema_is_complete_when_created_without_syncing(tmp_path: Path) -> None:
    _create_schema(tmp_path / "mlflow.db")
    assert schema_is_complete(tmp_path / "mlflow.db")


def test_the_requirement_check_is_skipped_only_inside_the_block() -> None:
    from mlflow.utils import environment

    check = environment.warn_dependency_requirement_mismatches
    with pins_trusted():
        assert environment.warn_dependency_requirement_mismatches is not check
        environment.warn_dependency_requirement_mismatches(["numpy==0.0.1"])  # no scan
    assert environment.warn_dependency_requirement_mismatches is check


def test_collection_is_paused_and_restored() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # left as it was
    finally:
        gc.enable()
