"""From a signed GitHub webhook to the check on the commit, with everything real but the
forge and the nodes: deploy/'s ServiceAccounts and RBAC, the receiver and the controller as
processes, the API server, the Tekton controller, and the simulated kubelet running pods."""

from __future__ import annotations

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from prometheus_client.parser import text_string_to_metric_families

from ci.forges.types import ForgeKind
from tests.cluster.kubelet import SimulatedKubelet
from tests.cluster.resources import Kube
from tests.e2e.delivering import (
    check_run_payload,
    comment_payload,
    deliver,
    pull_request_payload,
    push_payload,
    sha_of,
    task_runs,
    team,
    wait_for,
)
from tests.e2e.installation import Installation
from tests.unit.monitoring.exported import exported

BUILD = """\
jobs:
  build:
    image: docker.io/library/alpine:3.20
    steps:
      - name: compile
        run: {script}
"""
RERUN = """\
jobs:
  lint:
    image: docker.io/library/alpine:3.20
    steps:
      - name: check
        run: echo linted
  test:
    image: docker.io/library/alpine:3.20
    steps:
      - name: check
        run: echo tested
  deploy:
    image: docker.io/library/alpine:3.20
    needs: [test]
    steps:
      - name: ship
        run: echo shipped
"""
MATRIX = """\
jobs:
  build:
    image: docker.io/library/alpine:3.20
    steps:
      - run: echo built
  test:
    image: docker.io/library/python:${{ matrix.python }}-slim
    needs: build
    matrix:
      python: ["3.11", "3.12"]
    steps:
      - run: python -V
"""


def _descriptions(statuses: list[dict]) -> list[str]:  # type: ignore[type-arg]
    return [f"{s['state']}: {s['description'].split(' in ')[0]}" for s in statuses]


def test_push_is_queued_then_running_then_succeeds(
    ferry: Installation, kube: Kube, kubelet: SimulatedKubelet, namespace: str
) -> None:
    with team(kube, namespace, ForgeKind.GITHUB) as repository:
        sha = sha_of(f"{namespace} success")
        repository.forge.add_file(repository.owner_name, sha, ".ci.yaml",
                                  BUILD.format(script="echo compiled"))
        [run] = deliver(ferry, repository, "push", push_payload(repository, sha))
        wait_for(ferry, lambda: repository.final_status(sha), what="the final status")

        statuses = repository.statuses(sha)
        # The controller alone reports the run's life from Tekton's conditions, each step
        # once; the receiver, which created the run, says nothing of its own. The job has
        # its own check, with commit statuses as with check runs.
        assert _descriptions([s for s in statuses if s["context"] == "ferry"]) == [
            "pending: Queued", "pending: Running", "success: Succeeded"]
        assert {s["context"] for s in statuses} == {"ferry", "ferry/build"}
        assert _descriptions([s for s in statuses if s["context"] == "ferry/build"])[-1] == (
            "success: Succeeded")
        # It really went through Tekton: one TaskRun whose pod the kubelet ran.
        [task_run] = task_runs(kube, namespace, run)
        pod = kube.get(f"/api/v1/namespaces/{namespace}/pods/{task_run['status']['podName']}")
        assert pod["spec"]["nodeName"] == kubelet.node_name
        assert pod["status"]["phase"] == "Succeeded"



