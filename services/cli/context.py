"""What every ``dualrandom`` command shares: settings, the opened runtime, a CLI actor's command context."""

import getpass
import uuid

import click

from domain.access import Actor
from services.application import CommandContext
from services.infra.logging import configure_logging, get_logger
from services.infra.settings import Settings, SettingsError
from services.runtime import Runtime

log = get_logger("dualrandom.cli")


def load_settings() -> Settings:
    """Settings from the environment, logging configured; a bad setting is one line and exit code 1."""
    try:
        settings = Settings.from_env().with_secret()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    configure_logging(settings.log_format, settings.log_level)
    return settings


def open_runtime(settings: Settings, *, with_nats: bool) -> Runtime:
    try:
        return Runtime(settings).open(with_nats=with_nats)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def cli_context(department: str, role: str) -> CommandContext:
    """The command context of a person at the terminal (``cli:<login>``) acting in a department and role."""
    return CommandContext(
        Actor(subject=f"cli:{getpass.getuser()}", department=department, roles=(role,)),
        correlation_id=f"cli-{uuid.uuid4()}",
    )
