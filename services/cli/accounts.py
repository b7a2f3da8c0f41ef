"""``dualrandom accounts``: the first admin, and accounts managed at the terminal (the API does the same)."""

import sys
from typing import Any

import click

from services.cli.context import cli_context, load_settings, open_runtime

ROLES = ["admin", "planner", "inspector", "reviewer", "auditor", "partner"]


@click.group()
def accounts() -> None:
    """Accounts of people and services (passwords are read from a prompt or stdin, never from an argument)."""


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True))


def _run(action: Any) -> Any:
    """Open the runtime, run ``action(runtime)``, show a refusal as one line naming each field and rule, exit code 1."""
    from domain.errors import DomainError
    from services.application import ConflictError, NotFoundError

    runtime = open_runtime(load_settings(), with_nats=False)
    try:
        return action(runtime)
    except DomainError as exc:  # one line: every problem with its field and rule
        raise click.ClickException("; ".join(f"{p.field}: {p.message} ({p.rule})" for p in exc.problems)
                                   or exc.message) from None
    except (ConflictError, NotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        runtime.close()


def _id_of(runtime: Any, username: str) -> str:
    agg = runtime.accounts.find(username)
    if agg is None:
        raise click.ClickException(f"no account with username {username!r}")
    return str(agg.id)


@accounts.command("create-admin")
@click.option("--username", required=True)
@click.option("--display-name", required=True, help="the name people read in history, e.g. 张三")
@click.option("--department", required=True,
              help="department code of the admin (need not be registered yet: the first admin registers them)")
@click.option("--password-stdin", is_flag=True, help="read the password from the first line of stdin")
def create_admin(username: str, display_name: str, department: str, password_stdin: bool) -> None:
    """Create the first admin of a fresh deployment (refused once any admin account exists)."""
    password = _password(password_stdin)

    def act(runtime: Any) -> None:
        from sqlalchemy import select

        from services.infra.accounts_store import ACCOUNT

        with runtime.engine.connect() as conn:
            roles = conn.execute(select(ACCOUNT.c.roles)).scalars().all()
        if any("admin" in r.split(",") for r in roles):
            raise click.ClickException("an admin account exists already: use `dualrandom accounts create`")
        made = runtime.accounts.create(
            cli_context(department, "admin"),
            {"username": username, "display_name": display_name, "department": department, "roles": ["admin"],
             "reason": "first admin"},
            password, check_department=False,
        )
        click.echo(f"created admin {made['username']} ({made['id']})")

    _run(act)


@accounts.command("create")
@click.option("--username", required=True)
@click.option("--display-name", required=True)
@click.option("--department", required=True, help="a department in the directory")
@click.option("--role", "roles", required=True, multiple=True, type=click.Choice(ROLES), help="repeat for several")
@click.option("--inspector", default=None, help="inspector directory entry id or staff id (inspectors, reviewers)")
@click.option("--service", is_flag=True, help="a service account (API tokens only, no password)")
@click.option("--password-stdin", is_flag=True, help="read the password from the first line of stdin")
def create(username: str, display_name: str, department: str, roles: tuple[str, ...], inspector: str | None,
           service: bool, password_stdin: bool) -> None:
    """Create an account (a person gets a password from the prompt or stdin)."""
    password = None if service else _password(password_stdin)

    def act(runtime: Any) -> None:
        made = runtime.accounts.create(
            cli_context(department, "admin"),
            {"username": username, "display_name": display_name, "department": department, "roles": list(roles),
             "inspector": inspector, "kind": "service" if service else "person"},
            password,
        )
        click.echo(f"created {made['username']} ({made['id']})")

    _run(act)


@accounts.command("list")
def list_() -> None:
    """Accounts: username, id, department, roles, active."""

    def act(runtime: Any) -> None:
        from domain.access import SYSTEM

        for a in runtime.accounts.list_all(SYSTEM):
            state = "active" if a["active"] else "inactive"
            click.echo(f"{a['username']}\t{a['id']}\t{a['department']}\t{','.join(a['roles'])}\t{a['kind']}\t{state}")

    _run(act)


@accounts.command("change")
@click.argument("username")
@click.option("--role", "roles", multiple=True, type=click.Choice(ROLES), help="the new roles (repeat)")
@click.option("--department", default=None)
@click.option("--inspector", default=None)
@click.option("--reason", required=True)
def change(username: str, roles: tuple[str, ...], department: str | None, inspector: str | None,
           reason: str) -> None:
    """Change an account's roles, department or inspector link (takes effect at its next request)."""
    data: dict[str, Any] = {"reason": reason}
    if roles:
        data["roles"] = list(roles)
    if department:
        data["department"] = department
    if inspector is not None:
        data["inspector"] = inspector

    def act(runtime: Any) -> None:
        out = runtime.accounts.change(cli_context("system", "admin"), _id_of(runtime, username), data)
        click.echo(f"{out['username']}: {out['department']} {','.join(out['roles'])}")

    _run(act)


@accounts.command("deactivate")
@click.argument("username")
@click.option("--reason", required=True)
def deactivate(username: str, reason: str) -> None:
    """Deactivate an account: its sessions and tokens are refused from the next request on."""
    _run(lambda rt: rt.accounts.set_active(cli_context("system", "admin"), _id_of(rt, username), False, reason))
    click.echo(f"deactivated {username}")


@accounts.command("reactivate")
@click.argument("username")
@click.option("--reason", required=True)
def reactivate(username: str, reason: str) -> None:
    _run(lambda rt: rt.accounts.set_active(cli_context("system", "admin"), _id_of(rt, username), True, reason))
    click.echo(f"reactivated {username}")


@accounts.command("set-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True)
def set_password(username: str, password_stdin: bool) -> None:
    """Reset an account's password (and clear a lockout)."""
    password = _password(password_stdin)
    _run(lambda rt: rt.accounts.set_password(cli_context("system", "admin"), _id_of(rt, username), password,
                                             source="cli"))
    click.echo(f"password set for {username}")
