"""Directory endpoints (departments, items, targets, inspectors, experts), one router factory for all."""

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import anyio
import msgspec
from litestar import Response, Router, get, patch, post
from litestar.datastructures import UploadFile
from litestar.exceptions import ValidationException
from litestar.params import FromPath, JSONBody, Parameter

from domain import access
from domain.access import Actor
from domain.directory import KINDS
from domain.errors import FieldProblem, InvalidInputError, PermissionDeniedError
from domain.fields import Field, _normalise
from projections.directory.queries import COUNT_CAP, decode_cursor, filterable, list_entries
from services.api.common import (
    READ,
    SECURED,
    WRITE_PROBLEMS,
    AnyRequest,
    Limit,
    MinPosition,
    Offset,
    answers,
    ctx,
    given,
    if_match,
    multipart_file,
    runtime,
    upload,
    wait,
    written,
)
from services.api.schemas import Entry, EntryWritten, History, ImportSummary, Json, Page, doc
from services.infra.imports import label

_TYPES = {"str": str, "bool": bool, "date": dt.date, "list": list[str]}
_KIND_NOTE = {"date": " (YYYY-MM-DD)", "list": " (a list)"}
WRITE_NOTE = (
    " Answers 201/200 with the entry id, version and the log position of the write; pass that position as"
    " `min_position` to a listing to read your own write."
)


def _structs(kind: str) -> tuple[type, type]:
    spec = KINDS[kind].SPEC.fields.values()
    name = kind.title().replace("_", "")

    def typed(f: Field, optional: bool, clearable: bool = False) -> Any:
        text = label(kind, f.name) + _KIND_NOTE.get(f.kind, "") + ("; a key field: it never changes" if f.identity else "")
        if clearable:
            text += "; null clears it (its default)"
        base = _TYPES[f.kind] | msgspec.UnsetType if optional else _TYPES[f.kind]
        if clearable:
            base = base | None
        return Annotated[base, doc(text, enum=list(f.choices) if f.choices else None)]

    create_fields: list[Any] = []
    for f in sorted(spec, key=lambda f: not f.required):
        if f.required:
            create_fields.append((f.name, typed(f, False)))
        else:
            create_fields.append((f.name, typed(f, True), msgspec.UNSET))
    update_fields = [(f.name, typed(f, True, not f.required), msgspec.UNSET) for f in spec if not f.identity]
    create = msgspec.defstruct(f"{name}Create", create_fields, kw_only=True, forbid_unknown_fields=True)
    update = msgspec.defstruct(f"{name}Update", update_fields, kw_only=True, forbid_unknown_fields=True)
    return create, update


def directory_filters(kind: str, params: Mapping[str, str], actor: Actor) -> dict[str, Any]:
    """The listing's filters from query parameters, checked (ValidationException naming each bad one) and with the
    access rules applied (inspectors and experts: the actor's own department unless they read all). The API's
    listing and the staff console's directory pages read through this one function."""
    allowed = set(filterable(kind))
    spec = KINDS[kind].SPEC.fields
    filters: dict[str, Any] = {}
    problems = []
    for key, value in params.items():
        if key in {"limit", "offset", "min_position", "cursor", "count"}:
            continue
        if key not in allowed:
            problems.append({"key": key, "message": f"unknown filter; use one of {', '.join(sorted(allowed))}", "source": "query"})
            continue
        if key in spec and spec[key].kind == "bool":
            try:
                filters[key] = _normalise(spec[key], value)
            except ValueError as exc:
                problems.append({"key": key, "message": str(exc), "source": "query"})
                continue
        else:
            f = spec.get(key)
            if f is not None and f.choices and value not in f.choices:
                problems.append({"key": key, "message": f"must be one of {', '.join(f.choices)}", "source": "query"})
                continue
            filters[key] = value
    if problems:
        raise ValidationException("invalid filters", extra=problems)
    if kind in {"inspector", "expert"} and not access.can_read_all(actor, kind):
        wanted = filters.get("department")
        if wanted is not None and wanted != actor.department:
            raise PermissionDeniedError(f"{kind} entries of department {wanted!r} are not yours to read")
        access.require_read(actor, kind, actor.department)  # a partner reads no personal data, not even its own
        filters["department"] = actor.department
    else:
        access.require_read(actor, kind, filters.get("department"))
    return filters




