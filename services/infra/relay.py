"""The relay: follows the event log (the outbox) and publishes every event to NATS JetStream.

At-least-once: a batch is published with ``publish_async``, every ack is awaited, and only then is the new
position recorded (``relay_position``, one row per stream; the write runs while the next batch is published
and is awaited before the one after, so a slow commit never holds events back; the next batch is read while
the acks are awaited). A crash between the acks and the position write re-publishes the batch; JetStream drops the copies because ``Nats-Msg-Id`` is stable (within the stream's
duplicate window, 2 minutes), and consumers de-duplicate on ``ce-id`` beyond it (``services/infra/partner.py``).

Each message is a CloudEvents 1.0 event in binary mode (NATS protocol binding): attributes in ``ce-*``
headers (extensions ``ce-position``, the global log position; ``ce-correlationid``, ``ce-causationid``,
``ce-aggregateversion``), ``ce-dataschema`` naming the JSON Schema, and the body the JSON of the event's
integration message (``domain/contracts``: the newest ``<Aggregate><Event>V<n>``). Subjects carry the
department: ``dualrandom.<department>.<aggregate>.<event>``. An event whose ``_meta["departments"]`` lists the
departments of a joint task goes to each of their subjects (``Nats-Msg-Id`` = ``<event id>:<department>``,
one ``ce-id``); otherwise to its owner's only (``shared`` for the shared target directory). A contract with a
public form also publishes that on ``dualrandom.public.<aggregate>.<event>``. An event without a contract, or
that no longer fits it, stops the relay with an error naming it: nothing unchecked reaches partners.

Within one connection JetStream stores a batch in the order sent, so each subject holds its events in log
order; after a failure a consumer may still see an earlier copy later (``ce-position`` gives the true order).

A message larger than the server takes (its ``max_payload``, or the stream's ``max_msg_size`` when set; headers
count) is published without its data, at its place in the order, with the same headers but ``content-type``,
plus ``ce-dataref`` (where the API serves the message: ``GET /api/v1/audit/events/<position>/message``) and
``Dualrandom-Data-Omitted: too-large``; the size of an event never stops the relay. A message the server refuses
for another reason (JetStream's error answer), or an event without a contract, is recorded in ``relay_failures``
(``/ready`` answers 503 naming it, ``/metrics`` shows it) while the relay retries; a connection problem is not.
"""

import asyncio
import contextlib
import datetime as dt
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import sqlalchemy as sa
from eventsourcing.persistence import Notification
from sqlalchemy.engine import Engine

from domain.contracts import REGISTRY, Registry, topic_of
from services.application import DualRandom, describe_event
from services.infra.logging import get_logger
from services.infra.metrics import METRICS
from services.infra.store import safe_url

log = get_logger(__name__)

SUBJECT_PREFIX = "dualrandom"
PUBLIC = "public"
DATA_OMITTED_HEADER = "Dualrandom-Data-Omitted"
DATA_OMITTED_TOO_LARGE = "too-large"
MESSAGE_PATH = "/api/v1/audit/events/{position}/message"  # the API route serving a message (services/api/audit.py)
EVENT_ID_NAMESPACE = uuid.UUID("6f1c2d1e-3b0a-5c8e-9d7f-2a4b6c8d0e1f")
DUPLICATE_WINDOW_SECONDS = 120.0
TRANSIENT_ERR_CODES = frozenset({10008})  # JetStream's "temporarily unavailable" (a cluster without a leader)
READ_AHEAD = True

metadata = sa.MetaData()
relay_position = sa.Table(
    "relay_position",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)
relay_failures = sa.Table(
    "relay_failures",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),  # the stream
    sa.Column("position", sa.BigInteger, nullable=False),  # the event the relay cannot publish
    sa.Column("error", sa.String(300), nullable=False),  # the error's type and first line
    sa.Column("since", sa.DateTime(timezone=True), nullable=False),
)
"""An event the relay cannot publish (not a connection problem): written by the relay, read by ``/ready`` and
``/metrics``; removed once the relay has published past it."""

