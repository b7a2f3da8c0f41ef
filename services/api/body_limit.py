"""JSON bodies are small: a request whose body is JSON (``application/json`` or ``…+json``) may carry at most
``DUALRANDOM_MAX_JSON_KB`` (default 1,024 KiB); a larger one is answered 413 problem+json naming ``body`` and the
rule ``max_size`` before the handler runs, and nothing is stored. Uploads (multipart) keep
``DUALRANDOM_MAX_UPLOAD_MB``. Every field a person types has its own, much smaller limit; this one bounds what a
hostile client can make the server read, decode and (through an unbounded field) store as one event, which partners
receive over NATS."""

import json
from collections.abc import Callable

from litestar.exceptions import ClientException
from litestar.types import ASGIApp, HTTPResponseStartEvent, Receive, ReceiveMessage, Scope, Send

from services.api.errors import TYPE_BASE

PROBLEM_TYPE = TYPE_BASE + "http-413"


def is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or media.endswith(b"+json")


def too_large(limit: int) -> bytes:
    return json.dumps({
        "type": PROBLEM_TYPE, "title": "Request body too large", "status": 413,
        "detail": f"a JSON body may be at most {limit} bytes",
        "errors": [{"field": "body", "rule": "max_size", "message": f"must be at most {limit} bytes"}],
    }, ensure_ascii=False).encode()


def json_body_limit(limit: int) -> Callable[[ASGIApp], ASGIApp]:
    """The ASGI middleware: refuse a JSON body beyond ``limit`` bytes (by its ``Content-Length`` at once, else
    while it is read)."""
    body = too_large(limit)

    def middleware(app: ASGIApp) -> ASGIApp:
        async def limited(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            headers = dict(scope.get("headers") or [])
            if not is_json(headers.get(b"content-type", b"")):
                await app(scope, receive, send)
                return
            declared = headers.get(b"content-length", b"")
            if declared.isdigit() and int(declared) > limit:
                start: HTTPResponseStartEvent = {"type": "http.response.start", "status": 413, "headers": [
                    (b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ]}
                await send(start)
                await send({"type": "http.response.body", "body": body, "more_body": False})
                return
            seen = 0

            async def counted() -> ReceiveMessage:
                nonlocal seen
                message = await receive()
                if message["type"] == "http.request":
                    seen += len(message.get("body", b""))
                    if seen > limit:
                        raise ClientException(f"a JSON body may be at most {limit} bytes", status_code=413, extra={
                            "errors": [{"field": "body", "rule": "max_size", "message": f"must be at most {limit} bytes"}]})
                return message

            await app(scope, counted, send)

        return limited

    return middleware
