"""The binding of a run to its Repository and commit: every field the controller reads is
signed, so changing any one of them (or the Repository) refuses the run."""

from __future__ import annotations

import copy
import dataclasses
import datetime
import json
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ci.controller import verification
from ci.controller.metrics import ControllerMetrics
from ci.controller.runs import RunSnapshot
from ci.controller.verification import RunVerifier, refusal_of
from ci.kube import labels
from ci.kube.binding import BindingKeys, Refusal, canonical_bytes, key_id_of
from ci.kube.binding_keys import keys_of
from ci.kube.errors import BindingKeyError
from ci.kube.pipeline_runs import EVENT_LABEL, REPOSITORY_OBJECT_LABEL, REPOSITORY_UID_LABEL
from ci.kube.repositories import Repository
from tests.binding import TEST_KEYS, bound
from tests.unit.controller.builders import pipeline_run

WINDOW = 300.0
REPOSITORY = Repository.from_object({
    "metadata": {"name": "widget", "namespace": "team", "uid": "uid-widget"},
    "spec": {"forge": "github", "url": "https://github.com/acme/widget",
             "apiURL": "https://api.github.com", "secretRef": {"name": "widget-forge"}},
})
OTHER_KEYS = BindingKeys(b"another-key-of-at-least-32-bytes")


def receiver_run() -> dict[str, Any]:
    """A run with the labels and annotations the receiver writes, signed for REPOSITORY."""
    run = pipeline_run()
    run["metadata"]["labels"] |= {EVENT_LABEL: "push", labels.BRANCH: "main",
                                  f"{labels.PREFIX}untrusted": "true"}
    run["metadata"]["annotations"] |= {f"{labels.PREFIX}ref": "refs/heads/main",
                                       labels.EVENT_TIME: "2024-05-01T10:00:00Z",
                                       labels.NOTE: "trusted"}
    return bound(run, REPOSITORY)


def refusal(run: dict[str, Any], repository: Repository = REPOSITORY,
            keys: BindingKeys = TEST_KEYS) -> Refusal | None:
    return refusal_of(RunSnapshot.of(run), repository, keys, window=WINDOW)


def test_a_run_the_receiver_signed_is_accepted() -> None:
    assert refusal(receiver_run()) is None


@pytest.mark.parametrize("where", ["annotations", "labels"])
def test_changing_any_signed_field_refuses_the_run(where: str) -> None:
    original = receiver_run()
    fields = {key: value for key, value in original["metadata"][where].items()
              if key != labels.BINDING and key not in (REPOSITORY_OBJECT_LABEL,
                                                       REPOSITORY_UID_LABEL)}
    assert len(fields) >= 4
    for key in fields:
        tampered = copy.deepcopy(original)
        tampered["metadata"][where][key] = "0" * 40 if key == labels.SHA else "forged"
        assert refusal(tampered) is Refusal.FORGED, key
        removed = copy.deepcopy(original)
        del removed["metadata"][where][key]
        assert refusal(removed) is Refusal.FORGED, key
    added = copy.deepcopy(original)
    added["metadata"][where][labels.PULL_REQUEST] = "7"
    assert refusal(added) is Refusal.FORGED


def test_other_labels_and_the_controllers_memory_are_not_signed() -> None:
    run = receiver_run()
    run["metadata"]["annotations"][labels.REPORTED] = '{"sequence": 3}'
    run["metadata"]["annotations"][labels.ARCHIVED] = '{"steps": 2, "lost": 0}'
    run["metadata"]["labels"]["tekton.dev/pipeline"] = "widget-abc"
    assert refusal(run) is None


@pytest.mark.parametrize("field", ["namespace", "name"])
def test_the_runs_own_name_and_namespace_are_signed(field: str) -> None:
    run = receiver_run()
    run["metadata"][field] = "elsewhere"
    repository = dataclasses.replace(REPOSITORY, namespace="elsewhere") if (
        field == "namespace") else REPOSITORY
    assert refusal(run, repository) is Refusal.FORGED


@pytest.mark.parametrize("change", [
    {"uid": "uid-of-a-recreated-widget"}, {"forge": "gitea"},
    {"url": "https://github.com/acme/gadget"}, {"api_url": "https://evil.example/api"},
    {"api_url": None},
])
def test_a_different_repository_object_refuses_the_run(change: dict[str, Any]) -> None:
    other = dataclasses.replace(REPOSITORY, **change)
    expected = Refusal.OTHER_REPOSITORY if "uid" in change else Refusal.FORGED
    assert refusal(receiver_run(), other) is expected


