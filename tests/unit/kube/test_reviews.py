"""The review cache: one TokenReview and one SubjectAccessReview per token and namespace
within the TTL, never the token itself kept."""

from __future__ import annotations

from ci.kube.reviews import Identity, Reviews


def test_answers_are_cached_for_the_ttl_then_asked_again() -> None:
    now = [0.0]
    asked: list[str] = []
    alice = Identity(username="alice", groups=("team-a",))

    def review_token(token: str) -> Identity | None:
        asked.append(f"token:{token}")
        return alice if token == "good" else None

    def review_access(identity: Identity, namespace: str) -> bool:
        asked.append(f"access:{identity.username}:{namespace}")
        return namespace == "team-a"

    reviews = Reviews(review_token=review_token, review_access=review_access, ttl=10,
                      clock=lambda: now[0])
    assert reviews.identity("good") == alice
    assert reviews.identity("bad") is None
    assert reviews.may_read(alice, "team-a") and not reviews.may_read(alice, "team-b")
    for _ in range(5):
        reviews.identity("good")
        reviews.may_read(alice, "team-b")
    assert asked == ["token:good", "token:bad", "access:alice:team-a", "access:alice:team-b"]
    assert "good" not in repr(reviews.__dict__)  # kept by hash only
    now[0] = 11.0
    reviews.identity("good")
    reviews.may_read(alice, "team-b")
    assert asked[-2:] == ["token:good", "access:alice:team-b"]
