"""The public pages (一公开, no token): the home page, the published results (双随机抽查结果公示) and how each task
was drawn. They read through the same use cases as the public JSON API (``Publicity.public_results``,
``TargetDraws.verify_draw``): no SQL of their own, nothing confidential (no finding marked confidential, no
evidence, no drawn target before its result is published, no seed)."""

import datetime as dt
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, Router, get
from litestar.datastructures import MutableScopeHeaders
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.response import Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import Message, Scope

from domain.access import Actor
from domain.documents import STYLE_SOURCES
from domain.execution.publicity import DIRECTED
from domain.execution.vocabulary import DEFAULT_RESULT_CODES, MEASURE_LABELS
from domain.tasks.task import Task, TaskStateError
from domain.text import control_character, normalise_newlines
from projections.directory.queries import list_entries
from services.api.public import cached_response, data_key, personal, read_data
from services.api.public_cache import PublicAnswers, Token, fast_path
from services.application import NotFoundError
from services.runtime import Runtime

HERE = Path(__file__).parent
DOCS = HERE.parents[1] / "docs"
PAGE_SIZE = 20
MAX_QUERY = 100
RESULTS = {c.code: c.wording for c in DEFAULT_RESULT_CODES}

# Paths without a token: the bearer middleware's exclude list (regular expressions).
PUBLIC_PATTERNS = ["^/$", "^/static/", "^/public/", "^/favicon.ico$"]

