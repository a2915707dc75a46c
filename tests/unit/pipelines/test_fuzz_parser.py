"""Whatever the bytes, the spec layer answers with a spec or a `SpecError`, never a crash."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.linting import JOB_KEYS, STEP_KEYS, TOP_KEYS, WHEN_KEYS, lint_spec, load_spec
from pipelines.problems import SpecError

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Words the linter gives meaning to, so generated documents reach deep into its checks.
WORDS = sorted({*TOP_KEYS, *JOB_KEYS, *STEP_KEYS, *WHEN_KEYS, "include", "exclude", "limit",
                "test", "lint", "build", "push", "tag", "${{ matrix.x }}", "x", "1h", "a/b",
                "python:3.12", "!main", "<<", "&a", "*a"})
scalars = st.one_of(st.sampled_from(WORDS), st.integers(-5, 10**6), st.booleans(), st.none(),
                    st.floats(allow_nan=False), st.text(max_size=8))
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(WORDS) | st.text(max_size=6), children, max_size=5),
    ),
    max_leaves=40,
)


def check(source: str | bytes) -> None:
    spec, problems = lint_spec(source)
    assert spec is not None or problems
    try:
        load_spec(source)
    except SpecError as error:
        assert error.problems


@FUZZ
@given(st.binary(max_size=512))
def test_arbitrary_bytes(source: bytes) -> None:
    check(source)


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text(source: str) -> None:
    check(source)


@FUZZ
@given(documents)
def test_arbitrary_yaml_structures(document: Any) -> None:
    check(yaml.safe_dump(document))


@FUZZ
@given(st.lists(st.sampled_from(["jobs:", "  a:", "    steps:", "      - run: x", "  b:",
                                 "    needs: a", "[", "]", "{", "&x", "*x", "<<: *x", "---",
                                 "'", '"', "!!str", "? ", ": ", "- ", "\t", "#"]),
                max_size=30))
def test_yaml_ish_fragments(lines: list[str]) -> None:
    check("\n".join(lines))
