"""Ferry's forge error tree, chosen by status code, never by message text.

(kopf's `NotFound`-style names carry an `Error` suffix here, as the linter asks.)

    ForgeError
    ├── ForgeClientError (4xx: permanent, do not retry)
    │   ├── UnauthorizedError (401), ForbiddenError (403)
    │   ├── NotFoundError (404, 410), ConflictError (409)
    │   └── RateLimitedError (429, or GitHub's 403 with its rate-limit headers: temporary)
    └── ForgeServerError (5xx: temporary)
        ├── ForgeUnreachableError (connection failed or timed out)
        └── UnexpectedResponseError (a 2xx body that is not what the API documents)

    WebhookError (a delivery we refuse: answered 4xx, never retried by us; not a failure
    │             of the forge's API, so apart from `ForgeError`)
    ├── SignatureError
    └── PayloadError

`retry_after` (seconds) is set whenever the forge said how long to wait. Remote bodies are
cut by `ci.logs.excerpt`.
"""

from __future__ import annotations

from typing import ClassVar


class ForgeError(Exception):
    temporary: ClassVar[bool] = False

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class ForgeClientError(ForgeError):
    pass


class UnauthorizedError(ForgeClientError):
    pass


class ForbiddenError(ForgeClientError):
    pass


class NotFoundError(ForgeClientError):
    pass


class ConflictError(ForgeClientError):
    pass


class RateLimitedError(ForgeClientError):
    temporary = True


class ForgeServerError(ForgeError):
    temporary = True


class ForgeUnreachableError(ForgeServerError):
    pass


class UnexpectedResponseError(ForgeServerError):
    """Often a proxy's HTML page in front of the forge, so worth a retry."""


class WebhookError(Exception):
    """A webhook delivery Ferry refuses (bad signature, bad payload); the message says why."""


class SignatureError(WebhookError):
    """The delivery is not signed with the repository's secret (or nothing to check it with)."""


class PayloadError(WebhookError):
    """The delivery body is not what the forge documents: bad JSON, missing or mistyped fields."""


def is_temporary(error: BaseException) -> bool:
    """Whether retrying the same call later can succeed."""
    return isinstance(error, ForgeError) and error.temporary


_CLIENT_ERRORS: dict[int, type[ForgeClientError]] = {
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    410: NotFoundError,
    429: RateLimitedError,
}


def error_class(status: int) -> type[ForgeError]:
    if status >= 500:
        return ForgeServerError
    return _CLIENT_ERRORS.get(status, ForgeClientError)
