"""Accounts, sessions (log in, log out), API tokens and the security log."""

import re
import time
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, delete, get, patch, post, put
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.exceptions import PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath, JSONBody, Parameter

from domain.access import Actor
from domain.errors import FieldProblem, InvalidInputError
from domain.values import Role
from services.api.auth import parse_duration
from services.api.common import READ, SECURED, WRITE_PROBLEMS, AnyRequest, answers, ctx, runtime
from services.api.errors import problem
from services.api.middleware import CSRF_COOKIE, SESSION_COOKIE, csrf_token
from services.api.schemas import (
    AccountChangeIn,
    AccountIn,
    AccountView,
    LoginIn,
    PasswordIn,
    ReasonIn,
    Revoked,
    SecurityLogEntry,
    Session,
    TokenIn,
    TokenIssued,
)
from services.infra.settings import Settings
from services.usecases.accounts import Issued, LoginRefused

ADMIN = " Admins only."
_DURATION_SHAPE = re.compile(r"^\d+[smhd]$")


def _source(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else ""


def _ttl(text: str | None, default: str, field: str = "ttl") -> int:
    try:
        return parse_duration(text or default)
    except ValueError as exc:
        rule = "max" if _DURATION_SHAPE.match((text or default).strip()) else "format"
        raise InvalidInputError([FieldProblem(field, rule, str(exc))]) from None


def _given(struct: msgspec.Struct) -> dict[str, Any]:
    return {k: v for k, v in msgspec.structs.asdict(struct).items() if v is not msgspec.UNSET}


def session_cookies(settings: Settings, issued: Issued) -> tuple[str, list[Cookie]]:
    """The CSRF token and the two cookies of a new session (the API's login and the login page set the same)."""
    csrf = csrf_token(settings.secret_key, issued.token_id)
    secure = settings.session_cookie_secure
    max_age = max(1, issued.expires_at - int(time.time()))
    return csrf, [
        Cookie(key=SESSION_COOKIE, value=issued.token, httponly=True, samesite="strict", secure=secure, path="/",
               max_age=max_age),
        Cookie(key=CSRF_COOKIE, value=csrf, httponly=False, samesite="strict", secure=secure, path="/",
               max_age=max_age),
    ]


# Logging out (API or page) clears both cookies.
CLEARED_COOKIES = [
    Cookie(key=SESSION_COOKIE, value="", max_age=0, path="/", httponly=True, samesite="strict"),
    Cookie(key=CSRF_COOKIE, value="", max_age=0, path="/", samesite="strict"),
]


def admins_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Account management is for admins: refused (403) before the body is read, so a non-admin learns nothing
    of the body's shape from a 400 (the use case checks the same again)."""
    user = connection.scope.get("user")
    if not (isinstance(user, Actor) and user.has(Role.ADMIN)):
        raise PermissionDeniedException("only an admin manages accounts")


@post("/session", status_code=201, sync_to_thread=True, opt={"own_credentials": True},
      responses=answers(201, Session, (400, 401, 422), also=(429,)),
      summary="Log in", description="Username and password -> a session: an HttpOnly, SameSite=Strict cookie "
      "`dualrandom_session` (Secure unless DUALRANDOM_SESSION_COOKIE_SECURE=false) and a readable cookie "
      "`dualrandom_csrf`; every state-changing request made with the cookie must send its value in "
      "`X-CSRF-Token`. The answer also carries `token`, usable as a bearer token instead. A wrong password is "
      "answered 401 whatever was wrong (unknown user, wrong password, inactive); from the 3rd consecutive failure "
      "the account waits 1, 2, ... s between attempts, from the 5th it is locked for 15 minutes (429 with "
      "`Retry-After`). Every attempt is in the security log.")
def login(request: Request[Any, Any, Any], data: JSONBody[LoginIn]) -> Response[Any]:
    rt = runtime(request)
    try:
        issued = rt.accounts.login(data.username, data.password, _source(request),
                                   _ttl(None, rt.settings.session_ttl))
    except LoginRefused as exc:
        if exc.retry_after:
            return problem(429, "locked", "Too many failed logins",
                           "too many failed logins: the account is locked for a while", request,
                           headers={"Retry-After": str(exc.retry_after)})
        return problem(401, "unauthorized", "Unauthorized", str(exc), request)
    csrf, cookies = session_cookies(rt.settings, issued)
    body = {"token": issued.token, "token_id": issued.token_id, "csrf_token": csrf,
            "expires_at": issued.expires_at, "account": issued.account}
    return Response(body, status_code=201, cookies=cookies)


@get("/session", sync_to_thread=True, responses=answers(200, AccountView, READ), summary="Who am I",
     description="The account of the token or session, as stored now (current department and roles).")
def whoami(request: AnyRequest) -> dict[str, Any]:
    return runtime(request).accounts.get(request.user, request.user.subject)


@delete("/session", status_code=200, sync_to_thread=True, opt={"own_credentials": True}, responses=answers(200, Revoked, READ),
        summary="Log out", description="Revokes the session or token this request is made with (refused from the "
        "next request on) and clears the cookies.")
def logout(request: AnyRequest) -> Response[dict[str, Any]]:
    rt = runtime(request)
    token_id = request.scope["state"]["token_id"]
    rt.accounts.logout(request.user, token_id, _source(request))
    return Response({"token_id": token_id, "revoked": True}, status_code=200, cookies=CLEARED_COOKIES)


@get("/accounts", sync_to_thread=True, guards=[admins_only], responses=answers(200, list[AccountView], READ), summary="Accounts",
     description="Every account, by username." + ADMIN)
def list_accounts(request: AnyRequest) -> list[dict[str, Any]]:
    return runtime(request).accounts.list_all(request.user)


@post("/accounts", status_code=201, sync_to_thread=True, guards=[admins_only], responses=answers(201, AccountView, WRITE_PROBLEMS),
      summary="Create an account", description="A person (with a first password) or a service (`kind: service`, "
      "tokens only). The department must be in the directory (422 `unknown_department`)." + ADMIN)
def create_account(request: AnyRequest, data: JSONBody[AccountIn]) -> dict[str, Any]:
    values = _given(data)
    password = values.pop("password", None)
    if values.get("kind", "person") == "person" and password is None:
        raise InvalidInputError([FieldProblem("password", "required", "a person's account needs a first password")])
    return runtime(request).accounts.create(ctx(request), values, password)


@get("/accounts/{account_id:str}", sync_to_thread=True, responses=answers(200, AccountView, READ),
     summary="An account", description="Admins, or the account itself.")
def get_account(request: AnyRequest, account_id: FromPath[str]) -> dict[str, Any]:
    return runtime(request).accounts.get(request.user, account_id)


@patch("/accounts/{account_id:str}", sync_to_thread=True, guards=[admins_only], responses=answers(200, AccountView, WRITE_PROBLEMS),
       summary="Change an account", description="Roles, department, display name or inspector link, with a "
       "reason; takes effect at the account's next request (its tokens act with the new roles)." + ADMIN)
def change_account(request: AnyRequest, account_id: FromPath[str], data: JSONBody[AccountChangeIn]) -> dict[str, Any]:
    return runtime(request).accounts.change(ctx(request), account_id, _given(data))


@post("/accounts/{account_id:str}/deactivate", status_code=200, sync_to_thread=True, guards=[admins_only],
      responses=answers(200, AccountView, WRITE_PROBLEMS), summary="Deactivate an account",
      description="Its sessions and tokens are refused from the next request on." + ADMIN)
def deactivate(request: AnyRequest, account_id: FromPath[str], data: JSONBody[ReasonIn]) -> dict[str, Any]:
    return runtime(request).accounts.set_active(ctx(request), account_id, False, data.reason)


@post("/accounts/{account_id:str}/reactivate", status_code=200, sync_to_thread=True, guards=[admins_only],
      responses=answers(200, AccountView, WRITE_PROBLEMS), summary="Reactivate an account", description=ADMIN)
def reactivate(request: AnyRequest, account_id: FromPath[str], data: JSONBody[ReasonIn]) -> dict[str, Any]:
    return runtime(request).accounts.set_active(ctx(request), account_id, True, data.reason)


@put("/accounts/{account_id:str}/password", status_code=200, sync_to_thread=True, opt={"own_credentials": True},
     responses=answers(200, AccountView, WRITE_PROBLEMS), summary="Set a password",
     description="A person changes their own (with `current_password`); an admin resets anyone's (and clears a "
     "lockout).")
def set_password(request: AnyRequest, account_id: FromPath[str], data: JSONBody[PasswordIn]) -> dict[str, Any]:
    accounts = runtime(request).accounts
    accounts.set_password(ctx(request), account_id, data.password, data.current_password, _source(request))
    return accounts.get(request.user, account_id)


@post("/accounts/{account_id:str}/tokens", status_code=201, sync_to_thread=True, guards=[admins_only],
      responses=answers(201, TokenIssued, WRITE_PROBLEMS), summary="Issue a named API token",
      description="The token is shown once; only its id is stored. It acts with the account's current department "
      "and roles." + ADMIN)
def issue(request: AnyRequest, account_id: FromPath[str], data: JSONBody[TokenIn]) -> dict[str, Any]:
    rt = runtime(request)
    issued = rt.accounts.issue(ctx(request), account_id, data.name, _ttl(data.ttl, rt.settings.token_default_ttl))
    return {"token": issued.token, "token_id": issued.token_id, "expires_at": issued.expires_at,
            "account": issued.account}


@delete("/accounts/{account_id:str}/tokens/{token_id:str}", status_code=200, sync_to_thread=True,
        responses=answers(200, Revoked, WRITE_PROBLEMS), summary="Revoke a token",
        description="Refused from the next request on. Admins, or the account itself.")
def revoke(request: AnyRequest, account_id: FromPath[str], token_id: FromPath[str]) -> dict[str, Any]:
    from services.application import NotFoundError

    if not runtime(request).accounts.revoke(ctx(request), account_id, token_id):
        raise NotFoundError("token", token_id)
    return {"token_id": token_id, "revoked": True}


@get("/security-log", sync_to_thread=True, responses=answers(200, list[SecurityLogEntry], READ),
     summary="The security log", description="Logins (every outcome), logouts, lockouts and password changes: who, "
     "when, from where, outcome; newest first. Auditors and admins.")
def security_log(
    request: AnyRequest,
    limit: Annotated[int, Parameter(ge=1, le=500, description="entries")] = 100,
    before: Annotated[int | None, Parameter(ge=0, le=2**63 - 1, description="entries older than this id")] = None,
) -> list[dict[str, Any]]:
    return runtime(request).accounts.security_log(request.user, limit, before)


def router() -> Router:
    return Router(path="/", route_handlers=[Router(path="/", tags=["accounts"], route_handlers=[login]), Router(
        path="/", tags=["accounts"], security=SECURED, route_handlers=[whoami, logout, list_accounts, create_account, get_account, change_account, deactivate, reactivate,
        set_password, issue, revoke, security_log,
    ])])
