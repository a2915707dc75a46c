"""`Specs`: the receiver's `prepare`, which lints each spec text once."""

from __future__ import annotations

import msgspec.structs

from pipelines.planning import NothingToRun, Plan
from pipelines.preparing import Prepared, Problems, Specs, prepare
from tests.unit.pipelines.test_planning import PUSH  # a push to main

SPEC = b"""\
jobs:
  build:
    image: alpine:3.20
    steps: [{run: make}]
  release:
    image: alpine:3.20
    needs: build
    when: {branch: main}
    steps: [{run: make release}]
"""


def test_a_text_met_again_is_planned_for_each_event_from_one_linted_spec() -> None:
    specs = Specs()
    first = specs.prepare(SPEC, path=".ci.yaml", event=PUSH)
    other_branch = msgspec.structs.replace(PUSH, sha="1" * 40, ref="refs/heads/dev", branch="dev")
    second = specs.prepare(SPEC, path=".ci.yaml", event=other_branch)
    assert isinstance(first, Prepared) and isinstance(second, Prepared)
    assert second.spec is first.spec  # linted once
    assert first == prepare(SPEC, path=".ci.yaml", event=PUSH)
    assert second == prepare(SPEC, path=".ci.yaml", event=other_branch)
    assert isinstance(first.outcome, Plan) and isinstance(second.outcome, Plan)
    assert [job.name for job in first.outcome.jobs] == ["build", "release"]
    assert [job.name for job in second.outcome.jobs] == ["build"]  # planned for its event


def test_problems_name_the_path_they_were_read_from() -> None:
    specs = Specs()
    broken = b"jobs:\n  build:\n    image: alpine:3.20\n    stepz: [{run: make}]\n"
    at_root = specs.prepare(broken, path=".ci.yaml", event=PUSH)
    elsewhere = specs.prepare(broken, path="ci/pipeline.yaml", event=PUSH)
    assert isinstance(at_root, Problems) and isinstance(elsewhere, Problems)
    assert at_root == prepare(broken, path=".ci.yaml", event=PUSH)
    assert all(problem.position.file == "ci/pipeline.yaml" for problem in elsewhere.problems)


def test_only_the_most_recently_used_texts_are_kept() -> None:
    specs = Specs(kept=2)
    texts = [SPEC.replace(b"make}", f"make {n}}}".encode()) for n in range(3)]
    kept = specs.prepare(texts[0], event=PUSH)
    dropped = specs.prepare(texts[1], event=PUSH)
    assert isinstance(kept, Prepared) and isinstance(dropped, Prepared)
    again = specs.prepare(texts[0], event=PUSH)  # used again: the newest now
    specs.prepare(texts[2], event=PUSH)  # the third text: texts[1] goes
    assert isinstance(again, Prepared) and again.spec is kept.spec
    still = specs.prepare(texts[0], event=PUSH)
    assert isinstance(still, Prepared) and still.spec is kept.spec
    relinted = specs.prepare(texts[1], event=PUSH)  # linted anew: an equal spec, a new one
    assert isinstance(relinted, Prepared) and not isinstance(relinted.outcome, NothingToRun)
    assert relinted.spec == dropped.spec and relinted.spec is not dropped.spec
