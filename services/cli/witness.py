"""``dualrandom witness``: a partner agency's witness of the audit log (see docs/partners.md "Running a witness").

``dualrandom witness key --name NAME --out FILE`` makes the witness's Ed25519 key and prints its vkey (give it to
the deployment's admin: DUALRANDOM_AUDIT_WITNESS_KEYS). ``dualrandom witness run`` reads the checkpoints on
``dualrandom.audit.checkpoints`` through the department's ``<code>_audit`` consumer, asks the API for a
consistency proof from the last accepted checkpoint (the state file) to each new one, and publishes a
cosignature, or a refusal (fork, rollback, bad signature), on ``dualrandom.audit.cosignatures.<code>``.
"""

import asyncio
import base64
import json
import os
import signal
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from services.audit.external import ExternalCheckpointError, from_json
from services.audit.keys import PublicKey
from services.audit.witness import ProofSource, ProofUnavailable, Verdict, Witness, WitnessKey, subject
from services.infra.logging import get_logger

log = get_logger("dualrandom.witness")
CHECKPOINT_TYPE = "cn.gov.dualrandom.audit.checkpoint.v1"


def api_proofs(api: str, token: str, timeout: float = 10.0) -> ProofSource:
    """Consistency proofs from ``GET <api>/api/v1/audit/proofs/consistency`` with the partner's token."""
    def fetch(first: int, second: int) -> dict[str, Any]:
        query = urllib.parse.urlencode({"first": first, "second": second})
        request = urllib.request.Request(f"{api.rstrip('/')}/api/v1/audit/proofs/consistency?{query}",
                                         headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code in (400, 422):  # the log cannot give that proof (its tree is smaller)
                raise ProofUnavailable(f"the log answers 400: {exc.read()[:300].decode('utf-8', 'replace')}") from None
            raise
    return fetch


async def run_witness(
    witness: Witness, url: str, department: str, *, stream: str = "DUALRANDOM", idle_exit: float | None = None,
    stop: asyncio.Event | None = None, on_verdict: Callable[[Verdict], None] | None = None,
) -> int:
    """Judge every checkpoint the department's audit consumer delivers, publish the verdict, then ack.
    Returns how many checkpoints were judged."""
    import nats

    from services.infra.partner import Subscription, inbox_prefix

    judged = 0
    publisher = await nats.connect(url, inbox_prefix=inbox_prefix(department), name=f"dualrandom-witness-{department}")
    js = publisher.jetstream(timeout=10)
    sub = Subscription(url, department, "audit", stream=stream)
    try:
        await sub.connect()
        if stop is not None:
            asyncio.get_running_loop().create_task(_stop_when(stop, sub))
        async for event in sub.events(idle_timeout=idle_exit):
            if event.get("type") != CHECKPOINT_TYPE:  # cosignatures and refusals on dualrandom.audit.>
                await sub.ack(event)
                continue
            try:
                cp = from_json(event["data"] or {})
            except ExternalCheckpointError as exc:
                log.warning("witness_unreadable_checkpoint", error=str(exc))
                await sub.ack(event)
                continue
            verdict = await asyncio.to_thread(witness.judge, cp)
            if verdict.kind in ("cosigned",) or verdict.refused:
                body, headers = witness.message(cp, verdict, department)
                await js.publish(subject(department), body, headers=headers, stream=stream)
            (log.error if verdict.refused else log.info)("witness_verdict", verdict=verdict.kind,
                                                        tree_size=cp.tree_size, message=verdict.message)
            if on_verdict is not None:
                on_verdict(verdict)
            await sub.ack(event)
            judged += 1
    finally:
        await sub.close()
        await publisher.close()
    return judged


async def _stop_when(stop: asyncio.Event, sub: Any) -> None:
    await stop.wait()
    sub.stop()


def _seed(path: Path) -> bytes:
    try:
        seed = base64.b64decode(path.read_text(encoding="ascii").strip(), validate=True)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"{path}: {type(exc).__name__}", param_hint="--key-file") from None
    if len(seed) != 32:
        raise click.BadParameter(f"{path} does not hold a base64 32-byte Ed25519 seed", param_hint="--key-file")
    return seed


@click.group()
def witness() -> None:
    """Partner agencies: witness the audit log (cosign the checkpoints that extend the last one accepted)."""


@witness.command("key")
@click.option("--name", required=True, help="the witness's name, a schema-less URL, e.g. hj-eeb.example.gov.cn/witness")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="file to write the private key to (0600; refused when it exists)")
def key(name: str, out: Path) -> None:
    """Make a witness key; print its vkey (for the deployment's DUALRANDOM_AUDIT_WITNESS_KEYS)."""
    seed = os.urandom(32)
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise click.BadParameter(f"{out} exists: a witness keeps its key", param_hint="--out") from None
    with os.fdopen(fd, "w") as fh:
        fh.write(base64.b64encode(seed).decode() + "\n")
    click.echo(WitnessKey.from_seed(name, seed).public.vkey)


@witness.command("run")
@click.option("--department", required=True, help="your department code (your NATS user)")
@click.option("--url", required=True, help="NATS URL with your department's user")
@click.option("--api", required=True, help="the dualrandom API base URL, e.g. https://dualrandom.example.gov.cn")
@click.option("--log-key", required=True, help="the deployment's checkpoint key (vkey, from `dualrandom audit key`)")
@click.option("--name", required=True, help="the witness's name (as given to `witness key`)")
@click.option("--key-file", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--state", "state", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="file holding the last checkpoint accepted (created on the first)")
@click.option("--stream", default="DUALRANDOM", show_default=True)
@click.option("--idle-exit", type=float, default=None, help="stop after this many seconds without a checkpoint")
def run(department: str, url: str, api: str, log_key: str, name: str, key_file: Path, state: Path, stream: str,
        idle_exit: float | None) -> None:
    """Witness the log until SIGTERM/SIGINT. The API token (partner role) comes from DUALRANDOM_WITNESS_TOKEN."""
    token = os.environ.get("DUALRANDOM_WITNESS_TOKEN", "").strip()
    if not token:
        raise click.UsageError("set DUALRANDOM_WITNESS_TOKEN to the department's API token (partner role)")
    try:
        public = PublicKey.parse(log_key, "")
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--log-key") from None
    if not public.name:
        raise click.BadParameter("give the vkey (name+id+key), not the bare key", param_hint="--log-key")
    w = Witness(WitnessKey.from_seed(name, _seed(key_file)), public, state, api_proofs(api, token))

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await run_witness(w, url, department, stream=stream, idle_exit=idle_exit, stop=stop)

    judged = asyncio.run(main())
    click.echo(f"{judged} checkpoints judged; state in {state}")
