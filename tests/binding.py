"""Runs as Ferry's receiver makes them, for tests that hand-make PipelineRuns for the
controller: labelled with their Repository object and signed (`ci.kube.binding`).

The one helper for that: it signs with the receiver's own code (`ci.backends.tekton.bind`),
so a test run is refused by the controller exactly when a receiver-made one would be.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from ci.backends.tekton import bind, repository_labels
from ci.controller.runs import parse_time
from ci.kube.binding import BindingKeys
from ci.kube.binding_keys import BindingKeyStore
from ci.kube.repositories import Repository
from ci.settings import KubernetesSettings
from tests.cluster.resources import Kube

# For unit tests, which have no Secret to read the key from.
TEST_KEYS = BindingKeys(b"ferry-test-binding-key-32-bytes!")
Obj = dict[str, Any]


def bound(run: Obj, repository: Obj | Repository, keys: BindingKeys = TEST_KEYS, *,
          signed_at: int | None = None) -> Obj:
    """A copy of `run` naming `repository` (an object as the API server holds it, with its
    uid) and signed for it, at `signed_at` (default: the run's creationTimestamp, else now)."""
    if not isinstance(repository, Repository):
        repository = Repository.from_object(repository)
    signed = copy.deepcopy(run)
    metadata = signed["metadata"]
    metadata.setdefault("labels", {}).update(repository_labels(repository))
    if signed_at is None:
        created = parse_time(metadata.get("creationTimestamp"))
        signed_at = int(created.timestamp()) if created else int(time.time())
    bind(signed, repository, keys, signed_at=signed_at)
    return signed


def cluster_keys(kube: Kube, namespace: str) -> BindingKeys:
    """The key in `namespace`'s binding Secret, made if absent: what a controller started
    with `FERRY_KUBERNETES_BINDING_SECRET_NAMESPACE=namespace` uses."""
    return BindingKeyStore(
        kube.api_client, KubernetesSettings(binding_secret_namespace=namespace)).keys()


def create_bound(kube: Kube, run: Obj, *, repository: str = "widget") -> Obj:
    """Create `run`, signed for the Repository named `repository` in its namespace."""
    namespace = run["metadata"]["namespace"]
    found = kube.get(f"/apis/ferry.dev/v1alpha1/namespaces/{namespace}/repositories/{repository}")
    return kube.create(bound(run, found, cluster_keys(kube, namespace)))