def test_labels_naming_another_repository_object_are_refused() -> None:
    run = receiver_run()
    run["metadata"]["labels"][REPOSITORY_OBJECT_LABEL] = "gadget"
    assert refusal(run) is Refusal.OTHER_REPOSITORY


def test_a_hand_made_run_without_a_binding_is_refused() -> None:
    run = receiver_run()
    del run["metadata"]["annotations"][labels.BINDING]
    assert refusal(run) is Refusal.UNBOUND


@pytest.mark.parametrize("value", [
    "v1", "v2.a.1.b", "v1.a.b.c", "v1.a.1", "v1.a.1.b.c", "v1.a.-1.b", "v1.a.9999999999999.b",
])
def test_a_malformed_binding_is_refused(value: str) -> None:
    run = receiver_run()
    run["metadata"]["annotations"][labels.BINDING] = value
    assert refusal(run) is Refusal.MALFORMED


def test_a_binding_made_with_another_key_is_refused() -> None:
    assert refusal(bound(receiver_run(), REPOSITORY, OTHER_KEYS)) is Refusal.UNKNOWN_KEY


def test_a_mac_of_the_right_key_id_but_wrong_value_is_refused() -> None:
    run = receiver_run()
    version, key_id, at, mac = run["metadata"]["annotations"][labels.BINDING].split(".")
    forged = "A" * len(mac)
    run["metadata"]["annotations"][labels.BINDING] = ".".join((version, key_id, at, forged))
    assert refusal(run) is Refusal.FORGED


def test_after_rotation_runs_signed_with_the_previous_key_are_still_accepted() -> None:
    rotated = BindingKeys(OTHER_KEYS.current, (TEST_KEYS.current,))
    assert refusal(receiver_run(), keys=rotated) is None
    assert refusal(bound(receiver_run(), REPOSITORY, rotated), keys=rotated) is None
    # ... until the previous key is dropped.
    assert refusal(receiver_run(), keys=OTHER_KEYS) is Refusal.UNKNOWN_KEY


def test_a_copy_created_long_after_it_was_signed_is_refused() -> None:
    original = receiver_run()
    created = datetime.datetime(2024, 5, 1, 9, 59, 59, tzinfo=datetime.UTC)
    for offset, expected in ((WINDOW - 1, None), (WINDOW + 1, Refusal.OUTSIDE_WINDOW),
                             (-(WINDOW + 1), Refusal.OUTSIDE_WINDOW)):
        copied = copy.deepcopy(original)
        later = created + datetime.timedelta(seconds=offset)
        copied["metadata"]["creationTimestamp"] = later.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert refusal(copied) is expected, offset
    missing = copy.deepcopy(original)
    del missing["metadata"]["creationTimestamp"]
    assert refusal(missing) is Refusal.OUTSIDE_WINDOW


def test_keys_shorter_than_32_bytes_are_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        BindingKeys(b"short")
    with pytest.raises(BindingKeyError):
        keys_of({"key": "c2hvcnQ="}, where="Secret ferry-system/ferry-binding-key")
    with pytest.raises(BindingKeyError):
        keys_of({"key": "not base64!"}, where="Secret ferry-system/ferry-binding-key")
    with pytest.raises(BindingKeyError):
        keys_of({}, where="Secret ferry-system/ferry-binding-key")


