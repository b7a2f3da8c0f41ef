"""``dualrandom config``: show, change (as an administrator, with a reason) and list the history of the
deployment's configuration (goals, baseline rules, result vocabulary; docs/configuration.md)."""

import json
import sys
from pathlib import Path

import click

from services.cli.context import cli_context, load_settings, open_runtime


@click.group("config")
def config() -> None:
    """The deployment's configurable goals, baseline rules and result vocabulary."""


@config.command("show")
def show() -> None:
    """Print the current settings (JSON), with their version (0: the defaults, never changed)."""
    runtime = open_runtime(load_settings(), with_nats=False)
    try:
        view = runtime.configurations.view()
        click.echo(json.dumps({"version": view["version"], "settings": view["settings"]}, ensure_ascii=False, indent=2))
    finally:
        runtime.close()


@config.command("set")
@click.option("--joint-share-goal", help='the joint-task share goal: "0.6", "60%" or "3/5"')
@click.option("--baseline-rules", "baseline", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="a JSON file: the list of baseline sampling rules (as a plan entry's rules)")
@click.option("--result-codes", "codes", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="a JSON file: the list of result codes ({code, wording, english, problem_found})")
@click.option("--reason", required=True, help="why: recorded in the event")
@click.option("--department", required=True, help="department of the administrator")
def set_(joint_share_goal: str | None, baseline: Path | None, codes: Path | None, reason: str, department: str) -> None:
    """Change settings as an administrator; only those that differ are recorded."""
    from domain.errors import DomainError

    changes: dict[str, object] = {}
    if joint_share_goal is not None:
        changes["joint_share_goal"] = joint_share_goal
    for key, path in (("baseline_rules", baseline), ("result_codes", codes)):
        if path is not None:
            try:
                changes[key] = json.loads(path.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError) as exc:
                raise click.ClickException(f"{path}: not a JSON file ({exc})") from None
    if not changes:
        raise click.UsageError("give at least one of --joint-share-goal, --baseline-rules, --result-codes")
    runtime = open_runtime(load_settings(), with_nats=False)
    try:
        try:
            result = runtime.configurations.change(cli_context(department, "admin"), changes, reason)
        except DomainError as exc:
            for p in exc.problems:
                click.echo(f"{p.field}: {p.message} ({p.rule})", err=True)
            raise click.ClickException(exc.message) from None
        changed = result.body.get("changed") or []
        click.echo(f"changed {', '.join(changed)} (version {result.version}, log position {result.position})"
                   if changed else "nothing changed")
    finally:
        runtime.close()


@config.command("history")
def history() -> None:
    """Every change: version, time, who, what and why (one JSON object a line)."""
    from domain.access import Actor

    runtime = open_runtime(load_settings(), with_nats=False)
    try:
        for ev in runtime.configurations.history(Actor("cli", "system", ("auditor",))):
            sys.stdout.write(json.dumps({k: ev[k] for k in ("version", "type", "time", "data")},
                                        ensure_ascii=False, default=str) + "\n")
    finally:
        runtime.close()
