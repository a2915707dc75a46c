"""A real S3-compatible server for the log store's tests: rclone's `serve s3` over a directory,
built from Go modules by `tests/s3/build` and started once per test session on 127.0.0.1.

rclone's limits are designed for, not around (see `ci.archive.store`): metadata only in
objects, keys that are file paths, access keys of 3+ characters.
"""

from __future__ import annotations

import secrets
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ci.archive.s3 import S3Settings
from tests.cluster.processes import Component, built_path, free_port, wait_until

BUILD_SCRIPT = Path(__file__).with_name("build")
READY_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class S3Server:
    endpoint_url: str
    access_key_id: str
    secret_access_key: str
    root: Path  # the directory rclone serves: one folder per bucket

    def settings(self, bucket: str, *, prefix: str = "") -> S3Settings:
        return S3Settings(endpoint_url=self.endpoint_url, bucket=bucket,
                          access_key_id=self.access_key_id,
                          secret_access_key=self.secret_access_key, prefix=prefix)

    def new_bucket(self) -> str:
        """A fresh, empty bucket, made through the S3 API as an operator would."""
        import boto3  # noqa: PLC0415 (only the tests that use S3 pay for it)
        from botocore.config import Config  # noqa: PLC0415

        name = f"logs-{secrets.token_hex(4)}"
        client = boto3.client(
            "s3", endpoint_url=self.endpoint_url, region_name="us-east-1",
            aws_access_key_id=self.access_key_id, aws_secret_access_key=self.secret_access_key,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )
        client.create_bucket(Bucket=name)
        return name


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # any S3 answer (403 without a signature) means it is up
    except OSError:
        return False


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    binary = built_path(BUILD_SCRIPT, "FERRY_S3_BIN")
    root = tmp_path_factory.mktemp("s3")
    data = root / "data"
    data.mkdir()
    port = free_port()
    key, secret = "ferry-test", secrets.token_hex(16)
    server = Component(
        name="rclone-s3",
        argv=[str(binary), "serve", "s3", "--config", "/dev/null",
              "--addr", f"127.0.0.1:{port}", "--auth-key", f"{key},{secret}", str(data)],
        log_path=root / "rclone-s3.log",
    )
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(endpoint), what="rclone serve s3 to answer",
                   timeout=READY_SECONDS, watching=[server])
        yield S3Server(endpoint_url=endpoint, access_key_id=key, secret_access_key=secret,
                       root=data)
    finally:
        server.stop()
