"""The controller killed, the forge failing, two replicas: statuses still arrive, once.

A status the forge accepted just before a SIGKILL, before the controller wrote that down, is
in doubt for the next incarnation (it finds the report `sending` under another incarnation).
With commit statuses it reads the commit's statuses back and acknowledges the report without
sending when the forge already shows it, so in token mode nothing is ever repeated: these
tests allow no repeated status of any state and no recorded doubt. In GitHub App mode a check
run in doubt, or whose creation was written ahead and never acknowledged, is looked up by its
`external_id` among the commit's check runs and updated rather than created again: the App
test allows no second check run of any name on any commit, and no recorded doubt either.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import Any

from tests.binding import create_bound
from tests.cluster.resources import Kube
from tests.integration.controller_fixtures import (
    APP_ID,
    INSTALLATION_ID,
    OWNER_NAME,
    ControllerProcess,
    ServedForge,
    as_github_app,
    controller,
    create_repository,
    ferry_run,
    reported,
    served_forge,
    set_condition,
    sha_for,
    wait_for,
)

__all__ = ["controller", "served_forge"]

FINALS = {  # Tekton reason -> (condition status, commit status state)
    "Succeeded": ("True", "success"),
    "Failed": ("False", "failure"),
    "Cancelled": ("False", "error"),
    "PipelineRunTimeout": ("False", "failure"),
}


def _final_acknowledged(kube: Kube, namespace: str, name: str) -> bool:
    entry = reported(kube, namespace, name).get("ack", {}).get("run")
    return entry is not None and entry[0] not in ("queued", "running")


def _drive(kube: Kube, namespace: str, names: list[str], outcomes: dict[str, str],
           rng: random.Random, done: threading.Event) -> None:
    """Move every run to running, then to its final condition, at random moments."""
    try:
        for name in names:
            set_condition(kube, namespace, name, "Unknown", "Running")
            time.sleep(rng.uniform(0.0, 0.1))
        for name in names:
            status, _ = FINALS[outcomes[name]]
            set_condition(kube, namespace, name, status, outcomes[name])
            time.sleep(rng.uniform(0.0, 0.15))
    finally:
        done.set()


def _check_exactly_once(kube: Kube, namespace: str, served: ServedForge, names: list[str],
                        outcomes: dict[str, str]) -> None:
    """Every check of a run (the run's and its job's) shows each state at most once (Queued,
    Running: both "pending", told apart by their description) and exactly one final status,
    the run's the expected one; no run records a report sent in doubt."""
    problems = []
    for index, name in enumerate(names):
        memory = reported(kube, namespace, name)
        for context, posted in _by_context(served, sha_for(index)).items():
            finals = [s["state"] for s in posted if s["state"] != "pending"]
            expected = FINALS[outcomes[name]][1]
            if len(finals) != 1 or (context == "ferry" and finals != [expected]):
                problems.append(f"{name} {context}: finals {finals}, expected one {expected}")
            pendings = Counter(s["description"] for s in posted if s["state"] == "pending")
            repeated = {text: count for text, count in pendings.items() if count > 1}
            if repeated or not set(pendings) <= {"Queued", "Running"}:
                problems.append(f"{name} {context}: pending statuses {dict(pendings)}")
        if memory.get("doubts"):
            problems.append(f"{name}: sent in doubt {memory['doubts']}")
    assert not problems, "\n".join(problems)


