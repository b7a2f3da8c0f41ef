"""The staff console's frame: the login page, logging out, the ``/staff`` router with its role guards and its error
pages in Chinese, and the context every staff page renders with (the person's name and department, navigation by
role, the CSRF token htmx sends). Pages of other modules (``services/web/field.py``) use the same pieces:
``staff_router``, ``requires`` and ``render``."""

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote, unquote, urlsplit

from litestar import Request, Response, Router, get, post
from litestar.connection import ASGIConnection
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.params import Body
from litestar.response import Redirect, Template
from litestar.types import ExceptionHandlersMap, Guard

from domain.access import Actor
from domain.errors import DomainError, InvalidInputError, PermissionDeniedError
from domain.text import control_character
from domain.values import Role
from services.api.accounts import CLEARED_COOKIES, session_cookies
from services.api.accounts import _source as client_address
from services.api.auth import parse_duration
from services.api.middleware import csrf_token
from services.application import ConflictError, NotFoundError
from services.usecases.accounts import LoginRefused
from services.web.pages import _departments, _rt

STAFF_ROLES = (Role.ADMIN, Role.PLANNER, Role.INSPECTOR, Role.REVIEWER, Role.AUDITOR)
ROLE_NAMES = {"admin": "系统管理员", "planner": "抽查计划员", "inspector": "执法检查人员", "reviewer": "审核人员",
              "auditor": "审计人员", "partner": "协同单位"}
MAX_USERNAME = 64
MAX_PASSWORD = 256


@dataclass(frozen=True)
class NavLink:
    """An entry of the staff navigation, shown to an actor holding any of ``roles``."""

    href: str
    label: str
    roles: tuple[Role, ...]


# The navigation by role. The inspectors' and reviewers' pages are services/web/field.py's.
NAV: tuple[NavLink, ...] = (
    NavLink("/staff", "工作台", STAFF_ROLES),
    NavLink("/staff/directory/targets", "名录库", (Role.PLANNER, Role.ADMIN, Role.AUDITOR)),
    NavLink("/staff/plans", "年度计划", (Role.PLANNER, Role.ADMIN, Role.AUDITOR)),
    NavLink("/staff/tasks", "抽查任务", (Role.PLANNER, Role.ADMIN, Role.AUDITOR)),
    NavLink("/staff/tasks/new", "开启任务", (Role.PLANNER,)),
    NavLink("/staff/inbox", "待办", (Role.PLANNER, Role.ADMIN, Role.AUDITOR)),
    NavLink("/staff/kpis", "指标", (Role.PLANNER, Role.ADMIN, Role.AUDITOR)),
    NavLink("/staff/audit/log", "日志", (Role.AUDITOR, Role.ADMIN)),
    NavLink("/staff/audit/checkpoints", "检查点与见证", (Role.AUDITOR, Role.ADMIN)),
    NavLink("/staff/visits", "我的检查", (Role.INSPECTOR,)),
    NavLink("/staff/review", "审核与公示", (Role.REVIEWER,)),
)


def actor_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Actor | None:
    user = connection.scope.get("user")
    return user if isinstance(user, Actor) else None


def holds_any(actor: Actor | None, roles: Sequence[Role]) -> bool:
    return actor is not None and any(actor.has(r) for r in roles)


