"""RFC 9457 problem+json for every error: the field, the rule, and nothing changed."""

import re
from typing import Any

from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)

from domain.errors import DomainError, InvalidInputError, PermissionDeniedError
from services.api.middleware import correlation_of
from services.application import ConflictError, NotFoundError
from services.infra.logging import get_logger

log = get_logger(__name__)
PROBLEM = "application/problem+json"
TYPE_BASE = "https://dualrandom.example/problems/"


class NotReadyError(Exception):
    """A read model has not reached the position the client asked for."""


def problem(status: int, kind: str, title: str, detail: str, request: Request, *,
            headers: dict[str, str] | None = None, **extra: Any) -> Response:
    headers = dict(headers or {})
    correlation_id = request.scope.get("state", {}).get("correlation_id")
    if correlation_id is None:  # no route matched (404, 405): the correlation middleware did not run
        correlation_id = correlation_of(request.headers.get("x-correlation-id", ""))
        headers["X-Correlation-ID"] = correlation_id
    body = {
        "type": TYPE_BASE + kind,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": str(request.url.path),
        "correlation_id": correlation_id,
        **extra,
    }
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="dualrandom"'
    return Response(body, status_code=status, media_type=PROBLEM, headers=headers or None)


_MISSING_PARAMETER = re.compile(r"^Missing required (?P<source>\w+) parameter '(?P<name>[^']+)'")


def _validation(request: Request, exc: ValidationException) -> Response:
    errors = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            errors.append(
                {"field": item.get("key") or "body", "rule": item.get("rule", "type"),
                 "message": item.get("message", ""), "source": item.get("source")}
            )
    if not errors and (missing := _MISSING_PARAMETER.match(exc.detail)):  # litestar names it only in its text
        errors = [{"field": missing.group("name"), "rule": "required", "message": "is required",
                   "source": missing.group("source")}]
    if not errors:
        errors = [{"field": "body", "rule": "syntax", "message": exc.detail}]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem(400, "invalid-request", "Invalid request", detail, request, errors=errors)


def _invalid(request: Request, exc: InvalidInputError) -> Response:
    return problem(422, "invalid-input", exc.title, exc.message, request, errors=[p.as_dict() for p in exc.problems])


def _forbidden(request: Request, exc: PermissionDeniedError) -> Response:
    extra: dict[str, Any] = {"errors": [p.as_dict() for p in exc.problems]} if exc.problems else {}
    return problem(403, "forbidden", "Forbidden", exc.message, request, **extra)


def _domain(request: Request, exc: DomainError) -> Response:
    status = getattr(exc, "status", 422)  # a rule that is a conflict with the state (409) says so
    if status == 409:
        retry = getattr(exc, "retry_after", None)
        return problem(409, "conflict", exc.title, exc.message, request, errors=[p.as_dict() for p in exc.problems],
                       headers={"Retry-After": str(retry)} if retry is not None else None)
    return problem(422, "domain-rule", exc.title, exc.message, request, errors=[p.as_dict() for p in exc.problems])


def _not_found(request: Request, exc: NotFoundError) -> Response:
    return problem(404, "not-found", "Not found", str(exc), request)


def _conflict(request: Request, exc: ConflictError) -> Response:
    return problem(409, "conflict", "Conflict", str(exc), request)


def _not_ready(request: Request, exc: NotReadyError) -> Response:
    return problem(503, "not-ready", "Read model behind", str(exc), request, errors=[{"field": "min_position", "rule": "reachable", "message": str(exc)}])


def _http(request: Request, exc: HTTPException) -> Response:
    if isinstance(exc, NotAuthorizedException):
        return problem(401, "unauthenticated", "Unauthenticated", exc.detail, request)
    if isinstance(exc, PermissionDeniedException):
        return problem(403, "forbidden", "Forbidden", exc.detail, request)
    if isinstance(exc, NotFoundException):
        return problem(404, "not-found", "Not found", exc.detail, request)
    extra = exc.extra if isinstance(exc.extra, dict) else {}
    headers = {k.title(): v for k, v in (exc.headers or {}).items()}  # 405: Allow; 429: RateLimit-*
    if exc.status_code == 429 and "Ratelimit-Reset" in headers:
        headers["Retry-After"] = headers["Ratelimit-Reset"]
    return problem(exc.status_code, "http-" + str(exc.status_code), exc.detail, exc.detail, request,
                   headers=headers, **extra)


def _too_deep(request: Request, exc: RecursionError) -> Response:
    """msgspec refuses a JSON document nested beyond its limit with a RecursionError, before any handler."""
    if request.method in {"POST", "PUT", "PATCH"}:
        return problem(400, "invalid-request", "Invalid request", "the JSON body is nested too deeply", request,
                       errors=[{"field": "body", "rule": "depth", "message": "nested too deeply"}])
    return _internal(request, exc)


def _not_utf8(request: Request, exc: UnicodeDecodeError) -> Response:
    """A form field (a multipart part without a file name) whose bytes are not UTF-8 text."""
    if request.method in {"POST", "PUT", "PATCH"}:
        return problem(400, "invalid-request", "Invalid request", "a form field is not UTF-8 text", request,
                       errors=[{"field": "body", "rule": "encoding", "message": "form fields must be UTF-8 text"}])
    return _internal(request, exc)


def _internal(request: Request, exc: Exception) -> Response:
    log.exception("unhandled_error", path=str(request.url.path), error_type=type(exc).__name__)
    return problem(500, "internal", "Internal error", "the server failed; nothing was changed", request)


EXCEPTION_HANDLERS: dict[Any, Any] = {
    RecursionError: _too_deep,
    UnicodeDecodeError: _not_utf8,
    ValidationException: _validation,
    InvalidInputError: _invalid,
    PermissionDeniedError: _forbidden,
    DomainError: _domain,
    NotFoundError: _not_found,
    ConflictError: _conflict,
    NotReadyError: _not_ready,
    HTTPException: _http,
    Exception: _internal,
}