def _by_context(served: ServedForge, sha: str) -> dict[str, list[dict[str, Any]]]:
    """A commit's statuses by context: the run's (`ferry`) and each job's (`ferry/<job>`)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for status in served.forge.statuses_for(OWNER_NAME, sha):
        found.setdefault(status["context"], []).append(status)
    assert "ferry" in found and "ferry/build" in found, sorted(found)  # a check per job
    return found


def _read_back_outcomes(controller: ControllerProcess) -> Counter[str]:
    events = {"already on the forge; acknowledged without sending": "recovered",
              "not on the forge; sending": "absent"}
    return Counter(events[e["event"]] for e in controller.logs() if e.get("event") in events)


def test_sigkill_at_random_points_loses_and_repeats_nothing(
    kube: Kube, namespace: str, served_forge: ServedForge, controller: ControllerProcess
) -> None:
    rng = random.Random(5)  # seeded: a failure replays the same kills
    # Answers held after taking effect: many kills land after the forge accepted a status and
    # before the controller heard so, the window the read-back closes. No timing is asserted.
    served_forge.forge.faults.hold = 0.2
    create_repository(kube, namespace, api_url=served_forge.api_url, keep_runs=100)
    names = [f"run-{index:02d}" for index in range(50)]
    outcomes = {name: rng.choice(sorted(FINALS)) for name in names}
    controller.start()
    for index, name in enumerate(names):
        create_bound(kube, ferry_run(namespace, name, sha=sha_for(index)))
    done = threading.Event()
    driver = threading.Thread(target=_drive, args=(kube, namespace, names, outcomes,
                                                   random.Random(6), done), daemon=True)
    driver.start()
    kills = 0
    while not done.is_set() or kills < 6:
        time.sleep(rng.uniform(0.3, 2.0))
        controller.kill()
        kills += 1
        controller.start()
    driver.join()
    wait_for(lambda: all(_final_acknowledged(kube, namespace, n) for n in names),
             what="every final status acknowledged", controller=controller, timeout=300)
    _check_exactly_once(kube, namespace, served_forge, names, outcomes)
    read_back = _read_back_outcomes(controller)
    print(f"\n{kills} SIGKILLs over {len(names)} runs; reports in doubt read back: "
          f"{read_back['recovered']} already on the forge (not re-sent), "
          f"{read_back['absent']} absent (sent); {len(served_forge.forge.statuses)} commits, "
          f"{sum(map(len, served_forge.forge.statuses.values()))} statuses")


# Tekton reason -> the run's check run conclusion in GitHub App mode.
CHECK_RUN_FINALS = {"Succeeded": "success", "Failed": "failure", "Cancelled": "cancelled",
                    "PipelineRunTimeout": "timed_out"}


def _check_runs_exactly_once(kube: Kube, namespace: str, served: ServedForge,
                             names: list[str], outcomes: dict[str, str]) -> None:
    """Every commit has exactly one check run per name (the run's `ferry` and its job's
    `ferry/build`), each completed, the run's with the expected conclusion; no doubts."""
    problems = []
    by_sha: dict[str, list[dict[str, Any]]] = {}
    for run in list(served.forge.check_runs.values()):
        by_sha.setdefault(str(run.get("head_sha")), []).append(run)
    for index, name in enumerate(names):
        found = by_sha.get(sha_for(index), [])
        counts = Counter(str(run.get("name")) for run in found)
        if counts != Counter({"ferry": 1, "ferry/build": 1}):
            problems.append(f"{name}: check runs by name {dict(counts)}")
        unfinished = [run["name"] for run in found if run.get("status") != "completed"]
        if unfinished:
            problems.append(f"{name}: not completed {unfinished}")
        conclusions = [run.get("conclusion") for run in found if run.get("name") == "ferry"]
        if conclusions != [CHECK_RUN_FINALS[outcomes[name]]]:
            problems.append(f"{name}: run conclusions {conclusions}, expected "
                            f"{CHECK_RUN_FINALS[outcomes[name]]}")
        if reported(kube, namespace, name).get("doubts"):
            problems.append(f"{name}: sent in doubt {reported(kube, namespace, name)['doubts']}")
    assert not problems, "\n".join(problems)


def test_sigkill_at_random_points_in_app_mode_creates_no_second_check_run(
    kube: Kube, namespace: str, served_forge: ServedForge, controller: ControllerProcess
) -> None:
    rng = random.Random(15)  # seeded: a failure replays the same kills
    served_forge.forge.faults.hold = 0.2  # kills land between a creation and its answer
    create_repository(kube, namespace, api_url=served_forge.api_url, keep_runs=100,
                      github_app=(APP_ID, INSTALLATION_ID),
                      secret_data=as_github_app(served_forge.forge))
    names = [f"run-{index:02d}" for index in range(30)]
    outcomes = {name: rng.choice(sorted(FINALS)) for name in names}
    controller.start()
    for index, name in enumerate(names):
        create_bound(kube, ferry_run(namespace, name, sha=sha_for(index)))
    done = threading.Event()
    driver = threading.Thread(target=_drive, args=(kube, namespace, names, outcomes,
                                                   random.Random(16), done), daemon=True)
    driver.start()
    kills = 0
    while not done.is_set() or kills < 10:
        # Killed only once it leads (a new incarnation first waits out the dead one's
        # Lease), so that the kills land while it reports.
        controller.wait_ready()
        time.sleep(rng.uniform(0.3, 2.5))
        controller.kill()
        kills += 1
        controller.start()
    driver.join()
    wait_for(lambda: all(_final_acknowledged(kube, namespace, n) for n in names),
             what="every final check run acknowledged", controller=controller, timeout=300)
    _check_runs_exactly_once(kube, namespace, served_forge, names, outcomes)
    events = Counter(e.get("event") for e in controller.logs())
    print(f"\n{kills} SIGKILLs over {len(names)} runs; check runs looked up: "
          f"{events['already on the forge; acknowledged without sending']} current (not "
          f"re-sent), {events['on the forge in an older state; updating it']} older "
          f"(updated), {events['not on the forge; sending']} absent (created); "
          f"{len(served_forge.forge.check_runs)} check runs")


