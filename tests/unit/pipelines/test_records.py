"""Records that carry where they were written compare, hash and print as if they did not."""

from __future__ import annotations

import pytest
from msgspec.structs import replace

from pipelines.parsing import parse_yaml
from pipelines.planning import PlannedStep
from pipelines.problems import Position
from pipelines.spec import Job, SecretRef, Step

HERE = Position(".ci.yaml", 3, 5)
THERE = Position("other.yaml", 40, 1)


def _step(position: Position) -> Step:
    return Step(run="make", name="build", position=position,
                key_positions={"run": position})


def test_two_steps_written_in_different_places_are_one_step() -> None:
    here, there = _step(HERE), _step(THERE)
    assert here == there
    assert not here != there  # noqa: SIM202 (`!=` is msgspec's own slot: it must agree)
    assert here.position_of("run") == HERE  # the positions are still there to read


def test_records_written_in_different_places_hash_alike() -> None:
    # (A record holding a mapping, as a step's env, is no more hashable than the mapping.)
    here = SecretRef(env="TOKEN", secret="pypi", key="token", position=HERE)
    there = SecretRef(env="TOKEN", secret="pypi", key="token", position=THERE)
    assert hash(here) == hash(there)
    assert len({here, there}) == 1
    assert hash(here) != hash(replace(here, key="other"))


def test_a_step_that_differs_in_a_compared_field_is_another_step() -> None:
    assert _step(HERE) != replace(_step(HERE), run="make test")
    assert _step(HERE) != replace(_step(HERE), name=None)


def test_a_record_of_another_type_is_never_equal() -> None:
    reference = SecretRef(env="TOKEN", secret="pypi", key="token", position=HERE)
    assert reference != SecretRef(env="TOKEN", secret="pypi", key="other")
    assert reference == SecretRef(env="TOKEN", secret="pypi", key="token", position=THERE)
    assert _step(HERE) != ("make", "build")
    assert PlannedStep(name="build", script="make", image="alpine") != _step(HERE)


def test_the_repr_leaves_positions_out() -> None:
    shown = repr(_step(HERE))
    assert shown.startswith("Step(run='make', name='build', image=None, env=")
    assert ".ci.yaml" not in shown
    assert "position" not in shown


def test_records_are_frozen() -> None:
    job = Job(name="build", steps=(_step(HERE),))
    with pytest.raises(AttributeError):
        job.name = "other"  # type: ignore[misc]


def test_a_planned_step_is_compared_without_its_position() -> None:
    first = PlannedStep(name="build", script="make", image="alpine", position=HERE)
    assert first == PlannedStep(name="build", script="make", image="alpine", position=THERE)
    assert not first != PlannedStep(  # noqa: SIM202
        name="build", script="make", image="alpine", position=THERE)
    assert first != PlannedStep(name="build", script="make", image="debian", position=HERE)


def test_mappings_parsed_from_the_same_text_are_equal_whatever_their_index() -> None:
    # A mapping's index of its entries by name is derived from the entries: left out.
    first, second = parse_yaml("a: 1\nb: [x, y]\n", filename="one.yaml"), parse_yaml(
        "a: 1\nb: [x, y]\n", filename="one.yaml")
    assert first == second
    assert replace(first, by_name={}) == first
    assert first != parse_yaml("a: 2\nb: [x, y]\n", filename="one.yaml")
