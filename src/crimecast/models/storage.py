"""Saving and loading models without pickle, with integrity hashes.

Each model directory holds ``model.json`` (type, features, parameters and the
SHA-256 of every other file) and the estimator in its library's own format:
XGBoost ``.ubj``, LightGBM ``.txt``, CatBoost ``.cbm``; scikit-learn and
imbalanced-learn objects (and the fitted preprocessing) as ``.skops``, loaded
only after checking that every type in the file comes from an allow-listed
package. :func:`load_model` verifies the hashes before reading anything else.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from crimecast import __version__
from crimecast.errors import ModelError, ModelIntegrityError
from crimecast.models.estimators import HotspotModel
from crimecast.models.naive import ColumnForecaster, EnsembleForecaster, Forecaster

logger = logging.getLogger(__name__)

MANIFEST = "model.json"
FORMAT_VERSION = 1
TRUSTED_PREFIXES = ("sklearn.", "imblearn.", "numpy.", "builtins.", "scipy.")
NATIVE_FILES = {"xgboost": "estimator.ubj", "lightgbm": "estimator.txt",
                "catboost": "estimator.cbm"}

AnyModel = Forecaster


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _dump_skops(obj: Any, path: Path) -> None:
    import skops.io as sio

    sio.dump(obj, path)


def _load_skops(path: Path) -> Any:
    import skops.io as sio

    untrusted = sio.get_untrusted_types(file=path)
    refused = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
    if refused:
        raise ModelIntegrityError(
            f"model file '{path}' contains types outside the allow-list: {refused}. "
            "Only scikit-learn, imbalanced-learn, numpy and scipy objects are loaded."
        )
    return sio.load(path, trusted=untrusted)


def save_model(model: AnyModel, directory: Path) -> dict[str, Any]:
    """Write ``model`` to ``directory`` (pickle-free) and return its manifest."""
    directory.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "crimecast_version": __version__,
        "model_type": model.model_type,
        "feature_names": list(model.feature_names),
    }
    if isinstance(model, ColumnForecaster):
        manifest.update(kind="column", column=model.column, coef=model.coef_,
                        intercept=model.intercept_)
    elif isinstance(model, EnsembleForecaster):
        parts = {"learned": save_model(model.learned, directory / "learned"),
                 "naive": save_model(model.naive, directory / "naive")}
        manifest.update(kind="ensemble", weight=model.weight, scales=list(model.scales),
                        coef=model.coef_, intercept=model.intercept_,
                        parts={k: v["model_type"] for k, v in parts.items()})
        for part in ("learned", "naive"):
            files[part] = directory / part / MANIFEST
    else:
        if model.estimator_ is None:
            raise ModelError("cannot save an unfitted model; call fit() first.")
        manifest.update(kind="learned", params=model.params, imbalance=model.imbalance,
                        random_state=model.random_state, objective=model.objective,
                        calibration=list(model.calibration_))
        if model.preprocessor_ is not None:
            files["preprocessor"] = directory / "preprocessor.skops"
            _dump_skops(model.preprocessor_, files["preprocessor"])
        native = NATIVE_FILES.get(model.model_type)
        files["estimator"] = directory / (native or "estimator.skops")
        if model.model_type == "lightgbm":
            booster = getattr(model.estimator_, "booster_", model.estimator_)
            booster.save_model(str(files["estimator"]))
        elif native:
            model.estimator_.save_model(str(files["estimator"]))
        else:
            _dump_skops(model.estimator_, files["estimator"])
    manifest["files"] = {str(p.relative_to(directory)): file_sha256(p) for p in files.values()}
    tmp = directory / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    tmp.replace(directory / MANIFEST)
    return manifest


def read_manifest(directory: Path) -> dict[str, Any]:
    """Read ``model.json`` with a clear error when it is missing or broken."""
    path = directory / MANIFEST
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ModelError(f"'{directory}' is not a crimecast model directory (no {MANIFEST}).") \
            from exc
    except json.JSONDecodeError as exc:
        raise ModelIntegrityError(f"'{path}' is not valid JSON: {exc.msg}.") from exc
    return manifest


def verify_files(directory: Path, manifest: dict[str, Any]) -> None:
    """Check every recorded file's SHA-256; raise :class:`ModelIntegrityError` on mismatch."""
    for name, expected in manifest.get("files", {}).items():
        path = directory / name
        if not path.is_file():
            raise ModelIntegrityError(f"model file '{path}' is missing; the model is incomplete.")
        actual = file_sha256(path)
        if actual != expected:
            raise ModelIntegrityError(
                f"model file '{path}' has sha256 {actual[:12]}…, but {MANIFEST} records "
                f"{expected[:12]}…; the file was changed or corrupted. Re-train or re-download."
            )


def load_model(directory: Path | str) -> AnyModel:
    """Load a saved model after verifying its recorded hashes."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    verify_files(directory, manifest)
    kind = manifest.get("kind")
    if kind in ("column", "baseline"):
        column = ColumnForecaster(manifest["model_type"])
        column.coef_, column.intercept_ = manifest["coef"], manifest["intercept"]
        return column
    if kind == "ensemble":
        learned, naive = load_model(directory / "learned"), load_model(directory / "naive")
        if not isinstance(learned, HotspotModel) or not isinstance(naive, ColumnForecaster):
            raise ModelIntegrityError(f"ensemble '{directory}' must hold a learned and a naive "
                                      "part; re-train it.")
        scales = manifest["scales"]
        ensemble = EnsembleForecaster(learned, naive, manifest["weight"],
                                      (float(scales[0]), float(scales[1])))
        ensemble.coef_, ensemble.intercept_ = manifest["coef"], manifest["intercept"]
        return ensemble
    model = HotspotModel(manifest["model_type"], manifest["feature_names"],
                         manifest.get("params"), manifest.get("imbalance", "none"),
                         manifest.get("random_state", 42), manifest.get("objective", "binary"))
    calibration = manifest.get("calibration", [1.0, 0.0])
    model.calibration_ = (float(calibration[0]), float(calibration[1]))
    files = manifest["files"]
    if "preprocessor.skops" in files:
        model.preprocessor_ = _load_skops(directory / "preprocessor.skops")
    kind = model.model_type
    path = directory / (NATIVE_FILES.get(kind) or "estimator.skops")
    if kind == "xgboost":
        import xgboost

        model.estimator_ = {"binary": xgboost.XGBClassifier, "poisson": xgboost.XGBRegressor,
                            "lambdarank": xgboost.XGBRanker}[model.objective]()
        model.estimator_.load_model(str(path))
    elif kind == "lightgbm":
        import lightgbm

        model.estimator_ = lightgbm.Booster(model_file=str(path))
    elif kind == "catboost":
        import catboost

        model.estimator_ = (catboost.CatBoostClassifier() if model.objective == "binary"
                            else catboost.CatBoostRegressor())
        model.estimator_.load_model(str(path))
    else:
        model.estimator_ = _load_skops(path)
    return model
