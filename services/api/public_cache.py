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
  are the runner's own, in memory, published after each commit (no database I/O: the same knowledge a
  ``min_position`` wait uses); with the projections in worker processes they are read from the database. Either
  way the requests that arrive together share one read in a worker thread (below). Unknown positions (just
  started): nothing is kept.
- **One reader per question**: concurrent misses of the same key at the same positions wait for one reading in a
  worker thread; the hits are answered on the event loop, without a thread.
- **Bounded**: at most ``MAX_ENTRIES`` entries and ``MAX_BYTES`` bytes of bodies, least recently used first out;
  the fast path's table of requests likewise.
- **ETag**: a hash of the body (strong); ``If-None-Match`` naming it gets 304 without a body.
- **gzip**: a client that accepts it gets the answer compressed (computed once per kept answer, on first use) with
  its own ETag (the plain one with ``-gzip``); every answer carries ``Vary: Accept-Encoding``.
- **Fast path** (``fast_path``): once a handler has answered an anonymous request, the same path and query
  (parameters in any order) is answered by an ASGI middleware in front of the handler while the read models stay
  at the same positions: no parameter parsing, dependency injection or response building. It sits inside every
  rule: the correlation id and the access log line, the refusal of overload, the rate limit and the security
  headers all apply to it as to any request; a request with an ``Authorization`` header, a session cookie or a
  body never takes it.
