"""``dualrandom directory template``: an import template file per kind, the same bytes as the API's
``GET /api/v1/imports/templates/{kind}.{xlsx|csv}`` (and what docs/templates/ holds)."""

import sys
from pathlib import Path

import click

PLURALS = ("targets", "inspectors", "items", "experts")


@click.group()
def directory() -> None:
    """Directory files: import templates."""


@directory.command()
@click.argument("kind", type=click.Choice(PLURALS))
@click.option("--format", "fmt", type=click.Choice(["xlsx", "csv"]), default="xlsx", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="file to write (default: KIND.xlsx or KIND.csv in the current directory); - for stdout")
def template(kind: str, fmt: str, output: Path | None) -> None:
    """Write the import template of KIND: the header row of Chinese labels the import reads (XLSX: required
    columns marked *, drop-downs, a sheet 说明 describing each column; CSV: UTF-8 with BOM, the header row)."""
    from services.documents import sheets

    content = sheets.template(kind[:-1], fmt)
    if output is not None and str(output) == "-":
        sys.stdout.buffer.write(content)
        return
    path = output or Path(f"{kind}.{fmt}")
    path.write_bytes(content)
    click.echo(f"{path} ({len(content)} bytes)")
