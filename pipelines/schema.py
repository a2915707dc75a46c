"""The JSON Schema (draft-07) of `.ci.yaml`, for editors via the YAML language server.

Draft-07 because it is the draft the YAML language server supports completely. The schema
checks shapes, names and limits; what needs the whole file (unknown `needs`, cycles, matrix
size after `exclude`, `${{ matrix.KEY }}` keys) is left to `ferry lint`, which says more.
The schema is built by a function, not at import time, and kept next to the linter's key
lists so a new key cannot be added to one and forgotten in the other (a test compares them).
"""

from __future__ import annotations

from pipelines.events import PRODUCED_EVENTS
from pipelines.spec import (
    DEFAULT_IMAGE,
    DEFAULT_JOB_NAME,
    MAX_JOBS,
    MAX_NAME_LENGTH,
    MAX_RETRIES,
    MAX_STEPS_PER_JOB,
    MAX_TIMEOUT_SECONDS,
)

Schema = dict[str, object]

SCHEMA_ID = "https://ferry.dev/schemas/ci.schema.json"
_DNS_LABEL = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_ENV_NAME = "^[A-Za-z_][A-Za-z0-9_]*$"
_DURATION = "^(?=.)(?:[0-9]+[hH])?(?:[0-9]+[mM])?(?:[0-9]+[sS])?$"


def _described(description: str, schema: Schema) -> Schema:
    return {"description": description, **schema}


