"""What a run's live log is masked with: the same values as its archived log, so the two
meet with no gap (`webhooks.api.following`): the values of the Secret keys its steps read,
and the Repository's forge credentials and webhook secret."""

from __future__ import annotations

from collections.abc import Callable

import structlog

from ci.controller.runs import RunSnapshot
from ci.forges.client import GitHubAppCredentials, TokenCredentials
from ci.kube.credentials import CredentialsCache, CredentialsError, SecretReader
from ci.kube.repositories import Repository
from ci.masking import Masker

log = structlog.get_logger(__name__)


def run_maskers(*, read_secret: SecretReader, credentials: CredentialsCache
                ) -> Callable[[RunSnapshot, Repository | None], Masker]:
    def masker_for(run: RunSnapshot, repository: Repository | None) -> Masker:
        masker = Masker()
        if repository is not None:
            try:
                found = credentials.for_repository(repository)
            except CredentialsError as error:
                log.warning("cannot read the Repository's credentials to mask them",
                            error=str(error))
            else:
                if found.webhook_secret:
                    masker.add(found.webhook_secret)
                if isinstance(found.forge, GitHubAppCredentials):
                    masker.add(found.forge.private_key)
                elif isinstance(found.forge, TokenCredentials):
                    masker.add(found.forge.token)
        for name, key in sorted(run.secret_refs):
            try:
                data = read_secret(run.namespace, name) or {}
            except Exception as error:  # masking what we can beats showing nothing
                log.warning("cannot read a run's Secret to mask it", secret=name,
                            error=repr(error)[:200])
                continue
            value = data.get(key)
            if value:
                masker.add(value)
        return masker

    return masker_for
