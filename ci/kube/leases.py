"""One `coordination.k8s.io/v1` Lease: acquire it, renew it, know when it is lost.

The API server's optimistic concurrency (`resourceVersion` on replace) makes acquisition a
compare-and-swap: of two replicas that both see an expired lease, one write wins and the other
gets 409 and stays a follower.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseRecord:
    holder: str | None
    renewed: datetime.datetime | None
    duration: float  # seconds
    transitions: int
    resource_version: str | None  # None: the Lease does not exist yet

    def expired(self, now: datetime.datetime) -> bool:
        if self.holder is None or self.renewed is None:
            return True
        return (now - self.renewed).total_seconds() > self.duration


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class Leases:
    """Read and write one Lease through `CoordinationV1Api`."""

    def __init__(self, api_client: Any, *, namespace: str, name: str, timeout: float) -> None:
        from kubernetes.client import CoordinationV1Api  # noqa: PLC0415 (kept lazy)

        self._api = CoordinationV1Api(api_client)
        self._namespace = namespace
        self._name = name
        self._timeout = timeout

    def read(self) -> LeaseRecord:
        from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

        try:
            lease = self._api.read_namespaced_lease(
                self._name, self._namespace, _request_timeout=self._timeout
            )
        except ApiException as error:
            if error.status == 404:
                return LeaseRecord(
                    holder=None, renewed=None, duration=0, transitions=0, resource_version=None
                )
            raise
        spec = lease.spec
        metadata = lease.metadata
        return LeaseRecord(
            holder=(spec.holder_identity or None) if spec is not None else None,
            renewed=spec.renew_time if spec is not None else None,
            duration=float(spec.lease_duration_seconds or 0) if spec is not None else 0.0,
            transitions=int(spec.lease_transitions or 0) if spec is not None else 0,
            resource_version=metadata.resource_version if metadata is not None else None,
        )

    def write(
        self, *, previous: LeaseRecord, holder: str, duration: float, moment: datetime.datetime
    ) -> bool:
        """Take or renew the lease; False if another writer changed it first."""
        from kubernetes.client import V1Lease, V1LeaseSpec, V1ObjectMeta  # noqa: PLC0415
        from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

        transitions = previous.transitions + (0 if previous.holder == holder else 1)
        spec = V1LeaseSpec(
            holder_identity=holder,
            lease_duration_seconds=max(1, round(duration)),
            renew_time=moment,
            lease_transitions=transitions,
        )
        if previous.holder != holder:
            spec.acquire_time = moment
        metadata = V1ObjectMeta(
            name=self._name,
            namespace=self._namespace,
            resource_version=previous.resource_version,
        )
        lease = V1Lease(metadata=metadata, spec=spec)
        try:
            if previous.resource_version is None:
                self._api.create_namespaced_lease(
                    self._namespace, lease, _request_timeout=self._timeout
                )
            else:
                self._api.replace_namespaced_lease(
                    self._name, self._namespace, lease, _request_timeout=self._timeout
                )
        except ApiException as error:
            if error.status in (409, 422):
                return False
            raise
        return True

    def release(self, *, previous: LeaseRecord, holder: str) -> None:
        """Hand the lease over at once on a clean shutdown, instead of making the next leader
        wait out its duration."""
        if previous.holder == holder:
            self.write(previous=previous, holder="", duration=1, moment=now())