_TOKEN_BAD = re.compile(r"[^A-Za-z0-9_-]")


class ContractError(Exception):
    """An event has no contract, or does not fit it: the relay stops rather than publish it unchecked."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


class PublishRefusedError(Exception):
    """JetStream answered a message with an error (not a timeout, not a lost connection): retrying the same
    message will not help until an operator changes the stream or the server."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.position = position


@dataclass(frozen=True)
class RelayFailure:
    stream: str
    position: int
    error: str
    since: dt.datetime


def event_id(aggregate_id: str | uuid.UUID, version: int) -> str:
    """The stable id of an event (``ce-id``): the same on every re-publication and every copy."""
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


def json_safe(value: Any) -> Any:
    """The value as plain JSON types (dates and UUIDs as ISO text, sets as lists)."""
    return msgspec.to_builtins(value, enc_hook=_json_default, str_keys=True)


@dataclass(frozen=True)
class OutgoingEvent:
    """One message ready to publish (an event gives one per department it concerns)."""

    position: int
    subject: str
    headers: dict[str, str]
    body: bytes
    dataref: str = ""  # where the API serves ``body``: published instead of it when it is too large

    def without_data(self) -> "OutgoingEvent":
        """The same CloudEvent without its data: ``ce-dataref`` says where to fetch it, the marker header why."""
        headers = {k: v for k, v in self.headers.items() if k != "content-type"}
        headers["ce-dataref"] = self.dataref
        headers[DATA_OMITTED_HEADER] = DATA_OMITTED_TOO_LARGE
        return OutgoingEvent(self.position, self.subject, headers, b"", self.dataref)

    def wire_size(self, stream: str | None = None) -> int:
        """What the server counts against ``max_payload``: the NATS header block (with the
        ``Nats-Expected-Stream`` header the publish adds) and the body."""
        headers = dict(self.headers)
        if stream is not None:
            headers["Nats-Expected-Stream"] = stream
        block = "NATS/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        return len(block.encode("utf-8")) + len(self.body)


def recipients(meta: dict[str, Any]) -> list[str]:
    """Subject tokens of the departments an event concerns: ``_meta["departments"]`` (a joint task's
    departments), else its owner (``shared`` for the target directory)."""
    departments = meta.get("departments")
    if departments:
        return sorted({_token(d, "unknown") for d in departments})
    return [_token(meta.get("owner"), "unknown")]


def build_messages(
    description: dict[str, Any], deployment: str, topic: str, registry: Registry = REGISTRY
) -> list[OutgoingEvent]:
    """The messages of one event (a ``describe_event`` dict of an event of class ``topic``)."""
    contract = registry.current(topic)
    if contract is None:
        raise ContractError(
            f"no contract for {topic} (position {description['position']}): add one in domain/contracts",
            int(description["position"]),
        )
    try:
        message = contract.to_message(json_safe(description["data"]))
    except (msgspec.ValidationError, KeyError, TypeError) as exc:
        raise ContractError(
            f"the event at position {description['position']} ({topic}) does not fit {contract.name}: {exc}",
            int(description["position"]),
        ) from exc
    meta = description.get("meta") or {}
    owner = _token(meta.get("owner"), "unknown")
    aggregate = _token(meta.get("aggregate"), contract.aggregate)
    etype = _token(description["type"], contract.event)
    position = int(description["position"])
    eid = event_id(description["aggregate_id"], description["version"])
    common = {
        "ce-specversion": "1.0",
        "ce-id": eid,
        "ce-source": f"/dualrandom/{deployment}/{owner}",
        "ce-type": contract.type_for(aggregate),
        "ce-subject": str(description["aggregate_id"]),
        "ce-time": str(description["time"]),
        "ce-dataschema": contract.dataschema,
        "ce-position": str(position),
        "ce-aggregateversion": str(description["version"]),
        "content-type": "application/json",
    }
    for header, key in (("ce-correlationid", "correlation_id"), ("ce-causationid", "causation_id")):
        if meta.get(key):
            common[header] = str(meta[key])
    body = msgspec.json.encode(message)
    out = [
        OutgoingEvent(
            position=position,
            subject=f"{SUBJECT_PREFIX}.{department}.{aggregate}.{etype}",
            headers={"Nats-Msg-Id": f"{eid}:{department}", **common},
            body=body,
            dataref=MESSAGE_PATH.format(position=position),
        )
        for department in recipients(meta)
    ]
    public = contract.to_public(message)
    if public is not None:
        out.append(
            OutgoingEvent(
                position=position,
                subject=f"{SUBJECT_PREFIX}.{PUBLIC}.{aggregate}.{etype}",
                headers={
                    "Nats-Msg-Id": f"{eid}:{PUBLIC}", **common, "ce-source": f"/dualrandom/{deployment}/{PUBLIC}",
                    "ce-type": contract.public_type_for(aggregate), "ce-dataschema": contract.public_dataschema,
                },
                body=msgspec.json.encode(public),
                dataref=MESSAGE_PATH.format(position=position) + "?form=public",
            )
        )
    return out


