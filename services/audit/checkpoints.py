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


def create_checkpoint(engine: Engine, signer: Signer, time: str | None = None) -> tuple[Checkpoint | None, bool]:
    """Sign the audit tree as it is now: (the checkpoint, True) when a new one was made, (the latest, False)
    when the tree has not grown since; TreeForkError when the tree does not extend the latest checkpoint."""
    with engine.begin() as conn:
        size = tree_size(conn)
        last = latest(conn)
        if size == 0 or (last is not None and last.tree_size >= size):
            return last, False
        # Stored subtrees never change once written, so the roots below are those of these sizes even while
        # the projection appends concurrently.
        if last is not None and root_at(conn, last.tree_size) != last.root_hash:
            raise TreeForkError(
                f"the audit tree's root at size {last.tree_size} is not the one signed at {last.time}: "
                "the tree or the log was changed; run `dualrandom audit verify`"
            )
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
        deployment: str = "xinxiang-huojia", interval: float = 10.0,
    ) -> None:
        self.engine = engine
        self.signer = signer
        self.nats_url = nats_url
        self.stream = stream
        self.deployment = deployment
        self.interval = interval
        self._nc: Any = None

    def setup(self) -> None:
        metadata.create_all(self.engine)

    def checkpoint(self) -> Checkpoint | None:
        """A new checkpoint when the tree grew since the last one (None otherwise)."""
        cp, created = create_checkpoint(self.engine, self.signer)
        return cp if created else None

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
                    await asyncio.to_thread(self.checkpoint)
                except TreeForkError as exc:
                    log.error("audit_tree_fork", error=str(exc))
                except Exception as exc:
                    log.error("audit_checkpoint_failed", error=str(exc) or type(exc).__name__, exc_info=True)
                try:
                    await self.publish_pending()
                except Exception as exc:  # noqa: BLE001
                    log.warning("audit_checkpoint_publish_failed", error=str(exc) or type(exc).__name__)
                    await self.close()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.interval)
        finally:
            await self.close()
            log.info("checkpointer_stopped")
