"""``dualrandom`` commands for NATS and partners: ``nats-config``, ``relay run``, ``subscribe``, ``contracts``.

The NATS configuration gives every department one user that may only read its own subjects (and the shared
directory, published results and audit checkpoints) through its own durable consumers, plus the relay's
publishing user and an operator user. Permissions, per department ``D`` and stream ``S``:

- publish: ``$JS.API.INFO`` (never ``$JS.API.STREAM.INFO.S``: with a subjects filter it answers every
  department's subjects and message counts), and for each of its consumers ``C`` (``D``,
  ``D_shared``, ``D_public``, ``D_audit``): ``$JS.API.CONSUMER.{INFO,DELETE,MSG.NEXT}.S.C``,
  ``$JS.API.CONSUMER.CREATE.S.C.<its filter>`` (the server refuses a config whose filter differs from the
  one in the subject, so a department cannot widen its consumer) and ``$JS.ACK.S.C.>``;
- publish ``dualrandom.audit.cosignatures.D`` (its witness's cosignatures; no other department's subject);
- subscribe: ``_INBOX_D.>`` only (the replies of its own requests; ``services/infra/partner.py`` sets this prefix).
"""

import asyncio
import json
import os
import re
import secrets
import signal
import sys
from pathlib import Path
from typing import Any

import click

from services.cli.context import load_settings, open_runtime
from services.infra.logging import get_logger
from services.infra.partner import SCOPES, consumer_name, filter_subject, inbox_prefix
from services.infra.store import safe_url

log = get_logger("dualrandom.cli")

RELAY_USER = "relay"
OPERATOR_USER = "operator"
_CODE = re.compile(r"^[a-z][a-z0-9-]{1,31}$")
RESERVED = {"shared", "public", "audit", RELAY_USER, OPERATOR_USER}


def _q(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def department_permissions(department: str, stream: str) -> dict[str, list[str]]:
    """The NATS publish/subscribe allow-lists of a department's user."""
    # No $JS.API.STREAM.INFO: with a subjects filter it lists every department's subjects and message counts.
    pub = ["$JS.API.INFO"]
    for scope in SCOPES:
        c = consumer_name(department, scope)
        pub += [
            f"$JS.API.CONSUMER.INFO.{stream}.{c}",
            f"$JS.API.CONSUMER.DELETE.{stream}.{c}",
            f"$JS.API.CONSUMER.CREATE.{stream}.{c}.{filter_subject(department, scope)}",
            f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{c}",
            f"$JS.ACK.{stream}.{c}.>",
        ]
    pub.append(f"dualrandom.audit.cosignatures.{department}")  # its witness's cosignatures and refusals, only
    return {"publish": pub, "subscribe": [f"{inbox_prefix(department)}.>"]}


def auth_config(departments: list[str], passwords: dict[str, str], stream: str) -> str:
    """The ``authorization`` block (NATS server configuration) for the departments, relay and operator."""
    lines = [
        "# Written by `dualrandom nats-config`: one user per department, the relay and the operator.",
        "# Each department reads only its own subjects through its own durable consumers (see services/cli/nats.py).",
        "authorization {",
        "  users = [",
        f"    {{ user: {_q(OPERATOR_USER)}, password: {_q(passwords[OPERATOR_USER])} }}",
        f"    {{ user: {_q(RELAY_USER)}, password: {_q(passwords[RELAY_USER])}, permissions: {{",
        '        publish: { allow: ["dualrandom.>", "$JS.API.>"] }',
        '        subscribe: { allow: ["_INBOX.>"] }',
        "    } }",
    ]
    for d in departments:
        perms = department_permissions(d, stream)
        lines += [
            f"    {{ user: {_q(d)}, password: {_q(passwords[d])}, permissions: {{",
            "        publish: { allow: [",
            *[f"          {_q(s)}" for s in perms["publish"]],
            "        ] }",
            f"        subscribe: {{ allow: [{', '.join(_q(s) for s in perms['subscribe'])}] }}",
            "    } }",
        ]
    lines += ["  ]", "}", ""]
    return "\n".join(lines)


def write_nats_config(
    out: Path, departments: list[str], stream: str = "DUALRANDOM", relay_host: str = "nats:4222"
) -> dict[str, str]:
    """Write ``auth.conf``, ``credentials.json`` (user -> password) and ``relay.env`` (the relay's
    ``DUALRANDOM_NATS_URL`` for ``relay_host``), all mode 600, into ``out``; passwords of users already in
    ``credentials.json`` are kept. Returns the credentials."""
    bad = [d for d in departments if not _CODE.match(d) or d in RESERVED]
    if bad:
        raise click.ClickException(f"not usable as NATS user and subject token: {', '.join(bad)}")
    out.mkdir(parents=True, exist_ok=True)
    cred_path = out / "credentials.json"
    passwords: dict[str, str] = json.loads(cred_path.read_text("utf-8")) if cred_path.exists() else {}
    for user in [OPERATOR_USER, RELAY_USER, *departments]:
        passwords.setdefault(user, secrets.token_urlsafe(24))
    _write_private(cred_path, json.dumps(passwords, indent=2, sort_keys=True) + "\n")
    _write_private(out / "auth.conf", auth_config(sorted(set(departments)), passwords, stream))
    _write_private(out / "relay.env", f"DUALRANDOM_NATS_URL=nats://{RELAY_USER}:{passwords[RELAY_USER]}@{relay_host}\n")
    return passwords




def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, 0o600)