def directory_router(kind: str, plural: str, label: str, importable: bool) -> Router:
    """Routes for one directory kind under ``/api/v1/<plural>``."""
    create_struct, update_struct = _structs(kind)
    fields_doc = ", ".join(filterable(kind))

    @post(
        "/", status_code=201, summary=f"Register a {label}",
        responses=answers(201, EntryWritten, WRITE_PROBLEMS),
        description=f"Validates and registers a new {label}; the key fields cannot change later. "
        "Planners and admins only (see docs/api.md, access rules)." + WRITE_NOTE,
    )
    async def create(request: AnyRequest, data: JSONBody[create_struct]) -> Response[Json]:  # type: ignore[valid-type]
        rt = runtime(request)
        values = given(data)
        group = request.app.state.loop_writes
        if group is not None and kind not in _NAMES_DEPARTMENT and rt.app.registers_on_loop(values):
            # nothing to read first: validated and written on the event loop, no worker thread
            return written(request, await rt.app.register_on_loop(kind, values, ctx(request), group), 201)

        def register() -> Response[Json]:
            _known_department(rt, kind, values)
            return written(request, rt.app.register(kind, values, ctx(request)), 201)

        return await anyio.to_thread.run_sync(register)

    @patch(
        "/{entry_id:uuid}", sync_to_thread=True, summary=f"Update a {label}",
        responses=answers(200, EntryWritten, WRITE_PROBLEMS),
        description=f"Changes the given fields of a {label}; only real changes are recorded, each as its own "
        "event. Send `If-Match: \"<version>\"` to refuse the update (409) when the entry changed meanwhile."
        + WRITE_NOTE,
    )
    def update(
        request: AnyRequest, entry_id: FromPath[uuid.UUID], data: JSONBody[update_struct]  # type: ignore[valid-type]
    ) -> Response[Json]:
        rt = runtime(request)
        values = given(data)
        _known_department(rt, kind, values)
        return written(request, rt.app.update(kind, entry_id, values, ctx(request), if_match(request)), 200)

    @get(
        "/", sync_to_thread=True, summary=f"List {plural}", responses=answers(200, Page, READ, also=(503,)),
        opt={"read_models": ["directory"]},
        description=f"Pages the {label} read model (never replays aggregates). Filters (query parameters, "
        f"exact unless noted): {fields_doc}; name and address match a part, a short credit_code matches a "
        "prefix, list fields (tags, specialties, methods, ...) match a member. In registration order; page with "
        "`cursor` (the previous page's `next_cursor`, null after the last page) rather than a deep `offset`. "
        f"`total` is exact up to {COUNT_CAP} matches, else {COUNT_CAP} with `total_exact: false` (`count=exact` "
        "counts all). `min_position` waits (up to 5 s) until the read model has applied that log position, else "
        "503.",
    )
    def listing(
        request: AnyRequest, limit: Limit = 50, offset: Offset = 0, min_position: MinPosition = None,
        cursor: Annotated[str | None, Parameter(max_length=40, description="`next_cursor` of the previous page: "
                                                "the next page, found through the index however deep")] = None,
        count: Annotated[Literal["capped", "exact"], Parameter(
            description=f"`capped` (default): `total` counts up to {COUNT_CAP} matches (`total_exact: false` "
            "when there are more); `exact`: counts them all (slow over millions of rows)")] = "capped",
    ) -> dict[str, Any]:
        rt = runtime(request)
        filters = directory_filters(kind, request.query_params, request.user)
        after = None if cursor is None else decode_cursor(cursor)
        if cursor is not None and after is None:
            raise InvalidInputError([FieldProblem("cursor", "format",
                                                  "is not a cursor this listing returned in next_cursor")])
        wait(request, min_position, ["directory"], what="the read model has")
        page = list_entries(rt.engine, kind, filters, limit, offset, after=after, exact_total=count == "exact")
        return {"items": page.items, "total": page.total, "limit": page.limit, "offset": page.offset,
                "next_cursor": page.next_cursor, "total_exact": page.total_exact}

    @get(
        "/{entry_id:uuid}", sync_to_thread=True, summary=f"Get a {label}", responses=answers(200, Entry),
        description=f"The current state of one {label}, from its events (always up to date); ETag is its version.",
    )
    def one(request: AnyRequest, entry_id: FromPath[uuid.UUID]) -> Response[Json]:
        rt = runtime(request)
        agg = rt.app.get(kind, entry_id, request.user)
        body = {"id": str(agg.id), "version": agg.version, "created_on": agg.created_on.isoformat(),
                "modified_on": agg.modified_on.isoformat(), **agg.data}
        return Response(body, headers={"ETag": f'"{agg.version}"'})

    @get(
        "/{entry_id:uuid}/history", sync_to_thread=True, summary=f"History of a {label}",
        responses=answers(200, History),
        description="Every event of the entry in order: log position, version, event type, time, who acted "
        "(actor: the account id, actor_name: its display name now, or the recorded actor itself for events "
        "recorded before accounts existed; department, role), correlation and causation ids, and the event data.",
    )
    def history(request: AnyRequest, entry_id: FromPath[uuid.UUID]) -> dict[str, Any]:
        rt = runtime(request)
        events = rt.accounts.with_actor_names(rt.app.history(kind, entry_id, request.user))
        return {"id": str(entry_id), "events": events}

    handlers: list[Any] = [create, update, listing, one, history]

    if importable:

        @post(
            "/import", sync_to_thread=True, status_code=200, summary=f"Import {plural} from CSV or XLSX",
            responses=answers(200, ImportSummary, WRITE_PROBLEMS),
            description="Multipart upload, field `file` (.csv in UTF-8 or GB18030, or .xlsx, first sheet; headers "
            "are field names or their Chinese labels). All or nothing: any bad row stores nothing and answers 422 "
            "listing every bad row (row, field, rule, message). Re-importing the same file stores nothing; a "
            "changed row stores only its changes. Columns whose header is not the kind's are ignored and listed "
            "(`ignored_columns`); tags outside the vocabulary are kept and listed (`new_tags`).",
        )
        def import_file(
            request: AnyRequest,
            data: Annotated[dict[str, UploadFile], multipart_file()],
        ) -> dict[str, Any]:
            from services.infra.imports import iter_file

            file = upload(data)
            rt = runtime(request)
            if not access.can_write(request.user, kind, request.user.department):
                raise PermissionDeniedError(f"role {request.user.role!r} may not import {plural}")
            # read from the upload's spooled file as the import goes (no copy of the whole body; rows streamed)
            rows = iter_file(kind, file.file, file.filename or "upload")
            result = rt.app.import_entries(kind, rows, ctx(request), known_departments_only=True)
            rt.after_write()
            return {
                "created": result.created, "updated": result.updated, "unchanged": result.unchanged,
                "events": result.events, "position": result.position, **rows.report(),
            }

        handlers.insert(0, import_file)

    return Router(path=f"/{plural}", route_handlers=handlers, tags=[plural], security=SECURED)


_NAMES_DEPARTMENT = {"item", "inspector", "expert"}  # their department must be registered: a read first


def _known_department(rt: Any, kind: str, values: dict[str, Any]) -> None:
    """An item, inspector or expert names a department in the directory: else 422 ``unknown_department`` on
    ``department``, nothing recorded."""
    code = values.get("department")
    if kind in _NAMES_DEPARTMENT and isinstance(code, str):
        code = code.strip().lower()  # as the field stores it: HJ-EEB is hj-eeb
        if not rt.lookups.department_known(code):
            rt.runner.catch_up_named(("directory",))  # registered a moment ago: the read model may lag
        rt.lookups.department(code, "department")
