"""An HTTP client over the real app (SQLite file or PostgreSQL), projections running in-process.

Every response the e2e tests produce is checked against the OpenAPI contract: its status must be documented
for the operation, and its JSON body must decode into the documented schema (problem+json into ``Problem``)."""

import gzip
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.openapi.datastructures import ResponseSpec
from litestar.testing import TestClient
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from domain.access import SYSTEM
from services.api.app import create_app
from services.api.schemas import Problem
from services.application import CommandContext
from services.cli.demo import load_demo
from services.runtime import Runtime
from tests.support.accounts import account_token

PROBLEM = "application/problem+json"
_violations: list[str] = []


def contract_violation(scope: Scope, status: int, content_type: str, body: bytes) -> str | None:
    """Why a response breaks its operation's documented responses, or None."""
    handler = scope.get("route_handler")
    responses: dict[int, ResponseSpec] | None = getattr(handler, "responses", None)
    if handler is None or scope.get("path", "").startswith("/schema"):
        return None  # no operation (unknown path, the schema itself)
    where = f"{scope.get('method')} {scope.get('path_template')} -> {status}"
    if not responses or status not in responses:
        return f"{where}: status not documented (documented: {sorted(responses or {})})"
    spec = responses[status]
    media = content_type.split(";")[0].strip()
    if media == PROBLEM:
        target: Any = Problem
    elif spec.media_type == "application/json" or spec.media_type == PROBLEM:
        if media != "application/json":
            return f"{where}: answered {content_type!r}, documented {spec.media_type!r}"
        target = spec.data_container
    else:
        if media != spec.media_type.split(";")[0] and spec.media_type != "application/octet-stream":
            return f"{where}: answered {content_type!r}, documented {spec.media_type!r}"
        return None
    try:
        msgspec.json.decode(body, type=target)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        return f"{where}: body does not match {getattr(target, '__name__', target)}: {exc}{_fields(target, body)}"
    return None


def _fields(target: Any, body: bytes) -> str:
    """Every field of a struct the body gets wrong (the decoder names only the first)."""
    try:
        value = msgspec.json.decode(body)
        fields = msgspec.structs.fields(target)
    except (msgspec.DecodeError, TypeError):
        return ""
    if not isinstance(value, dict):
        return ""
    wrong = []
    for f in fields:
        if f.encode_name not in value:
            continue
        try:
            msgspec.convert(value[f.encode_name], type=f.type)
        except msgspec.ValidationError as exc:
            wrong.append(f"{f.name}: {exc}")
    return " (" + "; ".join(wrong) + ")" if len(wrong) > 1 else ""


def contract_recorder(app: ASGIApp) -> ASGIApp:
    """Records each response and checks it against the contract (the scope carries the routed handler)."""

    async def record(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        seen: dict[str, Any] = {"body": b""}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in message.get("headers", [])}
                seen["content_type"] = headers.get("content-type", "")
                seen["encoding"] = headers.get("content-encoding", "")
            elif message["type"] == "http.response.body":
                seen["body"] += message.get("body", b"")
            await send(message)

        await app(scope, receive, capture)
        if "status" in seen and not seen["content_type"].startswith("application/x-ndjson"):
            body = gzip.decompress(seen["body"]) if seen.get("encoding") == "gzip" else seen["body"]
            found = contract_violation(scope, seen["status"], seen["content_type"], body)
            if found:
                _violations.append(found)

    return record


def checked_app(runtime: Runtime) -> Litestar:
    app = create_app(runtime)
    app.asgi_handler = contract_recorder(app.asgi_handler)
    return app


@pytest.fixture(autouse=True)
def _contract() -> Iterator[None]:
    """Each e2e test's responses keep the documented contract."""
    _violations.clear()
    yield
    found = list(dict.fromkeys(_violations))
    _violations.clear()
    assert not found, "responses outside the OpenAPI contract:\n" + "\n".join(found)


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(checked_app(runtime)) as c:
        yield c


@pytest.fixture
def auth(runtime: Runtime) -> Callable[..., dict[str, str]]:
    """Headers with a token of a real account for (department, roles, subject): see tests/support/accounts.py."""

    def headers(department: str = "hj-eeb", *roles: str, subject: str | None = None) -> dict[str, str]:
        token = account_token(runtime, department, roles or ("planner",), subject)
        return {"Authorization": f"Bearer {token}"}

    return headers


@pytest.fixture
def demo(runtime: Runtime) -> Runtime:
    """The runtime with the 获嘉县 demo directory loaded and every read model caught up."""
    load_demo(runtime.app, CommandContext(actor=SYSTEM))
    runtime.runner.catch_up()
    return runtime
