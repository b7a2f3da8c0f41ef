"""Accounts: the people and services that act (one identity each), as an event-sourced aggregate.

An account has a username (its key: the id is ``entry_id("account", username)``), a display name, a department,
roles, for inspectors and reviewers the link to their entry in the inspector directory (执法人员), an active
flag and a kind (``person`` or ``service``). Every change is an event carrying a reason; the actor is in
``_meta``. Secrets never enter an event: a password or token event says only that one was set or issued (the
hashes live in the credential table, ``services/infra/accounts_store.py``).
"""

import re
import uuid
from typing import Any

from eventsourcing.domain import Aggregate, event

from domain.directory import entry_id
from domain.errors import FieldProblem, InvalidInputError
from domain.text import control_character
from domain.values import Role

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,99}$")
KINDS = ("person", "service")
ROLES = tuple(r.value for r in Role)
PASSWORD_MIN = 12
PASSWORD_MAX = 1024


def account_id(username: str) -> str:
    return str(entry_id("account", username))


def _text(field: str, value: Any, max_len: int, problems: list[FieldProblem], *, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        problems.append(FieldProblem(field, "required", "must be a non-empty text"))
        return ""
    if len(value) > max_len:
        problems.append(FieldProblem(field, "max_length", f"must be at most {max_len} characters"))
    if control_character(value):
        problems.append(FieldProblem(field, "control_character", "must not contain control characters"))
    return value.strip()


def check_roles(value: Any, problems: list[FieldProblem], field: str = "roles") -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(r, str) for r in value):
        problems.append(FieldProblem(field, "required", f"must be a non-empty list among {', '.join(ROLES)}"))
        return []
    unknown = [r for r in value if r not in ROLES]
    if unknown:
        problems.append(FieldProblem(field, "choice", f"unknown role(s) {', '.join(unknown)}; among {', '.join(ROLES)}"))
    return list(dict.fromkeys(value))


def validate_new(data: dict[str, Any]) -> dict[str, Any]:
    """Validated fields of a new account (the department's existence is checked by the caller)."""
    problems: list[FieldProblem] = []
    username = data.get("username")
    if not isinstance(username, str) or not USERNAME.match(username):
        problems.append(FieldProblem("username", "format",
                                     "must be 1-100 letters, digits or . _ : @ / -, starting with a letter or digit"))
    out = {
        "username": username,
        "display_name": _text("display_name", data.get("display_name") or username, 100, problems),
        "department": _text("department", data.get("department"), 32, problems),
        "roles": check_roles(data.get("roles"), problems),
        "inspector": _text("inspector", data.get("inspector"), 64, problems, required=False) or None,
        "kind": data.get("kind") or "person",
    }
    if out["kind"] not in KINDS:
        problems.append(FieldProblem("kind", "choice", f"must be one of {', '.join(KINDS)}"))
    if problems:
        raise InvalidInputError(problems)
    return out


def check_password(password: Any, field: str = "password") -> str:
    """A password people choose: 12 to 1024 characters, not only spaces."""
    if not isinstance(password, str) or len(password.strip()) < PASSWORD_MIN:
        raise InvalidInputError([FieldProblem(field, "min_length", f"must be at least {PASSWORD_MIN} characters")])
    if len(password) > PASSWORD_MAX:
        raise InvalidInputError([FieldProblem(field, "max_length", f"must be at most {PASSWORD_MAX} characters")])
    return password


def check_reason(reason: Any) -> str:
    problems: list[FieldProblem] = []
    text = _text("reason", reason, 500, problems)
    if problems:
        raise InvalidInputError(problems)
    return text


class Account(Aggregate):
    """One person or service that acts: created, changed, deactivated and reactivated by an admin."""

    KIND = "account"

    @staticmethod
    def create_id(username: str, **_: Any) -> uuid.UUID:
        return entry_id("account", username)

    class Created(Aggregate.Created):
        username: str
        display_name: str
        department: str
        roles: list[str]
        inspector: str | None
        kind: str
        reason: str

    class Changed(Aggregate.Event):
        changes: dict[str, Any]
        reason: str

    class Deactivated(Aggregate.Event):
        reason: str

    class Reactivated(Aggregate.Event):
        reason: str

    class PasswordSet(Aggregate.Event):
        by_admin: bool

    class TokenIssued(Aggregate.Event):
        token_id: str
        name: str
        expires_at: int
        session: bool

    class TokenRevoked(Aggregate.Event):
        token_id: str
        reason: str

    @event(Created)
    def __init__(self, username: str, display_name: str, department: str, roles: list[str],
                 inspector: str | None, kind: str, reason: str) -> None:
        self.username = username
        self.display_name = display_name
        self.department = department
        self.roles = roles
        self.inspector = inspector
        self.kind = kind
        self.active = True
        self.tokens: dict[str, str] = {}  # token id -> name, of tokens not revoked

    def change(self, data: dict[str, Any], reason: str) -> dict[str, Any]:
        """Apply changed roles, department, display name or inspector link; what changed ({}: nothing)."""
        problems: list[FieldProblem] = []
        new: dict[str, Any] = {}
        if "roles" in data:
            new["roles"] = check_roles(data["roles"], problems)
        if "department" in data:
            new["department"] = _text("department", data["department"], 32, problems)
        if "display_name" in data:
            new["display_name"] = _text("display_name", data["display_name"], 100, problems)
        if "inspector" in data:
            new["inspector"] = _text("inspector", data["inspector"], 64, problems, required=False) or None
        if problems:
            raise InvalidInputError(problems)
        changes = {k: v for k, v in new.items() if getattr(self, k) != v}
        if changes:
            self._changed(changes=changes, reason=check_reason(reason))
        return changes

    @event(Changed)
    def _changed(self, changes: dict[str, Any], reason: str) -> None:
        for k, v in changes.items():
            setattr(self, k, v)

    def deactivate(self, reason: str) -> bool:
        if not self.active:
            return False
        self._deactivated(reason=check_reason(reason))
        return True

    @event(Deactivated)
    def _deactivated(self, reason: str) -> None:
        self.active = False

    def reactivate(self, reason: str) -> bool:
        if self.active:
            return False
        self._reactivated(reason=check_reason(reason))
        return True

    @event(Reactivated)
    def _reactivated(self, reason: str) -> None:
        self.active = True

    @event(PasswordSet)
    def password_set(self, by_admin: bool) -> None:
        """A password was set (by the person, or reset by an admin); the hash is never in the event."""

    @event(TokenIssued)
    def token_issued(self, token_id: str, name: str, expires_at: int, session: bool) -> None:
        self.tokens[token_id] = name

    def revoke(self, token_id: str, reason: str) -> bool:
        if token_id not in self.tokens:
            return False
        self._token_revoked(token_id=token_id, reason=reason)
        return True

    @event(TokenRevoked)
    def _token_revoked(self, token_id: str, reason: str) -> None:
        self.tokens.pop(token_id, None)
