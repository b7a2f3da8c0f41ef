"""The directories in the staff console (一单两库: inspection items, targets, inspectors): search with the listing's
filters and cursor paging, and the spreadsheet import with an upload progress bar and every bad row listed. They
read through the same functions as ``/api/v1/<kind>`` (``directory_filters`` with its access rules,
``list_entries``, ``import_entries``)."""

from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Request, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import ValidationException
from litestar.params import Body, FromPath
from litestar.response import Template

from domain import access
from domain.errors import FieldProblem, InvalidInputError, PermissionDeniedError
from domain.values import Role
from projections.directory.queries import decode_cursor, list_entries
from services.api.common import ctx
from services.api.directory import directory_filters
from services.infra.imports import label
from services.web.forms import RULES, attempt
from services.web.pages import _departments, _rt
from services.web.staff import render, requires

AnyRequest = Request[Any, Any, Any]
PAGE = 50
READERS = (Role.PLANNER, Role.ADMIN, Role.AUDITOR)
IMPORTERS = (Role.PLANNER, Role.ADMIN)
CHOICES = {
    "supervision_class": {"key": "重点监管", "general": "一般监管", "special": "特殊监管"},
    "risk_class": {"A": "A", "B": "B", "C": "C", "D": "D"},
    "status": {"active": "正常经营", "closed": "已停业", "deregistered": "已注销"},
    "category": {"general": "一般检查事项", "key": "重点检查事项"},
    "active": {"true": "在岗", "false": "不在岗"},
}


class Directory:
    """One directory as the pages show it: its kind, title, search fields and columns."""

    def __init__(self, kind: str, title: str, search: list[str], columns: list[str]) -> None:
        self.kind, self.title, self.search, self.columns = kind, title, search, columns

    def label(self, name: str) -> str:
        return {"department": "部门"}.get(name) or label(self.kind, name)


DIRECTORIES = {
    "targets": Directory("target", "检查对象名录库", ["name", "credit_code", "supervision_class", "risk_class", "status"],
                         ["name", "credit_code", "address", "supervision_class", "risk_class", "status"]),
    "inspectors": Directory("inspector", "执法检查人员名录库", ["name", "staff_id", "department", "active"],
                            ["name", "staff_id", "department", "certificate_no", "certificate_expiry", "active"]),
    "items": Directory("item", "抽查事项清单", ["name", "code", "department", "category"],
                       ["code", "name", "department", "category", "legal_basis"]),
}


def _directory(plural: str) -> Directory:
    found = DIRECTORIES.get(plural)
    if found is None:
        from services.application import NotFoundError

        raise NotFoundError("directory", plural)
    return found


def _cell(d: Directory, name: str, value: Any, departments: dict[str, str]) -> str:
    if name == "department":
        return departments.get(str(value), str(value))
    if name in CHOICES:
        key = str(value).lower() if isinstance(value, bool) else str(value)
        return CHOICES[name].get(key, key)
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    return "" if value is None else str(value)


@get("/directory/{plural:str}", guards=[requires(*READERS)], sync_to_thread=True)
def directory_page(request: AnyRequest, plural: FromPath[str]) -> Template:
    """Search a directory: the listing's filters (a part of the name, the start of a credit code, a class ...),
    50 a page in registration order, the next page by cursor however deep."""
    d = _directory(plural)
    rt = _rt(request)
    departments = _departments(request)
    form = {k: request.query_params.get(k, "").strip() for k in d.search}
    given = {k: v for k, v in form.items() if v}
    problems: list[tuple[str, str]] = []
    raw_cursor = request.query_params.get("cursor") or None
    after = None
    if raw_cursor is not None:
        after = decode_cursor(raw_cursor) if len(raw_cursor) <= 40 else None
        if after is None:
            problems.append(("cursor", "不是本页给出的翻页标记"))
    filters: dict[str, Any] = {}
    try:
        filters = directory_filters(d.kind, given, request.user)
    except ValidationException as exc:
        problems += [(str(p.get("key")), f"不符合规则：{p.get('message')}") for p in exc.extra or []
                     if isinstance(p, dict)]
    except PermissionDeniedError as exc:
        problems.append(("department", f"无权查看：{exc.message}"))
    context: dict[str, Any] = {"d": d, "plural": plural, "form": form, "choices": CHOICES, "departments": departments}
    if problems:
        return render(request, "staff/directory.html", d.title, status_code=400, problems=problems, rows=[],
                      **context)
    page = list_entries(rt.engine, d.kind, filters, PAGE, 0, after=after)
    rows = [{"id": e["id"], "cells": [_cell(d, c, e.get(c), departments) for c in d.columns]} for e in page.items]
    following = ("?" + urlencode({**given, "cursor": page.next_cursor})) if page.next_cursor else None
    return render(request, "staff/directory.html", d.title, problems=[], rows=rows, total=page.total,
                  total_exact=page.total_exact, next=following, first_page=raw_cursor is None,
                  restart="?" + urlencode(given), can_import=access.can_write(request.user, d.kind,
                                                                              request.user.department), **context)


@get("/directory/{plural:str}/import", guards=[requires(*IMPORTERS)], sync_to_thread=True)
def import_page(request: AnyRequest, plural: FromPath[str]) -> Template:
    """The import form: a CSV (UTF-8 or GB18030) or XLSX file whose headers are field names or Chinese labels."""
    d = _directory(plural)
    return render(request, "staff/import.html", f"导入{d.title}", d=d, plural=plural,
                  column_labels=[d.label(c) for c in d.columns])


@post("/directory/{plural:str}/import", guards=[requires(*IMPORTERS)], sync_to_thread=True, status_code=200)
def import_file(request: AnyRequest, plural: FromPath[str],
                data: Annotated[dict[str, UploadFile], Body(media_type=RequestEncodingType.MULTI_PART)]) -> Template:
    """All or nothing, as ``POST /api/v1/<kind>/import``: a summary, or every bad row (row, field, rule) and
    nothing stored."""
    from services.infra.imports import iter_file

    d = _directory(plural)
    rt = _rt(request)
    file = data.get("file") if isinstance(data, dict) else None
    if not isinstance(file, UploadFile) or not file.filename:
        return render(request, "staff/_import_result.html", "", status_code=400, d=d,
                      problems=[("file", "请选择要导入的 .csv 或 .xlsx 文件")])
    if not access.can_write(request.user, d.kind, request.user.department):
        return render(request, "staff/_import_result.html", "", status_code=403, d=d,
                      problems=[("role", f"无权导入{d.title}")])

    bad: list[FieldProblem] = []

    def run() -> Any:
        try:
            rows = iter_file(d.kind, file.file, file.filename or "upload")
            result = rt.app.import_entries(d.kind, rows, ctx(request), known_departments_only=True)
        except InvalidInputError as exc:
            bad.extend(exc.problems)
            raise
        rt.after_write()
        return result

    outcome = attempt(run)
    if not outcome.ok:
        rows = [{"row": p.row, "field": d.label(p.field), "rule": RULES.get(p.rule, p.rule), "message": p.message}
                for p in bad]
        return render(request, "staff/_import_result.html", "", status_code=outcome.status, d=d,
                      problems=[] if rows else outcome.problems, bad_rows=rows, filename=file.filename)
    r = outcome.value
    return render(request, "staff/_import_result.html", "", d=d, problems=[], filename=file.filename,
                  summary={"created": r.created, "updated": r.updated, "unchanged": r.unchanged,
                           "position": r.position})


PAGES = [directory_page, import_page, import_file]
