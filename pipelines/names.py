"""Names Ferry gives things in Kubernetes: DNS labels, label values, hashes that keep cut
names unique, and the idempotent PipelineRun name. One `MAX_NAME_LENGTH` for all of them."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from pipelines.events import Event
from pipelines.spec import MAX_NAME_LENGTH

_HASH_LENGTH = 6
_NOT_NAME_CHARACTERS = re.compile(r"[^a-z0-9]+")

# Label values have the same limit as DNS labels.
MAX_LABEL_VALUE_LENGTH = MAX_NAME_LENGTH
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_NOT_LABEL_CHARACTERS = re.compile(r"[^A-Za-z0-9_.-]+")


def dns_label(text: str, *, fallback: str = "x") -> str:
    """`text` as a DNS-1123 label: lower case, runs of other characters become one `-`."""
    label = _NOT_NAME_CHARACTERS.sub("-", text.lower()).strip("-")
    return label or fallback


def short_hash(*parts: str) -> str:
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()
    return digest[:_HASH_LENGTH]


def fit_label(label: str, *, limit: int = MAX_NAME_LENGTH, salt: Iterable[str] = ()) -> str:
    """Cut `label` to `limit`, keeping it unique by appending a hash of what was cut."""
    if len(label) <= limit:
        return label
    suffix = short_hash(label, *salt)
    return f"{label[: limit - _HASH_LENGTH - 1].rstrip('-')}-{suffix}"


def label_value(text: str) -> str:
    """`text` as a valid label value (<= 63, `[A-Za-z0-9._-]`, alphanumeric ends).

    Unchanged when already valid; otherwise cleaned, and cut with a hash of the original when
    too long. Raw values go into annotations, so a label only needs to be stable and close.
    """
    if len(text) <= MAX_LABEL_VALUE_LENGTH and _LABEL_VALUE.match(text):
        return text
    cleaned = _NOT_LABEL_CHARACTERS.sub("-", text).strip("-_.")
    cleaned = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cleaned)
    if len(cleaned) <= MAX_LABEL_VALUE_LENGTH:
        return cleaned
    return fit_label(cleaned, limit=MAX_LABEL_VALUE_LENGTH, salt=(text,))


def pipeline_run_name(event: Event, *, prefix: str = "") -> str:
    """An idempotent PipelineRun name: the same (repository, kind, ref, sha) gives the same name.

    `<prefix><repository-slug>-<sha[:7]>-<hash>`, a DNS-1123 label of at most 63 characters,
    so that the name also fits a label value and Tekton's TaskRun names derived from it.
    """
    digest = hashlib.sha256(
        "\x00".join((event.repository, event.kind.value, event.ref, event.sha)).encode()
    ).hexdigest()[:8]
    tail = f"-{dns_label(event.sha[:7], fallback='0')}-{digest}"
    head = dns_label(prefix + event.repository.rsplit("/", 1)[-1], fallback="run")
    head = head[: MAX_LABEL_VALUE_LENGTH - len(tail)].rstrip("-") or "run"
    return head + tail
