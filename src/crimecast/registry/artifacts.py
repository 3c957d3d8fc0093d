"""Downloading a registered run's files once into the local cache, atomically."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from crimecast.errors import RegistryError
from crimecast.registry.mlflow_values import quiet_mlflow


def download_once(target: Path, tracking_uri: str, *, run_id: str | None = None,
                  artifact_uri: str | None = None) -> Path:
    """Download into ``target`` unless it exists (atomically, via a temporary sibling)."""
    if target.is_dir():
        return target
    import mlflow
    from mlflow.artifacts import download_artifacts

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    previous = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    try:
        mlflow.set_tracking_uri(tracking_uri)  # models:/<id> is looked up globally
        with quiet_mlflow():
            download_artifacts(artifact_uri=artifact_uri, run_id=run_id,
                               artifact_path=None if artifact_uri else "",
                               dst_path=str(tmp), tracking_uri=tracking_uri,
                               registry_uri=tracking_uri)
        try:
            tmp.rename(target)
        except OSError:  # another process finished the same download first
            shutil.rmtree(tmp, ignore_errors=True)
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise
        raise RegistryError(f"could not download {artifact_uri or f'run {run_id}'} "
                            f"from {tracking_uri}: {exc}") from exc
    finally:
        mlflow.set_tracking_uri(previous)  # type: ignore[arg-type]  # None unsets it
    return target


def saved_model_dir(pyfunc_dir: Path) -> Path:
    """The crimecast model directory inside a downloaded pyfunc model."""
    from mlflow.models import Model

    from crimecast.registry.pyfunc_model import MODEL_ARTIFACT_KEY

    with quiet_mlflow():
        flavor = Model.load(str(pyfunc_dir)).flavors.get("python_function", {})
    relative = flavor.get("artifacts", {}).get(MODEL_ARTIFACT_KEY, {}).get("path")
    if not relative:
        raise RegistryError(f"'{pyfunc_dir}' is not a crimecast pyfunc model "
                            "(its MLmodel has no 'model' artifact).")
    return pyfunc_dir / relative
