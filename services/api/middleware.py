"""Request plumbing: correlation ids (in every log line of the request) and authentication (bearer token or
session cookie with CSRF header, checked against the account store on every request)."""

import hashlib
import hmac
import re
import sqlite3
import time
import uuid
from collections.abc import Callable
from typing import Any

import anyio.to_thread
import msgspec
import structlog
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from domain.access import Actor
from domain.errors import FieldProblem, InvalidInputError
from domain.text import CONTROL_RULE, control_character, control_message, normalise_newlines
from domain.values import Role
from projections.directory.projection import TABLES as DIRECTORY_TABLES
from services.api.auth import AuthError, verify
from services.infra.accounts_store import AsyncPrincipalReader, Principal, SqlitePrincipalReader
from services.infra.logging import get_logger

log = get_logger("dualrandom.http")
_CORRELATION = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
MAX_AUTHORIZATION_BYTES = 8192  # our tokens are ~300 bytes
PUBLIC_PATHS = {"/health", "/ready", "/metrics", "/api/v1/public/results"}


def correlation_of(given: str) -> str:
    """The request's ``X-Correlation-ID`` when well formed, else a new one."""
    return given if _CORRELATION.match(given) else str(uuid.uuid4())


def correlation_middleware(app: ASGIApp) -> ASGIApp:
    """Take ``X-Correlation-ID`` when well formed, else make one; bind it for logs; echo it back."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        correlation_id = correlation_of(headers.get(b"x-correlation-id", b"").decode("latin-1"))
        scope.setdefault("state", {})["correlation_id"] = correlation_id
        status: dict[str, int] = {}
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-correlation-id", correlation_id.encode())]
            await send(message)

        # Bound for the request's task (each ASGI request runs in its own copy of the context, and litestar
        # hands it on to the worker thread of a sync handler): every log line of the request carries it.
        tokens = structlog.contextvars.bind_contextvars(correlation_id=correlation_id)
        try:
            await app(scope, receive, send_wrapper)
        finally:
            log.info(
                "request",
                method=scope.get("method"),
                path=scope.get("path"),
                status=status.get("code", "raised"),
                ms=round((time.perf_counter() - started) * 1000, 2),
            )
            structlog.contextvars.reset_contextvars(**tokens)

    return middleware


SESSION_COOKIE = "dualrandom_session"
CSRF_COOKIE = "dualrandom_csrf"
CSRF_HEADER = "x-csrf-token"
LOGIN_PATH = "/api/v1/session"
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def csrf_token(secret: str, token_id: str) -> str:
    """The CSRF token of a session: an HMAC of its id (double submit: a cookie the page reads, sent back in the
    ``X-CSRF-Token`` header; another site can neither read it nor compute it)."""
    return hmac.new(secret.encode(), f"csrf:{token_id}".encode(), hashlib.sha256).hexdigest()


class PrincipalLookup:
    """The per-request account look-up (``app.state.principals``), never a blocking wait on the event loop:
    on PostgreSQL an async prepared read, or the account kept from an earlier one until a change is notified
    (``AsyncPrincipalReader``, ``DUALRANDOM_ACCOUNT_KEEP_SECONDS``); on a SQLite file a read on the loop's own
    connection that fails at once rather than wait (``SqlitePrincipalReader``), then the store's read in a worker
    thread. Opened and closed by the app's lifespan."""

    def __init__(self, engine: Any, authenticate: Callable[[str], Principal | None], keep_seconds: float = 5) -> None:
        self._engine, self._authenticate = engine, authenticate
        self._keep_seconds = keep_seconds
        self._reader: AsyncPrincipalReader | None = None
        self._sqlite: SqlitePrincipalReader | None = None

    async def open(self) -> None:
        engine = self._engine
        if engine.dialect.name == "postgresql":
            reader = AsyncPrincipalReader(engine.url, DIRECTORY_TABLES["inspector"], ttl=self._keep_seconds)
            await reader.open()
            self._reader = reader
        elif engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            self._sqlite = SqlitePrincipalReader(engine.url.database, DIRECTORY_TABLES["inspector"])

    async def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            await reader.close()
        local, self._sqlite = self._sqlite, None
        if local is not None:
            local.close()

    async def __call__(self, token_id: str) -> Principal | None:
        if self._reader is not None:
            return await self._reader.principal(token_id, time.time())
        if self._sqlite is not None:
            try:
                return self._sqlite.principal(token_id, time.time())
            except sqlite3.OperationalError:
                pass  # the file is busy: wait in a worker thread, not here
        return await anyio.to_thread.run_sync(self._authenticate, token_id)


