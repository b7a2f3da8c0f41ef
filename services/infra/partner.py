"""dualrandom partner helper: read a department's events from NATS JetStream, in order, once each.

A single file that needs only ``nats-py`` (``pip install nats-py``): copy it into your code. See
``docs/partners.md``. Example::

    import asyncio
    from dualrandom_partner import Subscription

    async def main():
        sub = Subscription("nats://hj-eeb:PASSWORD@nats.example.gov.cn:4222", "hj-eeb")
        async for event in sub.events():          # resumes where the last run stopped (durable consumer)
            print(event["type"], event["position"], event["data"])
            await sub.ack(event)                  # after you stored it: not acknowledged = delivered again

    asyncio.run(main())

Each ``event`` is a CloudEvent in the structured JSON form: ``specversion id source type subject time
dataschema datacontenttype position correlationid causationid aggregateversion data`` (``data``: the
message's JSON, see ``docs/contracts/schemas``), plus ``stream_sequence``. A message too large for the NATS
server comes without its data: ``data`` None, ``dataomitted`` ``"too-large"`` and ``dataref``, the API path
that serves the data (``docs/partners.md``). A joint task's event reaches every
department with the same ``id``; de-duplicate on ``id`` (this helper does, over the last ``dedupe`` ids).

Scopes: ``own`` (``dualrandom.<department>.>``, durable consumer ``<department>``), ``shared`` (the target
directory, ``<department>_shared``), ``public`` (published results, ``<department>_public``) and ``audit``
(signed checkpoints, ``<department>_audit``). ``from_position=N`` starts over after log position N (the
consumer is recreated at the first stream sequence whose event is after N, found by bisection);
``from_time=datetime`` starts over at the events stored since then. Without either, an existing consumer
continues where it was acknowledged, and a new one starts at the beginning.
"""

import asyncio
import contextlib
import datetime as dt
import json
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

import nats
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError, ServerError

SCOPES = ("own", "shared", "public", "audit")
STREAM = "DUALRANDOM"
ADD_CONSUMER_ATTEMPTS = 6


def consumer_name(department: str, scope: str = "own") -> str:
    """The durable consumer a department may use for a scope (NATS permissions allow only these)."""
    return department if scope == "own" else f"{department}_{scope}"


def filter_subject(department: str, scope: str = "own") -> str:
    return f"dualrandom.{department}.>" if scope == "own" else f"dualrandom.{scope}.>"


def inbox_prefix(department: str) -> str:
    """The department's private reply subjects (its NATS user may subscribe to these only)."""
    return f"_INBOX_{department}"


def to_event(msg: Any) -> dict[str, Any]:
    """A JetStream message (CloudEvents binary mode) as a structured CloudEvent dict."""
    headers = msg.headers or {}
    event: dict[str, Any] = {k[3:]: v for k, v in headers.items() if k.startswith("ce-")}
    for name in ("position", "aggregateversion"):
        if name in event:
            event[name] = int(event[name])
    event["datacontenttype"] = headers.get("content-type", "application/json")
    event["data"] = json.loads(msg.data.decode("utf-8")) if msg.data else None
    if headers.get("Dualrandom-Data-Omitted"):  # too large for NATS: fetch the data at event["dataref"]
        event["dataomitted"] = headers["Dualrandom-Data-Omitted"]
    event["stream_sequence"] = msg.metadata.sequence.stream
    event["_msg"] = msg
    return event


