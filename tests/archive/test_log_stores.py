"""The log archive on both stores: a directory, and a real S3-compatible server (rclone)."""

from __future__ import annotations

import base64
import datetime
import gzip
import io
import json
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from ci.archive import retention
from ci.archive.directory import DirectoryStore
from ci.archive.layout import BadNameError, StepKey
from ci.archive.s3 import S3Store
from ci.archive.steps import (
    StepDetails,
    StepRecord,
    archive_step,
    cut_marker,
    read_log,
    read_record,
    read_tail,
    record_lost,
    run_records,
)
from ci.archive.store import LogStore, StoreError
from ci.controller.retaining import retain
from ci.kube.repositories import Repository, SecretKeys
from ci.masking import MASK, Masker
from tests.s3.fixtures import S3Server

SECRET = "s3cr3t-deploy-token"


@pytest.fixture(params=["directory", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> LogStore:
    if request.param == "directory":
        return DirectoryStore(tmp_path / "logs")
    server: S3Server = request.getfixturevalue("s3_server")
    return S3Store(server.settings(server.new_bucket(), prefix="ferry/"))


def key(step: str = "test", *, run: str = "hello-push-1a2b3c", job: str = "build") -> StepKey:
    return StepKey(namespace="team-a", repository="hello", run=run, job=job, step=step)


def read_all(store: LogStore, step: StepKey, *, offset: int = 0) -> bytes:
    chunks = read_log(store, step, offset=offset)
    assert chunks is not None, "the log is not in the archive"
    return b"".join(chunks)


def test_a_step_log_is_archived_masked_and_read_back(store: LogStore) -> None:
    printed = [b"collecting tests\n", f"token is {SECRET}\n".encode(),
               base64.b64encode(SECRET.encode() + b"\n") + b"\n", b"FAILED test_x\n"]
    details = StepDetails(job="build", exit_code=1, started_at="2026-12-02T08:00:00Z",
                          finished_at="2026-12-02T08:00:05Z")
    record = archive_step(store, key=key(), chunks=printed, masker=Masker([SECRET]),
                          details=details)
    text = read_all(store, key()).decode()
    assert SECRET not in text and base64.b64encode(SECRET.encode()).decode()[:12] not in text
    assert text.splitlines() == ["collecting tests", f"token is {MASK}", MASK, "FAILED test_x"]
    assert record.size == sum(len(chunk) for chunk in printed)
    assert read_record(store, key()) == record
    assert record.details.exit_code == 1 and not record.truncated and record.lost is None


def test_reading_from_an_offset_gives_the_rest(store: LogStore) -> None:
    lines = [f"line {number}\n".encode() for number in range(2000)]
    archive_step(store, key=key(), chunks=lines, masker=Masker(), details=StepDetails())
    whole = read_all(store, key())
    assert whole == b"".join(lines)
    assert read_all(store, key(), offset=7000) == whole[7000:]
    assert read_all(store, key(), offset=len(whole) + 5) == b""


def test_a_log_over_the_limit_is_cut_with_a_marker_and_its_size_recorded(store: LogStore) -> None:
    chunk = "é" * 500 + "\n"  # two bytes a character: a cut may fall inside one
    chunks = [chunk.encode()] * 100
    record = archive_step(store, key=key(), chunks=chunks, masker=Masker(), details=StepDetails(),
                          max_bytes=10_001)
    text = read_all(store, key()).decode()  # still valid UTF-8
    assert text.endswith(cut_marker(10_001))
    assert record.truncated and record.size == 100 * len(chunk.encode())
    assert record.stored <= 10_001


def test_a_log_that_could_not_be_read_is_recorded_as_lost(store: LogStore) -> None:
    record_lost(store, key=key(), details=StepDetails(exit_code=137),
                reason="the pod was deleted before its log was read")
    assert read_log(store, key()) is None
    found = read_record(store, key())
    assert found is not None and found.lost == "the pod was deleted before its log was read"


def test_a_run_lists_its_steps_records(store: LogStore) -> None:
    for job, step, started in (("test", "unit", "2"), ("build", "compile", "1"),
                               ("build", "clone", "0")):
        archive_step(store, key=key(step, job=job), chunks=[b"ok\n"], masker=Masker(),
                     details=StepDetails(started_at=f"2026-12-02T08:00:0{started}Z"))
    records = run_records(store, namespace="team-a", repository="hello", run="hello-push-1a2b3c")
    assert [(r.key.job, r.key.step) for r in records] == [
        ("build", "clone"), ("build", "compile"), ("test", "unit")]
    assert run_records(store, namespace="team-a", repository="hello", run="other") == []


def test_rewriting_a_step_replaces_it_whole(store: LogStore) -> None:
    archive_step(store, key=key(), chunks=[b"first try\n"], masker=Masker(), details=StepDetails())
    archive_step(store, key=key(), chunks=[b"second\n"], masker=Masker(), details=StepDetails())
    assert read_all(store, key()) == b"second\n"


def test_missing_objects_are_none_and_deleting_them_is_no_error(store: LogStore) -> None:
    assert store.open("team-a/hello/nothing/here.json") is None
    store.delete(["team-a/hello/nothing/here.json"])
    assert list(store.list("team-a/")) == []


@pytest.mark.parametrize("name", ["/abs", "a//b", "a/../b", "a/./b", "", "A/b", "a/b c"])
def test_unsafe_names_are_refused_before_any_storage_is_touched(store: LogStore, name: str
                                                                 ) -> None:
    with pytest.raises(BadNameError):
        store.put(name, io.BytesIO(b"x"))
    with pytest.raises(BadNameError):
        store.open(name)


def test_step_keys_refuse_anything_but_dns_labels() -> None:
    for bad in ("../etc", "a/b", "UPPER", "-x", ""):
        with pytest.raises(BadNameError):
            key(bad)


def test_retention_deletes_old_runs_and_keeps_the_rest(store: LogStore) -> None:
    for run in ("old-run", "new-run"):
        archive_step(store, key=key(run=run), chunks=[b"x\n"], masker=Masker(),
                     details=StepDetails())
    now = datetime.datetime.now(datetime.UTC)
    rules = retention.RetentionRules(max_age_days=1, max_bytes_per_repository=None)
    assert retention.apply(store, rules=rules, now=now) == 0
    # A day later both are past the age limit: both runs' logs and records go.
    assert retention.apply(store, rules=rules, now=now + datetime.timedelta(days=1, minutes=1)) == 4
    assert list(store.list("")) == []


def test_the_controllers_pass_marks_gone_repositories_and_deletes_them_later(
        store: LogStore) -> None:
    def archive(namespace: str, repository: str) -> None:
        archive_step(store, key=StepKey(namespace=namespace, repository=repository, run="r1",
                                        job="build", step="test"),
                     chunks=[b"x\n"], masker=Masker(), details=StepDetails())

    def names(prefix: str) -> list[str]:
        return sorted(stored.name for stored in store.list(prefix))

    for namespace, repository in [("team-a", "gone"), ("team-a", "kept"), ("team-b", "other")]:
        archive(namespace, repository)
    kept = Repository(namespace="team-a", name="kept", uid="1", forge="github",
                      url="https://github.com/acme/kept", secret=SecretKeys(name="creds"))
    rules = retention.RetentionRules(max_age_days=30, max_bytes_per_repository=None)
    now = datetime.datetime.now(datetime.UTC)
    first = retain(store, rules=rules, repositories=[kept], namespaces=["team-a"], now=now)
    # team-b is not watched by this controller: its repositories are not its to judge.
    assert (first.marked, first.deleted) == (("team-a/gone",), 0)
    assert "team-a/gone/deleted.json" in names("team-a/gone/")
    assert retain(store, rules=rules, repositories=[kept], namespaces=["team-a"],
                  now=now).marked == ()
    # Made again before the period ended: the mark comes off, its logs age as any others.
    again = Repository(namespace="team-a", name="gone", uid="2", forge="github",
                       url="https://github.com/acme/gone", secret=SecretKeys(name="creds"))
    assert retain(store, rules=rules, repositories=[kept, again], namespaces=["team-a"],
                  now=now).unmarked == ("team-a/gone",)
    assert names("team-a/gone/") == ["team-a/gone/r1/build/test.json",
                                     "team-a/gone/r1/build/test.log.gz"]
    # Deleted for good: marked, and once the period has passed since, all of it goes.
    retain(store, rules=rules, repositories=[kept], namespaces=["team-a"], now=now)
    later = now + datetime.timedelta(days=30, minutes=1)
    retain(store, rules=retention.RetentionRules(max_age_days=30, max_bytes_per_repository=None),
           repositories=[kept], namespaces=["team-a"], now=later)
    assert names("team-a/gone/") == []
    assert names("team-b/") != []


def test_records_of_a_newer_ferry_are_read_and_tails_come_from_the_end(
        store: LogStore) -> None:
    record = archive_step(store, key=key(), chunks=[f"line {n}\n".encode() for n in range(50)],
                          masker=Masker(), details=StepDetails(exit_code=1, pod="p-1"))
    body = json.loads(record.to_json())
    body["details"]["added_later"] = "ignored"
    body["details"].pop("pod")  # and one an older Ferry did not write
    assert StepRecord.from_json(json.dumps(body).encode()).details == StepDetails(exit_code=1)
    assert read_tail(store, key(), lines=2, max_bytes=1000) == "line 48\nline 49"
    assert read_tail(store, key(), lines=5, max_bytes=8) == "line 49"
    assert read_tail(store, key(step="other"), lines=5, max_bytes=8) is None


def test_concurrent_archiving_of_many_steps(store: LogStore) -> None:
    errors: list[BaseException] = []

    def archive(number: int) -> None:
        try:
            archive_step(store, key=key(f"step-{number}"), chunks=[f"{number}\n".encode()] * 50,
                         masker=Masker([SECRET]), details=StepDetails())
        except BaseException as error:  # pragma: no cover - shown by the assertion
            errors.append(error)

    threads = [threading.Thread(target=archive, args=(number,)) for number in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert read_all(store, key("step-7")) == b"7\n" * 50


def test_the_directory_store_names_its_root_when_it_cannot_write(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match=str(blocker)):
        DirectoryStore(blocker).put("a/b", io.BytesIO(b"x"))


def test_the_s3_store_names_the_bucket_when_it_is_missing(s3_server: S3Server) -> None:
    store = S3Store(s3_server.settings("no-such-bucket"))
    with pytest.raises(StoreError, match="no-such-bucket"):
        store.put("a/b", io.BytesIO(b"x"))


def _big_log(megabytes: int) -> Iterator[bytes]:
    line = (b"x" * 1023) + b"\n"
    block = line * 1024
    for _ in range(megabytes):
        yield block


def test_archiving_a_large_log_keeps_memory_flat(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path / "logs")
    tracemalloc.start()
    try:
        record = archive_step(store, key=key(), chunks=_big_log(64), masker=Masker([SECRET]),
                              details=StepDetails())
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert record.size == 64 * 1024 * 1024
    # 64 MB through: what is held is a chunk or two and the spool's bound, not the log.
    assert peak < 24 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB while archiving 64 MB"
    stream = store.open(key().log_name)
    assert stream is not None
    with stream, gzip.open(stream) as log:
        assert log.read(1024) == (b"x" * 1023) + b"\n"
