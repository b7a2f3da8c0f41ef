"""The ``dualrandom`` command. One module per group of commands; what they share is in ``context``."""

import click

# Commands are imported under other names than their modules: ``from services.cli import projections`` must
# stay the module (tests and the rebuild's build processes use it), not the click group of the same name.
from services.cli.accounts import accounts as accounts_group
from services.cli.audit import audit as audit_group
from services.cli.directory import demo as demo_command
from services.cli.directory import import_ as import_command
from services.cli.nats import COMMANDS as NATS_COMMANDS
from services.cli.projections import projections as projections_group
from services.cli.serve import serve as serve_command
from services.cli.templates import directory as directory_group
from services.cli.tokens import token as token_group
from services.cli.witness import witness as witness_group


@click.group()
def main() -> None:
    """dualrandom: coordination server for 双随机、一公开 joint random inspections."""


for _command in (serve_command, accounts_group, token_group, import_command, demo_command, audit_group,
                 projections_group, witness_group, directory_group, *NATS_COMMANDS):
    main.add_command(_command)

if __name__ == "__main__":  # pragma: no cover
    main()
