"""The SageMaker container contract: where things are, what the jobs receive, how they fail.

SageMaker runs the image built from the repository's ``Dockerfile`` and mounts
everything under ``/opt/ml``:

* processing jobs read ``/opt/ml/processing/input/<name>/`` and write
  ``/opt/ml/processing/output/<name>/`` (the evaluation writes
  ``/opt/ml/processing/evaluation/``); a failure message goes to
  ``/opt/ml/output/message`` (DescribeProcessingJob's ``ExitMessage``);
* training jobs read channels from ``SM_CHANNEL_<NAME>`` (set by the SageMaker
  training toolkit; ``/opt/ml/input/data/<name>`` otherwise), hyper-parameters
  from ``/opt/ml/input/config/hyperparameters.json`` (every value a string), and
  write the model to ``SM_MODEL_DIR`` (``/opt/ml/model``), which SageMaker tars
  into ``model.tar.gz``; a failure message goes to ``/opt/ml/output/failure``.

The root is ``/opt/ml`` unless ``CRIMECAST_CONTAINER_ROOT`` (or ``--root``) says
otherwise, so tests run every step against a temporary folder laid out the same.

Every job also receives the *pipeline bundle*, ``pipeline_config.json``: the
typed settings, schema and options that ``crimecast run`` would use, written by
``crimecast sagemaker export``/``upsert``. Pipeline parameters chosen at execution
time (model type, split ratio, SMOTE, F1 threshold) override it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crimecast.config import Settings
from crimecast.errors import ConfigError, PipelineError
from crimecast.pipeline.runner import code_version

logger = logging.getLogger(__name__)

ROOT_ENV = "CRIMECAST_CONTAINER_ROOT"
DEFAULT_ROOT = Path("/opt/ml")
BUNDLE_FILE = "pipeline_config.json"
BUNDLE_FORMAT = 1
LINEAGE_FILE = "lineage.json"
PROVENANCE_SUFFIX = ".provenance.json"


@dataclass(frozen=True)
class ContainerPaths:
    """The ``/opt/ml`` tree (or a stand-in rooted elsewhere)."""

    root: Path

    @classmethod
    def resolve(cls, root: Path | str | None = None) -> ContainerPaths:
        """``root``, else ``$CRIMECAST_CONTAINER_ROOT``, else ``/opt/ml``."""
        chosen = root or os.environ.get(ROOT_ENV) or DEFAULT_ROOT
        return cls(Path(chosen))

    def processing_input(self, name: str) -> Path:
        """``/opt/ml/processing/input/<name>``."""
        return self.root / "processing" / "input" / name

    def processing_output(self, name: str) -> Path:
        """``/opt/ml/processing/output/<name>``."""
        return self.root / "processing" / "output" / name

    @property
    def evaluation_dir(self) -> Path:
        """``/opt/ml/processing/evaluation``: where ``evaluation.json`` goes."""
        return self.root / "processing" / "evaluation"

    @property
    def hyperparameters(self) -> Path:
        """``/opt/ml/input/config/hyperparameters.json``."""
        return self.root / "input" / "config" / "hyperparameters.json"

    def channel(self, name: str) -> Path:
        """A training channel: ``$SM_CHANNEL_<NAME>`` or ``/opt/ml/input/data/<name>``."""
        env = os.environ.get(f"SM_CHANNEL_{name.upper()}")
        return Path(env) if env else self.root / "input" / "data" / name

    @property
    def model_dir(self) -> Path:
        """``$SM_MODEL_DIR`` or ``/opt/ml/model``."""
        env = os.environ.get("SM_MODEL_DIR")
        return Path(env) if env else self.root / "model"

    def failure_file(self, training: bool) -> Path:
        """Where SageMaker looks for the reason a job failed."""
        return self.root / "output" / ("failure" if training else "message")


@dataclass(frozen=True)
class PipelineBundle:
    """What every job needs besides its inputs: the settings and the run options."""

    settings: Settings
    schema: str
    tune: int
    bootstrap_resamples: int
    code_version: str
    schema_map: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON payload written to ``pipeline_config.json``."""
        return {"format": BUNDLE_FORMAT,
                "settings": self.settings.model_dump(mode="json", by_alias=True),
                "schema": self.schema, "schema_map": self.schema_map, "tune": self.tune,
                "bootstrap_resamples": self.bootstrap_resamples,
                "code_version": self.code_version}

    def to_bytes(self) -> bytes:
        """Canonical bytes (sorted keys), so equal bundles have equal digests."""
        return (json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n").encode()

    def digest(self) -> str:
        """Short SHA-256 of :meth:`to_bytes`; part of the bundle's S3 key."""
        return hashlib.sha256(self.to_bytes()).hexdigest()[:16]


def make_bundle(settings: Settings, schema: str, tune: int = 0,
                bootstrap_resamples: int = 200) -> PipelineBundle:
    """Bundle the settings and options of a local ``crimecast run`` for the containers.

    A YAML column map (``--schema MAP.yaml``) is embedded, since the jobs cannot
    read the caller's files.
    """
    schema_map = None
    if schema.endswith((".yaml", ".yml")):
        path = Path(schema)
        if not path.is_file():
            raise ConfigError(f"--schema '{schema}' is not a readable column map file. Pass "
                              "--schema auto, lapd, generic or an existing MAP.yaml.")
        schema_map = path.read_text(encoding="utf-8")
    if tune < 0:
        raise ConfigError(f"tune must be >= 0 Optuna trials; got {tune}. Pass --tune 0.")
    return PipelineBundle(settings=settings, schema=schema, tune=tune,
                          bootstrap_resamples=bootstrap_resamples, code_version=code_version(),
                          schema_map=schema_map)


def read_bundle(path: Path) -> PipelineBundle:
    """Read ``pipeline_config.json`` (a file, or a folder holding it)."""
    file = path if path.suffix == ".json" else path / BUNDLE_FILE
    try:
        payload = json.loads(file.read_text())
    except FileNotFoundError:
        raise PipelineError(f"pipeline bundle '{file}' is missing. The job needs the "
                            f"{BUNDLE_FILE} that crimecast sagemaker upsert uploads; "
                            "re-run upsert.") from None
    except json.JSONDecodeError as exc:
        raise PipelineError(f"pipeline bundle '{file}' is not valid JSON: {exc.msg}. "
                            "Re-run crimecast sagemaker upsert.") from None
    if payload.get("format") != BUNDLE_FORMAT:
        raise PipelineError(f"pipeline bundle '{file}' has format {payload.get('format')!r}; "
                            f"this crimecast reads format {BUNDLE_FORMAT}. Re-run crimecast "
                            "sagemaker upsert with the image's crimecast version.")
    bundle = PipelineBundle(
        settings=Settings.model_validate(payload["settings"]), schema=payload["schema"],
        tune=int(payload["tune"]), bootstrap_resamples=int(payload["bootstrap_resamples"]),
        code_version=payload["code_version"], schema_map=payload.get("schema_map"))
    if bundle.code_version != code_version():
        logger.warning("the pipeline was exported by crimecast %s but this image runs %s; "
                       "results may differ from a local run", bundle.code_version,
                       code_version())
    return bundle


@dataclass(frozen=True)
class RuntimeParams:
    """Pipeline parameters chosen at execution time (None: keep the bundle's value)."""

    model_type: str | None = None
    train_test_split_ratio: float | None = None
    use_smote: bool | None = None
    f1_threshold: float | None = None

    @classmethod
    def parse(cls, values: Mapping[str, Any]) -> RuntimeParams:
        """Parse string values as SageMaker passes them (hyper-parameters, arguments)."""
        known = {"model_type", "train_test_split_ratio", "use_smote", "f1_threshold"}
        given = {k: v for k, v in values.items() if k in known and v is not None}
        return cls(
            model_type=str(given["model_type"]) if "model_type" in given else None,
            train_test_split_ratio=parse_float("train_test_split_ratio",
                                               given.get("train_test_split_ratio")),
            use_smote=parse_bool("use_smote", given.get("use_smote")),
            f1_threshold=parse_float("f1_threshold", given.get("f1_threshold")),
        )

    def apply(self, settings: Settings) -> Settings:
        """Override the settings' pipeline section (validated like CLI flags)."""
        return settings.with_overrides(
            "pipeline", model_type=self.model_type, use_smote=self.use_smote,
            train_test_split_ratio=self.train_test_split_ratio, f1_threshold=self.f1_threshold)


def parse_float(name: str, value: Any) -> float | None:
    """A float from a SageMaker string value; None stays None."""
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number; got {value!r}. Pass e.g. "
                          f"{name}=0.8.") from None


