"""The relay: follows the event log (the outbox) and publishes every event to NATS JetStream.

At-least-once: a batch is published with ``publish_async``, every ack is awaited, and only then is the new
position recorded (``relay_position``, one row per stream). A crash between the acks and the position write
re-publishes the batch; JetStream drops the copies because ``Nats-Msg-Id`` is the event's stable id
(within the stream's duplicate window, 2 minutes), and consumers can de-duplicate on ``ce-id`` beyond it.

Each message is a CloudEvents 1.0 event in binary mode: attributes in ``ce-*`` headers, the body is the JSON
description of the event (``services.application.describe_event``). Subjects carry the owning department:
``dualrandom.<owner>.<aggregate>.<type>`` (``owner`` is ``shared`` for the shared target directory), so NATS
permissions can give each agency only its own events.

If a batch fails half-way the stream may hold its later events before the re-published earlier ones;
``ce-position`` (the global log position) gives consumers the true order.
"""

import asyncio
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.application import DualRandom, describe_event
from services.logging import get_logger

log = get_logger(__name__)

SUBJECT_PREFIX = "dualrandom"
EVENT_ID_NAMESPACE = uuid.UUID("6f1c2d1e-3b0a-5c8e-9d7f-2a4b6c8d0e1f")
DUPLICATE_WINDOW_SECONDS = 120.0

metadata = sa.MetaData()
relay_position = sa.Table(
    "relay_position",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)

_TOKEN_BAD = re.compile(r"[^A-Za-z0-9_-]")