- **Positions, read once for many**: concurrent requests share one read of the positions (stored ones with
  ``serve --role api``, projections elsewhere; the runner's in memory otherwise); a request only uses a read that
  began after it arrived (a publication applied before a request is always in its answer).

Only the public, redacted answer is ever kept (what ``Publicity.public_results`` returns). Requests with a token,
a session cookie or ``min_position`` neither read nor fill it (the handlers read the database as before).
"""

import asyncio
import datetime as dt
import gzip
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from litestar.types import ASGIApp, Receive, Scope, Send

from projections.runner import ProjectionRunner

READ_MODELS = ("execution", "directory")  # what a public answer is read from
MAX_ENTRIES = 2048
MAX_BYTES = 64 * 1024 * 1024

Token = tuple[int, ...]


GZIP_LEVEL = 6
GZIP_MIN_BYTES = 512  # smaller answers are sent as they are
FAST_PATHS = frozenset({"/api/v1/public/results", "/public/results"})
SESSION_COOKIE = b"dualrandom_session="


@dataclass
class Answer:
    token: Token | None  # the read models' positions it was read at (None: not kept)
    body: bytes
    etag: str
    value: Any = None  # the data entries: the use case's answer (the page renders it)
    _gzipped: bytes | None = None

    def gzipped(self) -> bytes:
        """The body gzip-compressed, computed once (a race computes the same bytes twice, harmlessly)."""
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.body, GZIP_LEVEL, mtime=0)
        return self._gzipped


@dataclass(frozen=True)
class Served:
    """What the fast path answers for one path and query, while the read models stay at ``token``."""

    token: Token
    answer: Answer
    media_type: str
    year: int | None  # the page lists the years up to the current one: valid in that year only


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether ``Accept-Encoding`` accepts gzip (named, or ``*``, without ``q=0``)."""
    if not accept_encoding:
        return False
    for part in accept_encoding.lower().split(","):
        coding, _, params = part.partition(";")
        if coding.strip() in ("gzip", "x-gzip", "*"):
            q = params.strip().removeprefix("q=").strip()
            return not (params.strip().startswith("q=") and q.replace("0", "").replace(".", "") == "")
    return False


def representation(answer: Answer, media_type: str, accept_encoding: str | None,
                   if_none_match: str | None) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """(status, headers, body) of a kept answer: gzip when accepted (and worth it), 304 when ``If-None-Match``
    names the ETag of the representation chosen."""
    body, etag = answer.body, answer.etag
    headers = [(b"content-type", media_type.encode()), (b"cache-control", b"no-cache"),
               (b"vary", b"Accept-Encoding")]
    if len(body) >= GZIP_MIN_BYTES and accepts_gzip(accept_encoding):
        body, etag = answer.gzipped(), etag[:-1] + '-gzip"'
        headers.append((b"content-encoding", b"gzip"))
    headers.append((b"etag", etag.encode()))
    if not_modified(if_none_match, etag):
        return 304, [h for h in headers if h[0] != b"content-type"], b""
    return 200, headers, body


def query_key(query_string: bytes) -> Hashable:
    """The query string with its parameters in a fixed order (as given when a name repeats: order may count)."""
    parts = query_string.split(b"&")
    names = [p.partition(b"=")[0] for p in parts]
    return tuple(sorted(parts)) if len(set(names)) == len(names) else query_string


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
        self._served: OrderedDict[Hashable, Served] = OrderedDict()  # the fast path's (the loop's thread only)
        self._served_bytes = 0  # bounded as the entries are: it may hold answers the entries let go
        self.fast_hits = 0
        self._current: asyncio.Future[Token | None] | None = None  # the read of the stored positions in flight
        self._next: asyncio.Future[Token | None] | None = None  # the read after it, shared by who came meanwhile
        self.position_reads = 0

    # -- validity -----------------------------------------------------------------------------------------
    def known_token(self) -> Token | None:
        """The positions this process knows the read models have applied (no I/O); None when not known."""
        found = self.runner.known_positions(READ_MODELS)
        return None if found is None else tuple(found)

    async def token(self) -> Token | None:
        """The read models' positions now: in memory with the projections in this process, else stored; either way
        one read in a worker thread, shared by the requests that arrived before it began.

        Why a thread even for the in-memory positions: with the projections, the relay and the signer in this
        process (one plain ``serve``), a fast answer that never waits on anything is written in the same turn of
        the event loop that read its request, and under 200 connections some connections waited a second while
        others were served again and again (page p99 0.9-1.2 s against 0.15 s with this; tests/bench/README.md,
        "the shared read in one serve"). Waiting for one shared read lets every request of a turn in before any
        is answered, as it is in ``serve --role api``."""
        if self._current is None:
            found = self._start_read()
        else:  # the read in flight may have begun before this request: the next one, shared
            if self._next is None:
                self._next = asyncio.get_running_loop().create_future()
            found = self._next
        return await asyncio.shield(found)

    def _read_token(self) -> Token | None:  # a worker thread
        if self.runner.running_here:
            return self.known_token()
        stored = self.runner.positions()
        if any(n not in stored for n in READ_MODELS):
            return None
        return tuple(stored[n] for n in READ_MODELS)

    def _start_read(self) -> "asyncio.Future[Token | None]":
        self.position_reads += 1
        reading = asyncio.ensure_future(anyio.to_thread.run_sync(self._read_token))
        self._current = reading
        reading.add_done_callback(self._read_done)
        return reading

    def _read_done(self, done: "asyncio.Future[Token | None]") -> None:
        if self._current is done:
            self._current = None
        if not done.cancelled():
            done.exception()  # retrieved: the waiters got it
        waiting, self._next = self._next, None
        if waiting is None or waiting.done():
            return
        following = self._start_read()

        def hand_on(read: "asyncio.Future[Token | None]") -> None:
            if waiting.done():
                return
            if read.cancelled():
                waiting.cancel()
            elif (error := read.exception()) is not None:
                waiting.set_exception(error)
            else:
                waiting.set_result(read.result())

        following.add_done_callback(hand_on)

    # -- the fast path --------------------------------------------------------------------------------------
    def remember(self, scope: Scope, answer: Answer, media_type: str, year: int | None = None) -> None:
        """Let the fast path answer this request's path and query with ``answer`` while its token holds (an
        anonymous 200 just built by a handler)."""
        if answer.token is None or scope.get("path") not in FAST_PATHS:
            return
        key = (scope["path"], query_key(scope.get("query_string", b"")))
        old = self._served.pop(key, None)
        if old is not None:
            self._served_bytes -= len(old.answer.body)
        self._served[key] = Served(answer.token, answer, media_type, year)
        self._served_bytes += len(answer.body)
        while self._served and (len(self._served) > self.max_entries or self._served_bytes > self.max_bytes):
            _, out = self._served.popitem(last=False)
            self._served_bytes -= len(out.answer.body)

    async def serve_fast(self, scope: Scope, send: Send) -> bool:
        """Answer the request when the fast path knows its answer (see the module's doc); False: not answered."""
        path = scope.get("path")
        if scope.get("method") != "GET" or path not in FAST_PATHS or not self._served:
            return False
        accept_encoding = if_none_match = None
        for name, value in scope["headers"]:
            if name == b"authorization" or name == b"transfer-encoding":
                return False
            if name == b"cookie" and SESSION_COOKIE in value:
                return False
            if name == b"content-length" and value.strip() not in (b"", b"0"):
                return False
            if name == b"accept-encoding":
                accept_encoding = value.decode("latin-1")
            elif name == b"if-none-match":
                if_none_match = value.decode("latin-1")
        key = (path, query_key(scope.get("query_string", b"")))
        served = self._served.get(key)
        if served is None or (served.year is not None and served.year != dt.date.today().year):
            return False
        if await self.token() != served.token:
            return False
        # Yield once before answering: an answer that never suspends is written within the same turn of the event
        # loop as its request was read, and under 200 connections some connections waited over a second while
        # others were served (wrk p99 1.3 s -> 0.2-0.5 s with this, same throughput; tests/bench/README.md).
        await asyncio.sleep(0)
        status, headers, body = representation(served.answer, served.media_type, accept_encoding, if_none_match)
        headers.append((b"content-length", str(len(body)).encode()))
        if key in self._served:  # (another request may have pushed it out meanwhile)
            self._served.move_to_end(key)
        self.fast_hits += 1
        self.hits += 1
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})
        return True

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
        self._served.clear()
        self._served_bytes = 0

    def __len__(self) -> int:
        return len(self._entries)


def fast_path(app: ASGIApp) -> ASGIApp:
    """The fast path's ASGI middleware: innermost of the public routes' middleware (after the rate limit), so that
    the app's middleware (correlation id, access log, overload) and ``before_send`` (security headers) apply."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            answers: PublicAnswers = scope["app"].state["public_answers"]
            if await answers.serve_fast(scope, send):
                return
        await app(scope, receive, send)

    return middleware
