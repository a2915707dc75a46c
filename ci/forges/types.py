"""Forge-neutral names and ids shared by every provider."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NewType

# The forge's id of one webhook delivery; redeliveries keep it, so it is an idempotency key.
DeliveryId = NewType("DeliveryId", str)
# "owner/name" as the forge spells it; GitLab allows nested groups ("group/subgroup/name").
RepositoryName = NewType("RepositoryName", str)
# What a forge returned for a reported status that can be updated later (a GitHub check run
# id). The controller keeps it on the PipelineRun so a restart updates instead of duplicating.
ReportId = NewType("ReportId", str)
InstallationId = NewType("InstallationId", int)


class ForgeKind(StrEnum):
    GITHUB = "github"
    GITEA = "gitea"  # Forgejo too: it sends the same payloads and both header families
    GITLAB = "gitlab"


@dataclass(frozen=True, slots=True, kw_only=True)
class RepositoryRef:
    """The repository a delivery is about, as the payload names it.

    The receiver finds the `Repository` object by these URLs before it can verify the
    signature (the secret is per repository), so they come from an unverified body and are
    only ever used for that lookup.
    """

    name: RepositoryName
    html_url: str
    clone_url: str
