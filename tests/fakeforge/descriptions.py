"""The API descriptions requests are validated against, built once per test session.

* GitHub: GitHub's whole REST description, contracts/github/full/api.github.com.json
  (OpenAPI 3.0.3, 811 paths, 13 MB) as published, with its `servers` replaced so paths match
  at the fake's root. Requests are validated against it, and so are the fake's answers
  (`validation.response_problems`), so the fake cannot drift from what GitHub returns.
  Loading it takes about 0.7 s and openapi-core's check of the description itself takes
  about 45 s, so it is loaded once per test session and the description is not re-checked
  (it is GitHub's own published file, byte-identical to the npm package; SOURCES.md).
  One reading is adjusted (`_nullable_enums`): a `nullable` schema with an `enum` also
  accepts null, as GitHub means and answers (a queued check run's `conclusion` is null);
  OpenAPI 3.0.3 says `nullable` does not extend `enum`, which openapi-core follows.
* Gitea: contracts/gitea/swagger-subset.json is Swagger 2.0, which openapi-core does not
  read. `swagger_to_openapi` converts the parts request validation uses: body parameters
  become `requestBody` (application/json), other parameters get their type wrapped in
  `schema`, `#/definitions` become `#/components/schemas`, security definitions become
  security schemes. Responses keep only their description (responses are not validated).
  The subset lacks five calls Ferry makes (issue comments, collaborator permission, a
  commit, a repository, a branch); `GITEA_SUPPLEMENT` adds them, written from Gitea's API
  of the same version (swagger operations `issueCreateComment`, `repoGetRepoPermissions`,
  `repoGetSingleCommit`, `repoGet`, `repoGetBranch`), and marked as such.
* GitLab publishes no OpenAPI description for these calls: gitlab-openapi.yaml here is
  written from the GitLab API docs cited in contracts/SOURCES.md (commit status parameters
  as in contracts/gitlab/WEBHOOKS.md).
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import yaml
from openapi_core import Config, OpenAPI

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
    "/repos/{owner}/{repo}/git/commits/{sha}": {
        "get": {
            "operationId": "repoGetSingleCommit",
            "x-ferry-source": "Gitea API, not in contracts/gitea/swagger-subset.json",
            "parameters": [
                *_REPOSITORY_PARAMETERS,
                {"name": "sha", "in": "path", "required": True, "type": "string"},
                {"name": "stat", "in": "query", "type": "boolean"},
                {"name": "verification", "in": "query", "type": "boolean"},
                {"name": "files", "in": "query", "type": "boolean"},
            ],
            "responses": {"200": {"description": "Commit"}, "404": {"description": "notFound"}},
        }
    },
    "/repos/{owner}/{repo}": {
        "get": {
            "operationId": "repoGet",
            "x-ferry-source": "Gitea API, not in contracts/gitea/swagger-subset.json",
            "parameters": [*_REPOSITORY_PARAMETERS],
            "responses": {"200": {"description": "Repository"}, "404": {"description": "notFound"}},
        }
    },
    "/repos/{owner}/{repo}/branches/{branch}": {
        "get": {
            "operationId": "repoGetBranch",
            "x-ferry-source": "Gitea API, not in contracts/gitea/swagger-subset.json",
            "parameters": [
                *_REPOSITORY_PARAMETERS,
                {"name": "branch", "in": "path", "required": True, "type": "string"},
            ],
            "responses": {"200": {"description": "Branch"}, "404": {"description": "notFound"}},
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


GITHUB_DESCRIPTION = CONTRACTS / "github" / "full" / "api.github.com.json"


def _nullable_enums(node: Any) -> int:
    """Add null to the `enum` of every `nullable` schema under `node`; how many were."""
    changed = 0
    if isinstance(node, dict):
        enum = node.get("enum")
        if node.get("nullable") is True and isinstance(enum, list) and None not in enum:
            enum.append(None)
            changed += 1
        for value in node.values():
            changed += _nullable_enums(value)
    elif isinstance(node, list):
        for value in node:
            changed += _nullable_enums(value)
    return changed


def _github() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(GITHUB_DESCRIPTION.read_bytes())
    document["servers"] = [{"url": "/"}]
    _nullable_enums(document)
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
# Descriptions too big to have openapi-core check them on every session: GitHub's published
# file, which GitHub itself validates before publishing.
_UNCHECKED = frozenset({ForgeKind.GITHUB})


@functools.cache
def description_document(forge: ForgeKind) -> dict[str, Any]:
    return _BUILDERS[forge]()


@functools.cache
def description(forge: ForgeKind) -> OpenAPI:
    """The openapi-core object, built once per session (GitHub's: about 0.7 s to load)."""
    if forge in _UNCHECKED:
        return OpenAPI.from_dict(
            description_document(forge), config=Config(spec_validator_cls=None)
        )
    return OpenAPI.from_dict(description_document(forge))
