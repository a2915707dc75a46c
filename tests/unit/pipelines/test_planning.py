from __future__ import annotations

import pytest

from pipelines.events import Event, EventKind
from pipelines.matrices import combinations as matrix_combinations
from pipelines.planning import (
    NothingToRun,
    Plan,
    jobs_named,
    plan,
    rerun,
)
from pipelines.spec import Job, Matrix, Patterns, Spec, Step, When

PUSH = Event(
    kind=EventKind.PUSH,
    repository="acme/widget",
    repository_url="https://example.invalid/acme/widget.git",
    sha="0" * 40,
    ref="refs/heads/main",
    branch="main",
)


def job(name: str, *needs: str, **fields: object) -> Job:
    steps = fields.pop("steps", (Step(run=f"echo {name}"),))
    return Job(name=name, steps=steps, needs=needs, **fields)  # type: ignore[arg-type]


def planned(spec: Spec, event: Event = PUSH) -> Plan:
    result = plan(spec, event)
    assert isinstance(result, Plan), result
    return result


def names(result: Plan) -> list[str]:
    return [planned_job.name for planned_job in result.jobs]


@pytest.mark.parametrize(
    ("jobs", "order"),
    [
        ((job("a"), job("b"), job("c")), ["a", "b", "c"]),
        ((job("a", "b"), job("b")), ["b", "a"]),  # a dependency may come later in the file
        ((job("d", "b", "c"), job("c", "a"), job("b", "a"), job("a")), ["a", "c", "b", "d"]),
        ((job("x"), job("y", "x"), job("z")), ["x", "y", "z"]),
    ],
)
def test_order_is_topological_ties_in_file_order(
    jobs: tuple[Job, ...], order: list[str]
) -> None:
    assert names(planned(Spec(jobs=jobs))) == order


def test_needs_become_planned_names() -> None:
    result = planned(Spec(jobs=(job("a"), job("b", "a"))))
    assert result.jobs[1].needs == ("a",)


@pytest.mark.parametrize(
    "jobs",
    [
        (job("a", "nope"),),
        (job("a", "a"),),
        (job("x"), job("a", "b"), job("b", "a")),
    ],
)
def test_a_hand_made_spec_the_linter_would_refuse_is_not_planned(jobs: tuple[Job, ...]) -> None:
    # The linter reports these with positions (test_linting); plan() only refuses to guess.
    with pytest.raises(ValueError, match="cycle"):
        plan(Spec(jobs=jobs), PUSH)


@pytest.mark.parametrize(
    ("matrix", "expected"),
    [
        (Matrix(axes={"py": ("3.11", "3.12")}), [{"py": "3.11"}, {"py": "3.12"}]),
        (
            Matrix(axes={"py": ("3.11", "3.12"), "os": ("a", "b")}),
            [{"py": "3.11", "os": "a"}, {"py": "3.11", "os": "b"},
             {"py": "3.12", "os": "a"}, {"py": "3.12", "os": "b"}],
        ),
        (
            Matrix(axes={"py": ("3.11", "3.12"), "os": ("a", "b")},
                   exclude=({"py": "3.11"},), include=({"py": "3.13", "os": "c"},)),
            [{"py": "3.12", "os": "a"}, {"py": "3.12", "os": "b"}, {"py": "3.13", "os": "c"}],
        ),
        (Matrix(axes={"py": ("3.11",)}, include=({"py": "3.11"},)), [{"py": "3.11"}]),
        (Matrix(include=({"py": "3.11"}, {"py": "pypy"})), [{"py": "3.11"}, {"py": "pypy"}]),
    ],
)
def test_matrix_combinations(matrix: Matrix, expected: list[dict[str, str]]) -> None:
    assert [dict(c) for c in matrix_combinations(matrix)] == expected


def test_matrix_expands_into_named_jobs_with_env_and_substitution() -> None:
    test = job(
        "test",
        image="python:${{ matrix.python }}",
        matrix=Matrix(axes={"python": ("3.11", "3.12")}),
        env={"FLAVOUR": "py${{matrix.python}}"},
        steps=(Step(run="echo ${{ matrix.python }}", image="x:${{ matrix.python }}"),),
    )
    result = planned(Spec(jobs=(test, job("report", "test"))))
    assert names(result) == ["test-3-11", "test-3-12", "report"]
    first = result.jobs[0]
    assert first.spec_job == "test"
    assert first.image == "python:3.11"
    assert dict(first.env) == {"FLAVOUR": "py3.11", "MATRIX_PYTHON": "3.11"}
    assert first.steps[0].script == "echo 3.11"
    assert first.steps[0].image == "x:3.11"
    # `needs` on a matrix job means all of its variants.
    assert result.jobs[2].needs == ("test-3-11", "test-3-12")


def test_matrix_names_stay_short_and_unique() -> None:
    long_value = "x" * 80
    test = job("test", matrix=Matrix(axes={"v": (long_value + "a", long_value + "b")}))
    result = planned(Spec(jobs=(test,)))
    assert all(len(name) <= 63 for name in names(result))
    assert len(set(names(result))) == 2


def test_matrix_name_clash_with_a_job_is_resolved() -> None:
    test = job("test", matrix=Matrix(axes={"v": ("1",)}))
    result = planned(Spec(jobs=(test, job("test-1"))))
    assert names(result)[0] == "test-1"
    assert names(result)[1].startswith("test-1-") and len(set(names(result))) == 2


def test_unknown_matrix_variable_in_a_hand_made_spec_is_not_planned() -> None:
    test = job("test", image="python:${{ matrix.nope }}", matrix=Matrix(axes={"v": ("1",)}))
    with pytest.raises(ValueError, match="no value"):
        plan(Spec(jobs=(test,)), PUSH)