def _scrape(url: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """A process's /metrics, parsed by prometheus_client's own exposition parser: each
    series' samples by their labels."""
    text = httpx.get(url, timeout=30.0).raise_for_status().text
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = (
                sample.value)
    return samples


def test_both_processes_export_what_the_dashboard_and_alerts_read(
    ferry: Installation, kube: Kube, namespace: str
) -> None:
    with team(kube, namespace, ForgeKind.GITHUB) as repository:
        sha = sha_of(f"{namespace} metrics")
        repository.forge.add_file(repository.owner_name, sha, ".ci.yaml",
                                  BUILD.format(script="echo compiled"))
        deliver(ferry, repository, "push", push_payload(repository, sha))
        wait_for(ferry, lambda: repository.final_status(sha), what="the final status")

    scraped = {"webhooks": _scrape(f"{ferry.receiver_url}/metrics"),
               "controller": _scrape(ferry.controller_metrics_url)}
    for metric in exported().values():
        # Each metric is on its own process's page (one with labels, once it counted
        # something), never on the other's.
        own = scraped[metric.component]
        other = scraped["controller" if metric.component == "webhooks" else "webhooks"]
        if not metric.labels:  # by a series of it (a histogram's are _bucket, _count, _sum)
            assert metric.series().keys() & own.keys(), metric.name
        assert not metric.series().keys() & other.keys(), metric.name
    receiver, controller = scraped["webhooks"], scraped["controller"]
    push = (("event", "push"), ("forge", "github"), ("outcome", "created"))
    assert receiver["ferry_webhook_events_total"][push] >= 1
    assert receiver["ferry_pipeline_runs_created_total"][(("forge", "github"),)] >= 1
    assert receiver["ferry_webhook_duration_seconds_count"][(("forge", "github"),)] >= 1
    # Queued, running, succeeded: three statuses acknowledged, at least (other tests share
    # this installation).
    acknowledged = (("forge", "github"), ("outcome", "acknowledged"))
    assert controller["ferry_controller_reports_total"][acknowledged] >= 3
    assert controller["ferry_controller_report_latency_seconds_count"][(("forge", "github"),)] >= 3
    assert controller["ferry_controller_leader"][()] == 1.0  # the alert's "a leader exists"


def test_failing_step_fails_the_commit_naming_the_job(
    ferry: Installation, kube: Kube, kubelet: SimulatedKubelet, namespace: str
) -> None:
    kubelet.force_exit_code(namespace, "build/compile", 2)
    with team(kube, namespace, ForgeKind.GITHUB) as repository:
        sha = sha_of(f"{namespace} failure")
        repository.forge.add_file(repository.owner_name, sha, ".ci.yaml",
                                  BUILD.format(script="make"))
        deliver(ferry, repository, "push", push_payload(repository, sha))
        wait_for(ferry, lambda: repository.final_status(sha), what="the final status")

        final = repository.final_status(sha)
        assert final is not None
        assert final["state"] == "failure"
        assert final["description"].startswith("Failed in ")
        assert final["description"].endswith(": build")


def test_new_push_to_a_pull_request_cancels_the_older_run(
    ferry: Installation, kube: Kube, kubelet: SimulatedKubelet, namespace: str
) -> None:
    # Real scripts, so the first run's step is still sleeping when the second push comes;
    # the clone step would reach for the network, so it is made to succeed at once.
    kubelet.run_scripts_in(namespace)
    kubelet.force_exit_code(namespace, "clone", 0)
    spec = "cancel_in_progress: true\n" + BUILD
    with team(kube, namespace, ForgeKind.GITHUB) as repository:
        older, newer = sha_of(f"{namespace} older"), sha_of(f"{namespace} newer")
        forge = repository.forge
        forge.add_file(repository.owner_name, older, ".ci.yaml", spec.format(script="sleep 300"))
        forge.add_file(repository.owner_name, newer, ".ci.yaml", spec.format(script="'true'"))
        deliver(ferry, repository, "pull_request",
                pull_request_payload(repository, older, number=7, action="opened"))
        wait_for(ferry, lambda: "pending: Running" in _descriptions(repository.statuses(older)),
                 what="the older run running")
        deliver(ferry, repository, "pull_request",
                pull_request_payload(repository, newer, number=7, action="synchronize"))
        wait_for(ferry, lambda: repository.final_status(older) and repository.final_status(newer),
                 what="both runs final")

        # GitHub's commit statuses have no "cancelled": Ferry says it in the description.
        assert _descriptions(repository.statuses(older))[-1] == "error: Cancelled"
        assert _descriptions(repository.statuses(newer))[-1] == "success: Succeeded"


def test_run_over_its_timeout_is_reported_timed_out(
    ferry: Installation, kube: Kube, kubelet: SimulatedKubelet, namespace: str
) -> None:
    kubelet.run_scripts_in(namespace)
    kubelet.force_exit_code(namespace, "clone", 0)
    with team(kube, namespace, ForgeKind.GITHUB) as repository:
        sha = sha_of(f"{namespace} slow")
        repository.forge.add_file(repository.owner_name, sha, ".ci.yaml",
                                  "timeout: 5s\n" + BUILD.format(script="sleep 300"))
        deliver(ferry, repository, "push", push_payload(repository, sha))
        wait_for(ferry, lambda: repository.final_status(sha), what="the final status")

        assert _descriptions(repository.statuses(sha))[-1] == "failure: Timed out"


def test_matrix_job_reports_one_check_run_per_variant_with_a_github_app(
    ferry: Installation, kube: Kube, namespace: str
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    with team(kube, namespace, ForgeKind.GITHUB, github_app=(4242, 77),
              private_key=private_pem, public_key=public_pem) as repository:
        sha = sha_of(f"{namespace} matrix")
        repository.forge.add_file(repository.owner_name, sha, ".ci.yaml", MATRIX)
        deliver(ferry, repository, "push", push_payload(repository, sha))
        expected = {"ferry", "ferry/build", "ferry/test-3-11", "ferry/test-3-12"}

        def all_completed() -> bool:
            runs = repository.check_runs(sha)
            return set(runs) >= expected and all(
                runs[name]["status"] == "completed" for name in expected)

        wait_for(ferry, all_completed, what="every check run completed")
        runs = repository.check_runs(sha)
        # One check run per name: a second `ferry` (the receiver's "queued", which nothing
        # would ever complete) is what users of a GitHub App would see as a stuck check.
        names = repository.check_run_names(sha)
        assert sorted(names) == sorted(expected), names
        assert {name: run["conclusion"] for name, run in runs.items()} == dict.fromkeys(
            expected, "success")
        summary = runs["ferry"]["output"]["summary"]
        assert "`test-3-11`" in summary and "`test-3-12`" in summary


def _app_keys() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private_pem, public_pem


def test_retest_reruns_the_failed_jobs_and_rerun_one_check_that_job(
    ferry: Installation, kube: Kube, kubelet: SimulatedKubelet, namespace: str
) -> None:
    """`/retest` on GitHub reads the pull request's head from the API and re-runs only the
    failed job and what needs it; "Re-run" on one job's check re-runs that job alone."""
    kubelet.force_exit_code(namespace, "test/check", 1)
    private_pem, public_pem = _app_keys()
    with team(kube, namespace, ForgeKind.GITHUB, github_app=(4243, 78),
              private_key=private_pem, public_key=public_pem) as repository:
        forge, sha = repository.forge, sha_of(f"{namespace} retest")
        forge.add_file(repository.owner_name, sha, ".ci.yaml", RERUN)
        forge.add_pull_request(repository.owner_name, 7, head_sha=sha, head_branch="feature",
                               author="Codertocat")
        forge.set_permission(repository.owner_name, "maintainer", "write")
        [first] = deliver(ferry, repository, "pull_request",
                          pull_request_payload(repository, sha, number=7, action="opened"))
        jobs = {"ferry", "ferry/lint", "ferry/test", "ferry/deploy"}

        def conclusions() -> dict[str, str | None]:
            runs = repository.check_runs(sha)
            return {name: runs[name].get("conclusion") for name in jobs if name in runs}

        wait_for(ferry, lambda: set(conclusions()) == jobs and None not in conclusions().values(),
                 what="the first run's checks completed")
        assert conclusions() == {"ferry": "failure", "ferry/lint": "success",
                                 "ferry/test": "failure", "ferry/deploy": "skipped"}

        kubelet.force_exit_code(namespace, "test/check", 0)  # the flake is gone
        [retest] = deliver(ferry, repository, "issue_comment", comment_payload(
            repository, number=7, body="/retest", author="maintainer"))
        assert retest != first and retest.startswith("retest-")
        wait_for(ferry, lambda: conclusions()["ferry"] == "success",
                 what="the re-run's verdict")
        # Only the failed job and the one needing it ran again; `lint` kept its first check.
        assert sorted(t["metadata"]["labels"]["tekton.dev/pipelineTask"]
                      for t in task_runs(kube, namespace, retest)) == ["deploy", "test"]
        assert conclusions() == dict.fromkeys(jobs, "success")
        assert repository.check_run_names(sha).count("ferry/lint") == 1

        lint = repository.check_runs(sha)["ferry/lint"]
        [again] = deliver(ferry, repository, "check_run",
                          check_run_payload(repository, lint, requester="maintainer"))
        wait_for(ferry, lambda: repository.check_run_names(sha).count("ferry/lint") == 2
                 and conclusions()["ferry/lint"] == "success"
                 and repository.check_run_names(sha).count("ferry") == 3
                 and conclusions()["ferry"] == "success",
                 what="the re-run of lint")
        assert [t["metadata"]["labels"]["tekton.dev/pipelineTask"]
                for t in task_runs(kube, namespace, again)] == ["lint"]
