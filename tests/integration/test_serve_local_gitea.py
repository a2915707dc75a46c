"""`ferry serve` without a cluster, against the real Gitea: a real `git push` -> Gitea's webhook
-> the receiver as a process -> the job on this machine, in a checkout fetched from Gitea over
HTTP -> the `ferry` status that Gitea stores. The configuration is what docs/webhooks.md's
"Without a cluster" shows: the repository's URL, the hook's secret and a token."""

from __future__ import annotations

import os
import secrets
import sys
import time
from pathlib import Path

import httpx
import yaml

from tests.cluster.processes import Component, free_port, wait_until
from tests.gitea.api import GiteaApi
from tests.gitea.pushing import WorkingCopy

SECRET = "local-gitea-secret"
WAIT_SECONDS = 120.0
SPEC = """\
jobs:
  check:
    image: docker.io/library/alpine:3.20
    steps:
      - run: ./check.sh
"""


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=5.0).status_code == 200
    except httpx.TransportError:
        return False


def test_ferry_serve_locally_turns_real_gitea_pushes_into_gitea_statuses(
    gitea_api: GiteaApi, tmp_path: Path
) -> None:
    owner = gitea_api.create_user(f"local-{secrets.token_hex(3)}")
    as_owner = gitea_api.as_user(owner)
    # Public: local repositories have no `private` setting yet, so the checkout of a private
    # one is fetched without the token and fails (open).
    repository = as_owner.create_repo("app")
    full_name = repository["full_name"]
    config = tmp_path / "ferry.yaml"
    config.write_text(yaml.safe_dump({"local": {
        "state_directory": str(tmp_path / "state"),
        "repositories": [{"forge": "gitea", "url": repository["html_url"],
                          "webhook_secret": SECRET, "token": owner.token}]}}))
    port = free_port()
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith("FERRY_") and key != "KUBECONFIG"}
    receiver = Component(
        name="ferry-serve-local",
        argv=[sys.executable, "-m", "ci.cli", "serve", "--config", str(config),
              "--host", "127.0.0.1", "--port", str(port)],
        log_path=tmp_path / "serve.log", env=environment, cwd=tmp_path)
    receiver.start()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _ready(url), what="ferry serve's /readyz", timeout=WAIT_SECONDS,
                   watching=[receiver])
        as_owner.create_hook(full_name, f"{url}/hooks", SECRET)
        work = WorkingCopy(tmp_path / "work", repository["clone_url"], owner)
        passing = work.commit({".ci.yaml": SPEC, "check.sh": "#!/bin/sh\nexit 0\n"})
        work.push_branch("main")
        work.checkout("broken")
        failing = work.commit({"check.sh": "#!/bin/sh\nexit 3\n"})
        work.push_branch("broken")

        def finals(sha: str) -> list[str]:
            return [s["state"] for s in gitea_api.statuses(full_name, sha)
                    if s["context"] == "ferry" and s["state"] != "pending"]

        deadline = time.monotonic() + WAIT_SECONDS
        while not (finals(passing) and finals(failing)):
            receiver.check_running()
            assert time.monotonic() < deadline, (
                gitea_api.statuses(full_name, passing), gitea_api.statuses(full_name, failing),
                receiver.log_path.read_text()[-4000:])
            time.sleep(0.2)
        assert finals(passing) == ["success"]
        assert finals(failing) == ["failure"]
        # Pending first: Gitea showed the runs in progress before their verdicts.
        for sha in (passing, failing):
            assert gitea_api.statuses(full_name, sha)[0]["state"] == "pending"
    finally:
        receiver.stop()