class BearerAuthMiddleware(AbstractAuthenticationMiddleware):
    """Every request outside PUBLIC_PATHS and the schema must carry a valid bearer token, or the session cookie
    (then a state-changing request also carries the CSRF header). The token's id is looked up (``PrincipalLookup``):
    a revoked token, a deactivated account or a removed role takes effect at the next request (in another process
    once PostgreSQL has delivered the change's notification), and the actor has the account's current department,
    roles and inspector link (not what the token claimed)."""

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        method = connection.scope.get("method", "")
        if connection.scope["path"] == LOGIN_PATH and method == "POST":
            return AuthenticationResult(user=None, auth=None)  # logging in: the password authenticates
        raw = next((v for k, v in connection.scope["headers"] if k == b"authorization"), b"")
        if len(raw) > MAX_AUTHORIZATION_BYTES:  # refused before decoding: nothing large is worked on the event loop
            raise NotAuthorizedException(f"the Authorization header is longer than {MAX_AUTHORIZATION_BYTES} bytes")
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        by_cookie = False
        if not header:
            token = connection.cookies.get(SESSION_COOKIE, "")
            by_cookie = bool(token)
            scheme = "bearer" if by_cookie else ""
            if len(token) > MAX_AUTHORIZATION_BYTES:
                raise NotAuthorizedException(f"the session cookie is longer than {MAX_AUTHORIZATION_BYTES} bytes")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthorizedException(
                "a bearer token (Authorization: Bearer <token>) or a session (POST /api/v1/session) is required"
            )
        runtime = connection.app.state.runtime
        secret = runtime.settings.secret_key
        try:
            _, token_id = verify(secret, token.strip())
        except AuthError as exc:
            raise NotAuthorizedException(str(exc)) from None
        found = await connection.app.state.principals(token_id)  # the account as stored now
        if found is None:
            raise NotAuthorizedException("the token was revoked or its account is deactivated (log in again)")
        if by_cookie and method not in _SAFE_METHODS:
            given = connection.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(given.encode(), csrf_token(secret, token_id).encode()):
                raise PermissionDeniedException(
                    "a request made with the session cookie must carry the X-CSRF-Token header given at login"
                )
        actor = Actor(subject=found.account_id, department=found.department, roles=found.roles,
                      inspector=found.inspector, name=found.display_name)
        if method not in _SAFE_METHODS and connection.scope["path"].startswith(API_PREFIX):
            auditors_change_nothing(actor, connection.scope.get("route_handler"))
        connection.scope.setdefault("state", {})["token_id"] = token_id
        structlog.contextvars.bind_contextvars(actor=actor.subject, department=actor.department)
        return AuthenticationResult(user=actor, auth=token_id)


API_PREFIX = "/api/v1/"


def auditors_change_nothing(actor: Actor, handler: Any) -> None:
    """A write (any method but GET, HEAD, OPTIONS) under ``/api/v1`` by a token whose only role is ``auditor``
    is refused (auditors read everything, change nothing), before the body is read, so the answer is 403
    whatever the body; logging in and out and one's own password (``opt={"own_credentials": True}``) are not
    changes to the records. Checked here rather than by a guard: litestar copies the route handler for every
    guard of every request."""
    if actor.roles and set(actor.roles) <= {Role.AUDITOR.value} and not (
        handler is not None and handler.opt.get("own_credentials")
    ):
        raise PermissionDeniedException("auditors read everything and change nothing")


def _first_control(value: Any, path: str) -> tuple[str, str] | None:
    """(path, U+XXXX) of the first text in a decoded JSON value (keys too) with a refused control character."""
    if isinstance(value, str):
        code = control_character(normalise_newlines(value))
        return (path or "body", code) if code else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            found = _first_control(str(key), where) or _first_control(item, where)
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _first_control(item, f"{path}[{i}]")
            if found:
                return found
    return None


async def refuse_control_characters(request: Request) -> None:
    """One rule for every text that enters (``domain.text``), before any handler: a query parameter or a text in
    a JSON body with a C0 control character other than tab, line feed or carriage return is a 422 naming it.
    JSON writes such a character only as a ``\\u00XX`` escape, so a body without ``\\u00`` is not decoded here."""
    problems = []
    for key, value in request.query_params.items():
        code = control_character(normalise_newlines(key + value))
        if code:
            problems.append(FieldProblem(key if control_character(key) is None else "query", CONTROL_RULE,
                                         control_message(code)))
    if request.method in {"POST", "PUT", "PATCH"} and "json" in request.headers.get("content-type", ""):
        body = await request.body()
        if b"\\u00" in body:
            try:
                found = _first_control(msgspec.json.decode(body), "")
            except msgspec.DecodeError:
                found = None  # not JSON: the handler's decoder answers that
            if found:
                problems.append(FieldProblem(found[0], CONTROL_RULE, control_message(found[1])))
    if problems:
        raise InvalidInputError(problems, "control characters are not accepted; nothing was recorded")