def test_the_key_never_shows_in_its_repr() -> None:
    shown = repr(BindingKeys(TEST_KEYS.current, (OTHER_KEYS.current,)))
    assert TEST_KEYS.current.decode() not in shown and OTHER_KEYS.current.decode() not in shown
    assert key_id_of(TEST_KEYS.current) in shown


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_verifier_counts_and_logs_each_refused_run_once(anyio_backend: str) -> None:
    metrics = ControllerMetrics()
    verifier = RunVerifier(lambda: TEST_KEYS, window=WINDOW, metrics=metrics)
    run = receiver_run()
    run["metadata"]["annotations"][labels.SHA] = "0" * 40
    snapshot = RunSnapshot.of(run)
    for _ in range(3):
        assert await verifier.refusal(snapshot, REPOSITORY) is Refusal.FORGED
    assert metrics.registry.get_sample_value(
        "ferry_controller_runs_refused_total", {"reason": "forged"}) == 1.0
    assert await verifier.refusal(RunSnapshot.of(receiver_run()), REPOSITORY) is None


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_verifier_reads_the_keys_only_when_the_cached_ones_are_stale(
        anyio_backend: str) -> None:
    reads: list[int] = []
    fresh: list[BindingKeys | None] = [TEST_KEYS]

    def read() -> BindingKeys:
        reads.append(1)
        return TEST_KEYS

    verifier = RunVerifier(read, window=WINDOW, metrics=ControllerMetrics(),
                           cached=lambda: fresh[0])
    assert await verifier.refusal(RunSnapshot.of(receiver_run()), REPOSITORY) is None
    assert reads == []
    fresh[0] = None
    assert await verifier.refusal(RunSnapshot.of(receiver_run()), REPOSITORY) is None
    assert reads == [1]


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_verifier_checks_a_version_once_and_a_changed_one_again(
        anyio_backend: str) -> None:
    verifier = RunVerifier(lambda: TEST_KEYS, window=WINDOW, metrics=ControllerMetrics())
    run = receiver_run()
    assert await verifier.refusal(RunSnapshot.of(run), REPOSITORY) is None
    assert await verifier.refusal(RunSnapshot.of(run), REPOSITORY) is None
    # Same version, other keys: checked again, and refused.
    other = RunVerifier(lambda: OTHER_KEYS, window=WINDOW, metrics=ControllerMetrics())
    assert await other.refusal(RunSnapshot.of(run), REPOSITORY) is Refusal.UNKNOWN_KEY
    # A new version whose signed fields were changed: refused, though the last one was bound.
    run["metadata"]["resourceVersion"] = "2"
    run["metadata"]["annotations"][labels.SHA] = "0" * 40
    assert await verifier.refusal(RunSnapshot.of(run), REPOSITORY) is Refusal.FORGED


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_verifier_does_not_check_again_a_run_the_controller_only_annotated(
        anyio_backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    checked: list[str] = []

    def counting(run: RunSnapshot, *args: Any, **kwargs: Any) -> Refusal | None:
        checked.append(run.resource_version)
        return refusal_of(run, *args, **kwargs)

    monkeypatch.setattr(verification, "refusal_of", counting)
    verifier = RunVerifier(lambda: TEST_KEYS, window=WINDOW, metrics=ControllerMetrics())
    run = receiver_run()
    assert await verifier.refusal(RunSnapshot.of(run), REPOSITORY) is None
    # The controller's own writes: its memory, the archive's note; each a new version.
    run["metadata"]["resourceVersion"] = "2"
    run["metadata"]["annotations"][labels.REPORTED] = '{"seq": 1}'
    run["metadata"]["annotations"][labels.ARCHIVED] = '{"steps": 1, "lost": 0}'
    assert await verifier.refusal(RunSnapshot.of(run), REPOSITORY) is None
    assert checked == ["1"]
    # Any signed field changed with them is checked, and refused.
    run["metadata"]["resourceVersion"] = "3"
    run["metadata"]["labels"][labels.BRANCH] = "release"
    assert await verifier.refusal(RunSnapshot.of(run), REPOSITORY) is Refusal.FORGED
    assert checked == ["1", "3"]


# What a binding covers, as the receiver builds it: text keys; text, integers and a nested
# document of the same as values. Mostly ASCII (where the fast encoder's bytes are used, so
# where the two could differ), some any code point, lone surrogates and controls included
# (annotations carry commit titles); the examples are the edges met so far.
_ASCII = st.text(st.characters(max_codepoint=0x7F))
_TEXT = st.one_of(_ASCII, _ASCII, st.text())
_VALUES = st.one_of(_TEXT, st.integers(min_value=-(2**63), max_value=2**63 - 1))
_DOCUMENTS = st.dictionaries(
    _TEXT, st.one_of(_VALUES, st.dictionaries(_TEXT, _VALUES, max_size=4)), max_size=6)


@given(_DOCUMENTS)
@example({"title": "a\x7fb"})  # DEL is ASCII: orjson writes it as it is, `json` escapes it
@example({"title": "caf\xe9 \u2028"})
@example({"title": "\ud800"})  # orjson refuses a lone surrogate
@example({"title": "\x00\x1f\"\\/", "signedAt": 1, "fields": {"b": "1", "a": "2"}})
def test_the_signed_bytes_are_those_bindings_were_always_signed_with(
        document: dict[str, object]) -> None:
    """A run signed by an older receiver (which encoded with `json` alone) must still
    verify in a newer controller, and the other way round."""
    assert canonical_bytes(document) == json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
