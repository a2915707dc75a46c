"""Strict reading of webhook bodies: every missing or mistyped field is a `PayloadError`.

Payloads are attacker-controlled until the signature is checked, and even signed ones change
shape across forge versions, so nothing here lets a `KeyError` or `TypeError` escape.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from ci.forges.errors import PayloadError
from ci.forges.types import DeliveryId, RepositoryName, RepositoryRef
from ci.logs import excerpt

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers by lower-case name; a plain dict from a test and Starlette's headers alike."""
    return {name.lower(): value for name, value in headers.items()}


def is_form(headers: Mapping[str, str]) -> bool:
    """Whether the body is form-encoded; `headers` are lower-cased."""
    content_type = headers.get("content-type", "")
    return content_type.split(";", 1)[0].strip().lower() == FORM_CONTENT_TYPE


def form_payload(body: bytes) -> bytes:
    """The JSON inside a form-encoded delivery's `payload` field."""
    try:
        fields = urllib.parse.parse_qs(body.decode("utf-8"), strict_parsing=True)
    except (UnicodeDecodeError, ValueError) as error:
        raise PayloadError(f"form body is not valid form encoding: {error}") from error
    values = fields.get("payload")
    if not values or len(values) != 1:
        raise PayloadError("form body has no single `payload` field")
    return values[0].encode("utf-8")


def body_digest(body: bytes) -> DeliveryId:
    """A delivery id for forges that send none: redelivering the same body gives the same id."""
    return DeliveryId(f"sha256-{hashlib.sha256(body).hexdigest()[:32]}")


def _type_name(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), type(value).__name__)


@dataclass(frozen=True, slots=True)
class Fields:
    """One JSON object of a payload, with its dotted path for error messages."""

    data: Mapping[str, object]
    path: str = ""

    def _where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _fail(self, key: str, expected: str, value: object) -> PayloadError:
        return PayloadError(
            f"payload field `{self._where(key)}`: expected {expected}, got {_type_name(value)}"
        )

    def _required(self, key: str) -> object:
        if key not in self.data:
            raise PayloadError(f"payload field `{self._where(key)}` is missing")
        return self.data[key]

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def text(self, key: str) -> str:
        value = self._required(key)
        if not isinstance(value, str):
            raise self._fail(key, "a string", value)
        return value

    def optional_text(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self._fail(key, "a string", value)
        return value

    def integer(self, key: str) -> int:
        value = self._required(key)
        # bool is an int in Python, not in JSON.
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._fail(key, "an integer", value)
        return value

    def optional_integer(self, key: str) -> int | None:
        if self.data.get(key) is None:
            return None
        return self.integer(key)

    def boolean(self, key: str, *, default: bool = False) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self._fail(key, "a boolean", value)
        return value

    def object(self, key: str) -> Fields:
        value = self._required(key)
        if not isinstance(value, dict):
            raise self._fail(key, "an object", value)
        return Fields(value, self._where(key))

    def optional_object(self, key: str) -> Fields | None:
        if self.data.get(key) is None:
            return None
        return self.object(key)

    def objects(self, key: str) -> tuple[Fields, ...]:
        """A list of objects; missing or null is an empty list (forges omit empty lists)."""
        value = self.data.get(key)
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self._fail(key, "a list", value)
        items: list[Fields] = []
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                raise self._fail(f"{key}[{index}]", "an object", item)
            items.append(Fields(item, f"{self._where(key)}[{index}]"))
        return tuple(items)

    def optional_moment(self, key: str) -> str | None:
        """A time the forge wrote (RFC 3339 text, GitLab's "2013-12-03 17:23:34 UTC", or Unix
        seconds as GitHub's `pushed_at`), as `moment_text` gives it; None when it is absent
        or unreadable: an event without a time is ordered by arrival, never refused."""
        return moment_text(self.data.get(key))

    def optional_texts(self, key: str) -> tuple[str, ...] | None:
        """A list of strings, or None when the field is absent (not the same as empty)."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, list):
            raise self._fail(key, "a list", value)
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise self._fail(f"{key}[{index}]", "a string", item)
        return tuple(value)


# Fixed width, UTC: string order is time order (as Kubernetes' `creationTimestamp`).
MOMENT_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def moment_text(value: object) -> str | None:
    """A forge's time as `MOMENT_FORMAT` in UTC, or None for anything else. A time without
    an offset is taken as UTC."""
    moment: datetime.datetime | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            moment = datetime.datetime.fromtimestamp(value, datetime.UTC)
        except (OverflowError, OSError, ValueError):
            return None
    elif isinstance(value, str) and len(value) <= 64:
        text = value.strip()
        if text.endswith(" UTC"):
            text = text.removesuffix(" UTC") + "+00:00"
        try:
            moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC).strftime(MOMENT_FORMAT)


def decode(headers: Mapping[str, str], body: bytes) -> Fields:
    """The payload object of a delivery; `headers` are lower-cased.

    Form-encoded deliveries (GitHub's and Gitea's "form" content type) carry the JSON in the
    `payload` field.
    """
    raw = form_payload(body) if is_form(headers) else body
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise PayloadError(
            f"body is not JSON ({error.__class__.__name__}): {excerpt(repr(raw[:80]))}"
        ) from error
    if not isinstance(data, dict):
        raise PayloadError(f"body must be a JSON object, got {_type_name(data)}")
    return Fields(data)


def repository_ref(
    fields: Fields | None,
    *,
    name: str = "full_name",
    html_url: str = "html_url",
    clone_url: str = "clone_url",
) -> RepositoryRef | None:
    """The repository a payload names; the defaults are GitHub's keys, which Gitea shares."""
    if fields is None:
        return None
    return RepositoryRef(
        name=RepositoryName(fields.text(name)),
        html_url=fields.text(html_url),
        clone_url=fields.text(clone_url),
    )


def require_repository(
    repository: RepositoryRef | None, *, field: str = "repository"
) -> RepositoryRef:
    if repository is None:
        raise PayloadError(f"payload field `{field}` is missing")
    return repository
