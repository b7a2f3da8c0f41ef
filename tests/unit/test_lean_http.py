"""The load generators' lean HTTP/1.1 client against a scripted server on a real socket."""

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable

import pytest

from tests.support.lean_http import ConnectError, LeanClient, ReadTimeout, RemoteProtocolError

Handler = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]  # the request's bytes -> keep the connection


async def serve(handler: Handler) -> tuple[asyncio.AbstractServer, str, list[bytes]]:
    """A server that reads each request (head and Content-Length body) and lets ``handler`` answer it."""
    seen: list[bytes] = []

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                request = head + await reader.readexactly(length)
                seen.append(request)
                if not await handler(request, writer):
                    return
        finally:
            writer.close()

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}", seen


def answer(status: int, body: bytes, *extra: str) -> bytes:
    head = f"HTTP/1.1 {status} X\r\ncontent-length: {len(body)}\r\n" + "".join(f"{h}\r\n" for h in extra)
    return head.encode() + b"\r\n" + body


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0.001)  # polling a condition, with a deadline
    raise AssertionError("condition not reached")


def test_keep_alive_reuses_one_connection_and_sends_the_request_as_given() -> None:
    async def main() -> None:
        async def ok(request: bytes, w: asyncio.StreamWriter) -> bool:
            w.write(answer(201, b'{"id":"t-1"}'))
            return True

        server, url, seen = await serve(ok)
        client = LeanClient(url + "/api", headers={"Authorization": "Bearer x"})
        r = await client.request("POST", "/targets", json={"name": "获嘉县示例"})
        assert (r.status_code, r.json()) == (201, {"id": "t-1"})
        r = await client.request("GET", "/targets", params={"q": "获嘉", "limit": 20})
        r = await client.request("GET", "/targets/1")
        assert client.opened == 1
        post = seen[0]
        assert post.startswith(b"POST /api/targets HTTP/1.1\r\n")
        assert b"\r\nauthorization: Bearer x\r\n" in post
        assert post.endswith('\r\n\r\n{"name":"获嘉县示例"}'.encode())
        assert seen[1].startswith(b"GET /api/targets?q=%E8%8E%B7%E5%98%89&limit=20 HTTP/1.1\r\n")
        await client.aclose()
        server.close()

    asyncio.run(main())


def test_chunked_answers_and_connection_close() -> None:
    async def main() -> None:
        async def chunked(request: bytes, w: asyncio.StreamWriter) -> bool:
            if b"/close" in request:
                w.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nto the end")
                await w.drain()
                return False
            w.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
            return True

        server, url, _ = await serve(chunked)
        client = LeanClient(url)
        assert (await client.request("GET", "/a")).content == b"abcde"
        assert (await client.request("GET", "/b")).content == b"abcde"
        assert client.opened == 1
        assert (await client.request("GET", "/close")).content == b"to the end"
        assert (await client.request("GET", "/c")).content == b"abcde"
        assert client.opened == 2  # the closed connection was not reused
        await client.aclose()
        server.close()

    asyncio.run(main())


def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    async def main() -> None:
        async def once(request: bytes, w: asyncio.StreamWriter) -> bool:
            w.write(answer(200, b"ok"))  # keep-alive announced, then the server closes (its idle timeout)
            await w.drain()
            return False

        server, url, seen = await serve(once)
        client = LeanClient(url)
        await client.request("GET", "/1")
        await _until(lambda: all(c.reader.at_eof() for c in client._idle))
        assert (await client.request("GET", "/2")).status_code == 200
        assert client.opened == 2 and len(seen) == 2
        await client.aclose()
        server.close()

    asyncio.run(main())


def test_failures_are_transport_errors_named_as_httpx_names_them() -> None:
    async def main() -> None:
        with socket.socket() as s:  # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with pytest.raises(ConnectError):
            await LeanClient(f"http://127.0.0.1:{port}").request("GET", "/")

        async def cut(request: bytes, w: asyncio.StreamWriter) -> bool:
            w.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this")
            await w.drain()
            return False

        server, url, _ = await serve(cut)
        with pytest.raises(RemoteProtocolError):
            await LeanClient(url).request("GET", "/")
        server.close()

        answered = asyncio.Event()

        async def silent(request: bytes, w: asyncio.StreamWriter) -> bool:
            await answered.wait()
            return False

        server, url, _ = await serve(silent)
        with pytest.raises(ReadTimeout):
            await LeanClient(url, timeout=0.05).request("GET", "/")
        answered.set()
        server.close()

    asyncio.run(main())


def test_json_answers_decode() -> None:
    async def main() -> None:
        async def problem(request: bytes, w: asyncio.StreamWriter) -> bool:
            w.write(answer(422, json.dumps({"title": "无效"}).encode(), "content-type: application/problem+json"))
            return True

        server, url, _ = await serve(problem)
        r = await LeanClient(url).request("PATCH", "/x", json={})
        assert r.status_code == 422 and r.json() == {"title": "无效"}
        assert r.headers["content-type"] == "application/problem+json"
        server.close()

    asyncio.run(main())
