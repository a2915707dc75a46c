"""Who is calling, and may they read a namespace's runs: TokenReview and SubjectAccessReview.

The read API (`webhooks.api`) lets Kubernetes decide: a bearer token is checked with a
TokenReview (the API server says whose it is), then a SubjectAccessReview asks whether that
user may `get` `pipelineruns` in the Repository's namespace, so RBAC decides who reads which
team's logs. Answers are cached briefly per token (by its hash: the token itself is never
kept) so a page of requests costs two API calls, not two per request.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ci.kube.pipeline_runs import translate_api_errors
from ci.kube.resources import PIPELINE_RUN


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """An authenticated caller, as the TokenReview named it."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, list[str]] = field(default_factory=dict, compare=False, hash=False)


TokenReviewer = Callable[[str], Identity | None]  # None: not a valid token
AccessReviewer = Callable[[Identity, str], bool]  # (who, namespace) -> may read its runs


def api_reviewers(api_client: Any, *, timeout: float
                  ) -> tuple[TokenReviewer, AccessReviewer]:
    """TokenReview and SubjectAccessReview through the API server (the receiver's own
    ServiceAccount needs `create` on both: deploy/base/webhooks-rbac.yaml)."""
    from kubernetes.client import (  # noqa: PLC0415 (kept out of import time)
        AuthenticationV1Api,
        AuthorizationV1Api,
        V1SubjectAccessReview,
        V1TokenReview,
    )

    authentication = AuthenticationV1Api(api_client)
    authorization = AuthorizationV1Api(api_client)

    def review_token(token: str) -> Identity | None:
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                "spec": {"token": token}}
        review = V1TokenReview.from_dict(body)
        assert review is not None  # from_dict returns None only for None
        with translate_api_errors("create TokenReview"):
            answer: Any = authentication.create_token_review(review, _request_timeout=timeout)
        status = answer.status
        if status is None or not status.authenticated or status.user is None:
            return None
        user = status.user
        return Identity(username=str(user.username or ""), uid=str(user.uid or ""),
                        groups=tuple(user.groups or ()),
                        extra={str(k): list(v) for k, v in (user.extra or {}).items()})

    def review_access(identity: Identity, namespace: str) -> bool:
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": identity.username,
                "uid": identity.uid,
                "groups": list(identity.groups),
                "extra": identity.extra,
                "resourceAttributes": {"namespace": namespace, "verb": "get",
                                       "group": PIPELINE_RUN.group,
                                       "resource": PIPELINE_RUN.plural},
            },
        }
        review = V1SubjectAccessReview.from_dict(body)
        assert review is not None
        with translate_api_errors(f"create SubjectAccessReview for {namespace}"):
            answer: Any = authorization.create_subject_access_review(
                review, _request_timeout=timeout)
        return bool(answer.status is not None and answer.status.allowed)

    return review_token, review_access


class Reviews:
    """Both reviews, each answer kept for `ttl` seconds (a revoked binding counts within it)."""

    def __init__(self, *, review_token: TokenReviewer, review_access: AccessReviewer,
                 ttl: float = 10.0, clock: Callable[[], float] = time.monotonic,
                 size: int = 10_000) -> None:
        self._review_token = review_token
        self._review_access = review_access
        self._ttl = ttl
        self._clock = clock
        self._size = size
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[float, Identity | None]] = {}
        self._access: dict[tuple[str, str], tuple[float, bool]] = {}

    def identity(self, token: str) -> Identity | None:
        """Whose `token` is; None if the API server does not accept it. Blocks."""
        key = hashlib.sha256(token.encode()).hexdigest()
        now = self._clock()
        with self._lock:
            cached = self._tokens.get(key)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        found = self._review_token(token)
        with self._lock:
            self._remember(self._tokens, key, (now, found))
        return found

    def may_read(self, identity: Identity, namespace: str) -> bool:
        """May `identity` read the runs (and so the logs) of `namespace`? Blocks."""
        key = (f"{identity.username}\0{identity.uid}\0{','.join(identity.groups)}", namespace)
        now = self._clock()
        with self._lock:
            cached = self._access.get(key)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        allowed = self._review_access(identity, namespace)
        with self._lock:
            self._remember(self._access, key, (now, allowed))
        return allowed

    def _remember(self, cache: dict[Any, Any], key: Any, value: Any) -> None:
        if len(cache) >= self._size:
            cache.clear()  # a flood of tokens costs reviews, never memory
        cache[key] = value
