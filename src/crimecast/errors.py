"""The crimecast exception hierarchy.

Every error a user can cause derives from :class:`CrimecastError`. Messages name
what was wrong (file, column, row or parameter), the rule, the value received and
how to fix it. The CLI prints the message and exits with code 2; it never shows a
traceback for one of these.
"""

from __future__ import annotations


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
