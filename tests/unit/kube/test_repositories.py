from typing import Any

import pytest

from ci.kube.repositories import Conflict, Repository, RepositoryIndex, normalize_url
from ci.kube.watching import EventType, WatchEvent


def repository_object(
    name: str, url: str, namespace: str = "team-a", **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "ferry.dev/v1alpha1",
        "kind": "Repository",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"},
        "spec": {"forge": "github", "url": url, "secretRef": {"name": "creds"}, **spec},
    }


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://github.com/acme/shop", "https://GitHub.com/acme/shop/"),
        ("https://github.com/acme/shop", "https://github.com/acme/shop.git"),
        ("https://gitea.example:3000/acme/shop", "HTTPS://gitea.example:3000/acme/shop"),
        ("https://github.com/acme/shop", "https://user:token@github.com/acme/shop"),
    ],
)
def test_spellings_of_one_url_match(a: str, b: str) -> None:
    assert normalize_url(a) == normalize_url(b)


def test_path_case_is_kept_because_gitlab_paths_are_case_sensitive() -> None:
    assert normalize_url("https://gitlab.com/Acme/Shop") != normalize_url(
        "https://gitlab.com/acme/shop"
    )


def test_index_finds_by_url_after_relist_and_forgets_deleted() -> None:
    index = RepositoryIndex()
    assert not index.synced.is_set()
    index.on_relist([repository_object("shop", "https://github.com/acme/shop")])
    assert index.synced.is_set()
    found = index.lookup("https://github.com/acme/shop.git")
    assert isinstance(found, Repository)
    assert found.key == "team-a/shop"
    index.on_event(
        WatchEvent(EventType.DELETED, repository_object("shop", "https://github.com/acme/shop"))
    )
    assert index.lookup("https://github.com/acme/shop") is None


def test_relist_drops_objects_deleted_while_not_watching() -> None:
    index = RepositoryIndex()
    index.on_relist([repository_object("shop", "https://github.com/acme/shop")])
    index.on_relist([repository_object("blog", "https://github.com/acme/blog")])
    assert index.lookup("https://github.com/acme/shop") is None
    assert isinstance(index.lookup("https://github.com/acme/blog"), Repository)


def test_two_repositories_claiming_one_url_are_a_conflict_naming_both() -> None:
    index = RepositoryIndex()
    index.on_relist(
        [
            repository_object("shop", "https://github.com/acme/shop", namespace="team-a"),
            repository_object("stolen", "https://github.com/acme/shop/", namespace="team-b"),
        ]
    )
    found = index.lookup("https://github.com/acme/shop")
    assert isinstance(found, Conflict)
    assert "team-a/shop" in found.describe() and "team-b/stolen" in found.describe()


def test_url_change_moves_the_entry() -> None:
    index = RepositoryIndex()
    index.on_relist([repository_object("shop", "https://github.com/acme/shop")])
    index.on_event(
        WatchEvent(EventType.MODIFIED, repository_object("shop", "https://github.com/acme/shop2"))
    )
    assert index.lookup("https://github.com/acme/shop") is None
    assert isinstance(index.lookup("https://github.com/acme/shop2"), Repository)


def test_defaults_and_settings_are_read() -> None:
    repository = Repository.from_object(
        repository_object(
            "shop",
            "https://github.com/acme/shop",
            githubApp={"appID": 7, "installationID": 9},
            concurrency={"limit": 2, "cancelInProgress": True},
            untrustedPullRequests="waitForOkToTest",
            publicLogs=True,
        )
    )
    assert repository.public_logs
    assert not Repository.from_object(repository_object("a", "https://github.com/a/b")).public_logs
    assert repository.github_app is not None and repository.github_app.app_id == 7
    assert repository.concurrency_limit == 2 and repository.cancel_in_progress
    assert repository.spec_path == ".ci.yaml"
    assert repository.untrusted.value == "waitForOkToTest"


def test_malformed_object_is_left_out_not_fatal() -> None:
    index = RepositoryIndex()
    bad = repository_object("bad", "https://github.com/acme/bad", untrustedPullRequests="sometimes")
    index.on_relist([bad, repository_object("shop", "https://github.com/acme/shop")])
    assert index.lookup("https://github.com/acme/bad") is None
    assert isinstance(index.lookup("https://github.com/acme/shop"), Repository)


def test_no_service_account_unless_the_repository_names_one() -> None:
    # The CRD has no default: a Repository that names no account gives runs no API token.
    bare = Repository.from_object(repository_object("shop", "https://github.com/acme/shop"))
    assert bare.service_account is None
    named = Repository.from_object(
        repository_object("shop", "https://github.com/acme/shop", serviceAccountName="deployer")
    )
    assert named.service_account == "deployer"