def test_env_precedence() -> None:
    spec = Spec(
        env={"A": "pipeline", "B": "pipeline", "C": "pipeline", "MATRIX_V": "pipeline"},
        jobs=(
            job(
                "test",
                env={"B": "job", "C": "job"},
                matrix=Matrix(axes={"v": ("matrix",)}),
                steps=(Step(run="true", env={"C": "step"}),),
            ),
        ),
    )
    planned_job = planned(spec).jobs[0]
    assert dict(planned_job.env_for(planned_job.steps[0])) == {
        "A": "pipeline",
        "B": "job",
        "C": "step",
        "MATRIX_V": "matrix",
    }


def test_step_names_are_unique_labels() -> None:
    steps = (Step(run="a", name="Unit tests"), Step(run="b", name="unit tests"), Step(run="c"),
             Step(run="d", name="clone"))
    result = planned(Spec(jobs=(job("test", steps=steps),)))
    step_names = [step.name for step in result.jobs[0].steps]
    assert step_names == ["unit-tests", "unit-tests-2", "run-3", "clone-4"]


MAIN_ONLY = When(branch=Patterns(include=("main",)))


@pytest.mark.parametrize(
    ("jobs", "ran", "skipped"),
    [
        ((job("a"), job("b", when=MAIN_ONLY)), ["a", "b"], []),
        ((job("a"), job("b", when=When(events=(EventKind.TAG,)))), ["a"], ["b"]),
        # Skipping cascades: `c` needs `b`, which is skipped, so `c` is too.
        ((job("a"), job("b", when=When(events=(EventKind.TAG,))), job("c", "b"), job("d", "c")),
         ["a"], ["b", "c", "d"]),
    ],
)
def test_job_when(jobs: tuple[Job, ...], ran: list[str], skipped: list[str]) -> None:
    result = planned(Spec(jobs=jobs))
    assert names(result) == ran
    assert [s.name for s in result.skipped] == skipped


def test_cascade_reason_names_the_skipped_dependency() -> None:
    spec = Spec(jobs=(job("a"), job("b", when=When(events=(EventKind.TAG,))), job("c", "b")))
    reasons = {s.name: s.reason for s in planned(spec).skipped}
    assert reasons["c"] == "it needs `b`, which is skipped"


def test_nothing_to_run_when_pipeline_when_fails() -> None:
    spec = Spec(jobs=(job("a"),), when=When(events=(EventKind.TAG,)))
    result = plan(spec, PUSH)
    assert isinstance(result, NothingToRun)
    assert "event `push` is not one of: tag" in result.reason


def test_nothing_to_run_when_every_job_is_skipped() -> None:
    spec = Spec(
        jobs=(job("a", when=When(events=(EventKind.TAG,))),),
        finally_jobs=(job("notify", is_finally=True),),
    )
    result = plan(spec, PUSH)
    assert isinstance(result, NothingToRun)
    assert [s.name for s in result.skipped] == ["a"]


def test_finally_jobs_are_filtered_and_kept_apart() -> None:
    spec = Spec(
        jobs=(job("a"),),
        finally_jobs=(
            job("notify", is_finally=True),
            job("tag-only", is_finally=True, when=When(events=(EventKind.TAG,))),
        ),
        timeout_seconds=600,
    )
    result = planned(spec)
    assert [j.name for j in result.finally_jobs] == ["notify"]
    assert result.finally_jobs[0].is_finally
    assert [s.name for s in result.skipped] == ["tag-only"]
    assert result.timeout_seconds == 600


def test_job_fields_are_carried() -> None:
    spec = Spec(jobs=(job("a", retries=2, allow_failure=True, timeout_seconds=60,
                          share_workspace=True),))
    planned_job = planned(spec).jobs[0]
    assert (planned_job.retries, planned_job.allow_failure, planned_job.timeout_seconds,
            planned_job.share_workspace) == (2, True, 60, True)


def test_plan_is_deterministic() -> None:
    spec = Spec(jobs=(job("b"), job("a", "b"), job("c", matrix=Matrix(axes={"v": ("1", "2")}))))
    assert planned(spec) == planned(spec)


def test_rerun_keeps_the_selected_jobs_their_dependents_and_finally() -> None:
    test = job("test", matrix=Matrix(axes={"python": ("3.11", "3.12")}))
    spec = Spec(
        jobs=(job("lint"), test, job("build", "lint", "test"), job("deploy", "build"),
              job("docs", "lint")),
        finally_jobs=(job("notify", is_finally=True),),
    )
    full = planned(spec)
    again = rerun(full, frozenset({"test-3-12"}))
    assert again is not None
    assert names(again) == ["test-3-12", "build", "deploy"]
    # `lint` and `test-3-11` passed and are not re-run: needing them counts as satisfied.
    assert [j.needs for j in again.jobs] == [(), ("test-3-12",), ("build",)]
    assert [j.name for j in again.finally_jobs] == ["notify"]


def test_jobs_named_means_a_planned_job_or_every_variant() -> None:
    test = job("test", matrix=Matrix(axes={"python": ("3.11", "3.12")}))
    full = planned(Spec(jobs=(test, job("lint"))))
    assert jobs_named(full, "test") == {"test-3-11", "test-3-12"}
    assert jobs_named(full, "test-3-11") == {"test-3-11"}
    assert jobs_named(full, "nope") == frozenset()


def test_rerun_of_nothing_regular_is_none() -> None:
    full = planned(Spec(jobs=(job("a"),), finally_jobs=(job("notify", is_finally=True),)))
    assert rerun(full, frozenset({"notify"})) is None
    assert rerun(full, frozenset()) is None
