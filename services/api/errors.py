"""RFC 9457 problem+json for every error: the field, the rule, and nothing changed."""

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
from services.application import ConflictError, NotFoundError
from services.infra.logging import get_logger

log = get_logger(__name__)
PROBLEM = "application/problem+json"
TYPE_BASE = "https://dualrandom.example/problems/"


class NotReadyError(Exception):
    """A read model has not reached the position the client asked for."""


def problem(status: int, kind: str, title: str, detail: str, request: Request, **extra: Any) -> Response:
    body = {
        "type": TYPE_BASE + kind,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": str(request.url.path),
        "correlation_id": request.scope.get("state", {}).get("correlation_id"),
        **extra,
    }
    headers = {"WWW-Authenticate": 'Bearer realm="dualrandom"'} if status == 401 else None
    return Response(body, status_code=status, media_type=PROBLEM, headers=headers)


def _validation(request: Request, exc: ValidationException) -> Response:
    errors = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            errors.append(
                {"field": item.get("key") or "body", "rule": "type", "message": item.get("message", ""),
                 "source": item.get("source")}
            )
    if not errors:
        errors = [{"field": "body", "rule": "syntax", "message": exc.detail}]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem(400, "invalid-request", "Invalid request", detail, request, errors=errors)


def _invalid(request: Request, exc: InvalidInputError) -> Response:
    return problem(422, "invalid-input", exc.title, exc.message, request, errors=[p.as_dict() for p in exc.problems])


def _forbidden(request: Request, exc: PermissionDeniedError) -> Response:
    extra = {"errors": [p.as_dict() for p in exc.problems]} if exc.problems else {}
    return problem(403, "forbidden", "Forbidden", exc.message, request, **extra)


def _domain(request: Request, exc: DomainError) -> Response:
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
    return problem(exc.status_code, "http-" + str(exc.status_code), exc.detail, exc.detail, request, **extra)


def _internal(request: Request, exc: Exception) -> Response:
    log.exception("unhandled_error", path=str(request.url.path), error_type=type(exc).__name__)
    return problem(500, "internal", "Internal error", "the server failed; nothing was changed", request)


EXCEPTION_HANDLERS: dict[Any, Any] = {
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
