"""The answers of the anonymous public reads (一公开), kept in memory and shared by the JSON endpoint
(``/api/v1/public/results``) and the page (``/public/results``), so that 200 readers asking the same thing cost one
query and one rendering, not 200.

- **Key**: the normalised query (``q`` newlines normalised and stripped, empty as none; ``limit``, ``offset``, and
  the page's ``department``, ``year``, ``result``), plus which representation: the data (the use case's answer and
  its JSON bytes, shared by both endpoints) or the page's HTML (also keyed by the current year: its year list). Two
  different normalised queries never share an entry.
- **Validity**: an entry is served only while the read models it was read from are at the positions they had
  when the reading began: ``(execution, directory)`` (``rm_public_result`` and the names are the execution read
  model's; the enterprises' names and credit codes and the department list the directory's). Any event either
  applies makes the next request read again. With the projections in this process (the default) the positions
  are the runner's own, in memory, published after each commit (no I/O per request: the same knowledge a
  ``min_position`` wait uses); with the projections in worker processes they are read from the database (one
  small query per request). Unknown positions (just started): nothing is kept.
- **One reader per question**: concurrent misses of the same key at the same positions wait for one reading in a
  worker thread; the hits are answered on the event loop, without a thread.
- **Bounded**: at most ``MAX_ENTRIES`` entries and ``MAX_BYTES`` bytes of bodies, least recently used first out.
- **ETag**: a hash of the body (strong); ``If-None-Match`` naming it gets 304 without a body.

Only the public, redacted answer is ever kept (what ``Publicity.public_results`` returns). Requests with a token,
a session cookie or ``min_position`` neither read nor fill it (the handlers read the database as before).
"""

import asyncio
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import anyio.to_thread

from projections.runner import ProjectionRunner

READ_MODELS = ("execution", "directory")  # what a public answer is read from
MAX_ENTRIES = 2048
MAX_BYTES = 64 * 1024 * 1024

Token = tuple[int, ...]


@dataclass(frozen=True)
class Answer:
    token: Token | None  # the read models' positions it was read at (None: not kept)
    body: bytes
    etag: str
    value: Any = None  # the data entries: the use case's answer (the page renders it)


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def not_modified(if_none_match: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (weak comparison, as RFC 9110 asks for GET) or is ``*``."""
    if not if_none_match:
        return False
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


class PublicAnswers:
    """The cache of one process (``app.state["public_answers"]``)."""

    def __init__(self, runner: ProjectionRunner, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self.runner = runner
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, Answer] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()  # the event loop reads, worker threads fill
        self._reading: dict[tuple[Hashable, Token], asyncio.Task[Answer]] = {}  # the loop's thread only
        self.hits = 0
        self.reads = 0

    # -- validity -----------------------------------------------------------------------------------------
    def known_token(self) -> Token | None:
        """The positions this process knows the read models have applied (no I/O); None when not known."""
        found = self.runner.known_positions(READ_MODELS)
        return None if found is None else tuple(found)

    async def token(self) -> Token | None:
        """The read models' positions now: in memory with the projections in this process, else stored."""
        if self.runner.running_here:
            return self.known_token()
        stored = await anyio.to_thread.run_sync(self.runner.positions)
        if any(n not in stored for n in READ_MODELS):
            return None
        return tuple(stored[n] for n in READ_MODELS)

    # -- entries --------------------------------------------------------------------------------------------
    def get(self, key: Hashable, token: Token | None) -> Answer | None:
        if token is None:
            return None
        with self._lock:
            found = self._entries.get(key)
            if found is None or found.token != token:
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return found

    def put(self, key: Hashable, answer: Answer) -> None:
        if answer.token is None:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= len(old.body)
            self._entries[key] = answer
            self._bytes += len(answer.body)
            while self._entries and (len(self._entries) > self.max_entries or self._bytes > self.max_bytes):
                _, out = self._entries.popitem(last=False)
                self._bytes -= len(out.body)

    def cached(self, key: Hashable, token: Token | None, build: Callable[[], tuple[bytes, Any]]) -> Answer:
        """The entry of ``key`` at ``token``, or ``build()`` (body, value) kept under it (any thread; no waiting
        for another reader: the callers of ``answer`` already are one per key)."""
        found = self.get(key, token)
        if found is not None:
            return found
        body, value = build()
        answer = Answer(token, body, etag_of(body), value)
        self.put(key, answer)
        with self._lock:
            self.reads += 1
        return answer

    async def answer(self, key: Hashable, token: Token | None,
                     build: Callable[[Token | None], tuple[bytes, Any]]) -> Answer:
        """The answer of ``key`` at ``token``: kept, or read once (``build(token)`` in a worker thread, which may
        use ``cached`` for the parts it shares) however many requests ask for it meanwhile."""
        found = self.get(key, token)
        if found is not None:
            return found
        if token is None:
            return await anyio.to_thread.run_sync(self.cached, key, None, lambda: build(None))
        reading = self._reading.get((key, token))
        if reading is None:
            reading = asyncio.ensure_future(
                anyio.to_thread.run_sync(self.cached, key, token, lambda: build(token)))
            self._reading[(key, token)] = reading
            reading.add_done_callback(lambda done: self._done(key, token, done))
        return await asyncio.shield(reading)  # a waiter that goes away does not cancel the others' reading

    def _done(self, key: Hashable, token: Token, task: "asyncio.Future[Answer]") -> None:
        self._reading.pop((key, token), None)
        if not task.cancelled():
            task.exception()  # retrieved: the waiters got it (none left: no "never retrieved" warning)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)
