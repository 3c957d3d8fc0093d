"""Experiment tracking and the model registry, on MLflow (SQLite by default).

:class:`ModelRegistry` logs one MLflow run per training (parameters, metrics,
report files, and the model as a pyfunc defined *from code* in
:mod:`crimecast.registry.pyfunc_model`, so no pickle of crimecast code is stored),
registers runs as new, never-overwritten versions of ``crimecast-hotspots``
tagged ``approval_status=PendingManualApproval``, promotes a version by moving an
alias (``champion``) to it, and resolves model references to local files.
Everything is local by default: ``<state_dir>/mlflow.db`` and artifacts under
``<state_dir>/mlartifacts``. MLflow is imported lazily (importing it is slow).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from crimecast.errors import RegistryError
from crimecast.registry.artifacts import download_once, saved_model_dir
from crimecast.registry.database import database_path, ensure_database, exclusive_lock
from crimecast.registry.mlflow_values import (
    as_tags,
    clean_metrics,
    clean_params,
    error_code,
    pins_trusted,
    pip_requirements,
    quiet_mlflow,
)
from crimecast.registry.versions import APPROVAL_TAG, ModelVersionInfo, ResolvedModel

if TYPE_CHECKING:
    from mlflow import MlflowClient

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "crimecast-hotspots"
DEFAULT_EXPERIMENT = "crimecast"
DEFAULT_ALIAS = "champion"
STATE_DIR_ENV = "CRIMECAST_STATE_DIR"
MODEL_ARTIFACT = "model"  # the logged model's name inside a run: runs:/<run_id>/model
MODEL_ID_TAG = "crimecast.model_id"  # run tag: the MLflow LoggedModel id of the run's model
STEP_KEY_TAG = "crimecast.step_key"  # run and version tag: the register step's cache key
WRITE_LOCK = ".write.lock"

PENDING_APPROVAL = "PendingManualApproval"
APPROVED = "Approved"
PYFUNC_CODE = Path(__file__).with_name("pyfunc_model.py")
INPUT_EXAMPLE_ROWS = 5
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_MISSING = "RESOURCE_DOES_NOT_EXIST"


def default_state_dir() -> Path:
    """The registry's state directory: ``$CRIMECAST_STATE_DIR`` or ``./runs/.mlflow``."""
    return Path(os.environ.get(STATE_DIR_ENV) or Path("runs") / ".mlflow")


def tracking_uri_for(state_dir: Path) -> str:
    """The SQLite tracking URI ``sqlite:///<absolute state_dir>/mlflow.db``."""
    return f"sqlite:///{(Path(state_dir).absolute() / 'mlflow.db').as_posix()}"


