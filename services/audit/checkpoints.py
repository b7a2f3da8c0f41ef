"""Signed checkpoints of the audit tree: made, stored, served and published to partners over NATS.

A checkpoint body is a C2SP tlog-checkpoint (UTF-8, every line ends with a line feed)::

    dualrandom/<deployment>
    <tree size, decimal>
    <root hash, base64>
    time <UTC, YYYY-MM-DDTHH:MM:SSZ>

and its signature is Ed25519 over exactly those bytes. ``note`` adds the C2SP signed-note signature line
(``— <key name> base64(key id || signature)``) so Go's ``golang.org/x/mod/sumdb/note`` verifies it too.
The signer refuses to sign a tree that does not extend the last checkpoint (its root at the old size must
be the old root), so a rewritten audit tree is never signed.
"""

import asyncio
import base64
import contextlib
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from projections.audit.projection import leaves
from projections.audit.queries import root_at, tree_size
from services.audit.keys import PublicKey, Signer
from services.infra.logging import get_logger

log = get_logger(__name__)

SUBJECT = "dualrandom.audit.checkpoints"

metadata = sa.MetaData()
checkpoints = sa.Table(
    "audit_checkpoints",
    metadata,
    sa.Column("tree_size", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
    sa.Column("time", sa.String(32), nullable=False),
    sa.Column("position", sa.BigInteger, nullable=False),  # log position of the last leaf
    sa.Column("origin", sa.String(200), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("signature", sa.LargeBinary(64), nullable=False),
    sa.Column("key_id", sa.String(8), nullable=False),
    sa.Column("published", sa.Boolean, nullable=False, default=False),
)


class TreeForkError(Exception):
    """The audit tree does not extend the last signed checkpoint: it will not be signed."""


class SignerAlarmError(TreeForkError):
    """The signer's alarm is raised (the store does not reproduce a checkpoint published outside the database):
    nothing is signed until an operator acknowledges it (``dualrandom audit alarm --acknowledge``)."""


def body_text(origin: str, size: int, root: bytes, time: str) -> str:
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\ntime {time}\n"


def parse_body(body: str) -> tuple[str, int, bytes, str]:
    """(origin, tree size, root hash, time) of a checkpoint body; ValueError when malformed."""
    lines = body.split("\n")
    if len(lines) != 5 or lines[-1] != "" or not lines[3].startswith("time "):
        raise ValueError("not a dualrandom checkpoint body")
    if not lines[1].isdigit() or (lines[1] != "0" and lines[1].startswith("0")):
        raise ValueError("bad tree size")
    root = base64.b64decode(lines[2], validate=True)
    if len(root) != 32:
        raise ValueError("bad root hash")
    return lines[0], int(lines[1]), root, lines[3][5:]


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    tree_size: int
    root_hash: bytes
    time: str
    position: int
    body: str
    signature: bytes
    key_id: str

    @property
    def note(self) -> str:
        """The C2SP signed note: body, blank line, signature line."""
        sig = base64.b64encode(bytes.fromhex(self.key_id) + self.signature).decode()
        return f"{self.body}\n\u2014 {self.origin} {sig}\n"

    def verify(self, key: PublicKey) -> str | None:
        """None when the signature and body are right for ``key``; else what is wrong."""
        if self.key_id != key.key_id.hex():
            return f"signed with key {self.key_id}, not the deployment key {key.key_id.hex()}"
        if not key.verify(self.body.encode("utf-8"), self.signature):
            return "the signature does not match the body"
        try:
            origin, size, root, time = parse_body(self.body)
        except ValueError as exc:
            return f"malformed body: {exc}"
        if (origin, size, root, time) != (self.origin, self.tree_size, self.root_hash, self.time):
            return "the stored columns differ from the signed body"
        return None

    def view(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(),
            "time": self.time,
            "position": self.position,
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode(),
            "body": self.body,
            "note": self.note,
        }


def from_row(row: Any) -> Checkpoint:
    """A checkpoint from a row of ``audit_checkpoints`` (or a row carrying its columns)."""
    return Checkpoint(row.origin, int(row.tree_size), bytes(row.root_hash), row.time, int(row.position), row.body,
                      bytes(row.signature), row.key_id)


def latest(conn: Connection) -> Checkpoint | None:
    row = conn.execute(sa.select(checkpoints).order_by(checkpoints.c.tree_size.desc()).limit(1)).first()
    return from_row(row) if row else None


def at_size(conn: Connection, size: int) -> Checkpoint | None:
    row = conn.execute(sa.select(checkpoints).where(checkpoints.c.tree_size == size)).first()
    return from_row(row) if row else None


def published_covering(conn: Connection, position: int) -> Checkpoint | None:
    """The first checkpoint published to partners whose tree covers log position ``position`` (None: none yet)."""
    row = conn.execute(
        sa.select(checkpoints).where(checkpoints.c.published.is_(True), checkpoints.c.position >= position)
        .order_by(checkpoints.c.tree_size).limit(1)
    ).first()
    return from_row(row) if row else None


def listing(conn: Connection, after_size: int = 0, limit: int = 100) -> list[Checkpoint]:
    rows = conn.execute(
        sa.select(checkpoints).where(checkpoints.c.tree_size > after_size)
        .order_by(checkpoints.c.tree_size).limit(limit)
    ).all()
    return [from_row(r) for r in rows]


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Untrusted(Exception):
    """The external checkpoint is not signed by this deployment: it is ignored."""


def _guard_external(conn: Connection, signer: Signer, size: int, external: Checkpoint | None,
                    var_dir: Path | None, previous_keys: tuple[PublicKey, ...] = ()) -> bool:
    """Check the tree against the newest checkpoint published outside the database; True: sign, False: wait
    (the tree has not reached it yet). On a fork or a rollback: raise the alarm and SignerAlarmError."""
    from services.audit import external as ext

    if var_dir is not None:
        alarm = ext.read_alarm(var_dir)
        if alarm is not None:
            raise SignerAlarmError(f"the audit signer's alarm is raised since {alarm['since']}: {alarm['reason']}")
    if external is None or (var_dir is not None and ext.is_acknowledged(var_dir, external)):
        return True
    key = next((k for k in (signer.public, *previous_keys) if k.key_id.hex() == external.key_id), signer.public)
    if ext.check_signature(external, key) is not None or external.origin != signer.name:
        raise _Untrusted
    reason = None
    if size >= external.tree_size:
        if root_at(conn, external.tree_size) != external.root_hash:
            reason = (f"the audit tree's root at size {external.tree_size} is not the one published at "
                      f"{external.time}: the log or the tree was rewritten")
    else:
        # The audit projection has read the log past the checkpoint's last event, or the log ends before it,
        # and yet the tree is smaller: events were removed (else the projection is still catching up).
        head = int(conn.execute(sa.text("SELECT max(id) FROM dualrandom_events")).scalar() or 0)
        applied = int(conn.execute(sa.text(
            "SELECT position FROM projection_positions WHERE name = 'audit'")).scalar() or 0)
        if external.position >= 0 and (head < external.position or applied >= external.position):
            reason = (f"the audit tree has {size} leaves but a checkpoint of size {external.tree_size} up to log "
                      f"position {external.position} was published at {external.time} (the log ends at {head}): "
                      "events were removed")
        else:
            return False  # the audit projection is catching up
    if reason is None:
        return True
    if var_dir is not None:
        ext.raise_alarm(var_dir, reason, external)
    log.error("audit_signer_alarm", reason=reason, external_tree_size=external.tree_size)
    raise SignerAlarmError(reason + "; nothing is signed until an operator acknowledges it "
                           "(`dualrandom audit alarm --acknowledge`)")


def create_checkpoint(
    engine: Engine, signer: Signer, time: str | None = None, *, external: Checkpoint | None = None,
    var_dir: Path | None = None, previous_keys: tuple[PublicKey, ...] = (),
) -> tuple[Checkpoint | None, bool]:
    """Sign the audit tree as it is now: (the checkpoint, True) when a new one was made, (the latest, False)
    when the tree has not grown since; TreeForkError when the tree does not extend the latest checkpoint, nor
    ``external`` (the newest checkpoint published outside the database), or while the alarm in ``var_dir`` is
    raised."""
    with engine.begin() as conn:
        size = tree_size(conn)
        last = latest(conn)
        try:
            if not _guard_external(conn, signer, size, external, var_dir, previous_keys):
                return last, False
        except _Untrusted:
            log.warning("audit_external_checkpoint_ignored", tree_size=external.tree_size if external else None,
                        reason="not signed by this deployment's key")
            external = None
        if size == 0 or (last is not None and last.tree_size >= size):
            return last, False
        if external is not None and external.tree_size >= size:
            return (last if last and last.tree_size == external.tree_size else external), False
        # Stored subtrees never change once written, so the roots below are those of these sizes even while
        # the projection appends concurrently.
        if last is not None and root_at(conn, last.tree_size) != last.root_hash:
            reason = (f"the audit tree's root at size {last.tree_size} is not the one signed at {last.time}: "
                      "the tree or the log was changed; run `dualrandom audit verify`")
            if var_dir is not None:
                from services.audit.external import raise_alarm

                raise_alarm(var_dir, reason, last)
            raise TreeForkError(reason)
        root = root_at(conn, size)
        position = conn.execute(sa.select(leaves.c.position).where(leaves.c.idx == size - 1)).scalar_one()
        time = time or _now()
        body = body_text(signer.name, size, root, time)
        cp = Checkpoint(signer.name, size, root, time, int(position), body, signer.sign(body.encode("utf-8")),
                        signer.public.key_id.hex())
        try:
            with conn.begin_nested():
                conn.execute(checkpoints.insert().values(
                    tree_size=size, root_hash=root, time=time, position=cp.position, origin=cp.origin, body=body,
                    signature=cp.signature, key_id=cp.key_id, published=False,
                ))
        except sa.exc.IntegrityError:  # another process signed this size first
            return at_size(conn, size), False
    log.info("audit_checkpoint", tree_size=size, root=root.hex(), position=cp.position)
    return cp, True


def message(cp: Checkpoint, deployment: str) -> tuple[bytes, dict[str, str]]:
    """Body and headers of the NATS message that publishes a checkpoint (CloudEvents 1.0, binary mode)."""
    msg_id = f"checkpoint:{cp.origin}:{cp.tree_size}"
    headers = {
        "Nats-Msg-Id": msg_id,
        "ce-specversion": "1.0",
        "ce-id": msg_id,
        "ce-source": f"/dualrandom/{deployment}/audit",
        "ce-type": "cn.gov.dualrandom.audit.checkpoint.v1",
        "ce-subject": str(cp.tree_size),
        "ce-time": cp.time,
        "content-type": "application/json",
    }
    return json.dumps(cp.view(), ensure_ascii=False).encode("utf-8"), headers


class Checkpointer:
    """Makes a checkpoint every ``interval`` seconds when the tree grew, and publishes unpublished ones to
    JetStream (``dualrandom.audit.checkpoints``, in the events stream) until the server acknowledges them."""

    def __init__(
        self, engine: Engine, signer: Signer, nats_url: str = "", stream: str = "DUALRANDOM",
        deployment: str = "xinxiang-huojia", interval: float = 10.0, var_dir: Path | None = None,
    ) -> None:
        self.engine = engine
        self.signer = signer
        self.nats_url = nats_url
        self.stream = stream
        self.deployment = deployment
        self.interval = interval
        self.var_dir = var_dir
        self.witness_keys: list[Any] = []  # services.audit.witness.WitnessPublicKey, from the settings
        self.previous_keys: tuple[PublicKey, ...] = ()  # keys signed with before a rotation, from the settings
        self._nc: Any = None
        self._cosignature_seq = 0  # last stream sequence of dualrandom.audit.cosignatures.* read

    def setup(self) -> None:
        import services.audit.witness  # noqa: F401 - its table (audit_cosignatures) is in this metadata

        metadata.create_all(self.engine)

    def checkpoint(self, external: Checkpoint | None = None) -> Checkpoint | None:
        """A new checkpoint when the tree grew since the last one (None otherwise), after checking the tree
        against ``external``, the newest checkpoint published outside the database."""
        cp, created = create_checkpoint(self.engine, self.signer, external=external, var_dir=self.var_dir,
                                        previous_keys=self.previous_keys)
        return cp if created else None

    async def external_latest(self) -> Checkpoint | None:
        """The newest checkpoint on ``dualrandom.audit.checkpoints`` in JetStream (None without NATS)."""
        if not self.nats_url:
            return None
        from nats.js.errors import NotFoundError

        from services.audit.external import from_json

        js = await self._jetstream()
        try:
            msg = await js.get_last_msg(self.stream, SUBJECT)
        except NotFoundError:
            return None
        return from_json(json.loads(msg.data))

    async def sign_once(self) -> Checkpoint | None:
        """One turn of the signer: fetch the newest external checkpoint, check, sign (the entry point a lease
        may wrap). Raises TreeForkError / SignerAlarmError, or the NATS error when JetStream does not answer
        (then nothing is signed: the guard cannot be checked)."""
        external = await self.external_latest()
        return await asyncio.to_thread(self.checkpoint, external)

    def pending(self) -> list[Checkpoint]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(checkpoints).where(checkpoints.c.published.is_(False)).order_by(checkpoints.c.tree_size)
            ).all()
        return [from_row(r) for r in rows]

    def _mark_published(self, size: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(checkpoints.update().where(checkpoints.c.tree_size == size).values(published=True))

    async def publish_pending(self) -> int:
        """Publish every unpublished checkpoint, oldest first; returns how many JetStream acknowledged."""
        if not self.nats_url:
            return 0
        todo = await asyncio.to_thread(self.pending)
        if not todo:
            return 0
        js = await self._jetstream()
        for cp in todo:
            body, headers = message(cp, self.deployment)
            await js.publish(SUBJECT, body, headers=headers, stream=self.stream)
            await asyncio.to_thread(self._mark_published, cp.tree_size)
            log.info("audit_checkpoint_published", tree_size=cp.tree_size, subject=SUBJECT)
        return len(todo)

    async def collect_cosignatures(self, wait: float = 0.2) -> int:
        """Store the witnesses' cosignatures published since the last call (those that verify against a
        configured witness key); returns how many were stored."""
        if not self.nats_url or not self.witness_keys:
            return 0
        from nats.errors import TimeoutError as NatsTimeoutError
        from nats.js.api import ConsumerConfig, DeliverPolicy

        from services.audit.witness import SUBJECT_PREFIX, store_cosignature

        js = await self._jetstream()
        sub = await js.subscribe(
            f"{SUBJECT_PREFIX}.*", stream=self.stream, ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                                  opt_start_seq=self._cosignature_seq + 1),
        )
        stored = 0
        try:
            while True:
                try:
                    msg = await sub.next_msg(timeout=wait)
                except (TimeoutError, NatsTimeoutError):
                    return stored
                self._cosignature_seq = msg.metadata.sequence.stream
                try:
                    body = json.loads(msg.data)
                except ValueError:
                    continue
                if not isinstance(body, dict):
                    continue
                name = await asyncio.to_thread(store_cosignature, self.engine, self.witness_keys, body)
                if name is not None:
                    stored += 1
                    log.info("audit_cosignature_stored", witness=name, tree_size=body.get("tree_size"))
                elif body.get("refused"):
                    log.error("audit_witness_refused", department=str(body.get("department", ""))[:64],
                              refused=str(body.get("refused"))[:32], tree_size=body.get("tree_size"))
        finally:
            await sub.unsubscribe()

    async def _jetstream(self) -> Any:
        if self._nc is not None and self._nc.is_connected:
            return self._nc.jetstream(timeout=10)
        await self.close()
        import nats

        async def on_error(exc: Exception) -> None:
            log.warning("checkpointer_nats_error", error=str(exc) or type(exc).__name__)

        self._nc = await nats.connect(
            [u.strip() for u in self.nats_url.split(",") if u.strip()], connect_timeout=5, allow_reconnect=False, max_reconnect_attempts=1,
            reconnect_time_wait=0.1, error_cb=on_error, name=f"dualrandom-checkpointer-{self.deployment}",
        )
        return self._nc.jetstream(timeout=10)

    async def close(self) -> None:
        nc, self._nc = self._nc, None
        if nc is not None and not nc.is_closed:
            try:
                await asyncio.wait_for(nc.close(), timeout=5)
            except Exception as exc:  # noqa: BLE001 - closing is best effort
                log.warning("checkpointer_nats_close_failed", error=str(exc) or type(exc).__name__)

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``: checkpoint when the tree grew, publish what is unpublished; errors are logged and
        retried at the next tick (a stream the relay has not created yet, NATS down, a fork)."""
        log.info("checkpointer_started", interval=self.interval, publish=bool(self.nats_url))
        try:
            while not stop.is_set():
                try:
                    await self.sign_once()
                except TreeForkError as exc:
                    log.error("audit_tree_fork", error=str(exc))
                except Exception as exc:
                    log.error("audit_checkpoint_failed", error=str(exc) or type(exc).__name__, exc_info=True)
                try:
                    await self.publish_pending()
                    await self.collect_cosignatures()
                except Exception as exc:  # noqa: BLE001
                    log.warning("audit_checkpoint_publish_failed", error=str(exc) or type(exc).__name__)
                    await self.close()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.interval)
        finally:
            await self.close()
            log.info("checkpointer_stopped")
