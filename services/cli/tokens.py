"""``dualrandom token issue``: bearer tokens signed with this deployment's key."""

import click

from services.cli.context import load_settings


@click.group()
def token() -> None:
    """Bearer tokens signed with this deployment's key."""


@token.command("issue")
@click.option("--department", required=True, help="department code, e.g. hj-eeb")
@click.option("--role", "roles", required=True, multiple=True,
              type=click.Choice(["admin", "planner", "inspector", "reviewer", "auditor", "partner"]),
              help="role (repeat for several)")
@click.option("--subject", default=None, help="who the token is for (staff id); default <department>:<role>")
@click.option("--ttl", default=None, help="lifetime like 30m, 8h, 7d (default DUALRANDOM_TOKEN_DEFAULT_TTL)")
def token_issue(department: str, roles: tuple[str, ...], subject: str | None, ttl: str | None) -> None:
    """Print a token."""
    from services.api.auth import issue_token, parse_duration

    settings = load_settings()
    try:
        seconds = parse_duration(ttl or settings.token_default_ttl)
        click.echo(issue_token(settings.secret_key, department, list(roles), subject, seconds))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
