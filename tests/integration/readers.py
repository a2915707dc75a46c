"""The team namespace the read-side tests (the read API, the web pages) read from: the forge
Secret, a Secret a step reads (its value must come back masked), and a GitHub Repository
`app`."""

from __future__ import annotations

from tests.cluster.resources import Kube


def create_team(kube: Kube, namespace: str, *, webhook_secret: str, token: str,
                deploy_key: str) -> None:
    kube.create({"apiVersion": "v1", "kind": "Secret",
                 "metadata": {"name": "forge", "namespace": namespace},
                 "stringData": {"webhook-secret": webhook_secret, "token": token}})
    kube.create({"apiVersion": "v1", "kind": "Secret",
                 "metadata": {"name": "deploy", "namespace": namespace},
                 "stringData": {"key": deploy_key}})
    kube.create({"apiVersion": "ferry.dev/v1alpha1", "kind": "Repository",
                 "metadata": {"name": "app", "namespace": namespace},
                 "spec": {"forge": "github", "url": f"https://github.com/acme/{namespace}",
                          "secretRef": {"name": "forge"}}})
