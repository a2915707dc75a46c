"""The binding: proof that Ferry's receiver made a PipelineRun, for one Repository and commit.

Anyone who may create PipelineRuns in a team namespace can write any label or annotation, so
the controller cannot take the forge repository and commit a run names on trust: a hand-made
run could post a green status to any repository the namespace's credentials reach. The
receiver therefore signs each run it creates, and the controller reports only runs whose
signature it can check (docs/controller.md, "Which runs are reported").

The signature is an HMAC-SHA256, with a key only Ferry's two ServiceAccounts may read
(`ci.kube.binding_keys`), over a canonical JSON encoding of:

- the run's namespace and name;
- the Repository object it belongs to: name, uid, forge, URL and API URL (so a run made for
  a Repository that was deleted and created again, or whose URL changed, is refused);
- every `ferry.dev/*` label and annotation the receiver wrote (repository, URL, ref, sha,
  event, branch, pull request, pipeline, note, concurrency...) and the managed-by label,
  so no field the controller reads can be changed after signing;
- the time of signing, which must be close to the run's `creationTimestamp`: a copy of a
  signed run made after the original was deleted is refused once the window has passed.

Stored in one annotation, `ferry.dev/binding`: `v1.<key id>.<signed at>.<mac>`. Pure: no
Kubernetes calls here; the key's Secret is `ci.kube.binding_keys`.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

import orjson

from ci.kube import labels
from ci.kube.pipeline_runs import REPOSITORY_OBJECT_LABEL, REPOSITORY_UID_LABEL
from ci.kube.repositories import Repository
from pipelines.names import label_value

VERSION: Final = "v1"
# Separates this MAC's inputs from any other use of the same key, now or later.
_DOMAIN: Final = b"ferry.dev/binding/v1\n"
_KEY_ID_DOMAIN: Final = b"ferry.dev/binding-key-id\n"
# Bytes of a generated key; shorter keys are refused when read (ci.kube.binding_keys).
KEY_BYTES: Final = 32
MIN_KEY_BYTES: Final = 32
# What the controller writes on runs itself (what it reported, that the logs are archived),
# and the binding: never part of what is signed.
_UNSIGNED: Final = frozenset({labels.REPORTED, labels.ARCHIVED, labels.BINDING})


class Refusal(StrEnum):
    """Why a run is not reported (the `reason` of the log line and the metric)."""

    UNBOUND = "unbound"  # no binding annotation: not made by Ferry's receiver
    MALFORMED = "malformed"  # not `v1.<key id>.<time>.<mac>`
    UNKNOWN_KEY = "unknown-key"  # signed with a key neither current nor previous
    OTHER_REPOSITORY = "other-repository"  # its labels name another Repository object
    FORGED = "forged"  # the MAC does not match the run's fields as they are now
    OUTSIDE_WINDOW = "outside-window"  # signed too long before or after it was created


@dataclass(frozen=True, slots=True)
class BindingKeys:
    """The key runs are signed with, and earlier keys still accepted (rotation)."""

    current: bytes
    previous: tuple[bytes, ...] = ()
    # (key id, key) of each, hashed once: every run checked looks its key up by id.
    _by_id: tuple[tuple[str, bytes], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for key in (self.current, *self.previous):
            if len(key) < MIN_KEY_BYTES:
                raise ValueError(f"a binding key must have at least {MIN_KEY_BYTES} bytes")
        object.__setattr__(self, "_by_id", tuple(
            (key_id_of(key), key) for key in (self.current, *self.previous)))

    def by_id(self, key_id: str) -> bytes | None:
        for known, key in self._by_id:
            if hmac.compare_digest(key_id, known):
                return key
        return None

    def __repr__(self) -> str:  # never the key material, in a log or a traceback
        return f"BindingKeys(current={key_id_of(self.current)}, previous={len(self.previous)})"


def key_id_of(key: bytes) -> str:
    """A short public name for a key: which key signed a run, without revealing it."""
    return hashlib.sha256(_KEY_ID_DOMAIN + key).hexdigest()[:16]


def signed_fields(
    *,
    namespace: str,
    name: str,
    run_labels: Mapping[str, str],
    run_annotations: Mapping[str, str],
    repository: Repository,
) -> dict[str, object]:
    """What the MAC covers: the same function on the receiver's side and the controller's."""
    return {
        "namespace": namespace,
        "name": name,
        "repository": {
            "namespace": repository.namespace,
            "name": repository.name,
            "uid": repository.uid,
            "forge": repository.forge,
            "url": repository.url,
            "apiURL": repository.api_url or "",
        },
        "labels": _ferry_fields(run_labels),
        "annotations": _ferry_fields(run_annotations),
    }


def sign(fields: Mapping[str, object], keys: BindingKeys, *, signed_at: int) -> str:
    """The annotation value binding `fields` (from `signed_fields`), signed at `signed_at`
    (seconds since the epoch)."""
    key = keys.current
    return ".".join((VERSION, key_id_of(key), str(signed_at), _mac(key, fields, signed_at)))


def verify(
    value: str | None,
    fields: Mapping[str, object],
    keys: BindingKeys,
    *,
    created: datetime.datetime | None,
    window: float,
) -> Refusal | None:
    """None if `value` binds exactly `fields`, was signed with a known key, and within
    `window` seconds of `created` (the run's creationTimestamp); else why not."""
    if not value:
        return Refusal.UNBOUND
    parts = value.split(".")
    if len(parts) != 4 or parts[0] != VERSION or not parts[2].isdigit() or len(parts[2]) > 12:
        return Refusal.MALFORMED
    _, key_id, at, mac = parts
    key = keys.by_id(key_id)
    if key is None:
        return Refusal.UNKNOWN_KEY
    signed_at = int(at)
    if not hmac.compare_digest(mac, _mac(key, fields, signed_at)):
        return Refusal.FORGED
    if created is None or abs(created.timestamp() - signed_at) > window:
        return Refusal.OUTSIDE_WINDOW
    return None


def refusal_for(
    *,
    namespace: str,
    name: str,
    run_labels: Mapping[str, str],
    run_annotations: Mapping[str, str],
    created: str,
    repository: Repository,
    keys: BindingKeys,
    window: float,
) -> Refusal | None:
    """None if the run so described is bound to `repository`; else why not. The one check,
    for the controller (every run it would act on) and the receiver (a run of the name it
    was about to create that already exists)."""
    if not run_annotations.get(labels.BINDING):
        return Refusal.UNBOUND
    if not names_repository(run_labels, repository):
        return Refusal.OTHER_REPOSITORY
    fields = signed_fields(namespace=namespace, name=name, run_labels=run_labels,
                           run_annotations=run_annotations, repository=repository)
    return verify(run_annotations.get(labels.BINDING), fields, keys,
                  created=_timestamp(created), window=window)


def binding_inputs(*, namespace: str, name: str, run_labels: Mapping[str, str],
                   run_annotations: Mapping[str, str], created: str) -> tuple[object, ...]:
    """Everything of a run `refusal_for` reads besides the Repository and the keys: two runs
    equal in it get the same answer. What the controller writes on runs (its memory, the
    archive's note) is not in it, so a run the controller only annotated is not checked
    again."""
    return (namespace, name, created, run_annotations.get(labels.BINDING),
            _ferry_fields(run_labels), _ferry_fields(run_annotations))


def names_repository(run_labels: Mapping[str, str], repository: Repository) -> bool:
    """Do the run's labels name `repository` (object name and uid), as the receiver set?"""
    return (
        run_labels.get(REPOSITORY_OBJECT_LABEL) == repository.name
        and run_labels.get(REPOSITORY_UID_LABEL) == label_value(repository.uid)
    )


def _timestamp(text: str) -> datetime.datetime | None:
    """A `creationTimestamp` (RFC 3339, as the API server writes it); None if unreadable."""
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
    except ValueError:
        return None


def _ferry_fields(values: Mapping[str, str]) -> dict[str, str]:
    return {
        key: str(value)
        for key, value in values.items()
        if (key.startswith(labels.PREFIX) or key == labels.MANAGED_BY) and key not in _UNSIGNED
    }


def canonical_bytes(document: Mapping[str, object]) -> bytes:
    """`document` as the MAC covers it: `json.dumps(sort_keys=True, separators=(",", ":"),
    ensure_ascii=True)`, the encoding bindings have been signed with. orjson writes the same
    bytes whenever its output is printable ASCII (sorted keys, no spaces, the same escapes)
    in a fraction of the time (a restart checks every run's binding); anything else goes
    through `json`: text beyond ASCII and DEL, which orjson leaves as they are where `json`
    writes `\\uXXXX`, and lone surrogates, which orjson refuses."""
    try:
        fast = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        fast = b""
    if fast and fast.isascii() and b"\x7f" not in fast:
        return fast
    return json.dumps(document, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True).encode()


def _mac(key: bytes, fields: Mapping[str, object], signed_at: int) -> str:
    canonical = canonical_bytes({"fields": fields, "signedAt": signed_at})
    digest = hmac.digest(key, _DOMAIN + canonical, "sha256")
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")
