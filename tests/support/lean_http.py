"""A lean HTTP/1.1 client for the load generators (the soak, the mixed-load benchmark).

Why not httpx: under an open-loop load httpcore's pool scans every pooled connection for every request it assigns
(``has_expired`` asks each socket whether it is readable) and every queued request against every connection. A
py-spy profile of the soak at 200 requests/s put 36 % of the generator's CPU there, and when a server slowed down
and connections piled up the generator took 80-90 % of a core, starving the servers it was measuring on the same
two cores. This client keeps what a generator needs and costs O(1) per request: one idle stack of keep-alive
connections per server, a request written in one ``write``, the answer read by ``Content-Length`` or chunks.

A connection goes back on the stack after a complete answer without ``Connection: close``; one idle longer than
``max_idle_s`` (below the server's keep-alive timeout: uvicorn's is 5 s) or closed by the server is dropped, not
reused, so a request is never written into a connection the server is closing. Errors carry httpx's names
(``ConnectError``, ``ReadTimeout``, ``RemoteProtocolError``, ``ReadError``, ``WriteError``): the soak reports
them by class name.
"""

from __future__ import annotations

import asyncio
import json as _json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit


class TransportError(Exception):
    """No HTTP answer: the connection could not be made or broke, or the answer did not come in time."""


class ConnectError(TransportError):
    pass


class ReadTimeout(TransportError):
    pass


class RemoteProtocolError(TransportError):
    pass


class ReadError(TransportError):
    pass


class WriteError(TransportError):
    pass


@dataclass
class Response:
    status_code: int
    headers: dict[str, str]  # names lower-cased; a repeated header keeps its last value
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return _json.loads(self.content)


class _Connection:
    __slots__ = ("idle_since", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.idle_since = reader, writer, 0.0

    def close(self) -> None:
        self.writer.close()


class LeanClient:
    """``await client.request(method, path, json=..., params=..., headers=...)`` against one ``base_url``."""

    def __init__(self, base_url: str, *, timeout: float = 30.0, headers: dict[str, str] | None = None,
                 max_idle: int = 32, max_idle_s: float = 2.0) -> None:
        url = urlsplit(base_url)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"an http:// base URL, not {base_url!r}")
        self.host, self.port = url.hostname, url.port or 80
        self.prefix = url.path.rstrip("/")
        self.timeout, self.max_idle, self.max_idle_s = timeout, max_idle, max_idle_s
        self.headers = {"host": f"{self.host}:{self.port}", "accept": "*/*", **{k.lower(): v for k, v in (headers or {}).items()}}
        self._idle: list[_Connection] = []
        self.opened = 0  # connections opened so far (a test reads it: keep-alive works)

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop().close()

    def _reusable(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()  # the most recently used: the least likely to have been closed
            if conn.reader.at_eof() or now - conn.idle_since > self.max_idle_s:
                conn.close()
                continue
            return conn
        return None

    async def _connect(self) -> _Connection:
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except OSError as exc:
            raise ConnectError(str(exc)) from exc
        self.opened += 1
        return _Connection(reader, writer)

    async def request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
                      headers: dict[str, str] | None = None) -> Response:
        target = self.prefix + path + (("?" + urlencode(params)) if params else "")
        fields = dict(self.headers)
        if headers:
            fields.update((k.lower(), v) for k, v in headers.items())
        body = b""
        if json is not None:
            body = _json.dumps(json, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            fields["content-type"] = "application/json"
        if body or method in {"POST", "PUT", "PATCH"}:
            fields["content-length"] = str(len(body))
        head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n"
        conn = self._reusable() or await self._connect()
        try:
            response, keep = await asyncio.wait_for(self._exchange(conn, head.encode("utf-8") + body, method),
                                                    self.timeout)
        except TimeoutError as exc:
            conn.close()
            raise ReadTimeout(f"no answer within {self.timeout} s") from exc
        except BaseException:
            conn.close()
            raise
        if keep and len(self._idle) < self.max_idle:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            conn.close()
        return response

    async def _exchange(self, conn: _Connection, data: bytes, method: str) -> tuple[Response, bool]:
        try:
            conn.writer.write(data)
            await conn.writer.drain()
        except OSError as exc:
            raise WriteError(str(exc) or type(exc).__name__) from exc
        reader = conn.reader
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            version, _, rest = lines[0].partition(" ")
            if not version.startswith("HTTP/1."):
                raise RemoteProtocolError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
            status = int(rest[:3])
            fields: dict[str, str] = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    fields[name.strip().lower()] = value.strip()
            if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
                content = b""
            elif "chunked" in fields.get("transfer-encoding", "").lower():
                content = await self._chunks(reader)
            elif "content-length" in fields:
                content = await reader.readexactly(int(fields["content-length"]))
            else:  # delimited by the end of the connection
                content = await reader.read()
                fields["connection"] = "close"
        except asyncio.IncompleteReadError as exc:
            raise RemoteProtocolError("the server closed the connection before the answer's end") from exc
        except asyncio.LimitOverrunError as exc:
            raise RemoteProtocolError("an answer's head over the reader's limit") from exc
        except (ConnectionError, OSError) as exc:
            raise ReadError(str(exc) or type(exc).__name__) from exc
        except ValueError as exc:
            raise RemoteProtocolError(f"a malformed answer: {exc}") from exc
        keep = "close" not in fields.get("connection", "").lower()
        return Response(status, fields, content), keep

    @staticmethod
    async def _chunks(reader: asyncio.StreamReader) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers, then the blank line
                    pass
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
