"""The API descriptions requests are validated against, built once per test session.

* GitHub: contracts/github/openapi-subset.json (OpenAPI 3.0.3) as published, with its
  `servers` replaced so paths match at the fake's root.
  Calls Ferry makes that the subset lacks (`GITHUB_FROM_FULL`) are copied, operations and
  every component they reference, from the complete description in
  contracts/github/full/api.github.com.json: taken from GitHub, not written here.
* Gitea: contracts/gitea/swagger-subset.json is Swagger 2.0, which openapi-core does not
  read. `swagger_to_openapi` converts the parts request validation uses: body parameters
  become `requestBody` (application/json), other parameters get their type wrapped in
  `schema`, `#/definitions` become `#/components/schemas`, security definitions become
  security schemes. Responses keep only their description (responses are not validated).
  The subset lacks two calls Ferry makes (issue comments, collaborator permission);
  `GITEA_SUPPLEMENT` adds them, written from Gitea's API of the same version (swagger
  operations `issueCreateComment`, `repoGetRepoPermissions`), and marked as such.
* GitLab publishes no OpenAPI description for these calls: gitlab-openapi.yaml here is
  written from the GitLab API docs cited in contracts/SOURCES.md (commit status parameters
  as in contracts/gitlab/WEBHOOKS.md).
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from openapi_core import OpenAPI

from ci.forges.types import ForgeKind
from tests.contracts import CONTRACTS as _CONTRACTS

CONTRACTS = _CONTRACTS
HERE = Path(__file__).resolve().parent

# Where each fake serves its API, as the clients are configured in tests.
API_PREFIXES = {ForgeKind.GITHUB: "", ForgeKind.GITEA: "/api/v1", ForgeKind.GITLAB: "/api/v4"}

_REPOSITORY_PARAMETERS = [
    {"name": "owner", "in": "path", "required": True, "type": "string"},
    {"name": "repo", "in": "path", "required": True, "type": "string"},
]
GITEA_SUPPLEMENT: dict[str, Any] = {
    "/repos/{owner}/{repo}/issues/{index}/comments": {
        "post": {
            "operationId": "issueCreateComment",
            "x-ferry-source": "Gitea API, not in contracts/gitea/swagger-subset.json",
            "parameters": [
                *_REPOSITORY_PARAMETERS,
                {"name": "index", "in": "path", "required": True, "type": "integer"},
                {
                    "name": "body",
                    "in": "body",
                    "schema": {
                        "type": "object",
                        "required": ["body"],
                        "properties": {"body": {"type": "string"}},
                    },
                },
            ],
            "responses": {"201": {"description": "Comment"}},
        }
    },
    "/repos/{owner}/{repo}/collaborators/{collaborator}/permission": {
        "get": {
            "operationId": "repoGetRepoPermissions",
            "x-ferry-source": "Gitea API, not in contracts/gitea/swagger-subset.json",
            "parameters": [
                *_REPOSITORY_PARAMETERS,
                {"name": "collaborator", "in": "path", "required": True, "type": "string"},
            ],
            "responses": {"200": {"description": "RepoCollaboratorPermission"}},
        }
    },
}

_SCHEMA_KEYS = ("type", "format", "enum", "items", "default", "minimum", "maximum", "pattern")


def _parameter(parameter: dict[str, Any]) -> dict[str, Any]:
    converted = {key: parameter[key] for key in ("name", "in", "description") if key in parameter}
    converted["required"] = parameter.get("required", parameter["in"] == "path")
    converted["schema"] = {key: parameter[key] for key in _SCHEMA_KEYS if key in parameter}
    return converted


def _operation(operation: dict[str, Any]) -> dict[str, Any]:
    converted = {
        key: operation[key] for key in ("operationId", "summary", "tags") if key in operation
    }
    parameters = []
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "body":
            converted["requestBody"] = {
                "required": parameter.get("required", False),
                "content": {"application/json": {"schema": parameter["schema"]}},
            }
        else:
            parameters.append(_parameter(parameter))
    converted["parameters"] = parameters
    converted["responses"] = {
        code: {"description": response.get("description", code)}
        for code, response in operation.get("responses", {}).items()
    }
    return converted


def _security_scheme(definition: dict[str, Any]) -> dict[str, Any]:
    if definition["type"] == "basic":
        return {"type": "http", "scheme": "basic"}
    return {key: definition[key] for key in ("type", "name", "in") if key in definition}


def swagger_to_openapi(swagger: dict[str, Any]) -> dict[str, Any]:
    """A minimal OpenAPI 3.0 rendering of a Swagger 2.0 document, for request validation."""
    text = json.dumps(swagger).replace('"#/definitions/', '"#/components/schemas/')
    source = json.loads(text)
    return {
        "openapi": "3.0.3",
        "info": source["info"],
        "servers": [{"url": source.get("basePath", "/")}],
        "paths": {
            path: {method: _operation(operation) for method, operation in item.items()}
            for path, item in source["paths"].items()
        },
        "components": {
            "schemas": source.get("definitions", {}),
            "securitySchemes": {
                name: _security_scheme(definition)
                for name, definition in source.get("securityDefinitions", {}).items()
            },
        },
        "security": source.get("security", []),
    }


# (path, method) of calls Ferry makes that openapi-subset.json lacks.
GITHUB_FROM_FULL: tuple[tuple[str, str], ...] = (
    ("/repos/{owner}/{repo}/commits/{ref}/check-runs", "get"),
)


def _references(value: object) -> Iterator[str]:
    if isinstance(value, dict):
        reference = value.get("$ref")
        if isinstance(reference, str):
            yield reference
        for item in value.values():
            yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


def with_full_operations(
    document: dict[str, Any], full: dict[str, Any], operations: tuple[tuple[str, str], ...]
) -> dict[str, Any]:
    """`document` plus `operations` copied from `full`, with the components they need."""
    document = copy.deepcopy(document)
    components = document.setdefault("components", {})
    pending: list[object] = []
    for path, method in operations:
        operation = copy.deepcopy(full["paths"][path][method])
        document["paths"].setdefault(path, {})[method] = operation
        pending.append(operation)
    while pending:
        for reference in _references(pending.pop()):
            _, section, name = reference.removeprefix("#/").split("/", 2)
            if name not in components.setdefault(section, {}):
                components[section][name] = copy.deepcopy(full["components"][section][name])
                pending.append(components[section][name])
    return document


def _github() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (CONTRACTS / "github" / "openapi-subset.json").read_text()
    )
    full = json.loads((CONTRACTS / "github" / "full" / "api.github.com.json").read_text())
    document = with_full_operations(document, full, GITHUB_FROM_FULL)
    document["servers"] = [{"url": "/"}]
    return document


def _gitea() -> dict[str, Any]:
    swagger: dict[str, Any] = json.loads((CONTRACTS / "gitea" / "swagger-subset.json").read_text())
    swagger = copy.deepcopy(swagger)
    swagger["paths"].update(GITEA_SUPPLEMENT)
    return swagger_to_openapi(swagger)


def _gitlab() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((HERE / "gitlab-openapi.yaml").read_text())
    return document


_BUILDERS = {ForgeKind.GITHUB: _github, ForgeKind.GITEA: _gitea, ForgeKind.GITLAB: _gitlab}


@functools.cache
def description_document(forge: ForgeKind) -> dict[str, Any]:
    return _BUILDERS[forge]()


@functools.cache
def description(forge: ForgeKind) -> OpenAPI:
    """The openapi-core object; building GitHub's takes a fraction of a second, so once."""
    return OpenAPI.from_dict(description_document(forge))
