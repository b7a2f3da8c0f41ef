"""``dualrandom audit``: verify the log, sign a checkpoint, print the public key, rebuild a past read model."""

import asyncio
import getpass
import json
import sys
from pathlib import Path

import click

from services.cli.context import load_settings, open_runtime


@click.group()
def audit() -> None:
    """Auditors: verify the log and its checkpoints, sign a checkpoint, rebuild the past."""


def _runtime():
    settings = load_settings()
    return settings, open_runtime(settings, with_nats=False)


def _catch_up_audit(runtime) -> None:
    from projections.runner import ProjectionConflictError

    projection = next(p for p in runtime.runner.projections if p.name == "audit")
    while True:
        try:
            if runtime.runner.run_once(projection) == 0:
                return
        except ProjectionConflictError:
            continue  # a server's projection thread took the batch: go on from where it is


@audit.command("verify")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
@click.option("--public-key", default=None,
              help="check signatures with this key (base64, hex or vkey) instead of the deployment's own")
@click.option("--skip-nodes", is_flag=True, help="do not compare the stored subtrees (leaves and checkpoints only)")
@click.option("--checkpoints", "checkpoint_files", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="a file of checkpoints held outside the database (NDJSON or signed notes); repeatable")
@click.option("--from-nats", "from_nats", default=None, metavar="URL",
              help="also check every checkpoint on dualrandom.audit.checkpoints in JetStream at this URL "
              "(`-`: DUALRANDOM_NATS_URL, else the embedded server's URL recorded in <var>/nats/url)")
@click.option("--witnesses", "k", type=click.IntRange(min=1), default=None,
              help="require a checkpoint cosigned by K of the witness keys, and check the log against it")
@click.option("--witness-key", "witness_keys", multiple=True, metavar="VKEY",
              help="a witness's vkey (repeatable; default: DUALRANDOM_AUDIT_WITNESS_KEYS)")
def verify(as_json: bool, public_key: str | None, skip_nodes: bool, checkpoint_files: tuple[Path, ...],
           from_nats: str | None, k: int | None, witness_keys: tuple[str, ...]) -> None:
    """Recompute the Merkle tree from the store, check it against the audit tree, every signed checkpoint and
    the checkpoints held outside the database; name the first bad position. Exits 1 when anything is wrong."""
    from services.audit.external import ExternalCheckpointError, fetch_jetstream_sync, load_file
    from services.audit.keys import PublicKey
    from services.audit.log import events_table
    from services.audit.verify import verify_log

    settings, runtime = _runtime()
    try:
        key = runtime.checkpointer.signer.public
        if public_key:
            try:
                key = PublicKey.parse(public_key, key.name)
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint="--public-key") from None
        external: list | None = None
        if checkpoint_files or from_nats:
            external = []
            for path in checkpoint_files:
                try:
                    external += load_file(path)
                except ExternalCheckpointError as exc:
                    raise click.BadParameter(str(exc), param_hint="--checkpoints") from None
            if from_nats:
                from services.infra.nats_embedded import embedded_url

                url = (settings.nats_url or embedded_url(settings.var_dir)) if from_nats == "-" else from_nats
                if not url:
                    raise click.BadParameter(
                        "DUALRANDOM_NATS_URL is not set and no embedded server recorded its URL in "
                        f"{settings.var_dir / 'nats' / 'url'} (is `dualrandom serve` running?): give the URL",
                        param_hint="--from-nats")
                try:
                    external += fetch_jetstream_sync(url, settings.nats_stream)
                except ExternalCheckpointError as exc:
                    raise click.ClickException(f"a checkpoint in JetStream cannot be read: {exc}") from None
                except Exception as exc:  # noqa: BLE001 - any NATS failure
                    raise click.ClickException("JetStream does not answer: "
                                               f"{str(exc) or type(exc).__name__}") from None
        from tqdm import tqdm

        total = int(runtime.app.recorder.max_notification_id() or 0)
        with tqdm(total=total, unit="event", desc="verify", file=sys.stderr, disable=as_json or total < 100_000) as bar:
            witnessed = None
            if k is not None:
                from services.audit.witness import WitnessPublicKey, witnessed_checkpoints

                try:
                    keys = ([WitnessPublicKey.parse(v) for v in witness_keys] if witness_keys
                            else runtime.checkpointer.witness_keys)
                except ValueError as exc:
                    raise click.BadParameter(str(exc), param_hint="--witness-key") from None
                if k > len(keys):
                    raise click.BadParameter(f"{k} witnesses asked for, {len(keys)} witness keys given",
                                             param_hint="--witnesses")
                witnessed = witnessed_checkpoints(runtime.engine, keys, k)
            report = verify_log(runtime.engine, events_table(runtime.app), key, check_nodes=not skip_nodes,
                                progress=bar.update, external=external, witnessed=witnessed,
                                witnesses_required=k or 0, previous_keys=runtime.checkpointer.previous_keys)
    finally:
        runtime.close()
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        for line in report.lines():
            click.echo(line)
    if not report.ok:
        sys.exit(1)