# No other host, ever: scripts, styles, images, fonts, frames and form targets come from this server only.
# The printable documents' style blocks are allowed by their hashes (domain.documents.STYLE_SOURCES), nothing else
# inline.
CSP = ("default-src 'self'; style-src 'self' " + " ".join(STYLE_SOURCES) + "; img-src 'self' data:; "
       "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
# Swagger UI sets style attributes and data: icons; still nothing from another host.
CSP_SCHEMA = ("default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; "
              "base-uri 'self'; form-action 'self'; frame-ancestors 'none'")


async def security_headers(message: Message, scope: Scope) -> None:
    """``before_send`` of the app: every response (pages, API, static files, errors raised before any handler,
    429s of the rate limit) carries the Content-Security-Policy, nosniff and no referrer to other sites."""
    if message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    headers["Content-Security-Policy"] = CSP_SCHEMA if scope["path"].startswith("/schema") else CSP
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "same-origin"


def measures_text(measures: Any) -> str:
    """A finding's measures in Chinese: ``责令改正（期限 2024-10-18）；其他：说明``; "—" when there are none."""
    if not measures:
        return "—"
    if isinstance(measures, str):
        return measures
    parts = []
    for m in measures if isinstance(measures, list) else [measures]:
        if not isinstance(m, dict):
            parts.append(str(m))
            continue
        text = MEASURE_LABELS.get(str(m.get("kind", "")), str(m.get("kind", "")))
        if m.get("deadline"):
            text += f"（期限 {m['deadline']}）"
        if m.get("note"):
            text += f"：{m['note']}"
        parts.append(text)
    return "；".join(parts)


def template_config() -> TemplateConfig[Any]:
    from litestar.plugins.jinja import JinjaTemplateEngine

    def filters(engine: JinjaTemplateEngine) -> None:
        engine.engine.filters["measures"] = measures_text

    return TemplateConfig(directory=HERE / "templates", engine=JinjaTemplateEngine, engine_callback=filters)


def _rt(request: Request[Any, Any, Any]) -> Runtime:
    rt: Runtime = request.app.state["runtime"]
    return rt


DEPARTMENTS_TTL = 30.0  # seconds a page reuses the department list (a new department shows within that)


def _departments(request: Request[Any, Any, Any]) -> dict[str, str]:
    """Code -> name of every department, for the filter and the labels; read at most every DEPARTMENTS_TTL s
    (kept in the app's state: one per app)."""
    now = time.monotonic()
    cached: tuple[float, dict[str, str]] | None = request.app.state.get("web_departments")
    if cached and now - cached[0] < DEPARTMENTS_TTL:
        return cached[1]
    page = list_entries(_rt(request).engine, "department", {}, limit=500)
    found = {str(d["code"]): str(d.get("name") or d["code"]) for d in page.items}
    request.app.state["web_departments"] = (now, found)
    return found


def _bad(request: Request[Any, Any, Any], problems: list[tuple[str, str]], **context: Any) -> Template:
    return Template("error.html", context={"problems": problems, "title": "请求有误", **context},
                    status_code=400)


@get("/", include_in_schema=False, sync_to_thread=False)
def home() -> Template:
    """The home page: what is public here and where the API docs are."""
    return Template("home.html", context={"title": "双随机、一公开"})


def _read_departments(rt: Runtime) -> dict[str, str]:
    page = list_entries(rt.engine, "department", {}, limit=500)
    return {str(d["code"]): str(d.get("name") or d["code"]) for d in page.items}


@get("/public/results", include_in_schema=False)
async def results_page(request: Request[Any, Any, Any]) -> Response[Any] | Template:
    """双随机抽查结果公示: search by enterprise name or credit code, filter by department, year and result.

    Anonymous requests are answered from the public answers' cache (``services.api.public_cache``): the
    department list, the results (shared with the JSON endpoint) and the rendered page, each kept while the read
    models are at the positions it was read at; a request with a token or a session reads the database."""
    rt = _rt(request)
    answers: PublicAnswers = request.app.state["public_answers"]
    token = None if personal(request) else await answers.token()
    departments: dict[str, str] = (await answers.answer(
        ("departments",), token, lambda _: (b"", _read_departments(rt)))).value
    params = request.query_params
    problems: list[tuple[str, str]] = []
    q = normalise_newlines(params.get("q", "")).strip()
    if control_character(q):
        problems.append(("q", "不得含控制字符"))
    elif len(q) > MAX_QUERY:
        problems.append(("q", f"不超过 {MAX_QUERY} 个字"))
    department = params.get("department", "") or None
    if department is not None and department not in departments:
        problems.append(("department", "须为列表中的部门"))
    year: int | None = None
    if params.get("year"):
        raw = params["year"]
        if not (raw.isascii() and raw.isdigit() and len(raw) == 4 and 2000 <= int(raw) <= 2100):
            problems.append(("year", "须为 2000 至 2100 之间的四位年份"))
        else:
            year = int(raw)
    result = params.get("result", "") or None
    if result is not None and result not in RESULTS:
        problems.append(("result", "须为列表中的抽查结果"))
    page = 1
    if params.get("page"):
        raw = params["page"]
        if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= 100000):
            problems.append(("page", "须为 1 至 100000 之间的整数"))
        else:
            page = int(raw)
    form = {"q": q, "department": department or "", "year": year or "", "result": result or ""}
    this_year = dt.date.today().year
    years = list(range(this_year, 2014, -1))
    common = {"departments": departments, "results": RESULTS, "years": years, "form": form}
    if problems:
        return _bad(request, problems, **common)
    offset = (page - 1) * PAGE_SIZE
    engine = request.app.template_engine
    assert engine is not None  # the app's template_config
    template = engine.get_template("results.html")

    def build(at: Token | None) -> tuple[bytes, Any]:  # a worker thread
        found = answers.cached(data_key(q or None, PAGE_SIZE, offset, department, year, result), at,
                               lambda: read_data(rt, q or None, PAGE_SIZE, offset, department, year, result)).value
        total = int(found["total"])  # at most COUNT_CAP: past it, "1,000 条以上" and the next page while there is one
        exact = bool(found.get("total_exact", True))
        pages = max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE, page + (1 if found.get("next_offset") else 0))
        base = {k: v for k, v in form.items() if v}

        def link(n: int) -> str:
            return "/public/results?" + urlencode({**base, "page": n})

        html = template.render(**{
            "title": "双随机抽查结果公示", **common, "items": found["items"], "total": total, "total_exact": exact,
            "page": page, "pages": pages, "prev": link(page - 1) if page > 1 else None,
            "next": link(page + 1) if found.get("next_offset") else None, "directed": DIRECTED,
        })
        return html.encode(), None

    key = ("page", q, department, year, result, page, this_year)
    return cached_response(request, await answers.answer(key, token, build), "text/html; charset=utf-8",
                           None if personal(request) else answers, this_year)


DRAW_RERUNS_MAX = 1024  # drawn rounds whose public re-run a process keeps


