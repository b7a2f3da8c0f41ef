"""The ``dualrandom`` command: serve, token issue, import, demo, projections."""

import sys
import uuid
from pathlib import Path

import click

from services.logging import configure_logging, get_logger
from services.settings import Settings, SettingsError

log = get_logger("dualrandom.cli")


def _settings() -> Settings:
    try:
        settings = Settings.from_env().with_secret()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    configure_logging(settings.log_format, settings.log_level)
    return settings


def _open(settings: Settings, *, with_nats: bool):  # type: ignore[no-untyped-def]
    from services.runtime import Runtime

    try:
        return Runtime(settings).open(with_nats=with_nats)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _cli_context(department: str, role: str):  # type: ignore[no-untyped-def]
    from domain.access import Actor
    from services.application import CommandContext

    import getpass

    return CommandContext(
        Actor(subject=f"cli:{getpass.getuser()}", department=department, roles=(role,)),
        correlation_id=f"cli-{uuid.uuid4()}",
    )


@click.group()
def main() -> None:
    """dualrandom: coordination server for 双随机、一公开 joint random inspections."""


@main.command()
@click.option("--host", default=None, help="address to listen on (default DUALRANDOM_HOST or 127.0.0.1)")
@click.option("--port", type=int, default=None, help="port (default DUALRANDOM_PORT or 8000)")
def serve(host: str | None, port: int | None) -> None:
    """Start the HTTP API with projections and the NATS relay (embedded SQLite + nats-server by default)."""
    import uvicorn

    from services.api.app import create_app

    settings = _settings()
    runtime = _open(settings, with_nats=True)
    _GracefulServer = _graceful_server_class()
    try:
        app = create_app(runtime)
        host = host or settings.host
        port = port or settings.port
        log.info("serving", host=host, port=port, database=_safe(settings.effective_database_url),
                 nats=runtime.nats_url or "off")
        server = _GracefulServer(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
        server.run()
    finally:
        runtime.close()
    log.info("stopped")


def _graceful_server_class():  # type: ignore[no-untyped-def]
    import contextlib
    import signal

    import uvicorn

    class GracefulServer(uvicorn.Server):
        """Stops on SIGTERM/SIGINT and returns, so the embedded NATS and the pools close (uvicorn would
        re-raise the signal and kill the process before that)."""

        @contextlib.contextmanager
        def capture_signals(self):  # type: ignore[no-untyped-def]
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, self.handle_exit)
            yield

    return GracefulServer


def _safe(url: str) -> str:
    from services.store import safe_url

    return safe_url(url)


@main.group()
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
    from services.auth import issue_token, parse_duration

    settings = _settings()
    try:
        seconds = parse_duration(ttl or settings.token_default_ttl)
        click.echo(issue_token(settings.secret_key, department, list(roles), subject, seconds))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


@main.command("import")
@click.argument("kind", type=click.Choice(["targets", "inspectors", "items"]))
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--department", required=True, help="department of the person importing")
@click.option("--role", default="planner", type=click.Choice(["admin", "planner"]))
def import_(kind: str, path: Path, department: str, role: str) -> None:
    """Import a CSV or XLSX file, all or nothing, with a progress bar."""
    from tqdm import tqdm

    from domain.errors import DomainError
    from services.application import ConflictError
    from services.imports import parse_file

    settings = _settings()
    runtime = _open(settings, with_nats=False)
    singular = kind[:-1]
    try:
        try:
            rows = parse_file(singular, path.read_bytes(), path.name)
            with tqdm(total=len(rows), unit="row", desc=f"import {kind}", file=sys.stderr) as bar:
                result = runtime.app.import_entries(singular, rows, _cli_context(department, role), progress=bar.update)
        except DomainError as exc:
            for p in exc.problems:
                where = f"row {p.row}, " if p.row is not None else ""
                click.echo(f"{where}{p.field}: {p.message} ({p.rule})", err=True)
            raise click.ClickException(exc.message) from None
        except ConflictError as exc:
            raise click.ClickException(str(exc)) from None
        runtime.runner.catch_up()
        click.echo(
            f"{result.created} created, {result.updated} updated, {result.unchanged} unchanged, "
            f"{result.events} events (log position {result.position})"
        )
    finally:
        runtime.close()


@main.command()
@click.option("--with-plan", is_flag=True,
              help="Also draw up the seed's 2024 plan of the ecology bureau (2024001..2024004) and its first-quarter "
                   "joint task with market regulation, drawn (targets and both departments' teams).")
def demo(with_plan: bool) -> None:
    """Load a demo county (获嘉县): departments, items, a few hundred targets, about 30 inspectors."""
    from domain.access import SYSTEM
    from services.application import CommandContext
    from services.demo import load_demo, load_demo_plan

    settings = _settings()
    runtime = _open(settings, with_nats=False)
    try:
        counts = load_demo(runtime.app, CommandContext(SYSTEM, correlation_id=f"demo-{uuid.uuid4()}"))
        runtime.runner.catch_up()
        click.echo(", ".join(f"{v} {k}" for k, v in counts.items()))
        if with_plan:
            click.echo(load_demo_plan(runtime))
    finally:
        runtime.close()


from services.cli_audit import audit  # noqa: E402 - the group uses this module's helpers

main.add_command(audit)

from services.cli_projections import projections  # noqa: E402 - the group uses this module's helpers

main.add_command(projections)

from services.cli_nats import COMMANDS as _NATS_COMMANDS  # noqa: E402 - nats-config, relay, subscribe, contracts

for _command in _NATS_COMMANDS:
    main.add_command(_command)

if __name__ == "__main__":  # pragma: no cover
    main()
