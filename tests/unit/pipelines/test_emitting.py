"""`emitting.dump` writes the bytes PyYAML's libyaml dumper writes (`pyyaml_dump`), for every
JSON-like tree, and what it writes reads back as the same tree."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipelines.emitting import OutsideSubsetError, dump, emit, pyyaml_dump

PROPERTY = settings(max_examples=400, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

# Strings YAML gives another meaning, or that need quoting, folding or escapes.
TRICKY = [
    "", " ", "yes", "No", "ON", "off", "y", "n", "true", "False", "1", "-1", "+1", "1.0", "1e3",
    ".5", ".inf", "-.Inf", ".NaN", "0x1F", "0o17", "017", "0b101", "1_000", "1:30", "190:20:30",
    "~", "null", "Null", "NULL", "<<", "=", "!", "&", "*", "2001-12-14",
    "2001-12-14t21:59:43.10-05:00", "2002-12-14 21:59:43.10 -5", ": ", "a: b", "a:b", "a:",
    ":a", "#", "a #b", "a#b", "# c", "- a",
    "-a", "-", "--", "---", "...", "--- a", "? a", "?a", "[a]", "{a}", "a, b", "a]", "'a'", '"a"',
    "a'b", 'a"b', "\\", "a\\nb", "%a", "@a", "`a`", "|", ">", "a |", " lead", "trail ", "  two  ",
    "a  b", "\ttab", "a\tb", "\n", "\n\n", "a\n", "a\n\n", "\na", " \na", "a \nb", "a\n b",
    "a\nb\n", "a\r\nb", "a\rb", "\x85", "a\u2028b", "a\u2029", "\u2028", "\ufeff", "a\ufeffb",
    "\x00", "\x07\x1b", "\x7f", "\x9f", "\xa0", "é", "naïve café", "日本語", "€", "\U0001f600",
    "\ud7ff", "\ue000", "\ufffd", "\ufffe", "\uffff", "$(params.branch)", "${{ matrix.python }}",
    "echo $FERRY_SHA", "#!/bin/sh\nset -e\n", "line one\n\n\nline four\n",
    "x" * 130, " ".join(["word"] * 40), "'quoted' " * 20, '"double" ' * 20,
    ("a " * 60) + "\t", "a" + "  b" * 50, "é " * 70, "x " * 49 + "  y " * 20, "a\tb " * 40,
    "a\tb  " * 30, "\U0001f600 x" * 40, "a\u2028b " * 30, "a\u2028\u2028b  c" * 12,
    "it's " * 30, "a: b " * 30,
]
# Characters that change the emitter's choices, mixed into random text.
ALPHABET = [
    *" :#-?'\"\n\t\\|>{}[],&*!%@`~.01xyTFNn", "\r", "\x85", "\u2028", "\u2029", "\ufeff",
    "\x00", "é", "€", "\U0001f600", "\xa0",
]

texts = st.one_of(
    st.sampled_from(TRICKY),
    st.text(alphabet=ALPHABET, max_size=12),
    st.text(max_size=12),
    # Long enough to fold at different columns and nesting depths.
    st.lists(st.text(alphabet=list("ab '\"#:\\\t\n"), min_size=1, max_size=9), max_size=30)
    .map(" ".join),
)
BREAKS = "\n\r\x85\u2028\u2029"
# Keys without line breaks: libyaml writes a key with one as `? key`, which `emit` leaves to
# PyYAML (tested on its own below).
keys = texts.map(lambda key: key.translate({ord(b): None for b in BREAKS}))
scalars = st.one_of(st.none(), st.booleans(), st.integers(), texts)
trees = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children,
                                                                      max_size=4),
    max_leaves=24,
)


def has_complex_key(data: Any) -> bool:
    """A key libyaml writes as `? key`, which `emit` leaves to PyYAML."""
    if isinstance(data, dict):
        return any(
            any(break_ in key for break_ in BREAKS)
            or len(key.encode("utf-8")) > 128
            or has_complex_key(value)
            for key, value in data.items()
        )
    if isinstance(data, list):
        return any(has_complex_key(item) for item in data)
    return False


def reads_back(text: str) -> Any:
    return yaml.load(text, Loader=yaml.CSafeLoader)


@PROPERTY
@given(trees)
@example({"a": {"b": [{"c": "x " * 60}]}, "": [[], {}, [[None]]]})
@example(["a\n", {"k": "b\n\n"}, "c"])
def test_emit_writes_what_pyyaml_writes(data: Any) -> None:
    expected = pyyaml_dump(data)
    try:
        assert emit(data) == expected
    except OutsideSubsetError:
        assert has_complex_key(data)
    assert dump(data) == expected


@PROPERTY
@given(trees)
def test_what_dump_writes_reads_back_as_the_same_tree(data: Any) -> None:
    assert reads_back(dump(data)) == data


@pytest.mark.parametrize("text", TRICKY)
@pytest.mark.parametrize("depth", [0, 1, 5, 30])
def test_each_tricky_string_as_key_and_value_at_each_depth(text: str, depth: int) -> None:
    data: Any = {text: text, "list": [text, [text], {text: [text]}]}
    for level in range(depth):
        data = {f"level-{level}": data} if level % 2 else [data, text]
    expected = pyyaml_dump(data)
    assert dump(data) == expected
    assert reads_back(expected) == data
    if not has_complex_key(data):
        assert emit(data) == expected


def test_containers_reached_twice_and_other_types_go_to_pyyaml() -> None:
    shared = {"a": 1}
    for data in ({"x": shared, "y": shared}, {"f": 1.5}, {"t": (1, 2)}, {1: "int key"},
                 {"k\nk": 1}, {"k" * 129: 1}):
        with pytest.raises(OutsideSubsetError):
            emit(data)
        assert dump(data) == pyyaml_dump(data)
    assert "&id001" in dump({"x": shared, "y": shared})
