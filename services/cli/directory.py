"""``dualrandom import`` and ``dualrandom demo``: directory files and the demo county into the store."""

import sys
import uuid
from pathlib import Path

import click

from services.cli.context import cli_context, load_settings, open_runtime


@click.command("import")
@click.argument("kind", type=click.Choice(["targets", "inspectors", "items"]))
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--department", required=True, help="department of the person importing")
@click.option("--role", default="planner", type=click.Choice(["admin", "planner"]))
def import_(kind: str, path: Path, department: str, role: str) -> None:
    """Import a CSV or XLSX file, all or nothing, with a progress bar."""
    from tqdm import tqdm

    from domain.errors import DomainError
    from services.application import ConflictError
    from services.infra.imports import iter_file

    settings = load_settings()
    runtime = open_runtime(settings, with_nats=False)
    singular = kind[:-1]
    try:
        try:
            # the file is read as the import goes (constant memory): the total is unknown, the bar counts rows
            with path.open("rb") as source, tqdm(unit="row", desc=f"import {kind}", file=sys.stderr) as bar:
                rows = iter_file(singular, source, path.name)
                result = runtime.app.import_entries(singular, rows, cli_context(department, role), progress=bar.update,
                                                     known_departments_only=True)
                bar.total = bar.n  # known now: the bar ends as n/n
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
        report = rows.report()
        for column in report["ignored_columns"]:
            click.echo(f"ignored column {column['column']} {column['header']!r}: not a column of {kind} files")
        for tag in report["new_tags"]:
            click.echo(f"new tag {tag['tag']!r} (not in the vocabulary): {tag['rows']} rows, first row {tag['first_row']}")
    finally:
        runtime.close()


@click.command()
@click.option("--with-plan", is_flag=True,
              help="Also draw up the 2024 notice's plan of the ecology bureau (2024001..2024004) and its first-quarter "
                   "joint task with market regulation, drawn (targets and both departments' teams), and carry it "
                   "through the year (findings, review, result notice, publication, referrals, a case inspection, "
                   "a follow-up round), printing the documents to open.")
def demo(with_plan: bool) -> None:
    """Load a demo county (获嘉县): departments, items, a few hundred targets, about 30 inspectors."""
    from domain.access import SYSTEM
    from services.application import CommandContext
    from services.cli.demo import demo_year_lines, load_demo, load_demo_plan

    settings = load_settings()
    runtime = open_runtime(settings, with_nats=False)
    try:
        counts = load_demo(runtime.app, CommandContext(SYSTEM, correlation_id=f"demo-{uuid.uuid4()}"))
        runtime.runner.catch_up()
        click.echo(", ".join(f"{v} {k}" for k, v in counts.items()))
        if with_plan:
            click.echo(load_demo_plan(runtime))
            click.echo("\n".join(demo_year_lines(runtime)))
    finally:
        runtime.close()
