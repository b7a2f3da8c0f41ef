"""``dualrandom token issue``: a bearer token for an existing account (person or service)."""

from typing import Any

import click

from services.cli.context import load_settings, open_runtime


@click.group()
def token() -> None:
    """Bearer tokens of accounts, signed with this deployment's key."""


@token.command("issue")
@click.option("--username", required=True, help="the account (dualrandom accounts list)")
@click.option("--department", default=None, help="refuse unless the account is of this department")
@click.option("--role", "roles", multiple=True,
              type=click.Choice(["admin", "planner", "inspector", "reviewer", "auditor", "partner"]),
              help="refuse unless the account holds this role (repeat for several)")
@click.option("--name", default="cli", help="the token's name (listed, and revoked by it)")
@click.option("--ttl", default=None, help="lifetime like 30m, 8h, 7d, at most 366d (default DUALRANDOM_TOKEN_DEFAULT_TTL)")
def token_issue(username: str, department: str | None, roles: tuple[str, ...], name: str, ttl: str | None) -> None:
    """Print a token of an existing, active account. The token acts with the account's current department and
    roles (checked on every request), whatever they were when it was issued."""
    from services.api.auth import parse_duration
    from services.cli.context import cli_context
    from services.infra.accounts_store import account_row

    settings = load_settings()
    try:
        seconds = parse_duration(ttl or settings.token_default_ttl)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    runtime: Any = open_runtime(settings, with_nats=False)
    try:
        with runtime.engine.connect() as conn:
            row = account_row(conn, username=username)
        if row is None:
            raise click.ClickException(f"no account with username {username!r} (dualrandom accounts list)")
        if not row.active:
            raise click.ClickException(f"the account {username!r} is deactivated")
        if department is not None and department != row.department:
            raise click.ClickException(f"the account {username!r} is of department {row.department!r}, "
                                       f"not {department!r}")
        missing = [r for r in roles if r not in row.roles.split(",")]
        if missing:
            raise click.ClickException(f"the account {username!r} does not hold the role(s) {', '.join(missing)} "
                                       f"(it holds {row.roles.replace(',', ', ')})")
        issued = runtime.accounts.issue(cli_context(row.department, "admin"), row.id, name, seconds)
        click.echo(issued.token)
    finally:
        runtime.close()
