"""Records the registry returns: registered versions and resolved model references."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

APPROVAL_TAG = "approval_status"


@dataclass(frozen=True)
class ModelVersionInfo:
    """One registered version of the model."""

    version: int
    run_id: str | None
    status: str
    aliases: tuple[str, ...]
    tags: dict[str, str] = field(hash=False)
    created_at: datetime

    @property
    def approval_status(self) -> str | None:
        """The ``approval_status`` tag (``PendingManualApproval`` or ``Approved``)."""
        return self.tags.get(APPROVAL_TAG)


@dataclass(frozen=True)
class ResolvedModel:
    """A model reference resolved to downloaded local files.

    ``model_dir`` is the saved crimecast model (for ``storage.load_model``),
    ``artifacts_dir`` the run's report files, ``pyfunc_dir`` the MLflow model
    (for ``mlflow.pyfunc.load_model``); ``version`` is None for a bare run id.
    """

    run_id: str
    version: int | None
    model_dir: Path
    artifacts_dir: Path
    tags: dict[str, str] = field(hash=False)
    pyfunc_dir: Path
