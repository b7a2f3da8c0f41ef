"""Tokens for tests, always of an account in the credential store the server checks on every request:
``account_token(runtime, department, roles, subject)`` puts (or reuses) the account
``<subject>/<department>/<roles>`` and issues a token for it.

Decided for tests of other areas:
- The account and the token are written into the credential store only (``services/infra/accounts_store.py``,
  the table the middleware reads), not through the account's events: a test's log positions and "nothing was
  recorded" checks stay its own. The account API and CLI (tests/e2e/test_http_accounts.py,
  tests/e2e/test_http_identity.py, tests/e2e/test_cli_serve.py) are tested with events.
- The account exists even when its department is not yet in the directory (tests that register the department
  themselves still run; the API and the CLI refuse an unknown department).
- ``subject`` (a staff id, an inspector id or any name) becomes the account's inspector link, so a token "for
  staff-7" acts as the inspector entry with staff id 7 once it is registered, and two accounts with the same
  subject are the same person for every rule about who."""

import time
import uuid
from typing import Any

from domain.accounts import account_id
from services.api.auth import issue_token
from services.infra import accounts_store as store


def account_username(department: str, roles: tuple[str, ...] | list[str], subject: str | None) -> str:
    return f"{subject or 'staff'}/{department}/{'.'.join(sorted(set(roles)))}"


def account_token(runtime: Any, department: str = "hj-eeb", roles: tuple[str, ...] | list[str] = ("planner",),
                  subject: str | None = None, ttl_seconds: int = 8 * 3600) -> str:
    return stored_token(runtime.engine, runtime.settings.secret_key, department, roles, subject, ttl_seconds)


def stored_token(engine: Any, secret: str, department: str, roles: tuple[str, ...] | list[str],
                 subject: str | None = None, ttl_seconds: int = 8 * 3600) -> str:
    """``account_token`` on a bare engine and key (benchmarks that serve from another process)."""
    store.setup(engine)
    username = account_username(department, roles, subject)
    ident = account_id(username)
    roles = list(dict.fromkeys(roles))
    token_id = uuid.uuid4().hex
    with engine.begin() as conn:
        if store.account_row(conn, account_id=ident) is None:
            store.put_account(conn, {"id": ident, "username": username, "display_name": subject or username,
                                     "department": department, "roles": roles, "inspector": subject,
                                     "kind": "person", "active": True})
        now = time.time()
        conn.execute(store.TOKEN.insert().values(id=token_id, account_id=ident, name="test", session=False,
                                                 issued_at=now, expires_at=now + ttl_seconds, revoked=False))
    return issue_token(secret, department, roles, ident, ttl_seconds, token_id=token_id)


PERSON_PASSWORD = "correct horse battery staple"


def person(runtime: Any, username: str, roles: tuple[str, ...] | list[str], department: str = "hj-eeb",
           display_name: str = "李明", inspector: str | None = None, password: str = PERSON_PASSWORD) -> dict[str, Any]:
    """A person's account with a password, created through the accounts use case (its events recorded), for
    tests that log in as people do (the login page, ``POST /api/v1/session``). Its department must be registered."""
    from domain.access import SYSTEM
    from services.application import CommandContext

    data: dict[str, Any] = {"username": username, "display_name": display_name, "department": department,
                            "roles": list(roles), "kind": "person"}
    if inspector is not None:
        data["inspector"] = inspector
    created: dict[str, Any] = runtime.accounts.create(CommandContext(actor=SYSTEM), data, password)
    return created
