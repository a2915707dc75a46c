"""Which log store a process archives to, and how: the archive's settings as the controller
and `ferry serve`'s local backend receive them (`archive_settings`, from the `archive` group of
`ci.settings`, which holds the defaults), and the one place a store is opened from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ci.archive.directory import DirectoryStore
from ci.archive.retention import RetentionRules
from ci.archive.s3 import S3Settings, S3Store
from ci.archive.store import LogStore
from ci.settings import ArchiveGroupSettings


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveSettings:
    # Exactly one of the two: a directory (a PersistentVolumeClaim's mount in a cluster) or
    # an S3-compatible bucket.
    directory: Path | None = None
    s3: S3Settings | None = field(default=None, repr=False)
    max_log_bytes: int
    retention: RetentionRules
    # Seconds between retention passes (by the controller's leader only).
    retention_interval: float
    # Step logs read and stored at once; more wait, reporting never does.
    workers: int
    # Seconds after a run ended before steps still not terminated are recorded as lost and
    # the run counts as archived (so pruning is never held back for ever).
    grace: float

    def __post_init__(self) -> None:
        if (self.directory is None) == (self.s3 is None):
            raise ValueError("an archive needs exactly one store: a directory or an S3 bucket")

    @property
    def where(self) -> str:
        """The store, for logs and errors (never its credentials)."""
        if self.s3 is not None:
            return f"s3 bucket {self.s3.bucket} at {self.s3.endpoint_url}"
        return f"directory {self.directory}"


def archive_settings(group: ArchiveGroupSettings) -> ArchiveSettings | None:
    """What the controller and the local backend archive with; None: no archive."""
    if group.store == "none":
        return None
    s3 = None
    if group.store == "s3":
        s3 = S3Settings(endpoint_url=group.s3_endpoint_url, bucket=group.s3_bucket,
                        region=group.s3_region, prefix=group.s3_prefix,
                        access_key_id=group.s3_access_key_id,
                        secret_access_key=group.s3_secret_access_key)
    return ArchiveSettings(
        directory=group.directory if group.store == "directory" else None,
        s3=s3,
        max_log_bytes=group.max_log_bytes,
        retention=RetentionRules(max_age_days=group.retention_days,
                                 max_bytes_per_repository=group.retention_bytes_per_repository),
        retention_interval=group.retention_interval_seconds,
        workers=group.workers,
        grace=group.grace_seconds,
    )


def open_store(settings: ArchiveSettings) -> LogStore:
    """The store the settings name; nothing is read or written yet."""
    if settings.s3 is not None:
        return S3Store(settings.s3)
    assert settings.directory is not None  # by __post_init__
    return DirectoryStore(settings.directory)
