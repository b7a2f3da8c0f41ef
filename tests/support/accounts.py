"""Tokens for tests, always of a real account: ``account_token(runtime, department, roles, subject)`` creates (or
reuses) the account ``<subject>/<department>/<roles>`` and issues a token for it through the account use case,
as ``dualrandom token issue`` does.

Decided for tests: the account is created even when its department is not yet in the directory (tests that
register the department themselves still run; the API and the CLI refuse an unknown department). ``subject``
(a staff id, an inspector id or any name) becomes the account's inspector link, so a token "for staff-7" acts
as the inspector entry with staff id 7 once it is registered, and two accounts with the same subject are the
same person for every rule about who."""

from typing import Any

from domain.access import SYSTEM
from services.application import CommandContext


def account_username(department: str, roles: tuple[str, ...] | list[str], subject: str | None) -> str:
    return f"{subject or 'staff'}/{department}/{'.'.join(sorted(set(roles)))}"


def account_token(runtime: Any, department: str = "hj-eeb", roles: tuple[str, ...] | list[str] = ("planner",),
                  subject: str | None = None, ttl_seconds: int = 8 * 3600) -> str:
    accounts = runtime.accounts
    username = account_username(department, roles, subject)
    agg = accounts.find(username)
    ctx = CommandContext(SYSTEM)
    if agg is None:
        created = accounts.create(
            ctx, {"username": username, "display_name": subject or username, "department": department,
                  "roles": list(dict.fromkeys(roles)), "inspector": subject},
            check_department=False, admin_check=False,
        )
        account_id = created["id"]
    else:
        account_id = str(agg.id)
    return str(accounts.issue(ctx, account_id, "test", ttl_seconds, admin_check=False).token)