class Subscription:
    """A durable pull consumer with explicit acks over one department's subjects of one scope."""

    def __init__(
        self,
        url: str,
        department: str,
        scope: str = "own",
        *,
        stream: str = STREAM,
        from_position: int | None = None,
        from_time: dt.datetime | None = None,
        batch: int = 100,
        dedupe: int = 100_000,
        seen: list[str] | None = None,
        connect_options: dict[str, Any] | None = None,
    ) -> None:
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
        if from_position is not None and from_time is not None:
            raise ValueError("give from_position or from_time, not both")
        self.url = url
        self.department = department
        self.scope = scope
        self.stream = stream
        self.from_position = from_position
        self.from_time = from_time
        self.batch = batch
        self.durable = consumer_name(department, scope)
        self.subject = filter_subject(department, scope)
        self.errors: list[Exception] = []  # what the server refused (permission violations arrive here)
        self._seen: OrderedDict[str, None] = OrderedDict((i, None) for i in (seen or []))
        self._dedupe = dedupe
        self._connect_options = connect_options or {}
        self._nc: Any = None
        self._js: Any = None
        self._sub: Any = None
        self._stopping = asyncio.Event()

    # -- connection and consumer ---------------------------------------------------------------------
    async def connect(self) -> None:
        async def on_error(exc: Exception) -> None:
            self.errors.append(exc)

        options = {"name": f"dualrandom-partner-{self.durable}", "error_cb": on_error,
                   "inbox_prefix": inbox_prefix(self.department), "max_reconnect_attempts": -1,
                   **self._connect_options}
        self._nc = await nats.connect(self.url, **options)
        self._js = self._nc.jetstream(timeout=10)
        await self._prepare_consumer()
        self._sub = await self._js.pull_subscribe_bind(self.durable, self.stream)

    def _config(self, policy: DeliverPolicy, **extra: Any) -> ConsumerConfig:
        return ConsumerConfig(
            name=self.durable, durable_name=self.durable, filter_subject=self.subject, ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=policy, ack_wait=30, max_ack_pending=10_000, **extra,
        )

    async def _prepare_consumer(self) -> None:
        if self.from_position is None and self.from_time is None:
            try:
                await self._js.consumer_info(self.stream, self.durable)
                return  # continue where it was acknowledged
            except NotFoundError:
                await self._add_consumer(self._config(DeliverPolicy.ALL))
                return
        if self.from_time is not None:
            when = self.from_time if self.from_time.tzinfo else self.from_time.replace(tzinfo=dt.UTC)
            await self._recreate_consumer(self._config(DeliverPolicy.BY_START_TIME, opt_start_time=when))
            return
        assert self.from_position is not None
        start = await self._first_sequence_after(self.from_position)
        await self._recreate_consumer(self._config(DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start))

    async def _recreate_consumer(self, config: ConsumerConfig) -> None:
        """Replace the durable consumer (a partner may create consumers of its own names only, so starting over
        means deleting it and creating it again under the same name)."""
        with contextlib.suppress(NotFoundError):
            await self._js.delete_consumer(self.stream, self.durable)
        await self._add_consumer(config)

    async def _add_consumer(self, config: ConsumerConfig) -> None:
        """Create the consumer, retrying the server's internal errors a few times: nats-server 2.15 removes a
        deleted consumer's directory after it has answered the delete, and a consumer created again under the
        same name meanwhile fails (500, "rename .../obs/<name>/o.dat.tmp ...: no such file or directory")."""
        for attempt in range(ADD_CONSUMER_ATTEMPTS):
            try:
                await self._js.add_consumer(self.stream, config)
                return
            except ServerError:
                if attempt == ADD_CONSUMER_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.05 * 2**attempt)

    async def _probe(self, sequence: int) -> int | None:
        """The log position of the first message of this scope at or after stream ``sequence`` (None: none)."""
        await self._recreate_consumer(self._config(DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=sequence))
        sub = await self._js.pull_subscribe_bind(self.durable, self.stream)
        try:
            msgs = await sub.fetch(1, timeout=1)
        except (TimeoutError, NatsTimeoutError):
            return None
        finally:
            await sub.unsubscribe()
        position = (msgs[0].headers or {}).get("ce-position")
        return int(position) if position is not None else 0

    async def _first_sequence_after(self, position: int) -> int:
        """Search the stream for the first sequence whose message of this scope is after ``position``
        (positions grow with the stream sequence; messages before are skipped again when read): doubling from 1
        until a probe is past it (or finds nothing), then bisecting. Only this department's consumer is used: a
        partner may not read the stream's information, which names every department's subjects."""
        lo, hi = 1, 1
        while True:
            found = await self._probe(hi)
            if found is None or found > position:
                break
            lo, hi = hi + 1, hi * 2
        while lo < hi:
            mid = (lo + hi) // 2
            found = await self._probe(mid)
            if found is None or found > position:
                hi = mid
            else:
                lo = mid + 1
        return lo

    # -- reading -------------------------------------------------------------------------------------
    async def events(self, idle_timeout: float | None = None) -> AsyncIterator[dict[str, Any]]:
        """Events in stream order, each once (duplicates and events at or before ``from_position`` are
        acknowledged and skipped). Ends on ``stop()``, or after ``idle_timeout`` seconds without a message."""
        if self._sub is None:
            await self.connect()
        # A fetch of n messages that finds none waiting holds the first one that comes until n arrive or it
        # times out: read in batches while they come full, else one at a time (returns on the first).
        full = True
        last_seen = time.monotonic()
        while not self._stopping.is_set():
            size = self.batch if full else 1
            try:
                msgs = await self._sub.fetch(size, timeout=0.02 if full else 1.0)
            except (TimeoutError, NatsTimeoutError):
                full = False
                if idle_timeout is not None and time.monotonic() - last_seen >= idle_timeout:
                    return
                continue
            full = len(msgs) == size
            last_seen = time.monotonic()
            for msg in msgs:
                event = to_event(msg)
                eid = event.get("id")
                skip = (eid in self._seen) or (
                    self.from_position is not None and event.get("position", 0) <= self.from_position
                )
                if skip:
                    await msg.ack()
                    continue
                yield event
                if self._stopping.is_set():
                    return

    async def ack(self, event: dict[str, Any]) -> None:
        """The event is processed: the server will not deliver it again (waits for its confirmation)."""
        await event["_msg"].ack_sync()
        eid = event.get("id")
        if eid:
            self._seen[eid] = None
            while len(self._seen) > self._dedupe:
                self._seen.popitem(last=False)

    def stop(self) -> None:
        self._stopping.set()

    async def close(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):  # closing anyway
                await self._sub.unsubscribe()  # before close: else it waits for the drain timeout
            self._sub = None
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.close()

    async def __aenter__(self) -> "Subscription":
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def public_event(event: dict[str, Any]) -> dict[str, Any]:
    """The event without the helper's private members, ready for ``json.dumps``."""
    return {k: v for k, v in event.items() if not k.startswith("_")}
