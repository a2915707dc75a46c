"""What a run's live log is masked with: the same values as its archived log, so the two
meet with no gap (`webhooks.api.following`); one rule for both,
`ci.controller.logs.repository_run_masker`."""

from __future__ import annotations

from collections.abc import Callable

from ci.controller.logs import repository_run_masker
from ci.controller.runs import RunSnapshot
from ci.kube.credentials import CredentialsCache, SecretReader
from ci.kube.repositories import Repository
from ci.masking import Masker


def run_maskers(*, read_secret: SecretReader, credentials: CredentialsCache
                ) -> Callable[[RunSnapshot, Repository | None], Masker]:
    def masker_for(run: RunSnapshot, repository: Repository | None) -> Masker:
        return repository_run_masker(run, repository, credentials=credentials,
                                     read_secret=read_secret)

    return masker_for