class ModelRegistry:
    """Tracking runs and versioned, alias-promoted models in one MLflow store."""

    def __init__(self, tracking_uri: str | None = None, state_dir: Path | None = None,
                 experiment: str = DEFAULT_EXPERIMENT,
                 model_name: str = DEFAULT_MODEL_NAME) -> None:
        if state_dir is None and tracking_uri and tracking_uri.startswith("sqlite:///"):
            state_dir = Path(tracking_uri.removeprefix("sqlite:///")).parent
        self.state_dir = Path(state_dir or default_state_dir()).absolute()
        self.tracking_uri = tracking_uri or tracking_uri_for(self.state_dir)
        self.experiment = experiment
        self.model_name = model_name
        self._experiment_id: str | None = None
        self._client_obj: MlflowClient | None = None

    @property
    def _client(self) -> MlflowClient:
        """A client of an existing store (reads never create one)."""
        return self._connect(create=False)

    def _connect(self, *, create: bool) -> MlflowClient:
        """Open the store; a SQLite one is created atomically when ``create`` (writes)."""
        if self._client_obj is None:
            from mlflow import MlflowClient

            database = database_path(self.tracking_uri)
            if database is not None:
                if not create and not database.is_file():
                    raise RegistryError(
                        f"no model registry at '{database}'. Check --runs-dir (or "
                        "--tracking-uri), or run crimecast run first to create one.")
                ensure_database(database)
            with quiet_mlflow():
                self._client_obj = MlflowClient(self.tracking_uri,
                                                registry_uri=self.tracking_uri)
        return self._client_obj

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Serialise writers of one local store across processes (an exclusive file lock).

        Two runs registering at once into one runs folder then take turns: the second
        finds the first's version (see :meth:`find_logged_run`) instead of racing it.
        """
        database = database_path(self.tracking_uri)
        if database is None:
            self._connect(create=True)
            yield
            return
        with exclusive_lock(database.with_name(WRITE_LOCK)):
            self._connect(create=True)
            yield

    @contextlib.contextmanager
    def activated(self) -> Iterator[None]:
        """Point MLflow's global tracking URI at this store inside the block, then restore it.

        For fluent MLflow calls, e.g. ``mlflow.pyfunc.load_model("models:/NAME@champion")``.
        """
        import mlflow

        previous = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
        mlflow.set_tracking_uri(self.tracking_uri)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(previous)  # type: ignore[arg-type]  # None unsets it

    def experiment_id(self) -> str:
        """The experiment's id; created when missing, with artifacts under the state dir."""
        if self._experiment_id is None:
            client = self._connect(create=True)
            with quiet_mlflow():
                found = client.get_experiment_by_name(self.experiment)
                if found is None:
                    location = None
                    if self.tracking_uri.startswith(("sqlite:", "file:")):
                        slug = re.sub(r"[^\w.-]+", "_", self.experiment)
                        location = (self.state_dir / "mlartifacts" / slug).as_uri()
                    self._experiment_id = str(client.create_experiment(
                        self.experiment, artifact_location=location))
                else:
                    if found.lifecycle_stage == "deleted":
                        client.restore_experiment(found.experiment_id)
                    self._experiment_id = str(found.experiment_id)
        return self._experiment_id

    def log_run(self, *, run_name: str, params: Mapping[str, Any],
                metrics: Mapping[str, float | None], artifacts: Mapping[str, Path],
                model_dir: Path, input_example: pl.DataFrame, tags: Mapping[str, str]) -> str:
        """Log one training run with its model (a pyfunc from code); returns the run id.

        ``artifacts`` maps a name inside the run (``evaluation.json``…) to a local
        file or directory. The saved model in ``model_dir`` is loaded (verifying its
        hashes) and scores the first rows of ``input_example``, its feature columns
        only, to infer the signature; those rows are the logged input example.
        """
        import mlflow
        from mlflow.models import infer_signature

        from crimecast.models.storage import load_model
        from crimecast.registry.pyfunc_model import MODEL_ARTIFACT_KEY, predict_frame

        for name in artifacts:
            if not name or Path(name).is_absolute() or ".." in Path(name).parts:
                raise RegistryError(f"artifact name '{name}' must be a relative path "
                                    "without '..'.")
        model = load_model(Path(model_dir))
        if input_example.height == 0:
            raise RegistryError("input_example has no rows; pass a few feature rows.")
        head = input_example.head(INPUT_EXAMPLE_ROWS)
        predictions = predict_frame(model, head)  # names any missing feature column
        # Models read every feature as float, so the signature says double throughout:
        # integer columns would reject JSON ints (int64) and nulls (float) when serving.
        example_pd = head.select(pl.col(model.feature_names).cast(pl.Float64)).to_pandas()
        experiment_id = self.experiment_id()
        with self.activated(), quiet_mlflow(), pins_trusted(), \
                tempfile.TemporaryDirectory() as staging:
            for name, source in artifacts.items():
                target = Path(staging) / name
                target.parent.mkdir(parents=True, exist_ok=True)
                copy = shutil.copytree if Path(source).is_dir() else shutil.copy2
                copy(source, target)
            run = mlflow.start_run(experiment_id=experiment_id, run_name=run_name,
                                   tags=as_tags(tags))
            try:
                mlflow.log_params(clean_params(params))
                mlflow.log_metrics(clean_metrics(metrics))
                mlflow.log_artifacts(staging)
                info = mlflow.pyfunc.log_model(
                    name=MODEL_ARTIFACT, python_model=str(PYFUNC_CODE),  # from code: no pickle
                    artifacts={MODEL_ARTIFACT_KEY: str(Path(model_dir).absolute())},
                    signature=infer_signature(example_pd, predictions),
                    input_example=example_pd, pip_requirements=pip_requirements())
                mlflow.set_tag(MODEL_ID_TAG, info.model_id)
                mlflow.end_run()
            except BaseException:
                self._discard_run(str(run.info.run_id), run.info.artifact_uri)
                raise
        run_id = str(run.info.run_id)
        logger.info("logged run %s (%s), model %s", run_id, run_name, info.model_id)
        return run_id

    def _discard_run(self, run_id: str, artifact_uri: str | None) -> None:
        """Remove a run whose logging failed (a full disk…): no half-logged run remains."""
        import mlflow

        with contextlib.suppress(Exception):
            mlflow.end_run(status="FAILED")
        with contextlib.suppress(Exception), quiet_mlflow():
            self._client.delete_run(run_id)
        if artifact_uri and artifact_uri.startswith("file://"):
            shutil.rmtree(Path(artifact_uri.removeprefix("file://")), ignore_errors=True)

    def find_logged_run(self, step_key: str) -> str | None:
        """The finished run an earlier register step with cache key ``step_key`` logged.

        A run killed after logging (or after registering) is found again on resume, so
        the resumed step neither logs nor registers the same model twice.
        """
        client = self._connect(create=True)
        with quiet_mlflow():
            runs = client.search_runs(
                [self.experiment_id()], f"tags.`{STEP_KEY_TAG}` = '{step_key}' "
                "and attributes.status = 'FINISHED'", max_results=10,
                order_by=["attributes.start_time ASC"])
        for run in runs:
            if run.data.tags.get(MODEL_ID_TAG):
                return str(run.info.run_id)
        return None

    def find_version(self, step_key: str) -> ModelVersionInfo | None:
        """The version an earlier register step with cache key ``step_key`` created, if any."""
        found = [info for info in self.list_versions() if info.tags.get(STEP_KEY_TAG) == step_key]
        return min(found, key=lambda info: info.version) if found else None

    def _run_tags(self, run_id: str) -> dict[str, str]:
        try:
            with quiet_mlflow():
                tags = as_tags(self._client.get_run(run_id).data.tags)
        except Exception as exc:
            if error_code(exc) == _MISSING:
                raise RegistryError(f"run '{run_id}' does not exist in {self.tracking_uri}. "
                                    "Run crimecast models list.") from exc
            raise
        if not tags.get(MODEL_ID_TAG):
            raise RegistryError(f"run '{run_id}' has no logged crimecast model "
                                f"(tag {MODEL_ID_TAG} is missing).")
        return tags

    def register(self, run_id: str, *, tags: Mapping[str, str]) -> int:
        """Register ``runs:/<run_id>/model`` as a new version; returns its number.

        The version gets ``approval_status=PendingManualApproval`` plus ``tags``
        in the same transaction; if any step fails after the version exists, it is
        deleted again, so no half-registered version remains.
        """
        model_id = self._run_tags(run_id)[MODEL_ID_TAG]
        wanted = as_tags(tags)
        if wanted.get(APPROVAL_TAG, PENDING_APPROVAL) != PENDING_APPROVAL:
            logger.warning("ignoring tag %s=%s: new versions start as %s", APPROVAL_TAG,
                           wanted[APPROVAL_TAG], PENDING_APPROVAL)
        wanted[APPROVAL_TAG] = PENDING_APPROVAL
        client, version = self._client, None
        try:
            with self.activated(), quiet_mlflow():  # the SQL registry resolves models:/ globally
                try:
                    client.create_registered_model(self.model_name)
                except Exception as exc:
                    if error_code(exc) not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
                        raise
                created = client.create_model_version(
                    self.model_name, source=f"models:/{model_id}", run_id=run_id,
                    tags=wanted, model_id=model_id)
                version = str(created.version)
                stored = client.get_model_version(self.model_name, version)
            if stored.status != "READY" or any(stored.tags.get(k) != v for k, v in wanted.items()):
                raise RegistryError(f"version {version} of '{self.model_name}' was not "
                                    f"registered completely (status {stored.status}).")
        except Exception as exc:
            if version is not None:
                with contextlib.suppress(Exception), quiet_mlflow():
                    client.delete_model_version(self.model_name, version)
            if isinstance(exc, RegistryError):
                raise
            raise RegistryError(f"could not register run '{run_id}' as a new version of "
                                f"'{self.model_name}': {exc}") from exc
        logger.info("registered run %s as version %s of %s", run_id, version, self.model_name)
        return int(version)

    def list_versions(self, name: str | None = None) -> list[ModelVersionInfo]:
        """Every version of the model (default ``model_name``), newest first; [] if none."""
        name = name or self.model_name
        client = self._client
        with quiet_mlflow():
            try:
                aliases = dict(client.get_registered_model(name).aliases)
            except Exception as exc:
                if error_code(exc) == _MISSING:
                    return []
                raise
            found: list[Any] = []
            token = None
            while True:
                page = client.search_model_versions(f"name = '{name}'", page_token=token)
                found.extend(page)
                if not (token := page.token):
                    break
        return sorted(
            (ModelVersionInfo(
                version=int(mv.version), run_id=mv.run_id or None, status=str(mv.status),
                aliases=tuple(sorted(a for a, v in aliases.items() if str(v) == str(mv.version))),
                tags=as_tags(mv.tags),
                created_at=datetime.fromtimestamp(mv.creation_timestamp / 1000, tz=UTC))
             for mv in found),
            key=lambda info: info.version, reverse=True)

    def _no_such_version(self, version: object, name: str | None = None) -> RegistryError:
        name = name or self.model_name
        existing = sorted(info.version for info in self.list_versions(name))
        return RegistryError(f"model version {version} of '{name}' does not exist; "
                             f"versions: {existing}. Run crimecast models list.")

    def get_version(self, version: int) -> ModelVersionInfo:
        """One version's details; :class:`RegistryError` listing the versions if unknown."""
        for info in self.list_versions():
            if info.version == int(version):
                return info
        raise self._no_such_version(version)

    def promote(self, version: int, alias: str = DEFAULT_ALIAS, by: str | None = None,
                reason: str | None = None) -> ModelVersionInfo:
        """Move ``alias`` to ``version`` and tag it ``approval_status=Approved``, with who
        promoted it and why (``approved_by``, ``approved_reason``); the promotion is also
        appended to ``<state_dir>/promotions.jsonl``.

        A version whose ``gate`` tag is present and neither ``passed`` nor ``champion``
        (the best validated forecaster, registered with ``--register-best``) is refused.
        """
        info = self.get_version(version)
        if info.tags.get("gate", "passed") not in ("passed", "champion"):
            raise RegistryError(f"model version {version} of '{self.model_name}' did not pass "
                                f"the evaluation gate (gate={info.tags['gate']}); "
                                "it cannot be promoted.")
        previous = next((v.version for v in self.list_versions() if alias in v.aliases), None)
        approval = {APPROVAL_TAG: APPROVED, "approved_alias": alias,
                    "approved_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "approved_by": by or getpass.getuser(), "approved_reason": reason or ""}
        self._set_alias(info.version, alias, approval)
        record = {**approval, "model_name": self.model_name, "version": info.version,
                  "replaced_version": previous}
        with open(self.state_dir / "promotions.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        logger.info("promoted version %s of %s to @%s", version, self.model_name, alias)
        return self.get_version(version)

    def set_alias(self, version: int, alias: str) -> ModelVersionInfo:
        """Point ``alias`` (e.g. ``challenger``) at ``version`` without approving it."""
        info = self.get_version(version)
        self._set_alias(info.version, alias, {})
        return self.get_version(version)

    def _set_alias(self, version: int, alias: str, tags: Mapping[str, str]) -> None:
        client, number = self._client, str(version)
        try:
            with self.writing(), quiet_mlflow():
                client.set_registered_model_alias(self.model_name, alias, number)
                for key, value in tags.items():
                    client.set_model_version_tag(self.model_name, number, key, value)
        except Exception as exc:
            raise RegistryError(f"could not move alias '{alias}' of '{self.model_name}' to "
                                f"version {version}: {exc}") from exc

    def resolve(self, ref: str) -> ResolvedModel:
        """Resolve ``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` or a run id to local files.

        The run's artifacts and its model are downloaded once, into
        ``<state_dir>/cache/<run_id>/``, and reused afterwards.
        """
        ref, version = ref.strip(), None
        body = ref.removeprefix("models:/")
        if ref.startswith("models:/") and "@" in body:
            name, alias = body.rsplit("@", 1)
            try:
                with quiet_mlflow():
                    mv = self._client.get_model_version_by_alias(name, alias)
            except Exception as exc:
                if error_code(exc) not in (_MISSING, "INVALID_PARAMETER_VALUE"):
                    raise
                raise RegistryError(f"no version of '{name}' has the alias '{alias}'. "
                                    "Run crimecast models promote VERSION first.") from exc
        elif ref.startswith("models:/") and body.rpartition("/")[2].isdigit():
            name, _, number = body.rpartition("/")
            try:
                with quiet_mlflow():
                    mv = self._client.get_model_version(name, number)
            except Exception as exc:
                if error_code(exc) != _MISSING:
                    raise
                raise self._no_such_version(number, name) from exc
        elif _RUN_ID.match(ref):
            run_id, tags = ref, self._run_tags(ref)
            model_uri = f"models:/{tags[MODEL_ID_TAG]}"
            tags = {k: v for k, v in tags.items() if not k.startswith("mlflow.")}
        else:
            raise RegistryError(f"cannot resolve '{ref}': use models:/NAME@ALIAS, "
                                "models:/NAME/VERSION or a 32-character run id.")
        if ref.startswith("models:/"):
            version, run_id, tags, model_uri = (int(mv.version), str(mv.run_id), as_tags(mv.tags),
                                                str(mv.source))
        cache = self.state_dir / "cache" / run_id
        artifacts_dir = download_once(cache / "run", self.tracking_uri, run_id=run_id)
        pyfunc_dir = download_once(cache / "model", self.tracking_uri, artifact_uri=model_uri)
        return ResolvedModel(run_id=run_id, version=version, model_dir=saved_model_dir(pyfunc_dir),
                             artifacts_dir=artifacts_dir, tags=tags, pyfunc_dir=pyfunc_dir)