def registered_departments(engine: Any) -> list[str]:
    """Department codes of the directory read model (``rm_department``)."""
    import sqlalchemy as sa

    from projections.directory.projection import TABLES

    with engine.connect() as conn:
        return sorted(str(r[0]) for r in conn.execute(sa.select(TABLES["department"].c.code)))


@click.command("nats-config")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=Path("deploy/nats"),
              show_default=True, help="directory for auth.conf and credentials.json")
@click.option("--department", "extra", multiple=True, help="also a user for this code (repeatable)")
@click.option("--relay-host", default="nats:4222", show_default=True, help="host:port in relay.env's NATS URL")
def nats_config(out: Path, extra: tuple[str, ...], relay_host: str) -> None:
    """Write NATS users and permissions for every registered department (+ relay, operator)."""
    settings = load_settings()
    runtime = open_runtime(settings, with_nats=False)
    try:
        runtime.runner.catch_up()
        departments = sorted(set(registered_departments(runtime.engine)) | set(extra))
    finally:
        runtime.close()
    write_nats_config(out, departments, settings.nats_stream, relay_host)
    click.echo(f"{out / 'auth.conf'}: users {OPERATOR_USER}, {RELAY_USER} and {len(departments)} departments "
               f"({', '.join(departments) or 'none'}); passwords in {out / 'credentials.json'}, the relay's URL "
               f"in {out / 'relay.env'} (mode 600). Reload running servers: nats-server --signal reload")


# -- relay worker ----------------------------------------------------------------------------------------
@click.group()
def relay() -> None:
    """The relay from the event log to NATS JetStream."""


@relay.command("run")
def relay_run() -> None:
    """Run the relay (and publish audit checkpoints) as a worker process until SIGTERM/SIGINT.

    Several may run: one holds the relay's lease and one the signer's (services/infra/lease.py), the others
    wait as standbys and take over within seconds when a holder dies."""
    settings = load_settings()
    if not settings.relay_enabled:
        raise click.ClickException("DUALRANDOM_RELAY_ENABLED is false: nothing to run")
    from dataclasses import replace

    # A cluster may be given as a comma-separated list: the start-up check and the checkpointer take the
    # first node, the relay every node (it connects to whichever answers).
    servers = [u.strip() for u in settings.nats_url.split(",") if u.strip()]
    runtime = open_runtime(replace(settings, nats_url=servers[0]) if len(servers) > 1 else settings, with_nats=True)
    relay_ = runtime.relay
    relay_.nats_url = settings.nats_url or relay_.nats_url
    relay_.replicas = getattr(settings, "nats_replicas", None) or relay_.replicas

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info("relay_worker_started", nats=safe_url(runtime.nats_url), stream=settings.nats_stream)
        await asyncio.gather(*runtime.singletons(stop))  # each behind its lease: a standby until it holds it

    try:
        asyncio.run(main())
    finally:
        runtime.close()


