"""Creating the registry's SQLite database safely: once, under a lock, all or nothing.

MLflow creates its schema in place the first time a client opens an empty
database. If that is interrupted (a full disk, a killed process), the file keeps
some tables but not the schema version, and every later open fails with
``table ... already exists`` while ``PRAGMA integrity_check`` still passes. Two
first runs at once race the same way. So crimecast builds the schema in a
temporary file beside ``mlflow.db`` under an exclusive file lock and renames it
into place only when complete; a database that an older crimecast left
half-created (schema incomplete, no experiments, runs or models in it) is moved
aside with a warning and created again.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crimecast.errors import RegistryError, as_storage_error
from crimecast.registry.mlflow_values import quiet_mlflow

logger = logging.getLogger(__name__)

DATABASE = "mlflow.db"
INIT_LOCK = ".mlflow.db.lock"
_USER_TABLES = ("experiments", "runs", "registered_models", "model_versions")


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) inside the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def database_path(tracking_uri: str) -> Path | None:
    """The SQLite file a ``sqlite:///`` tracking URI names (None for other stores)."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    return Path(tracking_uri.removeprefix("sqlite:///"))


def ensure_database(path: Path) -> None:
    """Make ``path`` a complete MLflow database, creating it atomically when missing."""
    if path.is_file() and schema_is_complete(path):
        return  # no lock file needed to read a complete store (it may be read-only)
    with exclusive_lock(path.with_name(INIT_LOCK)):
        for stale in path.parent.glob(f".{DATABASE}.init-*"):
            stale.unlink(missing_ok=True)  # left by a killed creator; we hold the lock
        if path.exists():
            if schema_is_complete(path):
                return
            _set_aside(path)
        tmp = path.with_name(f".{DATABASE}.init-{os.getpid()}")
        try:
            _create_schema(tmp)
            os.replace(tmp, path)
        except BaseException as exc:
            tmp.unlink(missing_ok=True)
            storage = as_storage_error(exc, where=str(path.parent)) \
                if isinstance(exc, Exception) else None
            if storage is not None:
                raise storage from exc
            raise
    logger.info("created the model registry database %s", path)


def schema_is_complete(path: Path) -> bool:
    """Whether ``path`` holds MLflow's whole schema at the current revision."""
    from mlflow.store.db.base_sql_model import Base
    from mlflow.store.db.utils import _get_latest_schema_revision

    with contextlib.closing(sqlite3.connect(path)) as db:
        tables = {row[0] for row in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "alembic_version" not in tables:
            return False
        revision = db.execute("SELECT version_num FROM alembic_version").fetchall()
    return set(Base.metadata.tables) <= tables and \
        [row[0] for row in revision] == [_get_latest_schema_revision()]


def _holds_user_data(path: Path) -> bool:
    with contextlib.closing(sqlite3.connect(path)) as db:
        tables = {row[0] for row in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        for table in _USER_TABLES:
            if table in tables and db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone():
                if table == "experiments" and not db.execute(
                        "SELECT 1 FROM experiments WHERE experiment_id != 0 LIMIT 1").fetchone():
                    continue  # MLflow's own "Default" experiment is not user data
                return True
    return False


def _set_aside(path: Path) -> None:
    """Move a half-created database out of the way, or refuse when it holds data."""
    if _holds_user_data(path):
        raise RegistryError(
            f"the model registry database '{path}' holds runs or models but its schema is "
            "not at MLflow's current revision. Upgrade it with: mlflow db upgrade "
            f"sqlite:///{path}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.incomplete-{stamp}")
    os.replace(path, aside)
    logger.warning("the model registry database %s was left half-created by an interrupted "
                   "first run (a full disk or a killed process); it held no runs or models, "
                   "so it was moved to %s and is created again", path, aside.name)


@contextlib.contextmanager
def _unsynced(path: Path) -> Iterator[None]:
    """Inside the block, SQLAlchemy's new SQLite connections to ``path`` (and to no other
    database) neither sync to disk nor keep their rollback journal on it."""
    import sqlalchemy

    target = os.path.realpath(path)

    def on_connect(connection: Any, _record: Any) -> None:
        if not isinstance(connection, sqlite3.Connection):  # another database's connection
            return
        cursor = connection.cursor()
        try:
            files = {os.path.realpath(row[2]) for row in cursor.execute("PRAGMA database_list")
                     if row[2]}
            if target in files:
                cursor.execute("PRAGMA synchronous=OFF")
                cursor.execute("PRAGMA journal_mode=MEMORY")
        finally:
            cursor.close()

    sqlalchemy.event.listen(sqlalchemy.engine.Engine, "connect", on_connect)
    try:
        yield
    finally:
        sqlalchemy.event.remove(sqlalchemy.engine.Engine, "connect", on_connect)


def _create_schema(tmp: Path) -> None:
    """Create every MLflow table in ``tmp`` (MLflow's own migrations, to the head revision).

    ``tmp`` is renamed into place only once complete, so its migrations need not reach
    the disk one by one (SQLite syncs every commit, some seventy here): they run
    without syncing (:func:`_unsynced`) and the finished file is synced once.
    """
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    tmp.unlink(missing_ok=True)
    with quiet_mlflow(), _unsynced(tmp):
        store = SqlAlchemyStore(f"sqlite:///{tmp.as_posix()}", tmp.parent.as_uri())
        store.engine.dispose()
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    if not schema_is_complete(tmp):
        raise RegistryError(f"creating the model registry schema in '{tmp}' did not finish.")
