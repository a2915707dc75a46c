import io
import json

import pytest
import structlog

from ci.logs import MASK, Redactor, configure
from pipelines.problems import Position


@pytest.fixture(autouse=True)
def _reset_structlog() -> None:
    yield
    structlog.reset_defaults()


def _log_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_registered_secret_is_masked_inside_any_string() -> None:
    stream = io.StringIO()
    redactor = configure(json=True, stream=stream)
    redactor.add("s3cr3t-value")
    structlog.get_logger().info("cloning", url="https://x:s3cr3t-value@forge.example/r.git")
    (line,) = _log_lines(stream)
    assert "s3cr3t-value" not in stream.getvalue()
    assert line["url"] == f"https://x:{MASK}@forge.example/r.git"


@pytest.mark.parametrize(
    "key",
    ["token", "api_token", "webhook-secret", "Authorization", "password", "private_key"],
)
def test_credential_keys_are_masked_whatever_they_hold(key: str) -> None:
    stream = io.StringIO()
    configure(json=True, stream=stream)
    structlog.get_logger().info("calling forge", **{key: "plain-value-123"})
    assert "plain-value-123" not in stream.getvalue()
    assert _log_lines(stream)[0][key] == MASK


@pytest.mark.parametrize("key", ["tokenizer", "secretary", "delivery_id", "sha"])
def test_ordinary_keys_are_left_alone(key: str) -> None:
    stream = io.StringIO()
    configure(json=True, stream=stream)
    structlog.get_logger().info("event", **{key: "visible"})
    assert _log_lines(stream)[0][key] == "visible"


def test_nested_structures_are_cleaned() -> None:
    redactor = Redactor(["abcdef"])
    cleaned = redactor(None, "info", {"headers": {"Authorization": "Bearer x"}, "args": ["abcdef"]})
    assert cleaned == {"headers": {"Authorization": MASK}, "args": [MASK]}


def test_named_tuples_are_cleaned_as_tuples() -> None:
    redactor = Redactor(["abcdef"])
    cleaned = redactor(None, "info", {"at": Position("abcdef.yaml", 3, 5)})
    assert cleaned == {"at": (f"{MASK}.yaml", 3, 5)}


def test_short_values_are_not_registered_as_secrets() -> None:
    redactor = Redactor(["ci"])
    assert redactor.mask("ferry ci run") == "ferry ci run"


def test_level_filters_lower_messages() -> None:
    stream = io.StringIO()
    configure(json=True, stream=stream, level="warning")
    structlog.get_logger().info("hidden")
    structlog.get_logger().warning("shown")
    assert [line["event"] for line in _log_lines(stream)] == ["shown"]
