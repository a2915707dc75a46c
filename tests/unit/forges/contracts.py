"""The contract files in ../shared/contracts and the delivery headers each implies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ci.forges.types import ForgeKind
from tests.contracts import CONTRACTS as _CONTRACTS

CONTRACTS = _CONTRACTS

# GitLab's event header names, by the body's object_kind (contracts/gitlab/WEBHOOKS.md).
GITLAB_EVENTS = {
    "push": "Push Hook",
    "tag_push": "Tag Push Hook",
    "merge_request": "Merge Request Hook",
    "note": "Note Hook",
}
# Gitea's precise event types for the files whose action differs from the group name.
GITEA_EVENT_TYPES = {"synchronized": "pull_request_sync", "label_updated": "pull_request_label"}


def payload_files(forge: ForgeKind) -> list[Path]:
    return sorted((CONTRACTS / forge.value / "webhooks").glob("*.json"))


def load(path: Path) -> Any:
    return json.loads(path.read_bytes())


def headers_for(forge: ForgeKind, path: Path) -> dict[str, str]:
    """What the forge would send with this body; the event name is the file name's prefix."""
    event = path.name.split(".", 1)[0]
    if forge is ForgeKind.GITHUB:
        return {
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": f"delivery-{path.stem}",
            "Content-Type": "application/json",
        }
    if forge is ForgeKind.GITEA:
        action = load(path).get("action", "")
        event_type = GITEA_EVENT_TYPES.get(action, event)
        # Gitea sends GitHub's and Gogs' header families too (contracts/gitea/WEBHOOKS.md).
        return {
            "X-Gitea-Event": event,
            "X-Gitea-Event-Type": event_type,
            "X-Gitea-Delivery": f"delivery-{path.stem}",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": f"delivery-{path.stem}",
            "X-Gogs-Event": event,
            "Content-Type": "application/json",
        }
    return {
        "X-Gitlab-Event": GITLAB_EVENTS[load(path)["object_kind"]],
        "X-Gitlab-Event-UUID": f"delivery-{path.stem}",
        "Content-Type": "application/json",
    }