def test_a_forge_failing_30_percent_still_gets_every_status_once(
    kube: Kube, namespace: str, served_forge: ServedForge, controller: ControllerProcess
) -> None:
    served_forge.forge.faults.rate = 0.3  # 500 or 429 (Retry-After: 1)
    create_repository(kube, namespace, api_url=served_forge.api_url, keep_runs=100)
    rng = random.Random(7)
    names = [f"run-{index:02d}" for index in range(12)]
    outcomes = {name: rng.choice(sorted(FINALS)) for name in names}
    controller.start()
    controller.wait_ready()
    for index, name in enumerate(names):
        create_bound(kube, ferry_run(namespace, name, sha=sha_for(index)))
    _drive(kube, namespace, names, outcomes, random.Random(8), threading.Event())
    wait_for(lambda: all(_final_acknowledged(kube, namespace, n) for n in names),
             what="every final status acknowledged", controller=controller, timeout=300)
    assert served_forge.forge.faults.injected > 0
    _check_exactly_once(kube, namespace, served_forge, names, outcomes)
    for index, name in enumerate(names):
        for posted in _by_context(served_forge, sha_for(index)).values():
            states = [s["description"].split(" in ")[0] for s in posted]
            # A retry reports the newest state, so a failed "Queued" may never be shown;
            # what is shown moves forward only, each state once.
            stages = [{"Queued": 0, "Running": 1}.get(state, 2) for state in states]
            assert stages == sorted(set(stages)), (name, states)
    retried = [e for e in controller.logs() if e.get("event") == "report failed; will retry"]
    assert retried, "the faults were retried"


def test_two_controllers_with_a_lease_only_one_reports(
    kube: Kube, namespace: str, served_forge: ServedForge, controller: ControllerProcess
) -> None:
    create_repository(kube, namespace, api_url=served_forge.api_url, keep_runs=100)
    standby = ControllerProcess(controller.cluster, namespace, controller.log_dir,
                                identity="standby")
    controller.start()
    controller.wait_ready()
    standby.start()
    try:
        names = [f"first-{index}" for index in range(5)]
        for index, name in enumerate(names):
            create_bound(kube, ferry_run(namespace, name, sha=sha_for(index)))
            set_condition(kube, namespace, name, "True", "Succeeded")
        wait_for(lambda: all(_final_acknowledged(kube, namespace, n) for n in names),
                 what="first runs reported", controller=controller)
        assert _reporters(controller, standby) == {"controller"}

        controller.kill()  # the leader dies holding the lease; the standby waits it out
        standby.wait_ready()
        later = [f"later-{index}" for index in range(5)]
        for index, name in enumerate(later, start=len(names)):
            create_bound(kube, ferry_run(namespace, name, sha=sha_for(index)))
            set_condition(kube, namespace, name, "True", "Succeeded")
        wait_for(lambda: all(_final_acknowledged(kube, namespace, n) for n in later),
                 what="later runs reported by the standby", controller=standby)
        assert _reporters(standby) == {"standby"}
        for index in range(len(names) + len(later)):
            for posted in _by_context(served_forge, sha_for(index)).values():
                assert len([s for s in posted if s["state"] != "pending"]) == 1
    finally:
        standby.stop()


def _reporters(*processes: ControllerProcess) -> set[str]:
    found: set[Any] = set()
    for process in processes:
        found |= {process.identity for entry in process.logs() if entry.get("event") == "reported"}
    return found