@audit.command("checkpoint")
def checkpoint() -> None:
    """Bring the audit tree up to date and sign a checkpoint of it now (published to NATS when
    DUALRANDOM_NATS_URL is set; otherwise `serve` publishes it)."""
    from services.audit.checkpoints import TreeForkError, create_checkpoint

    settings, runtime = _runtime()
    try:
        _catch_up_audit(runtime)
        external = None
        if settings.nats_url and settings.relay_enabled:
            from services.audit.external import fetch_jetstream_sync

            try:
                found = fetch_jetstream_sync(settings.nats_url, settings.nats_stream, last_only=True)
            except Exception as exc:  # noqa: BLE001 - the guard cannot be checked: sign nothing
                raise click.ClickException(f"JetStream does not answer ({str(exc) or type(exc).__name__}): the "
                                           "newest published checkpoint cannot be checked, nothing signed") from None
            external = found[-1] if found else None
        try:
            cp, created = create_checkpoint(runtime.engine, runtime.checkpointer.signer, external=external,
                                            var_dir=settings.var_dir,
                                            previous_keys=runtime.checkpointer.previous_keys)
        except TreeForkError as exc:
            raise click.ClickException(str(exc)) from None
        if cp is None:
            click.echo("the log is empty: nothing to sign")
            return
        published = 0
        if settings.nats_url and settings.relay_enabled:
            runtime.checkpointer.nats_url = settings.nats_url

            async def publish() -> int:
                try:
                    return await runtime.checkpointer.publish_pending()
                finally:
                    await runtime.checkpointer.close()

            published = asyncio.run(publish())
        click.echo(("signed" if created else "unchanged since") + f" checkpoint: tree size {cp.tree_size}, "
                   f"root {cp.root_hash.hex()}, time {cp.time}, last position {cp.position}"
                   + (f"; published {published} to NATS" if published else ""))
        click.echo(cp.note, nl=False)
    finally:
        runtime.close()


@audit.command("alarm")
@click.option("--acknowledge", is_flag=True, help="clear the alarm after the investigation (see docs/auditing.md)")
@click.option("--reason", default="", help="what was found and done (kept with the acknowledgement)")
def alarm(acknowledge: bool, reason: str) -> None:
    """Show the audit signer's alarm (raised when the store does not reproduce a checkpoint published outside
    the database); `--acknowledge --reason TEXT` clears it so the signer signs again. Exits 1 while raised."""
    from services.audit.external import acknowledge as ack
    from services.audit.external import read_alarm

    settings = load_settings()
    current = read_alarm(settings.var_dir)
    if current is None:
        click.echo("no alarm: the signer signs")
        return
    if not acknowledge:
        click.echo(f"ALARM since {current['since']}: {current['reason']}")
        click.echo("investigate (`dualrandom audit verify --from-nats -`), restore the log if it was rewritten, "
                   "then `dualrandom audit alarm --acknowledge --reason TEXT`")
        sys.exit(1)
    if not reason.strip():
        raise click.BadParameter("say what was found and done", param_hint="--reason")
    ack(settings.var_dir, getpass.getuser(), reason.strip())
    click.echo(f"alarm of {current['since']} acknowledged; the external checkpoint of size "
               f"{current['external_tree_size']} is no longer held against the store")