# -- subscribe -------------------------------------------------------------------------------------------
def _seen_ids(path: Path, limit: int = 100_000) -> list[str]:
    """Event ids already written to an output file (its last ``limit`` lines): not written twice."""
    if not path.exists():
        return []
    ids = []
    with open(path, encoding="utf-8") as fh:
        for line in fh.readlines()[-limit:]:
            try:
                ids.append(json.loads(line)["id"])
            except (ValueError, KeyError, TypeError):
                continue
    return ids


@click.command()
@click.option("--department", required=True, help="department code (its NATS user and consumers)")
@click.option("--scope", type=click.Choice(SCOPES), default="own", show_default=True,
              help="own subjects, the shared target directory, published results or audit checkpoints")
@click.option("--from-position", type=int, default=None, help="start over after this log position")
@click.option("--from-time", type=click.DateTime(["%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"]),
              default=None, help="start over at events stored since this time (UTC unless an offset is given)")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="append JSON lines to this file (default stdout)")
@click.option("--post", "post_url", default=None, help="POST each event (JSON) to this URL; ack after a 2xx")
@click.option("--url", default=None, help="NATS URL with the department's user (default DUALRANDOM_NATS_URL)")
@click.option("--idle-exit", type=float, default=None, help="exit after this many seconds without an event")
def subscribe(department: str, scope: str, from_position: int | None, from_time: Any, output: Path | None,
              post_url: str | None, url: str | None, idle_exit: float | None) -> None:
    """Read a department's events from its durable consumer, as CloudEvents JSON lines, each once."""
    from services.infra.nats_embedded import embedded_url
    from services.infra.partner import Subscription, public_event
    from services.infra.settings import DEFAULT_EMBEDDED_NATS_PORT

    settings = load_settings()
    nats_url = (url or settings.nats_url or embedded_url(settings.var_dir)
                or f"nats://127.0.0.1:{settings.nats_embedded_port or DEFAULT_EMBEDDED_NATS_PORT}")
    if from_position is not None and from_time is not None:
        raise click.UsageError("give --from-position or --from-time, not both")
    seen = _seen_ids(output) if output is not None and from_position is None and from_time is None else []

    async def main() -> int:
        sub = Subscription(nats_url, department, scope, stream=settings.nats_stream, from_position=from_position,
                           from_time=from_time, seen=seen)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, sub.stop)
        sink = open(output, "a", encoding="utf-8") if output is not None else sys.stdout  # noqa: SIM115
        count = 0
        try:
            await sub.connect()
            async for event in sub.events(idle_timeout=idle_exit):
                line = json.dumps(public_event(event), ensure_ascii=False)
                if post_url:
                    await asyncio.to_thread(_post, post_url, line)
                else:
                    sink.write(line + "\n")
                    sink.flush()
                    if output is not None:
                        os.fsync(sink.fileno())
                await sub.ack(event)
                count += 1
        finally:
            if sink is not sys.stdout:
                sink.close()
            await sub.close()
        return count

    count = asyncio.run(main())
    log.info("subscribe_stopped", department=department, scope=scope, events=count)


def _post(url: str, body: str) -> None:
    import urllib.request

    req = urllib.request.Request(url, data=body.encode("utf-8"), method="POST",
                                 headers={"Content-Type": "application/cloudevents+json; charset=utf-8"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        if not 200 <= resp.status < 300:
            raise click.ClickException(f"POST {url} answered {resp.status}")


# -- contracts -------------------------------------------------------------------------------------------
@click.group()
def contracts() -> None:
    """Integration messages: JSON Schemas and the AsyncAPI document."""


@contracts.command("generate")
def contracts_generate() -> None:
    """Write docs/contracts/schemas/*.json and docs/asyncapi.yaml from domain/contracts."""
    from services.cli.contracts import ROOT, generate

    for p in generate():
        click.echo(f"wrote {p.relative_to(ROOT)}")


@contracts.command("check")
def contracts_check() -> None:
    """Exit 1 naming every event without a contract and every incompatible or ungenerated change."""
    from services.cli.contracts import check

    problems = check()
    for p in problems:
        click.echo(p, err=True)
    if problems:
        raise SystemExit(1)
    click.echo("contracts, schemas and AsyncAPI are in step")


COMMANDS = [nats_config, relay, subscribe, contracts]