def _refusal(exc: BaseException) -> bool:
    """Did JetStream answer a message with an error of its own (a refusal that retrying does not cure: the
    stream's limits, say), rather than time out, lose the connection or be unavailable for a while?"""
    from nats.js.errors import APIError

    return isinstance(exc, APIError) and exc.err_code is not None and exc.err_code not in TRANSIENT_ERR_CODES


def servers_of(url: str) -> list[str]:
    """``nats://a:4222,nats://b:4222``: the servers of a cluster (any one answers for it)."""
    return [u.strip() for u in url.split(",") if u.strip()]


def messages_for(ev: Any, position: int, deployment: str, registry: Registry = REGISTRY) -> list[OutgoingEvent]:
    """The messages of a stored domain event."""
    return build_messages(describe_event(ev, position), deployment, topic_of(type(ev)), registry)


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
        replicas: int | None = None,
        registry: Registry = REGISTRY,
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
        self.replicas = replicas  # None: 1 for a new stream, an existing stream's own count kept
        self.registry = registry
        self._nc: Any = None
        self._js: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._ahead: tuple[int, int, list[OutgoingEvent]] | None = None  # the next batch, read ahead
        # The last position JetStream acknowledged to this relay, and the write of it to relay_position,
        # which runs while the next batch is published (a commit waiting for a lock must not delay events).
        self._acked: int | None = None
        self._recording: asyncio.Future[None] | None = None
        # The largest message (headers and body) the connected server and the stream take; set on connect.
        self._limit: int | None = None
        self._failed: int | None = None  # the position of the recorded failure, if any (another run's included)
        self._refusals: list[BaseException] = []  # JetStream's error answers during the batch being published
        self._refused: asyncio.Event | None = None
        self.setup()
        recorded = self.failure()
        self._failed = recorded.position if recorded is not None else None

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
        """The last log position recorded as acknowledged by JetStream (0: nothing yet); while the relay runs
        it may trail the acknowledged one by the batch whose write is in progress."""
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

    def failure(self) -> RelayFailure | None:
        """The event this relay's stream cannot publish, as recorded by whichever process runs the relay."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(relay_failures).where(relay_failures.c.name == self.stream)).first()
        if row is None:
            return None
        since = row.since if row.since.tzinfo is not None else row.since.replace(tzinfo=dt.UTC)
        return RelayFailure(row.name, int(row.position), row.error, since)

    def _record_failure(self, position: int, exc: BaseException) -> None:
        error = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"[:300]
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(relay_failures.c.position, relay_failures.c.error)
                               .where(relay_failures.c.name == self.stream)).first()
            if row is not None and int(row.position) == position and row.error == error:
                self._failed = position
                return  # the same failure again: keep since when
            conn.execute(relay_failures.delete().where(relay_failures.c.name == self.stream))
            conn.execute(relay_failures.insert().values(name=self.stream, position=position, error=error,
                                                        since=dt.datetime.now(dt.UTC)))
        self._failed = position
        log.error("relay_event_failed", stream=self.stream, position=position, error=error)

    def _clear_failure(self, published: int) -> None:
        """The relay published up to ``published``: a failure at or before it is over."""
        with self.engine.begin() as conn:
            gone = conn.execute(relay_failures.delete().where(
                relay_failures.c.name == self.stream, relay_failures.c.position <= published)).rowcount
        self._failed = None
        if gone:
            log.info("relay_recovered", stream=self.stream, position=published)

    def _prepare(self) -> tuple[int, int, list[OutgoingEvent]]:
        """Read the position and the next batch after it (the one read ahead while the previous batch's acks
        were awaited, if it starts there); decode each event and build its messages."""
        start = self.position()
        if self._acked is not None and self._acked > start:  # recorded in a moment; not published again
            start = self._acked
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] == start:
            return ahead
        return self._read(start)

    def _select(self, start: int) -> Sequence[Any]:
        """The next notifications after ``start``: a Core SELECT on the events table (the recorder's ORM
        query costs more than decoding the events), as ``recorder.select_notifications`` would give them."""
        recorder: Any = self.app.recorder
        table = getattr(getattr(recorder, "events_record_cls", None), "__table__", None)
        if table is None:  # another recorder: its own method
            return recorder.select_notifications(start, self.batch_size, inclusive_of_start=False)
        query = (
            sa.select(table.c.id, table.c.originator_id, table.c.originator_version, table.c.topic, table.c.state)
            .where(table.c.id > start).order_by(table.c.id).limit(self.batch_size)
        )
        with recorder.transaction(commit=False) as session:
            rows = session.execute(query).all()
        return [Notification(id=i, originator_id=o, originator_version=v, topic=t, state=bytes(st))
                for i, o, v, t, st in rows]

    def _read(self, start: int) -> tuple[int, int, list[OutgoingEvent]]:
        notifications = self._select(start)
        out: list[OutgoingEvent] = []
        for n in notifications:
            ev = self.app.mapper.to_domain_event(n)
            try:
                out.extend(messages_for(ev, n.id, self.deployment, self.registry))
            except ContractError as exc:
                log.error("relay_contract_error", position=n.id, topic=n.topic, error=str(exc))
                raise
        return start, len(notifications), out

    # -- NATS ---------------------------------------------------------------------------------------
    async def _connection(self) -> Any:
        if self._js is not None and self._nc is not None and self._nc.is_connected:
            return self._js
        await self._disconnect()
        import nats

        async def on_error(exc: Exception) -> None:
            log.warning("relay_nats_error", error=str(exc) or type(exc).__name__)
            if _refusal(exc):
                # nats-py raises JetStream's error answer to an async publish here, in the reply handler,
                # and leaves the message's future pending: the batch being acknowledged hears of it from here.
                self._refusals.append(exc)
                if self._refused is not None:
                    self._refused.set()

        async def on_disconnected() -> None:
            log.info("relay_nats_disconnected", url=safe_url(self.nats_url))

        nc = await nats.connect(
            servers_of(self.nats_url),
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
            max_msg_size = await self._ensure_stream(js)
        except BaseException:
            await nc.close()
            raise
        self._nc, self._js = nc, js
        limits = [int(nc.max_payload)] + ([max_msg_size] if max_msg_size and max_msg_size > 0 else [])
        self._limit = min(limits)
        return js

    async def _ensure_stream(self, js: Any) -> int | None:
        """Create the stream, or update it so that it takes ``dualrandom.>`` with a 2-minute duplicate window;
        returns the stream's ``max_msg_size`` (None or -1: no limit of its own)."""
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
                    num_replicas=self.replicas or 1,
                    description="dualrandom events (CloudEvents 1.0, binary mode)",
                )
            )
            log.info("relay_stream_created", stream=self.stream, subjects=[subject], replicas=self.replicas or 1)
            return None
        config = info.config
        subjects = list(config.subjects or [])
        replicas = self.replicas or config.num_replicas or 1
        if (
            subject not in subjects or config.duplicate_window != DUPLICATE_WINDOW_SECONDS
            or (config.num_replicas or 1) != replicas
        ):
            # dualrandom.> covers any narrower dualrandom.* subject: JetStream refuses overlapping subjects.
            subjects = [s for s in subjects if not s.startswith(f"{SUBJECT_PREFIX}.")] + [subject]
            await js.update_stream(config.evolve(
                subjects=subjects, duplicate_window=DUPLICATE_WINDOW_SECONDS, num_replicas=replicas
            ))
            log.info("relay_stream_updated", stream=self.stream, subjects=subjects)
        if config.storage != StorageType.FILE:
            log.warning("relay_stream_not_on_file", stream=self.stream, storage=str(config.storage))
        return int(config.max_msg_size) if config.max_msg_size is not None else None

    async def _disconnect(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is None or nc.is_closed:
            return
        try:
            await asyncio.wait_for(nc.close(), timeout=5)
        except Exception as exc:  # noqa: BLE001 - closing is best effort
            log.warning("relay_nats_close_failed", error=str(exc) or type(exc).__name__)

    async def _flush_position(self) -> None:
        """Wait for the position write in progress; its error (the database is down) fails the batch."""
        recording, self._recording = self._recording, None
        if recording is not None:
            try:
                await recording
            except BaseException:
                self._acked = None
                raise

    async def _settle(self) -> None:
        """Finish the position write in progress (an error is logged: the next start re-publishes) and forget
        what is only in memory: the database's position is the truth again."""
        try:
            await self._flush_position()
        except Exception as exc:  # noqa: BLE001 - re-published later, dropped as duplicates
            log.warning("relay_position_not_recorded", error=str(exc) or type(exc).__name__)
        self._acked = None
        self._ahead = None

    async def close(self) -> None:
        """Record the last acknowledged position and close the NATS connection (no drain: every publish was
        already acknowledged)."""
        await self._settle()
        await self._disconnect()

    # -- publishing ---------------------------------------------------------------------------------
    async def run_once(self) -> int:
        """Publish the next batch after the recorded position; returns how many events were published. An event
        JetStream refuses (``PublishRefusedError``) or that has no contract (``ContractError``) is recorded in
        ``relay_failures`` before the error is raised; the next batch that gets past it removes the record."""
        try:
            return await self._publish_next()
        except (PublishRefusedError, ContractError) as exc:
            if exc.position is not None:
                try:
                    await asyncio.to_thread(self._record_failure, exc.position, exc)
                except Exception as db:  # noqa: BLE001 - the database is down: logged, recorded at the retry
                    log.warning("relay_failure_not_recorded", error=str(db) or type(db).__name__)
            raise

    async def _publish_next(self) -> int:
        start, events, batch = await asyncio.to_thread(self._prepare)
        if not batch:
            return 0
        from nats.errors import MaxPayloadError

        js = await self._connection()
        batch = self._fitted(batch)
        futures = []
        read_ahead = None
        self._refusals = []
        self._refused = asyncio.Event()
        try:
            for out in batch:
                try:
                    futures.append(
                        await js.publish_async(out.subject, out.body, headers=dict(out.headers), stream=self.stream)
                    )
                except MaxPayloadError as exc:  # even without its data: a server configured below any header
                    raise PublishRefusedError(
                        f"the message of position {out.position} on {out.subject} does not fit the server's "
                        f"max_payload ({self._limit} bytes) even without its data", out.position) from exc
            # A full batch: read the next one while JetStream stores and acknowledges this one.
            read_ahead = (
                asyncio.ensure_future(asyncio.to_thread(self._read, batch[-1].position))
                if events == self.batch_size and READ_AHEAD else None
            )
            results = await self._acks(batch, futures)
        except BaseException:
            for f in futures:
                f.cancel()
            if read_ahead is not None:
                read_ahead.cancel()
            raise
        failed = [(out, r) for out, r in zip(batch, results, strict=True) if isinstance(r, BaseException)]
        if failed:
            if read_ahead is not None:
                read_ahead.cancel()
            refused = [(out, r) for out, r in failed if _refusal(r)]
            if refused:
                first, why = refused[0]
                raise PublishRefusedError(
                    f"JetStream refused the message of position {first.position} on {first.subject}: {why}",
                    first.position) from why
            raise RuntimeError(
                f"JetStream refused {len(failed)} of {len(batch)} events after position {start}: {failed[0][1]!r}"
            ) from failed[0][1]
        duplicates = sum(1 for r in results if getattr(r, "duplicate", False))
        last = batch[-1].position
        await self._flush_position()
        self._acked = last
        self._recording = asyncio.ensure_future(asyncio.to_thread(self._record, last))
        if read_ahead is not None:
            try:
                self._ahead = await read_ahead
            except Exception:  # noqa: BLE001 - read again, and fail, at the next call
                self._ahead = None
        if self._failed is not None and self._failed <= last:
            await asyncio.to_thread(self._clear_failure, last)
        log.debug("relay_published", events=events, messages=len(batch), duplicates=duplicates, position=last)
        return events

    async def _acks(self, batch: list[OutgoingEvent], futures: list[Any]) -> list[Any]:
        """Every message's ack (or error), in order; PublishRefusedError for the first message still waiting
        when JetStream answers one with an error; TimeoutError after ``ack_timeout``."""
        assert self._refused is not None
        gathered = asyncio.ensure_future(asyncio.gather(*futures, return_exceptions=True))
        refused = asyncio.ensure_future(self._refused.wait())
        try:
            await asyncio.wait({gathered, refused}, timeout=self.ack_timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            refused.cancel()
        if gathered.done():
            return list(gathered.result())
        # JetStream acknowledges one connection's messages in the order sent: a refused message is the first
        # one without an answer. (Cancelling the gathering cancels the messages' futures: look before.)
        waiting = next((i for i, f in enumerate(futures) if not f.done()), None)
        gathered.cancel()
        gathered.add_done_callback(lambda f: f.cancelled() or f.exception())
        if self._refusals and waiting is not None:
            why = self._refusals[0]
            out = batch[waiting]
            raise PublishRefusedError(
                f"JetStream refused the message of position {out.position} on {out.subject}: {why}",
                out.position) from why
        raise TimeoutError(f"no ack from JetStream within {self.ack_timeout} s")

    def _fitted(self, batch: list[OutgoingEvent]) -> list[OutgoingEvent]:
        """Each message as the server takes it: without its data (``ce-dataref``) when too large."""
        limit = self._limit
        if limit is None:
            return batch
        out = []
        for message in batch:
            size = message.wire_size(self.stream)
            if size > limit and message.dataref:
                METRICS.inc("dualrandom_relay_data_omitted_total")
                log.warning("relay_data_omitted", position=message.position, subject=message.subject, size=size,
                            max_payload=limit, dataref=message.dataref)
                message = message.without_data()
            out.append(message)
        return out

    def wake(self) -> None:
        """A write was committed: look now rather than at the next poll. Safe from any thread."""
        loop, event = self._loop, self._wake
        if loop is None or event is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: the relay has stopped
            loop.call_soon_threadsafe(event.set)

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
                except Exception as exc:
                    log.error("relay_batch_failed", error=str(exc) or type(exc).__name__, exc_info=True,
                              retry_in=backoff)
                    await self._settle()
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
            await self._settle()
            await self._disconnect()
            log.info("relay_stopped", stream=self.stream)
