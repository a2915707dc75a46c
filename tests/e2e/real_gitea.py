"""A team's repository on the real Gitea, set up as docs/install.md says, and what its users
then see on their commits.

An organisation with one repository; a bot user whose token Ferry uses (a collaborator with
the access install.md asks for); the webhook to the receiver; the Secret and Repository in the
team's namespace. Pushes are real `git push`es; statuses are read back from Gitea's API.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.cluster.resources import Kube
from tests.e2e.delivering import INDEX_SECONDS, UNFINISHED, WEBHOOK_SECRET, wait_for
from tests.e2e.installation import Installation, invite
from tests.gitea.api import GiteaApi, User
from tests.gitea.pushing import WorkingCopy

# The context every run reports under (per-job contexts, if any, are `ferry/<job>`).
CONTEXT = "ferry"
# The bot needs repository administration, not only write: Gitea answers a collaborator's
# permission (Ferry's trust question for forks and comment commands) only to repository
# administrators (403 otherwise).
BOT_PERMISSION = "admin"


@dataclass
class GiteaTeam:
    kube: Kube
    namespace: str
    api: GiteaApi
    ferry: Installation
    repository: dict[str, Any]
    bot: User
    maintainer: User
    work_root: Path

    @property
    def full_name(self) -> str:
        return str(self.repository["full_name"])

    @property
    def clone_url(self) -> str:
        return str(self.repository["clone_url"])

    def working_copy(self, name: str = "work", *, user: User | None = None,
                     remote: str | None = None) -> WorkingCopy:
        return WorkingCopy(self.work_root / name, remote or self.clone_url,
                           user or self.maintainer)

    def statuses(self, sha: str) -> list[dict[str, Any]]:
        """The commit's `ferry` statuses as Gitea stores them, oldest first."""
        return [s for s in self.api.statuses(self.full_name, sha) if s["context"] == CONTEXT]

    def finals(self, sha: str) -> list[dict[str, Any]]:
        return [s for s in self.statuses(sha) if s["state"] not in UNFINISHED]

    def final_state(self, sha: str) -> str | None:
        finals = self.finals(sha)
        return str(finals[-1]["state"]) if finals else None

    def wait_for_final(self, sha: str, *, count: int = 1) -> str:
        """The state of the `count`th verdict on `sha` (the latest once it is there)."""
        wait_for(self.ferry, lambda: len(self.finals(sha)) >= count,
                 what=f"{count} final {CONTEXT} status(es) on {sha[:12]} in Gitea")
        state = self.final_state(sha)
        assert state is not None
        return state

    def pipeline_runs(self, **labels: str) -> list[dict[str, Any]]:
        selector = ",".join(f"ferry.dev/{key}={value}" for key, value in labels.items())
        listed = self.kube.get(f"/apis/tekton.dev/v1/namespaces/{self.namespace}/pipelineruns",
                               labelSelector=selector)
        items: list[dict[str, Any]] = listed["items"]
        return items


def _wait_until_known(ferry: Installation, repository: dict[str, Any]) -> None:
    """Until the receiver's index holds the Repository: a real forge does not redeliver the
    404 that a push sent in that moment would get. A signed delivery of an event Ferry
    ignores, carrying the repository as Gitea describes it, says so without starting a run."""
    body = json.dumps({"repository": repository}).encode()
    digest = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    deadline = time.monotonic() + INDEX_SECONDS
    while True:
        response = ferry.post(body, {
            "Content-Type": "application/json", "X-Gitea-Event": "repository",
            "X-Gitea-Delivery": str(uuid.uuid4()), "X-Gitea-Signature": digest})
        if response.status_code != 404 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert response.status_code == 202, response.text


@contextlib.contextmanager
def gitea_team(ferry: Installation, kube: Kube, namespace: str, api: GiteaApi,
               work_root: Path, *, private: bool = False,
               spec: dict[str, Any] | None = None) -> Iterator[GiteaTeam]:
    """Organisation, repository, bot, maintainer, webhook, Secret and Repository."""
    suffix = secrets.token_hex(3)
    org = f"team-{suffix}"
    api.create_org(org)
    repository = api.create_repo("app", org=org, private=private)
    full_name = repository["full_name"]
    bot = api.create_user(f"ferry-bot-{suffix}")
    maintainer = api.create_user(f"maintainer-{suffix}")
    api.add_collaborator(full_name, bot.name, BOT_PERMISSION)
    api.add_collaborator(full_name, maintainer.name, "write")
    invite(kube, namespace)
    kube.create({"apiVersion": "v1", "kind": "Secret",
                 "metadata": {"name": "forge", "namespace": namespace},
                 "stringData": {"webhook-secret": WEBHOOK_SECRET, "token": bot.token}})
    kube.create({"apiVersion": "ferry.dev/v1alpha1", "kind": "Repository",
                 "metadata": {"name": "app", "namespace": namespace},
                 "spec": {"forge": "gitea", "url": repository["html_url"],
                          "secretRef": {"name": "forge"}, "private": private,
                          **(spec or {})}})
    _wait_until_known(ferry, repository)
    api.create_hook(full_name, f"{ferry.receiver_url}/hooks", WEBHOOK_SECRET)
    yield GiteaTeam(kube=kube, namespace=namespace, api=api, ferry=ferry,
                    repository=repository, bot=bot, maintainer=maintainer,
                    work_root=work_root)
