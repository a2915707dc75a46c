"""Constant-time checks of webhook signatures and tokens."""

from __future__ import annotations

import hashlib
import hmac

from ci.forges.errors import SignatureError


def require_secret(secret: str | bytes | None) -> bytes:
    """The secret as bytes; a repository without one cannot accept deliveries at all."""
    if not secret:
        raise SignatureError("no webhook secret is configured for this repository")
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def hmac_sha256_hex(secret: bytes, message: bytes) -> str:
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def check_hmac_sha256(*, secret: bytes, message: bytes, signature: str | None) -> None:
    """Raise `SignatureError` unless `signature` is the lower-case hex HMAC-SHA256 of `message`."""
    if not signature:
        raise SignatureError("the delivery is not signed")
    expected = hmac_sha256_hex(secret, message)
    # compare_digest on bytes: a non-ASCII header must be a mismatch, not a TypeError.
    if not hmac.compare_digest(expected.encode("ascii"), signature.strip().encode("utf-8")):
        raise SignatureError("the delivery signature does not match the secret")


def check_token(*, secret: bytes, token: str | None) -> None:
    """Raise `SignatureError` unless the shared `token` (GitLab's) equals the secret."""
    if not token:
        raise SignatureError("the delivery carries no token")
    if not hmac.compare_digest(secret, token.encode("utf-8")):
        raise SignatureError("the delivery token does not match the secret")