def _object(description: str, properties: dict[str, Schema], *,
            required: tuple[str, ...] = ()) -> Schema:
    schema: Schema = {
        "type": "object",
        "description": description,
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = list(required)
    return schema


def _one_or_many(item: Schema, description: str) -> Schema:
    return {"description": description,
            "anyOf": [item, {"type": "array", "items": item, "minItems": 1}]}


def _scalar() -> Schema:
    return {"type": ["string", "number", "boolean"]}


def _env(description: str) -> Schema:
    return {
        "type": "object",
        "description": description,
        "propertyNames": {"pattern": _ENV_NAME},
        "additionalProperties": _scalar(),
    }


def _duration(description: str) -> Schema:
    return {
        "description": f"{description} A duration like `90s`, `10m`, `1h30m`, or a number "
                       f"of seconds; at most {MAX_TIMEOUT_SECONDS} seconds.",
        "anyOf": [
            {"type": "integer", "minimum": 1, "maximum": MAX_TIMEOUT_SECONDS},
            {"type": "string", "pattern": _DURATION},
        ],
    }


def _image(description: str) -> Schema:
    return {"type": "string", "minLength": 1, "description": description,
            "examples": ["docker.io/library/python:3.12-slim"]}


def _when() -> Schema:
    globs: Schema = {"type": "string", "minLength": 1}
    return _object(
        "When the pipeline or job runs. Every condition given must hold; absent ones always "
        "hold. A pattern starting with `!` excludes.",
        {
            "event": _one_or_many({"enum": sorted(kind.value for kind in PRODUCED_EVENTS)},
                                  "The events that run it (default: all)."),
            "branch": _one_or_many(globs, "Branch globs, e.g. `main`, `release/*`, "
                                          "`!release/old`. For pull requests: the target."),
            "tag": _one_or_many(globs, "Tag globs, e.g. `v*`."),
            "paths": _one_or_many(globs, "Globs of changed files, e.g. `src/**`, `!docs/**`."),
        },
    )


def _step() -> Schema:
    run: Schema = {"type": "string", "minLength": 1,
           "description": "A shell script, run with `bash -eo pipefail` (or `sh -e`)."}
    return {
        "description": "A step: a `run` script, or just the script as a string.",
        "anyOf": [
            run,
            _object("A step with options.", {
                "run": run,
                "name": {"type": "string", "minLength": 1,
                         "description": "Shown in logs and checks."},
                "image": _image("The step's image (default: the job's)."),
                "env": _env("Environment variables for this step only."),
            }, required=("run",)),
        ],
    }


def _steps() -> Schema:
    return {"type": "array", "items": _step(), "minItems": 1, "maxItems": MAX_STEPS_PER_JOB,
            "description": "The steps, run in order in one pod sharing the checkout."}


def _secrets() -> Schema:
    secret_name: Schema = {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"}
    return {
        "description": "Keys of Kubernetes Secrets (in the run's namespace) exposed as "
                       "environment variables: `{ENV: secret-name/key}` or a list of "
                       "`{env, secret, key}`.",
        "anyOf": [
            {"type": "object", "propertyNames": {"pattern": _ENV_NAME},
             "additionalProperties": {
                 "type": "string",
                 "pattern": "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[-._a-zA-Z0-9]+$"}},
            {"type": "array", "items": _object("One secret key.", {
                "env": {"type": "string", "pattern": _ENV_NAME},
                "secret": secret_name,
                "key": {"type": "string", "pattern": "^[-._a-zA-Z0-9]+$"},
            }, required=("env", "secret", "key"))},
        ],
    }


def _services() -> Schema:
    return {
        "type": "object",
        "description": "Sidecar containers that live as long as the job (databases, caches), "
                       "reachable on localhost.",
        "propertyNames": {"pattern": _DNS_LABEL, "maxLength": MAX_NAME_LENGTH},
        "additionalProperties": _object("A service.", {
            "image": _image("The service's image; may use `${{ matrix.KEY }}`."),
            "env": _env("Environment variables of the service."),
            "command": {"type": "array", "items": _scalar(),
                        "description": "Command and arguments (default: the image's)."},
        }, required=("image",)),
    }


def _matrix() -> Schema:
    combination: Schema = {"type": "object", "minProperties": 1, "additionalProperties": _scalar()}
    return {
        "type": "object",
        "description": "Run the job once per combination of the axes' values. Each value is "
                       "`$MATRIX_<KEY>` in steps and `${{ matrix.KEY }}` in images and env.",
        "properties": {
            "include": {"type": "array", "items": combination,
                        "description": "Extra combinations."},
            "exclude": {"type": "array", "items": combination,
                        "description": "Remove combinations matching all of an entry's keys."},
        },
        "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_-]*$"},
        "additionalProperties": {"type": "array", "items": _scalar(), "minItems": 1},
    }


def _job(*, is_finally: bool) -> Schema:
    properties: dict[str, Schema] = {
        "image": _image(f"The container image (default: `{DEFAULT_IMAGE}`). Pin a version."),
        "steps": _steps(),
        "env": _env("Environment variables for every step of this job."),
        "secrets": _secrets(),
        "services": _services(),
        "matrix": _matrix(),
        "timeout": _duration("How long the job may run."),
        "retries": {"type": "integer", "minimum": 0, "maximum": MAX_RETRIES,
                    "description": "How many times to retry the job when it fails."},
        "allow_failure": {"type": "boolean",
                          "description": "A failure does not fail the pipeline."},
        "when": _when(),
        "share_workspace": {"type": "boolean",
                            "description": "Share files with later jobs through a volume "
                                           "(slower to start)."},
    }
    if not is_finally:
        properties["needs"] = _one_or_many(
            {"type": "string"}, "Jobs that must finish first (not finally jobs).")
    kind = "A finally job: runs after all others, whatever happened." if is_finally \
        else "A job: one pod running its steps in order."
    return _object(kind, properties, required=("steps",))


def _jobs(*, is_finally: bool) -> Schema:
    return {
        "type": "object",
        "description": ("Jobs that always run at the end (notifications, cleanup)."
                        if is_finally else "The jobs, by name (lowercase, digits, `-`)."),
        "minProperties": 1,
        "maxProperties": MAX_JOBS,
        "propertyNames": {"pattern": _DNS_LABEL, "maxLength": MAX_NAME_LENGTH},
        "additionalProperties": _job(is_finally=is_finally),
    }


def spec_json_schema() -> dict[str, object]:
    """The schema of a whole `.ci.yaml`."""
    schema = _object(
        "Ferry CI spec (.ci.yaml). See docs/spec.md.",
        {
            "jobs": _jobs(is_finally=False),
            "finally": _jobs(is_finally=True),
            "steps": _described(f"Shorthand for a single job named `{DEFAULT_JOB_NAME}`.",
                                _steps()),
            "image": _image("The image of the `steps` shorthand job."),
            "env": _env("Environment variables for every job."),
            "when": _when(),
            "timeout": _duration("How long the whole pipeline may run."),
            "concurrency": {
                "description": "How many runs of one group (a branch, a pull request) may "
                               "run at once.",
                "anyOf": [
                    {"type": "integer", "minimum": 1},
                    _object("Concurrency options.", {
                        "limit": {"type": "integer", "minimum": 1},
                        "cancel_in_progress": {"type": "boolean"},
                    }),
                ],
            },
            "cancel_in_progress": {"type": "boolean",
                                   "description": "Cancel older runs of the same group when "
                                                  "a new one starts."},
        },
    )
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": SCHEMA_ID,
        "title": "Ferry .ci.yaml",
        **schema,
        "patternProperties": {"^x-": {"description": "Free for anchors (`x-defaults: &d`)."}},
        "oneOf": [{"required": ["jobs"]}, {"required": ["steps"]}],
        "dependencies": {"image": ["steps"]},
    }
