"""parse_yaml: positions a developer can jump to, and hostile input refused fast and cleanly."""

from __future__ import annotations

import pytest

from pipelines.parsing import MappingNode, ScalarNode, SequenceNode, parse_yaml
from pipelines.problems import Position, SpecError
from pipelines.spec import MAX_NESTING_DEPTH, MAX_SPEC_BYTES, MAX_YAML_NODES


def refusal(source: str | bytes) -> str:
    with pytest.raises(SpecError) as caught:
        parse_yaml(source, filename="ci.yaml")
    return str(caught.value.problems[0])


def test_keys_and_values_keep_their_line_and_column() -> None:
    root = parse_yaml("jobs:\n  test:\n    steps: [pytest, 'ruff check']\n", filename="f.yaml")
    jobs = root.get("jobs")
    assert jobs is not None and isinstance(jobs.value, MappingNode)
    test = jobs.value.get("test")
    assert test is not None and test.key.position == Position("f.yaml", 2, 3)
    assert isinstance(test.value, MappingNode)
    steps = test.value.get("steps")
    assert steps is not None and isinstance(steps.value, SequenceNode)
    assert [item.position.column for item in steps.value.items] == [13, 21]


@pytest.mark.parametrize(
    ("text", "value", "written"),
    [
        ("3.10", 3.1, "3.10"),  # the matrix wants "3.10", not 3.1
        ("'3.10'", "3.10", "3.10"),
        ("42", 42, "42"),
        ("yes", True, "yes"),
        ("~", None, "~"),
        ("2024-01-01", "2024-01-01", "2024-01-01"),  # dates stay text
    ],
)
def test_scalars_keep_their_written_text(text: str, value: object, written: str) -> None:
    entry = parse_yaml(f"x: {text}\n").get("x")
    assert entry is not None and isinstance(entry.value, ScalarNode)
    assert (entry.value.value, entry.value.text) == (value, written)


def test_keys_are_text_even_when_yaml_would_make_them_booleans() -> None:
    assert [entry.name for entry in parse_yaml("on: 1\n3: 2\n").entries] == ["on", "3"]


def test_merge_keys_bring_in_entries_that_are_not_written_in_the_mapping() -> None:
    root = parse_yaml("x-d: &d {image: a, retries: 1}\njob:\n  <<: *d\n  image: b\n")
    job = root.get("job")
    assert job is not None and isinstance(job.value, MappingNode)
    values = {e.name: e.value.text for e in job.value.entries if isinstance(e.value, ScalarNode)}
    assert values == {"image": "b", "retries": "1"}


def test_all_duplicate_keys_are_reported_with_the_first_line() -> None:
    with pytest.raises(SpecError) as caught:
        parse_yaml("a: 1\nb: 2\na: 3\nb: 4\n", filename="ci.yaml")
    assert [f"{p.position}: {p.message}" for p in caught.value.problems] == [
        "ci.yaml:3:1: duplicate key `a` (first at line 1)",
        "ci.yaml:4:1: duplicate key `b` (first at line 2)",
    ]


def _billion_laughs() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for index in range(1, 10):
        previous, current = chr(96 + index), chr(97 + index)
        lines.append(f"{current}: &{current} [{', '.join(['*' + previous] * 9)}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("", "ci.yaml:1:1: error: the spec is empty", id="empty"),
        pytest.param("# only a comment\n", "ci.yaml:1:1: error: the spec is empty",
                     id="comment-only"),
        pytest.param("- a\n- b\n", "ci.yaml:1:1: error: the top level of the spec must be a "
                     "mapping, not a list", id="list-root"),
        pytest.param("just text\n", "ci.yaml:1:1: error: the top level of the spec must be a "
                     "mapping, not a string", id="scalar-root"),
        pytest.param(b"a: 1\nb: caf\xe9\n", "ci.yaml:2:7: error: the file is not valid UTF-8: "
                     "byte 0xe9 at offset 11", id="latin-1"),
        pytest.param("jobs:\n  a: [\n", "ci.yaml:3:1: error: YAML syntax error:", id="syntax"),
        pytest.param("a: 1\n---\nb: 2\n", "ci.yaml:2:1: error: the file holds more than one "
                     "YAML document", id="two-documents"),
        pytest.param("a: !!python/object:os.system x\n", "ci.yaml:1:4: error: the YAML tag "
                     "`tag:yaml.org,2002:python/object:os.system` is not supported", id="tag"),
        pytest.param("a: &a [*a]\n", "ci.yaml:1:8: error: the alias `*a` refers to a node "
                     "that contains it", id="recursive-alias"),
        pytest.param("a: *nowhere\n", "ci.yaml:1:4: error: the alias `*nowhere` has no anchor",
                     id="undefined-alias"),
        pytest.param("a: " + "9" * 5000 + "\n", "ci.yaml:1:4: error: this number is too long",
                     id="huge-number"),
        pytest.param("? [a, b]\n: c\n", "ci.yaml:1:3: error: a mapping key must be plain text",
                     id="complex-key"),
        pytest.param("a: \x07\n", "ci.yaml:1:4: error: the file contains a character YAML "
                     "does not allow", id="control-character"),
    ],
)
def test_bad_input_is_refused_with_a_position(source: str | bytes, expected: str) -> None:
    assert refusal(source).startswith(expected)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(_billion_laughs(), f"more than {MAX_YAML_NODES} YAML nodes",
                     id="billion-laughs"),
        pytest.param("a: " + "[" * 10_000 + "]" * 10_000 + "\n",
                     f"nests deeper than {MAX_NESTING_DEPTH} levels", id="deep-flow"),
        pytest.param("".join(" " * depth + "a:\n" for depth in range(500)),
                     f"nests deeper than {MAX_NESTING_DEPTH} levels", id="deep-block"),
        pytest.param("a: [" + "1," * 100_000 + "1]\n", f"more than {MAX_YAML_NODES} YAML nodes",
                     id="wide"),
        pytest.param("a: " + "x" * (1024 * 1024) + "\n", f"over the limit of {MAX_SPEC_BYTES}",
                     id="one-megabyte"),
        pytest.param(("a: " + "x" * (1024 * 1024)).encode(), f"over the limit of {MAX_SPEC_BYTES}",
                     id="one-megabyte-bytes"),
    ],
)
def test_hostile_input_is_refused_with_the_limit_it_broke(source: str, expected: str) -> None:
    # How fast it is refused is bench/compile.py's to print: a timed test fails on a busy
    # machine, not on slow code.
    assert expected in refusal(source)


def test_an_alias_deep_inside_nesting_counts_its_own_depth() -> None:
    deep = "[" * 20 + "1" + "]" * 20
    message = refusal(f"a: &a {deep}\nb: {'[' * 15}*a{']' * 15}\n")
    assert f"nests deeper than {MAX_NESTING_DEPTH} levels" in message


def test_a_byte_order_mark_is_accepted() -> None:
    assert parse_yaml("\ufeffa: 1\n".encode()).entries[0].name == "a"
