"""Signed bearer tokens (JWT, HS256) carrying department, roles and expiry."""

import re
import time
import uuid
from typing import Any

import jwt

from domain.access import Actor
from domain.values import Role

ISSUER = "dualrandom"
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_TTL_DAYS = 366  # the longest lifetime of any token or session: a year (and a leap day)
_DEPARTMENT = re.compile(r"^[a-z][a-z0-9-]{1,31}$")
ROLES = tuple(r.value for r in Role)
_VERIFIED_MAX = 4096  # verified tokens remembered (a server sees the same few tokens over and over)
# (signing key, token) -> (actor, expiry): a token byte-identical to one this key verified before is valid
# until its own expiry. Only verified tokens enter; expiry is checked on every use.
_verified: dict[tuple[str, str], tuple[Actor, float, str]] = {}


class AuthError(Exception):
    """The token is missing, malformed, expired or not signed by this deployment."""


def parse_duration(text: str) -> int:
    """``90s``, ``30m``, ``8h``, ``7d`` -> seconds, at most ``MAX_TTL_DAYS`` days (ValueError otherwise)."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"not a duration like 30m, 8h or 7d: {text!r}")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds > MAX_TTL_DAYS * 86400:
        raise ValueError(f"at most {MAX_TTL_DAYS}d: a token lives a year at the longest; got {text.strip()!r}")
    return seconds


def issue_token(
    secret: str, department: str, roles: list[str], subject: str | None = None, ttl_seconds: int = 8 * 3600,
    token_id: str | None = None,
) -> str:
    """A token for ``subject`` acting for ``department`` with ``roles``."""
    if not _DEPARTMENT.match(department):
        raise ValueError(f"department code {department!r} must be lower-case letters, digits and -")
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise ValueError(f"roles must be among {', '.join(ROLES)}; got {', '.join(roles) or 'none'}")
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": subject or f"{department}:{roles[0]}",
        "dept": department,
        "roles": list(dict.fromkeys(roles)),
        "iat": now,
        "exp": now + ttl_seconds,
        "jti": token_id or uuid.uuid4().hex,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def verify_token(secret: str, token: str) -> Actor:
    """The actor a valid token claims; AuthError otherwise (see ``verify``)."""
    return verify(secret, token)[0]


def verify(secret: str, token: str) -> tuple[Actor, str]:
    """The actor a valid token claims and its id (``jti``); AuthError otherwise (the message never echoes the
    token). The claims are not authority: the middleware looks the token id up in the account store on every
    request (revoked, deactivated, current roles), so this cache cannot let a revoked token through.

    A token verified before with the same key is not decoded and its signature not checked again: the same
    bytes under the same key verify the same way. Its expiry is still checked on every use."""
    key = (secret, token)
    known = _verified.get(key)
    if known is not None:
        if time.time() < known[1]:
            return known[0], known[2]
        _verified.pop(key, None)
        raise AuthError("the token has expired")
    actor, exp, jti = _verify(secret, token)
    if len(_verified) >= _VERIFIED_MAX:
        _verified.clear()  # bounded; the tokens in use come back on their next request
    _verified[key] = (actor, exp, jti)
    return actor, jti


CLOCK_SKEW_SECONDS = 30  # a token minted on a machine whose clock runs this far ahead is valid (iat, nbf)


def _verify(secret: str, token: str) -> tuple[Actor, float, str]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token, secret, algorithms=["HS256"], issuer=ISSUER, options={"require": ["exp", "sub", "iss"]},
            leeway=CLOCK_SKEW_SECONDS,
        )
    except jwt.ExpiredSignatureError:
        raise AuthError("the token has expired") from None
    except jwt.InvalidTokenError:
        raise AuthError("the token is not valid for this server") from None
    if float(claims["exp"]) <= time.time():  # the leeway is for a clock ahead: an expiry is exact
        raise AuthError("the token has expired")
    roles = claims.get("roles")
    dept = claims.get("dept")
    if not isinstance(roles, list) or not roles or not all(r in ROLES for r in roles) or not isinstance(dept, str):
        raise AuthError("the token carries no valid department and roles")
    actor = Actor(subject=str(claims["sub"]), department=dept, roles=tuple(roles))
    return actor, float(claims["exp"]), str(claims.get("jti", ""))