@audit.command("coverage")
@click.option("--json", "as_json", is_flag=True, help="print it as JSON (as GET /api/v1/audit/coverage)")
def coverage(as_json: bool) -> None:
    """The newest checkpoint, the newest one a witness cosigned, and how far the log has grown since."""
    from services.audit.witness import coverage_of

    _, runtime = _runtime()
    try:
        with runtime.engine.connect() as conn:
            view = coverage_of(conn, runtime)
    finally:
        runtime.close()
    if as_json:
        click.echo(json.dumps(view, ensure_ascii=False, indent=2))
        return
    click.echo(f"log head: position {view['head']:,}; audit tree: {view['tree_size']:,} leaves")
    for label, cp, since in (("newest checkpoint", view["latest_checkpoint"], view["events_since"]),
                             ("newest witnessed checkpoint", view["witnessed_checkpoint"],
                              view["events_since_witnessed"])):
        if cp is None:
            click.echo(f"{label}: none ({since:,} leaves not covered)")
        else:
            names = ", ".join(w["witness"] for w in cp["witnesses"]) or "no witness"
            click.echo(f"{label}: size {cp['tree_size']:,} at {cp['time']} ({names}); {since:,} leaves since")
    if view["signer_alarm"]:
        click.echo(f"ALARM since {view['signer_alarm']['since']}: the signer refuses to sign (`dualrandom audit alarm`)")


@audit.command("key")
def key() -> None:
    """Print the checkpoint signing key's public half (give it to partner agencies)."""
    _, runtime = _runtime()
    try:
        view = runtime.checkpointer.signer.public.view()
    finally:
        runtime.close()
    for name in ("key_name", "algorithm", "public_key", "key_id", "vkey"):
        click.echo(f"{name}: {view[name]}")


@audit.command("replay")
@click.option("--until", "until", required=True, help="last log position, or an ISO time with offset (2025-03-01T10:00:00+08:00)")
@click.option("--projection", "name", required=True, help="read model to build: directory, audit, ...")
@click.option("--into", "into", required=True,
              help="database URL to build it in: sqlite:///FILE, or postgresql+psycopg://... (a schema: "
              "?options=-csearch_path%3DNAME, created if missing)")
@click.option("--replace", is_flag=True, help="drop that read model in the target first")
def replay(until: str, name: str, into: str, replace: bool) -> None:
    """Build a read model as it stood at a log position or time, into a separate database or schema."""
    from services.audit.log import events_table
    from services.audit.replay import ReplayError, resolve_until
    from services.audit.replay import replay as run_replay
    from services.runtime import all_projections

    settings, runtime = _runtime()
    try:
        try:
            position = resolve_until(runtime.engine, events_table(runtime.app), until)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--until") from None
        known = {p.name: p for p in all_projections()}
        if name not in known:
            raise click.BadParameter(f"{name!r} is not a read model; one of {', '.join(known)}", param_hint="--projection")
        projection = known[name]
        try:
            result = run_replay(runtime.app, settings.effective_database_url, projection, into, position, replace=replace)
        except ReplayError as exc:
            raise click.ClickException(str(exc)) from None
    finally:
        runtime.close()
    click.echo(f"{result.projection}: {result.events} events applied, as of log position {result.position} "
               f"(asked: {result.until}), into {result.into}")
