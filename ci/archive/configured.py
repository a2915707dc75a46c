"""Which log store a process archives to, and how: the archive's settings as the controller
and `ferry serve`'s local backend receive them (built by `ci.settings` from the `archive`
group), and the one place a store is opened from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ci.archive.directory import DirectoryStore
from ci.archive.retention import RetentionRules
from ci.archive.s3 import S3Settings, S3Store
from ci.archive.steps import DEFAULT_MAX_LOG_BYTES
from ci.archive.store import LogStore


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveSettings:
    # Exactly one of the two: a directory (a PersistentVolumeClaim's mount in a cluster) or
    # an S3-compatible bucket.
    directory: Path | None = None
    s3: S3Settings | None = field(default=None, repr=False)
    max_log_bytes: int = DEFAULT_MAX_LOG_BYTES
    retention: RetentionRules = field(default_factory=RetentionRules)
    # Seconds between retention passes (by the controller's leader only).
    retention_interval: float = 3600.0
    # Step logs read and stored at once; more wait, reporting never does.
    workers: int = 8
    # Seconds after a run ended before steps still not terminated are recorded as lost and
    # the run counts as archived (so pruning is never held back for ever).
    grace: float = 300.0

    def __post_init__(self) -> None:
        if (self.directory is None) == (self.s3 is None):
            raise ValueError("an archive needs exactly one store: a directory or an S3 bucket")

    @property
    def where(self) -> str:
        """The store, for logs and errors (never its credentials)."""
        if self.s3 is not None:
            return f"s3 bucket {self.s3.bucket} at {self.s3.endpoint_url}"
        return f"directory {self.directory}"


def open_store(settings: ArchiveSettings) -> LogStore:
    """The store the settings name; nothing is read or written yet."""
    if settings.s3 is not None:
        return S3Store(settings.s3)
    assert settings.directory is not None  # by __post_init__
    return DirectoryStore(settings.directory)
