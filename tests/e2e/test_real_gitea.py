"""The real Gitea, end to end: a real `git push` -> Gitea's own webhook -> the receiver ->
a PipelineRun -> the real Tekton controller -> pods the simulated kubelet runs (every script
for real, the clone step's included, fetching from Gitea over HTTP) -> the controller ->
commit statuses that Gitea itself stores, read back through Gitea's API.

Nothing here builds a payload or signs a delivery: Gitea does, in its own order and shape.
Assertions are on what a user sees on the commit in Gitea: the `ferry` status's state.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from tests.cluster.kubelet import SimulatedKubelet
from tests.cluster.resources import Kube
from tests.e2e.delivering import wait_for
from tests.e2e.installation import Installation
from tests.e2e.real_gitea import GiteaTeam, gitea_team
from tests.gitea.api import GiteaApi

# The job runs a script of the repository: it passes only if the clone checked out the
# pushed commit (a wrong or missing checkout fails it).
CHECK_SPEC = """\
jobs:
  check:
    image: docker.io/library/alpine:3.20
    steps:
      - name: check
        run: ./check.sh
"""
PASSING = "#!/bin/sh\necho checked\n"
FAILING = "#!/bin/sh\necho broken >&2\nexit 3\n"


def _push(team: GiteaTeam, check: str, *, branch: str = "main", name: str = "work",
          extra: dict[str, str] | None = None) -> str:
    work = team.working_copy(name)
    if branch != "main":
        work.checkout(branch)
    sha = work.commit({".ci.yaml": CHECK_SPEC, "check.sh": check, **(extra or {})})
    work.push_branch(branch)
    return sha


def test_real_pushes_pass_and_fail_as_their_checked_out_scripts_say(
    ferry: Installation, kube: Kube, kubelet: SimulatedKubelet, namespace: str,
    gitea_api: GiteaApi, tmp_path: Path,
) -> None:
    kubelet.run_scripts_in(namespace)
    with gitea_team(ferry, kube, namespace, gitea_api, tmp_path) as team:
        passing = _push(team, PASSING, name="passing")
        failing = _push(team, FAILING, branch="broken", name="failing")

        assert team.wait_for_final(passing) == "success", team.statuses(passing)
        assert team.wait_for_final(failing) == "failure", team.statuses(failing)
        for sha in (passing, failing):
            statuses = team.statuses(sha)
            # Queued and running before the verdict, all under the one `ferry` context.
            assert statuses[0]["state"] == "pending", statuses
            assert [s["state"] for s in statuses].count("pending") >= 1
            assert len(team.finals(sha)) == 1, statuses
        # The clone step really ran (against Gitea over HTTP), in every run.
        clones = [r for r in kubelet.records if r.namespace == namespace
                  and r.container == "step-clone"]
        assert len(clones) == 2 and all(r.executed and r.exit_code == 0 for r in clones)


def test_private_repository_is_cloned_with_the_per_run_token(
    ferry: Installation, kube: Kube, kubelet: SimulatedKubelet, namespace: str,
    gitea_api: GiteaApi, tmp_path: Path,
) -> None:
    kubelet.run_scripts_in(namespace)
    with gitea_team(ferry, kube, namespace, gitea_api, tmp_path, private=True) as team:
        # Without credentials Gitea refuses to serve it: the clone can only work with the token.
        anonymous = subprocess.run(
            ["git", "ls-remote", team.clone_url], capture_output=True, text=True, check=False,
            env={"PATH": "/usr/bin:/bin", "GIT_TERMINAL_PROMPT": "0", "HOME": str(tmp_path)},
            timeout=60)
        assert anonymous.returncode != 0
        sha = _push(team, PASSING)
        assert team.wait_for_final(sha) == "success", team.statuses(sha)
        [run] = team.pipeline_runs(sha=sha)
        # The token reached the clone step from the run's own Secret, owned by the run.
        secret = kube.get(f"/api/v1/namespaces/{namespace}/secrets/"
                          f"{run['metadata']['name']}-clone")
        assert secret["metadata"]["ownerReferences"][0]["name"] == run["metadata"]["name"]


def test_pull_request_runs_on_its_head_commit(
    ferry: Installation, kube: Kube, kubelet: SimulatedKubelet, namespace: str,
    gitea_api: GiteaApi, tmp_path: Path,
) -> None:
    kubelet.run_scripts_in(namespace)
    with gitea_team(ferry, kube, namespace, gitea_api, tmp_path) as team:
        work = team.working_copy()
        work.commit({".ci.yaml": CHECK_SPEC, "check.sh": PASSING})
        work.push_branch("main")
        work.checkout("feature")
        head = work.commit({"feature.txt": "a feature\n"})
        work.push_branch("feature")
        # The branch's own push run first, so the pull request's verdict is the second.
        assert team.wait_for_final(head) == "success"
        pull = team.api.as_user(team.maintainer).create_pull(team.full_name, head="feature")

        assert team.wait_for_final(head, count=2) == "success", team.statuses(head)
        [run] = team.pipeline_runs(**{"pull-request": str(pull["number"])})
        assert run["metadata"]["labels"]["ferry.dev/event"] == "pull_request"
        assert run["metadata"]["labels"]["ferry.dev/sha"] == head


def _last_event(team: GiteaTeam) -> dict[str, Any]:
    repository = team.kube.get(
        f"/apis/ferry.dev/v1alpha1/namespaces/{team.namespace}/repositories/app")
    event: dict[str, Any] = (repository.get("status") or {}).get("lastEvent") or {}
    return event


def test_fork_pull_request_waits_for_a_maintainers_ok_to_test_then_retests(
    ferry: Installation, kube: Kube, kubelet: SimulatedKubelet, namespace: str,
    gitea_api: GiteaApi, tmp_path: Path,
) -> None:
    kubelet.run_scripts_in(namespace)
    with gitea_team(ferry, kube, namespace, gitea_api, tmp_path,
                    spec={"untrustedPullRequests": "waitForOkToTest"}) as team:
        upstream = team.working_copy()
        upstream.commit({".ci.yaml": CHECK_SPEC, "check.sh": PASSING})
        upstream.push_branch("main")
        outsider = gitea_api.create_user(f"outsider-{namespace[-6:]}")
        as_outsider = gitea_api.as_user(outsider)
        fork = as_outsider.fork(team.full_name)
        # What Gitea itself answers Ferry's question: the outsider cannot write.
        assert gitea_api.permission(team.full_name, outsider.name) not in (
            "write", "admin", "owner")
        contribution = team.working_copy("fork", user=outsider, remote=fork["clone_url"])
        contribution.fetch("main")
        contribution.checkout("contribution")
        head = contribution.commit({"contribution.txt": "from outside\n"})
        contribution.push_branch("contribution")
        pull = as_outsider.create_pull(team.full_name, head=f"{outsider.name}:contribution")
        number = pull["number"]

        # Nothing runs: a pending status on the head says it waits.
        wait_for(ferry, lambda: bool(team.statuses(head)), what="the waiting status")
        assert [s["state"] for s in team.statuses(head)] == ["pending"]
        assert team.pipeline_runs(sha=head) == []
        # The outsider cannot approve their own pull request.
        as_outsider.comment(team.full_name, number, "/ok-to-test")
        wait_for(ferry, lambda: _last_event(team).get("kind") == "comment",
                 what="the outsider's comment handled")
        assert _last_event(team)["outcome"] == "ignored"
        assert team.pipeline_runs(sha=head) == []

        as_maintainer = gitea_api.as_user(team.maintainer)
        as_maintainer.comment(team.full_name, number, "/ok-to-test")
        assert team.wait_for_final(head) == "success", team.statuses(head)
        # Nothing failed, so a plain /retest re-runs nothing; /retest JOB re-runs that job,
        # keeping the trust /ok-to-test gave.
        as_maintainer.comment(team.full_name, number, "/retest")
        wait_for(ferry, lambda: _last_event(team).get("outcome") == "nothing-to-run",
                 what="the /retest with nothing failed handled")
        assert "nothing failed" in _last_event(team)["message"]
        assert len(team.pipeline_runs(sha=head)) == 1
        as_maintainer.comment(team.full_name, number, "/retest check")
        assert team.wait_for_final(head, count=2) == "success", team.statuses(head)
        runs = team.pipeline_runs(sha=head)
        assert len(runs) == 2, [r["metadata"]["name"] for r in runs]
        assert {r["metadata"]["labels"]["ferry.dev/pull-request"] for r in runs} == {
            str(number)}
        assert not any("ferry.dev/untrusted" in r["metadata"]["labels"] for r in runs)


def test_tag_runs_and_a_deleted_branch_runs_nothing(
    ferry: Installation, kube: Kube, kubelet: SimulatedKubelet, namespace: str,
    gitea_api: GiteaApi, tmp_path: Path,
) -> None:
    kubelet.run_scripts_in(namespace)
    with gitea_team(ferry, kube, namespace, gitea_api, tmp_path) as team:
        work = team.working_copy()
        sha = work.commit({".ci.yaml": CHECK_SPEC, "check.sh": PASSING})
        work.push_branch("main")
        assert team.wait_for_final(sha) == "success"
        work.push_tag("v1.0.0")
        assert team.wait_for_final(sha, count=2) == "success", team.statuses(sha)
        [tag_run] = team.pipeline_runs(event="tag")
        assert tag_run["metadata"]["labels"]["ferry.dev/tag"] == "v1.0.0"

        work.checkout("short-lived")
        doomed = work.commit({"doomed.txt": "soon gone\n"})
        work.push_branch("short-lived")
        assert team.wait_for_final(doomed) == "success"
        runs_before = len(team.pipeline_runs())
        work.delete_branch("short-lived")
        # Gitea sends `delete` alone; the receiver records it as ignored and starts nothing.
        wait_for(ferry, lambda: _last_event(team).get("kind") == "delete",
                 what="the deletion handled")
        assert _last_event(team)["outcome"] == "ignored"
        assert len(team.pipeline_runs()) == runs_before


def test_second_push_cancels_the_run_in_progress(
    ferry: Installation, kube: Kube, kubelet: SimulatedKubelet, namespace: str,
    gitea_api: GiteaApi, tmp_path: Path,
) -> None:
    kubelet.run_scripts_in(namespace)
    spec = "cancel_in_progress: true\n" + CHECK_SPEC
    with gitea_team(ferry, kube, namespace, gitea_api, tmp_path) as team:
        work = team.working_copy()
        older = work.commit({".ci.yaml": spec, "check.sh": "#!/bin/sh\nsleep 300\n"})
        work.push_branch("main")

        def older_step_running() -> bool:
            # The kubelet logs each script it starts: the clone's, then the check's.
            return sum(f" {namespace}/" in line and ": running " in line
                       for line in kubelet.log_path.read_text().splitlines()) >= 2

        wait_for(ferry, older_step_running, what="the older run's script running")
        newer = work.commit({"check.sh": PASSING})
        work.push_branch("main")

        assert team.wait_for_final(newer) == "success", team.statuses(newer)
        # Gitea's commit statuses have no "cancelled": Ferry reports it as an error.
        assert team.wait_for_final(older) == "error", team.statuses(older)