def event_id(aggregate_id: str | uuid.UUID, version: int) -> str:
    """The stable id of an event (``Nats-Msg-Id``, ``ce-id``): the same on every re-publication."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{aggregate_id}:{version}"))


def _token(value: Any, default: str) -> str:
    """A safe subject token: no dots, spaces or wildcards."""
    text = _TOKEN_BAD.sub("_", str(value)) if value not in (None, "") else ""
    return text or default


def _json_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)  # dates, datetimes, UUIDs, decimals, enums


@dataclass(frozen=True)
class OutgoingEvent:
    """One event ready to publish."""

    position: int
    subject: str
    headers: dict[str, str]
    body: bytes


def build_message(description: dict[str, Any], deployment: str) -> OutgoingEvent:
    """Subject, CloudEvents headers and JSON body for a ``describe_event`` dict."""
    meta = description.get("meta") or {}
    owner = _token(meta.get("owner"), "unknown")
    aggregate = _token(meta.get("aggregate"), "unknown")
    etype = _token(description["type"], "event")
    eid = event_id(description["aggregate_id"], description["version"])
    headers = {
        "Nats-Msg-Id": eid,
        "ce-specversion": "1.0",
        "ce-id": eid,
        "ce-source": f"/dualrandom/{deployment}/{owner}",
        "ce-type": f"cn.gov.dualrandom.{aggregate}.{etype}.v1",
        "ce-subject": str(description["aggregate_id"]),
        "ce-time": str(description["time"]),
        "ce-position": str(description["position"]),
        "content-type": "application/json",
    }
    for header, key in (("ce-correlationid", "correlation_id"), ("ce-causationid", "causation_id")):
        if meta.get(key):
            headers[header] = str(meta[key])
    body = json.dumps(description, ensure_ascii=False, default=_json_default).encode("utf-8")
    return OutgoingEvent(
        position=int(description["position"]),
        subject=f"{SUBJECT_PREFIX}.{owner}.{aggregate}.{etype}",
        headers=headers,
        body=body,
    )


class Relay:
    """Publishes the event log to a JetStream stream, recording its position after the acks."""

    def __init__(
        self,
        app: DualRandom,
        engine: Engine,
        nats_url: str,
        stream: str = "DUALRANDOM",
        deployment: str = "xinxiang-huojia",
        batch_size: int = 500,
        *,
        poll_interval: float = 0.2,
        ack_timeout: float = 10.0,
        connect_timeout: float = 5.0,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.app = app
        self.engine = engine
        self.nats_url = nats_url
        self.stream = stream
        self.deployment = deployment
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.ack_timeout = ack_timeout
        self.connect_timeout = connect_timeout
        self._nc: Any = None
        self._js: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self.setup()

    # -- position (synchronous: also called from the API's worker threads) ------------------------
    def setup(self) -> None:
        """Create ``relay_position`` and this stream's row (idempotent)."""
        metadata.create_all(self.engine)
        with self.engine.begin() as conn:
            exists = conn.execute(
                sa.select(relay_position.c.position).where(relay_position.c.name == self.stream)
            ).first()
            if exists is None:
                conn.execute(relay_position.insert().values(name=self.stream, position=0))

    def position(self) -> int:
        """The last log position JetStream has acknowledged (0: nothing yet)."""
        with self.engine.connect() as conn:
            value = conn.execute(
                sa.select(relay_position.c.position).where(relay_position.c.name == self.stream)
            ).scalar()
        return int(value or 0)

    def _record(self, position: int) -> None:
        """Move the position forward (never back: another relay may have gone further)."""
        with self.engine.begin() as conn:
            conn.execute(
                relay_position.update()
                .where(relay_position.c.name == self.stream, relay_position.c.position < position)
                .values(position=position)
            )

    def _prepare(self) -> tuple[int, list[OutgoingEvent]]:
        """Read the position and the next batch after it; decode and describe each event."""
        start = self.position()
        notifications: Sequence[Any] = self.app.recorder.select_notifications(
            start, self.batch_size, inclusive_of_start=False
        )
        out = []
        for n in notifications:
            ev = self.app.mapper.to_domain_event(n)
            out.append(build_message(describe_event(ev, n.id), self.deployment))
        return start, out

    # -- NATS ---------------------------------------------------------------------------------------
    async def _connection(self) -> Any:
        if self._js is not None and self._nc is not None and self._nc.is_connected:
            return self._js
        await self._disconnect()
        import nats

        async def on_error(exc: Exception) -> None:
            log.warning("relay_nats_error", error=str(exc) or type(exc).__name__)

        async def on_disconnected() -> None:
            log.info("relay_nats_disconnected", url=self.nats_url)

        nc = await nats.connect(
            self.nats_url,
            connect_timeout=self.connect_timeout,
            allow_reconnect=False,  # the run loop reconnects, from the recorded position
            # Not 0: nats-py's connect() then retries an unreachable server forever (every 2 s).
            max_reconnect_attempts=1,
            reconnect_time_wait=0.1,
            error_cb=on_error,
            disconnected_cb=on_disconnected,
            name=f"dualrandom-relay-{self.deployment}",
        )
        try:
            js = nc.jetstream(timeout=self.ack_timeout)
            await self._ensure_stream(js)
        except BaseException:
            await nc.close()
            raise
        self._nc, self._js = nc, js
        return js

    async def _ensure_stream(self, js: Any) -> None:
        """Create the stream, or update it so that it takes ``dualrandom.>`` with a 2-minute duplicate window."""
        from nats.js.api import StorageType, StreamConfig
        from nats.js.errors import NotFoundError

        subject = f"{SUBJECT_PREFIX}.>"
        try:
            info = await js.stream_info(self.stream)
        except NotFoundError:
            await js.add_stream(
                StreamConfig(
                    name=self.stream,
                    subjects=[subject],
                    storage=StorageType.FILE,
                    duplicate_window=DUPLICATE_WINDOW_SECONDS,
                    description="dualrandom events (CloudEvents 1.0, binary mode)",
                )
            )
            log.info("relay_stream_created", stream=self.stream, subjects=[subject])
            return
        config = info.config
        subjects = list(config.subjects or [])
        if subject not in subjects or config.duplicate_window != DUPLICATE_WINDOW_SECONDS:
            # dualrandom.> covers any narrower dualrandom.* subject: JetStream refuses overlapping subjects.
            subjects = [s for s in subjects if not s.startswith(f"{SUBJECT_PREFIX}.")] + [subject]
            await js.update_stream(config.evolve(subjects=subjects, duplicate_window=DUPLICATE_WINDOW_SECONDS))
            log.info("relay_stream_updated", stream=self.stream, subjects=subjects)
        if config.storage != StorageType.FILE:
            log.warning("relay_stream_not_on_file", stream=self.stream, storage=str(config.storage))

    async def _disconnect(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is None or nc.is_closed:
            return
        try:
            await asyncio.wait_for(nc.close(), timeout=5)
        except Exception as exc:  # noqa: BLE001 - closing is best effort
            log.warning("relay_nats_close_failed", error=str(exc) or type(exc).__name__)

    async def close(self) -> None:
        """Close the NATS connection (no drain: every publish was already acknowledged)."""
        await self._disconnect()

    # -- publishing ---------------------------------------------------------------------------------
    async def run_once(self) -> int:
        """Publish the next batch after the recorded position; returns how many events were published."""
        start, batch = await asyncio.to_thread(self._prepare)
        if not batch:
            return 0
        js = await self._connection()
        futures = []
        try:
            for out in batch:
                futures.append(
                    await js.publish_async(out.subject, out.body, headers=dict(out.headers), stream=self.stream)
                )
            results = await asyncio.wait_for(
                asyncio.gather(*futures, return_exceptions=True), timeout=self.ack_timeout
            )
        except BaseException:
            for f in futures:
                f.cancel()
            raise
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise RuntimeError(
                f"JetStream refused {len(failed)} of {len(batch)} events after position {start}: {failed[0]!r}"
            ) from failed[0]
        duplicates = sum(1 for r in results if getattr(r, "duplicate", False))
        last = batch[-1].position
        await asyncio.to_thread(self._record, last)
        log.debug("relay_published", count=len(batch), duplicates=duplicates, position=last)
        return len(batch)

    def wake(self) -> None:
        """A write was committed: look now rather than at the next poll. Safe from any thread."""
        loop, event = self._loop, self._wake
        if loop is None or event is None:
            return
        try:
            loop.call_soon_threadsafe(event.set)
        except RuntimeError:  # the loop is closed: the relay has stopped
            pass

    async def _idle(self, stop: asyncio.Event, timeout: float, wakeable: bool = True) -> None:
        """Sleep up to ``timeout`` seconds, or until ``stop`` is set (or ``wake()`` is called, if wakeable)."""
        assert self._wake is not None
        waiters = [asyncio.ensure_future(stop.wait())]
        if wakeable:
            waiters.append(asyncio.ensure_future(self._wake.wait()))
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)
        if wakeable:
            self._wake.clear()

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until ``stop`` is set; on any error log it, back off (0.5 s doubling to 5 s) and retry
        from the recorded position."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        backoff = 0.5
        log.info("relay_started", stream=self.stream, position=await asyncio.to_thread(self.position))
        try:
            while not stop.is_set():
                try:
                    count = await self.run_once()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - keep relaying; the log says why
                    log.error("relay_batch_failed", error=str(exc) or type(exc).__name__, exc_info=True,
                              retry_in=backoff)
                    await self._disconnect()
                    await self._idle(stop, backoff, wakeable=False)
                    backoff = min(backoff * 2, 5.0)
                    continue
                backoff = 0.5
                if count < self.batch_size:
                    await self._idle(stop, self.poll_interval)
        finally:
            self._loop = None
            self._wake = None
            await self._disconnect()
            log.info("relay_stopped", stream=self.stream)