@get("/public/tasks/{task_ref:str}/draw", include_in_schema=False, sync_to_thread=True)
def draw_page(request: Request[Any, Any, Any], task_ref: str) -> Template:
    """How a task was drawn: commitment, declared entropy, pool size per stratum and the re-run's answer; never
    the seed or who was drawn. An id that is no task (not a UUID, or unknown) is the same 404 page."""
    rt = _rt(request)
    try:
        task_id = uuid.UUID(task_ref)
        task = rt.target_draws.load(Task, task_id, "task")
    except (NotFoundError, ValueError):
        return Template("error.html", context={"title": "未找到", "problems": [("task_id", "没有这个抽查任务")]},
                        status_code=404)
    departments = _departments(request)
    record = (task.draw or {}).get("record") or {}
    verification: dict[str, Any] | None = None
    note = ""
    if not task.draw:
        note = "该任务尚未摇号。"
    elif record.get("designated"):
        note = "该任务为个案检查，检查对象由案件确定，没有随机抽取。"
    else:
        # The re-run folds the log up to the freeze: done once per drawn round and process, not per page view
        # (an anonymous reader must not make the server replay the log at will). Bounded: a full cache is emptied.
        key = (str(task_id), task.round, str(record.get("seed", "")))
        reruns: dict[tuple[str, int, str], dict[str, Any]] = request.app.state.setdefault("web_draw_reruns", {})
        verification = reruns.get(key)
        if verification is None:
            # The re-run needs the drawn list's access; its answer (match, pool size, digest) names nobody.
            verifier = Actor(subject="public-draw-page", department="", roles=("auditor",))
            try:
                answer = rt.target_draws.verify_draw(verifier, task_id)
                verification = {"match": bool(answer["match"]), "pool_size": answer.get("pool_size"),
                                "pool_digest": answer.get("pool_digest"), "round": answer.get("round")}
                if len(reruns) >= DRAW_RERUNS_MAX:
                    reruns.clear()
                reruns[key] = verification
            except TaskStateError as e:
                note = str(e)
    strata = [{"name": name, "pool_size": s.get("pool_size"), "quota": s.get("quota")}
              for name, s in sorted((record.get("strata") or {}).items())]
    # Every withdrawn round stays on the page with its reason: a withdrawal is published, never a silent re-roll.
    reader = Actor(subject="public-draw-page", department="", roles=("auditor",))
    withdrawn = [r for r in rt.target_draws.rounds(reader, task_id)["rounds"] if r["status"] == "withdrawn"]
    if not task.draw and withdrawn:
        note = "该任务此前的抽取已撤回，尚未重新摇号（撤回的轮次及理由见下）。"
    return Template("draw.html", context={
        "title": f"抽取过程 {task.number}", "task": task,
        "department_names": [departments.get(d, d) for d in task.departments],
        "record": record, "strata": strata, "verification": verification, "note": note, "withdrawn": withdrawn,
    })


@get("/public/verifying-a-draw", include_in_schema=False, sync_to_thread=True)
def verifying_doc() -> Response[str] | Template:
    """docs/verifying-a-draw.md as it ships with the server (plain text: the byte-for-byte spec stays exact)."""
    path = DOCS / "verifying-a-draw.md"
    if not path.is_file():
        return Template("error.html", context={"title": "未找到", "problems": [("document", "验证说明未随服务器安装")]},
                        status_code=404)
    return Template("doc.html", context={"title": "如何验证一次抽取", "text": path.read_text(encoding="utf-8")})


@get("/favicon.ico", include_in_schema=False, sync_to_thread=False)
def favicon() -> Response[bytes]:
    return Response((HERE / "static" / "favicon.svg").read_bytes(), media_type="image/svg+xml")


def routes(rate_per_minute: int = 0) -> list[Any]:
    """The pages (public ones limited per client address like the public API) and /static."""
    limit = [RateLimitConfig(rate_limit=("minute", rate_per_minute)).middleware] if rate_per_minute else []
    pages = Router("/", route_handlers=[home, results_page, draw_page, verifying_doc, favicon],
                   middleware=[*limit, fast_path], include_in_schema=False)  # fast path: /public/results only
    static = create_static_files_router(path="/static", directories=[HERE / "static"], include_in_schema=False)
    return [pages, static]
