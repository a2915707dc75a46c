"""`parse` raises nothing but `PayloadError`, whatever JSON arrives."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ci.forges.deliveries import Delivery
from ci.forges.errors import PayloadError
from ci.forges.registry import PROVIDERS
from ci.forges.types import ForgeKind

from .contracts import headers_for, load, payload_files

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
# Real event names and field names, so fuzzing reaches past the first lookup.
EVENT_NAMES = st.sampled_from(
    ["push", "pull_request", "issue_comment", "ping", "delete", "Push Hook", "other"]
)
FIELDS = st.sampled_from(
    [
        "ref",
        "after",
        "before",
        "repository",
        "project",
        "pull_request",
        "action",
        "commits",
        "object_kind",
        "object_attributes",
        "number",
        "issue",
        "comment",
        "head",
        "base",
        "full_name",
        "installation",
        "sender",
        "merge_request",
        "is_pull",
    ]
)
OBJECTS = st.dictionaries(FIELDS, JSON, max_size=8)
CONTRACT_FILES = [(forge, path) for forge in ForgeKind for path in payload_files(forge)]


def _headers(forge: ForgeKind, event: str) -> dict[str, str]:
    name = {
        ForgeKind.GITHUB: "X-GitHub-Event",
        ForgeKind.GITEA: "X-Gitea-Event",
        ForgeKind.GITLAB: "X-Gitlab-Event",
    }[forge]
    return {name: event}


def _parse_or_payload_error(forge: ForgeKind, headers: dict[str, str], body: bytes) -> None:
    try:
        result = PROVIDERS[forge].parse(headers, body)
    except PayloadError:
        return
    assert isinstance(result, Delivery)


@given(forge=st.sampled_from(list(ForgeKind)), event=EVENT_NAMES, value=JSON | OBJECTS)
@settings(max_examples=300, deadline=None)
def test_arbitrary_json(forge: ForgeKind, event: str, value: Any) -> None:
    _parse_or_payload_error(forge, _headers(forge, event), json.dumps(value).encode())


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value[:3]):
            found += _paths(child, (*prefix, index))
    return found


@given(data=st.data())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_real_payloads_with_one_field_replaced(data: st.DataObject) -> None:
    forge, path = data.draw(st.sampled_from(CONTRACT_FILES))
    payload = load(path)
    where = data.draw(st.sampled_from(_paths(payload)))
    target = payload
    for key in where[:-1]:
        target = target[key]
    if data.draw(st.booleans()) and isinstance(target, dict):
        del target[where[-1]]
    else:
        target[where[-1]] = data.draw(JSON)
    _parse_or_payload_error(forge, headers_for(forge, path), json.dumps(payload).encode())
