"""What a step runs, the same in both backends: its script, where the checkout is, and the
event variables every step gets (Tekton params on a cluster, the environment locally)."""

from __future__ import annotations

import json

from pipelines.events import Event

SOURCE_PATH = "/workspace/source"

# (param name, env var name, description). Order is the output order.
EVENT_PARAMS: tuple[tuple[str, str, str], ...] = (
    ("event", "FERRY_EVENT", "push, pull_request, tag, schedule or manual"),
    ("repository", "FERRY_REPOSITORY", "owner/name as the forge spells it"),
    ("repository-url", "FERRY_REPO_URL", "clone URL"),
    ("sha", "FERRY_SHA", "the commit to build"),
    ("ref", "FERRY_REF", "full git ref"),
    ("branch", "FERRY_BRANCH", "pushed branch, or a pull request's base branch"),
    ("tag", "FERRY_TAG", "the tag, for a tag event"),
    ("pull-request-number", "FERRY_PULL_REQUEST", "pull request number, or empty"),
    ("pull-request-title", "FERRY_PULL_REQUEST_TITLE", "pull request title, or empty"),
    ("pull-request-head-branch", "FERRY_PULL_REQUEST_BRANCH", "pull request head branch"),
    ("author", "FERRY_AUTHOR", "who caused the event"),
    ("schedule", "FERRY_SCHEDULE", "the schedule's name, for a schedule event"),
    ("params", "FERRY_PARAMS", "a manual run's parameters as a JSON object, or {}"),
)



def event_values(event: Event) -> dict[str, str]:
    """The event's fields by param name (`EVENT_PARAMS`), for both backends."""
    pull_request = event.pull_request
    return {
        "event": event.kind.value,
        "repository": event.repository,
        "repository-url": event.repository_url,
        "sha": event.sha,
        "ref": event.ref,
        "branch": event.branch or "",
        "tag": event.tag or "",
        "pull-request-number": str(pull_request.number) if pull_request else "",
        "pull-request-title": pull_request.title if pull_request else "",
        "pull-request-head-branch": pull_request.head_branch if pull_request else "",
        "author": event.author,
        "schedule": event.schedule or "",
        "params": json.dumps(dict(event.params), sort_keys=True),
    }


# Re-run this very file (Tekton writes the script to a file: $0) under bash when there is one.
_SHELL_PRELUDE = """\
#!/bin/sh
if [ -z "${FERRY_SHELL:-}" ] && command -v bash >/dev/null 2>&1; then
  FERRY_SHELL=bash exec bash -eo pipefail "$0" "$@"
fi
set -e
"""


def shell_script(run: str) -> str:
    """The Tekton `script` for a `run` text (see the module docstring)."""
    if run.startswith("#!"):
        return run
    body = run if run.endswith("\n") else run + "\n"
    return _SHELL_PRELUDE + body
