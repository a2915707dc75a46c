"""The log archive a test controller writes to, over both stores: a directory, and a real
S3-compatible server (rclone, `tests.s3.fixtures`). Parametrise a test by requesting
`log_archive`; the controller gets the store by its documented `FERRY_ARCHIVE_*` variables,
and the test reads what it wrote through `store`, as the read API does."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ci.archive.directory import DirectoryStore
from ci.archive.s3 import S3Store
from ci.archive.store import LogStore
from tests.s3.fixtures import S3Server


@dataclass(frozen=True)
class LogArchive:
    kind: str  # "directory" or "s3"
    store: LogStore
    environment: dict[str, str] = field(repr=False)  # FERRY_ARCHIVE_* for the process
    root: Path  # where the bytes end up on disk (the directory, or rclone's bucket folder)

    @property
    def settings(self) -> dict[str, str]:
        """The same, as the `archive` settings group's fields."""
        return {name.removeprefix("FERRY_ARCHIVE_").lower(): value
                for name, value in self.environment.items()}


@pytest.fixture(params=["directory", "s3"])
def log_archive(request: pytest.FixtureRequest, tmp_path: Path) -> LogArchive:
    if request.param == "directory":
        root = tmp_path / "logs"
        return LogArchive(kind="directory", store=DirectoryStore(root), root=root,
                          environment={"FERRY_ARCHIVE_STORE": "directory",
                                       "FERRY_ARCHIVE_DIRECTORY": str(root)})
    server: S3Server = request.getfixturevalue("s3_server")
    bucket = server.new_bucket()
    settings = server.settings(bucket, prefix="ferry/")
    return LogArchive(
        kind="s3", store=S3Store(settings), root=server.root / bucket,
        environment={
            "FERRY_ARCHIVE_STORE": "s3",
            "FERRY_ARCHIVE_S3_ENDPOINT_URL": server.endpoint_url,
            "FERRY_ARCHIVE_S3_BUCKET": bucket,
            "FERRY_ARCHIVE_S3_PREFIX": "ferry/",
            "FERRY_ARCHIVE_S3_ACCESS_KEY_ID": server.access_key_id,
            "FERRY_ARCHIVE_S3_SECRET_ACCESS_KEY": server.secret_access_key,
        },
    )
