"""The ``dualrandom`` command. One module per group of commands; what they share is in ``context``."""

import click

from services.cli.audit import audit
from services.cli.directory import demo, import_
from services.cli.nats import COMMANDS as NATS_COMMANDS
from services.cli.projections import projections
from services.cli.serve import serve
from services.cli.tokens import token


@click.group()
def main() -> None:
    """dualrandom: coordination server for 双随机、一公开 joint random inspections."""


for _command in (serve, token, import_, demo, audit, projections, *NATS_COMMANDS):
    main.add_command(_command)

if __name__ == "__main__":  # pragma: no cover
    main()
