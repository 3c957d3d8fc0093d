"""The crimecast exception hierarchy.

Every error a user can cause derives from :class:`CrimecastError`. Messages name
what was wrong (file, column, row or parameter), the rule, the value received and
how to fix it. The CLI prints the message and exits with code 2; it never shows a
traceback for one of these.
"""

from __future__ import annotations

import errno
import re


class CrimecastError(Exception):
    """Base class of every error crimecast raises on purpose."""


class ConfigError(CrimecastError):
    """A configuration value or YAML file is invalid."""


class DataError(CrimecastError):
    """Input data cannot be used."""


class DataFileError(DataError):
    """A data file is missing, unreadable, corrupt or wrongly encoded."""


class SchemaError(DataError):
    """A data file lacks required columns or has an unexpected layout."""


class MappingError(ConfigError):
    """A YAML column map is invalid or does not fit the data it is applied to."""


class CRSError(MappingError):
    """A coordinate reference system is unknown or cannot be transformed."""


class ReconciliationError(DataError):
    """Row accounting failed: rows in != rows clean + rows quarantined."""


class GenerationError(CrimecastError):
    """The synthetic generator was asked for something it cannot produce."""


class DependencyError(CrimecastError):
    """An optional dependency needed for the requested feature is not installed."""


class ModelError(CrimecastError):
    """A model cannot be built, trained, saved or loaded as asked."""


class ModelIntegrityError(ModelError):
    """A saved model's files do not match their recorded hashes."""


class RegistryError(CrimecastError):
    """The model registry refused an operation (unknown version, missing alias, ...)."""


class PipelineError(CrimecastError):
    """A pipeline step failed or its inputs are missing."""


class ServingError(CrimecastError):
    """The model server cannot answer a request; ``status`` is the HTTP status to send."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class StorageError(CrimecastError):
    """The operating system refused a write: a full disk, a read-only or forbidden path."""


# errno -> (what happened, what to do). EFBIG is what a file-size limit (ulimit -f) gives.
_STORAGE_ERRNOS = {
    errno.ENOSPC: ("No space left on device", "Free space on that disk or write elsewhere."),
    errno.EDQUOT: ("Disk quota exceeded", "Free space in your quota or write elsewhere."),
    errno.EFBIG: ("File too large", "Raise the file-size limit (ulimit -f) or write elsewhere."),
    errno.EROFS: ("Read-only file system", "Write to a writable folder instead."),
    errno.EACCES: ("Permission denied", "Fix the folder's permissions or write elsewhere."),
    errno.EPERM: ("Operation not permitted", "Fix the folder's permissions or write elsewhere."),
    errno.ENOTDIR: ("Not a directory", "Choose a path whose folders are folders."),
    errno.EISDIR: ("Is a directory", "Choose a file name, not a folder."),
}
_PERMISSION = (errno.EACCES, errno.EPERM)
# How SQLite and Rust (Polars) report the same failures in their own exception types.
_STORAGE_MESSAGES = (
    (re.compile(r"database or disk is full"), errno.ENOSPC),
    (re.compile(r"attempt to write a readonly database"), errno.EROFS),
    (re.compile(r"\(os error (\d+)\)"), None),
    (re.compile(r"\[Errno (\d+)\]"), None),
)


def as_storage_error(exc: BaseException, where: str | None = None, *,
                     permission: bool = True, named: str | None = None) -> StorageError | None:
    """A one-line :class:`StorageError` for a disk-full/read-only/permission failure, else None.

    Looks through the exception's causes, so an OSError wrapped by SQLAlchemy, MLflow or
    Polars is recognised too. ``where`` names the path when the exception does not;
    ``permission=False`` ignores permission errors (which reads raise too); ``named``
    names that path whatever the exception says (a temporary file's final name).
    """
    if isinstance(exc, StorageError) and named is None:
        return exc
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        code, path = _storage_errno(current)
        if code in _STORAGE_ERRNOS and (permission or code not in _PERMISSION):
            cause, fix = _STORAGE_ERRNOS[code]
            target = named or path or where
            place = f"'{target}'" if target else "the output folder"
            verb = "use" if code in _PERMISSION else "write"
            return StorageError(f"cannot {verb} {place}: {cause}. {fix}")
        current = current.__cause__ or current.__context__
    return None


def _storage_errno(exc: BaseException) -> tuple[int | None, str | None]:
    if isinstance(exc, OSError) and exc.errno is not None:
        return exc.errno, exc.filename if isinstance(exc.filename, str) else None
    text = str(exc)
    for pattern, code in _STORAGE_MESSAGES:
        found = pattern.search(text)
        if found:
            return (code if code is not None else int(found.group(1))), None
    return None, None
