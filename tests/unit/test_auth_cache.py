"""Verified tokens are remembered (the server sees the same token on every request), never beyond their life."""

import time

import jwt
import pytest

from services.api import auth
from services.api.auth import AuthError, issue_token, verify_token

SECRET = "s" * 40
OTHER = "o" * 40


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    auth._verified.clear()


def test_a_verified_token_is_not_decoded_again(monkeypatch: pytest.MonkeyPatch) -> None:
    token = issue_token(SECRET, "hj-eeb", ["planner"])
    first = verify_token(SECRET, token)
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: pytest.fail("decoded again"))
    assert verify_token(SECRET, token) == first
    assert first.department == "hj-eeb" and first.roles == ("planner",)


def test_a_remembered_token_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    token = issue_token(SECRET, "hj-eeb", ["planner"], ttl_seconds=60)
    verify_token(SECRET, token)
    now = time.time()
    monkeypatch.setattr(auth.time, "time", lambda: now + 61)
    with pytest.raises(AuthError, match="expired"):
        verify_token(SECRET, token)
    assert not auth._verified


def test_a_token_verified_under_one_key_is_not_valid_under_another() -> None:
    token = issue_token(SECRET, "hj-eeb", ["planner"])
    verify_token(SECRET, token)
    with pytest.raises(AuthError, match="not valid"):
        verify_token(OTHER, token)


def test_a_changed_token_is_verified_in_full() -> None:
    token = issue_token(SECRET, "hj-eeb", ["planner"])
    verify_token(SECRET, token)
    head, _payload, signature = token.split(".")
    forged = issue_token(OTHER, "hj-eeb", ["admin"]).split(".")[1]
    with pytest.raises(AuthError):
        verify_token(SECRET, f"{head}.{forged}.{signature}")
    with pytest.raises(AuthError):
        verify_token(SECRET, token[:-2] + ("AA" if not token.endswith("AA") else "BB"))


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "_VERIFIED_MAX", 3)
    tokens = [issue_token(SECRET, "hj-eeb", ["planner"], subject=f"u{i}") for i in range(7)]
    for t in tokens:
        assert verify_token(SECRET, t).subject.startswith("u")
    assert len(auth._verified) <= 3


def _minted_ahead(seconds: int) -> str:
    """A token made on a machine whose clock runs ``seconds`` ahead of this one."""
    now = int(time.time()) + seconds
    return jwt.encode({"iss": auth.ISSUER, "sub": "x", "dept": "hj-eeb", "roles": ["planner"], "iat": now,
                       "nbf": now, "exp": now + 600}, SECRET, algorithm="HS256")


def test_a_token_from_a_clock_slightly_ahead_is_accepted_one_far_ahead_is_not() -> None:
    assert verify_token(SECRET, _minted_ahead(auth.CLOCK_SKEW_SECONDS - 10)).department == "hj-eeb"
    with pytest.raises(AuthError):
        verify_token(SECRET, _minted_ahead(auth.CLOCK_SKEW_SECONDS + 120))
    expired = jwt.encode({"iss": auth.ISSUER, "sub": "x", "dept": "hj-eeb", "roles": ["planner"],
                          "exp": int(time.time()) - 5}, SECRET, algorithm="HS256")
    with pytest.raises(AuthError, match="expired"):  # the leeway is for a clock ahead: an expiry is exact
        verify_token(SECRET, expired)