def parse_bool(name: str, value: Any) -> bool | None:
    """A boolean from ``true``/``false`` (any case), ``1``/``0``, ``yes``/``no``."""
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ConfigError(f"{name} must be true or false; got {value!r}. Pass {name}=true or "
                      f"{name}=false.")


def read_hyperparameters(path: Path) -> dict[str, str]:
    """SageMaker's ``hyperparameters.json`` (values are strings); {} when absent."""
    if not path.is_file():
        return {}
    payload = json.loads(path.read_text())
    if not isinstance(payload, dict):
        raise PipelineError(f"'{path}' must hold a JSON object; got {type(payload).__name__}.")
    # SageMaker stores every value as a string; some SDKs JSON-quote them once more.
    return {str(k): _unquote(v) for k, v in payload.items()}


def _unquote(value: Any) -> str:
    text = str(value)
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


def data_files(directory: Path) -> list[Path]:
    """Incident files under a processing input, sorted; provenance sidecars are not data."""
    files = sorted(p for p in directory.rglob("*")
                   if p.is_file() and not p.name.endswith(PROVENANCE_SUFFIX))
    if not files:
        raise PipelineError(f"no incident files in '{directory}'. Point the InputDataUri "
                            "pipeline parameter at an S3 prefix or object holding the CSVs.")
    return files


def model_tree(directory: Path, scratch: Path) -> Path:
    """The training output as a folder: ``directory`` itself, or its extracted model.tar.gz."""
    if (directory / "train_info.json").is_file():
        return directory
    archives = sorted(directory.glob("*.tar.gz"))
    if len(archives) != 1:
        raise PipelineError(
            f"'{directory}' must hold the training job's model.tar.gz or its extracted "
            f"files (train_info.json, model/, baselines/); found "
            f"{sorted(p.name for p in directory.iterdir()) if directory.is_dir() else 'nothing'}."
            " Wire the Train step's ModelArtifacts.S3ModelArtifacts to this input.")
    target = scratch / "model"
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archives[0], "r:gz") as archive:
        archive.extractall(target, filter="data")
    if not (target / "train_info.json").is_file():
        raise PipelineError(f"'{archives[0]}' holds no train_info.json; it was not written "
                            "by crimecast's train entry point.")
    return target


def write_failure(paths: ContainerPaths, training: bool, message: str) -> None:
    """Leave the reason for SageMaker (first 1 KB is shown); never raise from here."""
    try:
        target = paths.failure_file(training)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(message[:1024], encoding="utf-8")
    except OSError as exc:
        logger.warning("could not write the failure message: %s", exc)
