"""The log store for installations that outgrow one volume: an S3-compatible bucket.

Path-style addressing and SigV4 work with every S3-compatible server (MinIO, Ceph, rclone's
`serve s3`, AWS itself). Objects are uploaded from their stream in parts, so memory stays flat
for any log size. Nothing is kept in `x-amz-meta-*` (see `ci.archive.store`).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

from ci.archive.layout import check_name
from ci.archive.store import StoredObject, StoreError

# S3's limit for one DeleteObjects call.
MAX_DELETE_BATCH = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class S3Settings:
    endpoint_url: str  # e.g. https://s3.eu-west-1.amazonaws.com or http://minio.ferry:9000
    bucket: str
    region: str = "us-east-1"  # what most S3-compatible servers expect when they ignore it
    access_key_id: str = ""  # empty: boto3's own chain (environment, IRSA, instance profile)
    secret_access_key: str = ""
    prefix: str = ""  # a folder of the bucket to keep Ferry's objects in, e.g. "ferry/"
    # Seconds for connecting and for each read of an answer.
    timeout_seconds: float = 30.0


def _is_missing(error: Exception) -> bool:
    response = getattr(error, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    return code in ("NoSuchKey", "404", "NotFound")


class S3Store:
    def __init__(self, settings: S3Settings) -> None:
        import boto3  # noqa: PLC0415 (heavy; only installations that use S3 pay for it)
        from botocore.config import Config  # noqa: PLC0415

        self._settings = settings
        self._bucket = settings.bucket
        self._prefix = settings.prefix
        credentials: dict[str, str] = {}
        if settings.access_key_id:
            credentials = {"aws_access_key_id": settings.access_key_id,
                           "aws_secret_access_key": settings.secret_access_key}
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=settings.endpoint_url,
            region_name=settings.region,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                connect_timeout=settings.timeout_seconds,
                read_timeout=settings.timeout_seconds,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
            **credentials,
        )

    def _key(self, name: str) -> str:
        check_name(name)
        return f"{self._prefix}{name}"

    def _fail(self, what: str, error: Exception) -> StoreError:
        return StoreError(f"S3 bucket {self._bucket} at {self._settings.endpoint_url}: {what}: "
                          f"{type(error).__name__}: {str(error)[:200]}")

    def put(self, name: str, data: BinaryIO) -> None:
        key = self._key(name)  # a bad name is the caller's error, not the storage's
        try:
            self._client.upload_fileobj(data, self._bucket, key)
        except Exception as error:
            raise self._fail(f"cannot write {name}", error) from error

    def open(self, name: str) -> BinaryIO | None:
        key = self._key(name)
        try:
            answer = self._client.get_object(Bucket=self._bucket, Key=key)
        except Exception as error:
            if _is_missing(error):
                return None
            raise self._fail(f"cannot read {name}", error) from error
        return cast(BinaryIO, answer["Body"])

    def list(self, prefix: str) -> Iterator[StoredObject]:
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self._bucket, Prefix=self._prefix + prefix):
                for entry in page.get("Contents", ()):
                    modified = entry["LastModified"]
                    if modified.tzinfo is None:
                        modified = modified.replace(tzinfo=datetime.UTC)
                    yield StoredObject(name=entry["Key"][len(self._prefix):],
                                       size=int(entry["Size"]), modified=modified)
        except Exception as error:
            raise self._fail(f"cannot list {prefix or 'the bucket'}", error) from error

    def delete(self, names: Iterable[str]) -> None:
        keys = [self._key(name) for name in names]
        for start in range(0, len(keys), MAX_DELETE_BATCH):
            batch = keys[start : start + MAX_DELETE_BATCH]
            try:
                self._client.delete_objects(
                    Bucket=self._bucket,
                    Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
                )
            except Exception as error:
                raise self._fail(f"cannot delete {len(batch)} objects", error) from error