def requires(*roles: Role) -> Guard:
    """A guard: the signed-in actor holds one of ``roles``, else the 403 page (``forbidden.html``)."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        # a coroutine: litestar would run a plain function in a worker thread
        if not holds_any(actor_of(connection), roles):
            raise PermissionDeniedException("role", extra={"roles": [r.value for r in roles]})

    return guard


def frame(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """What staff/base.html needs: the person (name, department name, roles in Chinese), the navigation for
    their roles, and the CSRF token of their session (htmx sends it as ``X-CSRF-Token`` on every request)."""
    actor = actor_of(request)
    if actor is None:
        return {"me": None, "nav": [], "csrf": "", "here": request.url.path}
    token_id = request.scope.get("auth")
    departments = _departments(request)
    return {
        "me": {"name": actor.name or "（未填写姓名）", "department": departments.get(actor.department, actor.department),
               "roles": "、".join(ROLE_NAMES.get(r, r) for r in actor.roles)},
        "nav": [link for link in NAV if holds_any(actor, link.roles)],
        "csrf": csrf_token(_rt(request).settings.secret_key, token_id) if isinstance(token_id, str) else "",
        "here": request.url.path,
    }


def render(request: Request[Any, Any, Any], template: str, title: str, *, status_code: int = 200,
           headers: dict[str, str] | None = None, **context: Any) -> Template:
    """A staff page: ``template`` extends ``staff/base.html`` and gets the frame and ``context``."""
    return Template(template, context={"title": title, **frame(request), **context}, status_code=status_code,
                    headers=headers)


def is_htmx(request: Request[Any, Any, Any]) -> bool:
    return request.headers.get("hx-request") == "true"


# --- error pages ---------------------------------------------------------------------------------------------

def _to_login(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Not signed in (no session, an expired or revoked one): to the login page, then back here."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = "/login?next=" + quote(target, safe="")
    if is_htmx(request):  # htmx follows HX-Redirect with a full page load
        return Response("", status_code=401, headers={"HX-Redirect": location})
    if request.method in {"GET", "HEAD"}:
        return Redirect(location, status_code=303)
    return render(request, "staff/problem.html", "请先登录", status_code=401,
                  problems=[("session", "登录已失效，请重新登录")], login=location)


def _forbidden(request: Request[Any, Any, Any], exc: Exception) -> Template:
    """A wrong role (a guard), a rule about who (the use case) or a missing CSRF header: 403 in Chinese."""
    if isinstance(exc, PermissionDeniedError):
        problems = [(p.field, p.message) for p in exc.problems] or [("actor", exc.message)]
    elif isinstance(exc, PermissionDeniedException) and exc.detail == "role":
        roles = (exc.extra or {}).get("roles", []) if isinstance(exc.extra, dict) else []
        needed = "、".join(ROLE_NAMES.get(r, r) for r in roles)
        problems = [("role", f"此页面仅限{needed}使用，您的账户没有该角色")]
    else:
        problems = [("X-CSRF-Token", "请求缺少有效的防伪令牌，请刷新页面后重试")]
    return render(request, "staff/problem.html", "无权访问", status_code=403, problems=problems)


def _not_found(request: Request[Any, Any, Any], exc: Exception) -> Template:
    return render(request, "staff/problem.html", "未找到", status_code=404,
                  problems=[(getattr(exc, "kind", "id"), "没有找到该记录")])


def _invalid(request: Request[Any, Any, Any], exc: Exception) -> Template:
    if isinstance(exc, InvalidInputError | DomainError):
        problems = [(p.field, p.message) for p in exc.problems] or [("request", exc.message)]
        status = 409 if isinstance(exc, ConflictError) or getattr(exc, "status", 422) == 409 else 422
    else:
        problems, status = [("request", str(exc))], 409
    return render(request, "staff/problem.html", "无法办理", status_code=status, problems=problems)


STAFF_ERRORS: ExceptionHandlersMap = {
    NotAuthorizedException: _to_login,
    PermissionDeniedException: _forbidden,
    PermissionDeniedError: _forbidden,
    NotFoundError: _not_found,
    InvalidInputError: _invalid,
    DomainError: _invalid,
    ConflictError: _invalid,
}


def staff_router(route_handlers: Sequence[Any], *, path: str = "/staff", roles: Sequence[Role] = STAFF_ROLES,
                 rate_per_minute: int = 0) -> Router:
    """A router of staff pages: signed in (else to /login), holding a staff role (a partner's account is refused),
    errors as pages in Chinese. Each page narrows the roles with ``guards=[requires(...)]``."""
    limit = [RateLimitConfig(rate_limit=("minute", rate_per_minute)).middleware] if rate_per_minute else []
    return Router(path, route_handlers=list(route_handlers), guards=[requires(*roles)], exception_handlers=STAFF_ERRORS,
                  middleware=limit, include_in_schema=False)


# --- login and logout ------------------------------------------------------------------------------------------

_NEXT = re.compile(r"^/staff(?:[/?][^\s\\]*)?$")


def safe_next(given: str) -> str:
    """Where to go after logging in: a staff page of this server, never another host (``//evil``, ``/\\evil``)
    nor a path that a browser resolves outside ``/staff`` (``/staff/../public``, also percent-encoded)."""
    parts = urlsplit(given)
    dots = any(seg in {".", ".."} for seg in unquote(parts.path).split("/"))
    if _NEXT.match(given) and "//" not in given and not parts.scheme and not parts.netloc and not dots:
        return given
    return "/staff"


def _same_origin(request: Request[Any, Any, Any]) -> bool:
    """A login form posted from another site is refused (login CSRF): browsers send Origin and Sec-Fetch-Site."""
    if request.headers.get("sec-fetch-site", "same-origin") not in {"same-origin", "none"}:
        return False
    origin = request.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == request.headers.get("host", "")


@get("/login", include_in_schema=False, sync_to_thread=False, opt={"exclude_from_auth": True})
def login_page(request: Request[Any, Any, Any]) -> Template:
    """The login form (no JavaScript needed)."""
    out = request.query_params.get("out") == "1"
    return Template("staff/login.html", context={
        "title": "工作人员登录", "next": safe_next(request.query_params.get("next", "")), "username": "",
        "problems": [], "notice": "您已退出登录。" if out else ""})


@post("/login", include_in_schema=False, sync_to_thread=True, opt={"exclude_from_auth": True}, status_code=303)
def login_submit(request: Request[Any, Any, Any],
                 data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]) -> Response[Any]:
    """Username and password -> the session cookies (as ``POST /api/v1/session``), then the page asked for."""
    rt = _rt(request)
    username = str(data.get("username", "")).strip()
    password = str(data.get("password", ""))
    target = safe_next(str(data.get("next", "")))

    def again(status: int, problems: list[tuple[str, str]], headers: dict[str, str] | None = None) -> Template:
        return Template("staff/login.html", status_code=status, headers=headers, context={
            "title": "工作人员登录", "next": target, "username": username if status != 403 else "",
            "problems": problems, "notice": ""})

    if not _same_origin(request):
        return again(403, [("origin", "登录表单须从本站页面提交")])
    problems = []
    if not username:
        problems.append(("username", "请填写用户名"))
    elif len(username) > MAX_USERNAME or control_character(username):
        problems.append(("username", f"用户名不超过 {MAX_USERNAME} 个字符，且不含控制字符"))
    if not password:
        problems.append(("password", "请填写密码"))
    elif len(password) > MAX_PASSWORD:
        problems.append(("password", f"密码不超过 {MAX_PASSWORD} 个字符"))
    if problems:
        return again(400, problems)
    try:
        issued = rt.accounts.login(username, password, client_address(request),
                                   parse_duration(rt.settings.session_ttl))
    except LoginRefused as exc:
        if exc.retry_after:
            wait = (f"约 {(exc.retry_after + 59) // 60} 分钟" if exc.retry_after > 60 else f"{exc.retry_after} 秒")
            return again(429, [("username", f"连续登录失败次数过多，账户已暂时锁定，请{wait}后再试")],
                         headers={"Retry-After": str(exc.retry_after)})
        return again(401, [("password", "用户名或密码错误，或账户已停用")])
    _, cookies = session_cookies(rt.settings, issued)
    return Redirect(target, status_code=303, cookies=cookies)


@post("/logout", sync_to_thread=True, status_code=200)
def logout(request: Request[Any, Any, Any]) -> Response[Any]:
    """Revokes this session (refused from the next request on), clears the cookies, back to the login page."""
    actor = actor_of(request)
    token_id = request.scope.get("auth")
    if actor is not None and isinstance(token_id, str):
        _rt(request).accounts.logout(actor, token_id, client_address(request))
    if is_htmx(request):
        return Response("", status_code=200, headers={"HX-Redirect": "/login?out=1"}, cookies=CLEARED_COOKIES)
    return Redirect("/login?out=1", status_code=303, cookies=CLEARED_COOKIES)


@get("/", sync_to_thread=True)
def home(request: Request[Any, Any, Any]) -> Template:
    """工作台: what this person can open."""
    return render(request, "staff/home.html", "工作台")


PAGES: list[Callable[..., Any]] = [home]


def routes(rate_per_minute: int = 0) -> list[Any]:
    """The login page (limited per client address like the public pages) and the /staff router."""
    limit = [RateLimitConfig(rate_limit=("minute", rate_per_minute)).middleware] if rate_per_minute else []
    login = Router("/", route_handlers=[login_page, login_submit], middleware=limit, include_in_schema=False)
    # logging out needs a session but no staff role: a partner's session may be ended here too
    out = Router("/staff", route_handlers=[logout], exception_handlers=STAFF_ERRORS, include_in_schema=False)
    from services.web import auditor, boards, directories, planner, planning, visits

    pages = [*PAGES, *directories.PAGES, *planner.PAGES, *planning.PAGES, *visits.PAGES, *boards.PAGES,
             *auditor.PAGES]
    return [login, out, staff_router(pages)]
