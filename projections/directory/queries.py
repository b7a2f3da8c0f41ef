"""What the API and the use cases read from the directory read models: filtered, paginated listings and single
rows; departments, items, targets (a draw's candidates) and the staff of a department."""

import contextlib
import datetime as dt
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from domain.directory import KINDS
from domain.tasks.pool import TargetColumns
from projections.aggregate_rows import split_bars
from projections.bulk import plain_batches
from projections.directory.projection import TABLES, TEXT_SEARCH

_CHUNK = 500  # ids per IN (...) list


COUNT_CAP = 1_000  # a listing counts its matches up to this many unless asked for the exact count


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int
    next_cursor: str | None = None
    total_exact: bool = True


def encode_cursor(first_position: int) -> str:
    """The opaque cursor after a row: its registration position (the listing's order, unique)."""
    return f"k{first_position}"


def decode_cursor(cursor: str) -> int | None:
    """The registration position a cursor names, or None when it is not one ``encode_cursor`` made."""
    if len(cursor) > 21 or not cursor.startswith("k") or not cursor[1:].isdigit():
        return None
    return int(cursor[1:])


def prefix_range(column: Any, prefix: str, dialect: str) -> Any:
    """``column`` starts with ``prefix``, as a range a B-tree serves even with a bound parameter (a parameterised
    LIKE cannot use one): ``prefix <= column < prefix'`` where ``prefix'`` is the prefix with its last character
    incremented, compared byte-wise (COLLATE "C" on PostgreSQL, SQLite's default BINARY)."""
    last = ord(prefix[-1])
    if last >= 0x10FFFF:
        return column.startswith(prefix, autoescape=True)
    upper = prefix[:-1] + chr(0xE000 if 0xD800 <= last + 1 <= 0xDFFF else last + 1)  # never a lone surrogate
    if dialect == "postgresql":
        column = sa.collate(column, "C")
    return sa.and_(column >= prefix, column < upper)

def filterable(kind: str) -> list[str]:
    """Filters a listing of ``kind`` accepts (``department`` is the owner)."""
    return ["department", *[f for f in KINDS[kind].SPEC.fields if f != "department"]]


def to_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "version": row.version,
        "position": row.position,
        "created_on": row.created_on,
        "modified_on": row.modified_on,
        **json.loads(row.data),
    }


def _where(kind: str, filters: dict[str, Any], dialect: str) -> Any:
    """The condition of a listing's filters (text fields: contains; list fields: has member)."""
    table = TABLES[kind]
    spec = KINDS[kind].SPEC.fields
    conditions = []
    for name, value in filters.items():
        if value is None:
            continue
        if name == "department":
            conditions.append(table.c.owner == value)
        elif spec[name].kind == "list":
            conditions.append(table.c[name].like(f"%|{value}|%"))
        elif name in TEXT_SEARCH:
            conditions.append(table.c[name].contains(value, autoescape=True))
        elif name == "credit_code" and len(value) < 18:
            conditions.append(prefix_range(table.c[name], value, dialect) if value else sa.true())
        else:
            conditions.append(table.c[name] == value)
    return sa.and_(sa.true(), *conditions)


def _order(table: sa.Table, filters: dict[str, Any], total: int) -> Any:
    """The registration order of a listing's page. When a substring search (a trigram index on PostgreSQL) has at
    most ``COUNT_CAP`` matches in all, ordered by an expression the planner cannot read off the registration-order
    index: it then reads the matches through the search's index and sorts them (at most ``COUNT_CAP`` rows).
    Otherwise PostgreSQL, estimating a ``LIKE '%...%'`` at 1 % of the rows whenever its statistics' sample holds a
    match, walked the registration order until a page of matches was found: every row for a name that 22 of a
    million targets bear, 4 s (the mixed load's one slow request in ten minutes). With more matches than that, the
    walk finds a page within a few thousand rows and is the better plan."""
    if total <= COUNT_CAP and any(value and name in TEXT_SEARCH for name, value in filters.items()):
        return table.c.first_position + 0
    return table.c.first_position


def iter_entries(engine: Engine, kind: str, filters: dict[str, Any], batch: int = 1_000) -> Iterator[dict[str, Any]]:
    """Every row of ``kind`` matching the filters, in registration order, read ``batch`` rows at a time by the
    registration-position index (keyset paging: no count, no offset), so an export of a million targets holds
    one batch at a time."""
    table = TABLES[kind]
    where = _where(kind, filters, engine.dialect.name)
    after = -1
    while True:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(table).where(where, table.c.first_position > after)
                                .order_by(table.c.first_position).limit(batch)).all()
        yield from (to_view(r) for r in rows)
        if len(rows) < batch:
            return
        after = rows[-1].first_position


def list_entries(
    engine: Engine, kind: str, filters: dict[str, Any], limit: int = 50, offset: int = 0, *,
    after: int | None = None, exact_total: bool = False,
) -> Page:
    """Rows of ``kind`` matching every filter (text fields: contains; list fields: has member), in registration
    order. ``after`` (a cursor's position) starts after that row, which a deep page reaches through the index
    instead of skipping ``offset`` rows. ``total`` counts the matches up to ``COUNT_CAP`` (``total_exact`` False
    when there are more), or all of them with ``exact_total``."""
    table = TABLES[kind]
    where = _where(kind, filters, engine.dialect.name)
    query = sa.select(table).where(where)
    if after is not None:
        query = query.where(table.c.first_position > after)
    with engine.connect() as conn:
        if exact_total:
            total = conn.execute(sa.select(sa.func.count()).select_from(table).where(where)).scalar_one()
        else:
            capped = sa.select(sa.literal(1)).select_from(table).where(where).limit(COUNT_CAP + 1).subquery()
            total = conn.execute(sa.select(sa.func.count()).select_from(capped)).scalar_one()
        rows = conn.execute(query.order_by(_order(table, filters, total)).limit(limit + 1).offset(offset)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    exact = exact_total or total <= COUNT_CAP
    return Page([to_view(r) for r in rows], int(min(total, COUNT_CAP) if not exact else total), limit, offset,
                encode_cursor(rows[-1].first_position) if more else None, exact)


def get_entry(engine: Engine, kind: str, entry_id: str) -> dict[str, Any] | None:
    table = TABLES[kind]
    with engine.connect() as conn:
        row = conn.execute(sa.select(table).where(table.c.id == entry_id)).first()
    return to_view(row) if row else None


# -- what the use cases look up -------------------------------------------------------------------------
def department_data(engine: Engine, code: str) -> dict[str, Any] | None:
    """The department's entry data, or None when the directory has no such department."""
    t = TABLES["department"]
    with engine.connect() as conn:
        row = conn.execute(sa.select(t.c.data).where(t.c.code == code)).first()
    if row is None:
        return None
    data: dict[str, Any] = json.loads(row.data)
    return data


def department_names(engine: Engine, codes: Iterable[str]) -> dict[str, str]:
    """Code -> name of the departments found."""
    t = TABLES["department"]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.c.code, t.c.name).where(t.c.code.in_(list(codes)))).all()
    return {r.code: r.name for r in rows}


def reading(bind: Engine | Connection) -> contextlib.AbstractContextManager[Connection]:
    """A connection to read with: ``bind`` itself when it is one (a caller's transaction, e.g. aligned to one
    log position), else a new one of the engine."""
    return contextlib.nullcontext(bind) if isinstance(bind, Connection) else bind.connect()


def items(engine: Engine | Connection, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Item id -> ``{department, **data}`` of the inspection items found."""
    t = TABLES["item"]
    with reading(engine) as conn:
        rows = conn.execute(sa.select(t.c.id, t.c.owner, t.c.data).where(t.c.id.in_(list(ids)))).all()
    return {r.id: {"department": r.owner, **json.loads(r.data)} for r in rows}


def entries_by_id(engine: Engine, kind: str, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Entry id -> ``{department, **data}`` of the ``kind`` entries found (one query per 500 ids, by primary
    key: what a read adds names from, never a scan)."""
    t = TABLES[kind]
    wanted = sorted(set(ids))
    out: dict[str, dict[str, Any]] = {}
    with engine.connect() as conn:
        for start in range(0, len(wanted), _CHUNK):
            query = sa.select(t.c.id, t.c.owner, t.c.data).where(t.c.id.in_(wanted[start : start + _CHUNK]))
            for r in conn.execute(query):
                out[r.id] = {"department": r.owner, **json.loads(r.data)}
    return out


def target_data(engine: Engine | Connection, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Target id -> entry data of the targets found."""
    t = TABLES["target"]
    out: dict[str, dict[str, Any]] = {}
    with reading(engine) as conn:
        for start in range(0, len(ids), _CHUNK):
            for r in conn.execute(sa.select(t.c.id, t.c.data).where(t.c.id.in_(ids[start : start + _CHUNK]))):
                out[r.id] = json.loads(r.data)
    return out


def _within_scope(query: Any, scope: Mapping[str, Any]) -> Any:
    """``query`` over the target table, narrowed to the rows a task ``scope`` admits (each given criterion holds;
    tags: at least one in common)."""
    t = TABLES["target"]
    if scope.get("county"):
        query = query.where(t.c.county == scope["county"])
    for column, key in ((t.c.industry, "industries"), (t.c.supervision_class, "supervision_classes"),
                        (t.c.risk_class, "risk_classes")):
        if scope.get(key):
            query = query.where(column.in_(list(scope[key])))
    if scope.get("tags"):
        query = query.where(sa.or_(*(t.c.tags.contains(f"|{tag}|", autoescape=True) for tag in scope["tags"])))
    return query


def scope_counts(conn: Connection, scope: Mapping[str, Any]) -> dict[tuple[str, str], int]:
    """Active targets a task scope admits, counted per (supervision class, risk class) by the database (one
    GROUP BY query, nothing per target in memory): what ``domain.tasks.pool.build_pool(...).counts`` gives for
    the same scope without exclusions (``admits``: each given criterion holds; tags: at least one in common)."""
    t = TABLES["target"]
    query = sa.select(t.c.supervision_class, t.c.risk_class, sa.func.count()).where(t.c.status == "active")
    query = _within_scope(query, scope)
    rows = conn.execute(query.group_by(t.c.supervision_class, t.c.risk_class)).all()
    return {(str(sc), str(rc)): int(n) for sc, rc, n in rows}


def pool_candidates(
    conn: Connection, *, county: str | None = None, supervision_classes: Sequence[str] | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """``(target id, {county, industry, supervision_class, risk_class, tags, status})`` of every target (of
    the county and the classes, when given): what a draw's scope and pool read."""
    t = TABLES["target"]
    query = sa.select(
        t.c.id, t.c.county, t.c.industry, t.c.supervision_class, t.c.risk_class, t.c.tags, t.c.status
    )
    if county:
        query = query.where(t.c.county == county)
    if supervision_classes:
        query = query.where(t.c.supervision_class.in_(supervision_classes))
    return [
        (
            r.id,
            {
                "county": r.county,
                "industry": r.industry,
                "supervision_class": r.supervision_class,
                "risk_class": r.risk_class,
                "tags": split_bars(r.tags),
                "status": r.status,
            },
        )
        for r in conn.execute(query).all()
    ]


def target_columns_until(
    conn: Connection, position: int, scope: Mapping[str, Any], *, place: bool = False, batch: int = 10_000
) -> TargetColumns:
    """Every target whose last event is at or before ``position`` and that the task ``scope`` may admit, as
    :class:`TargetColumns` in id order (UTF-8 byte order, the pool's): id, supervision and risk class, status,
    tags, and county and industry when ``place`` or the scope asks for them. Read ``batch`` rows at a time into
    columns, a row's values never held as objects of their own: classes and statuses are one string object per
    distinct value, tags split once per distinct list (a province's million targets take about 0.7 s with the
    cyclic GC paused, ``projections.bulk.gc_paused``, as the pool's reader does).

    The scope is a prefilter (its county through the county index): every row it admits is here, and
    ``build_pool`` admits by the scope again. A field the entry lacks reads as absent (``status`` None reads as
    ``active``, as in the entry); ``tags`` come from the ``|a|b|`` column, or from the entry's JSON where the
    entry holds a ``|`` anywhere (a tag may) or an empty tag."""
    t = TABLES["target"]
    if conn.dialect.name == "postgresql":
        listed = sa.func.json_extract_path_text(sa.cast(t.c.data, sa.JSON), "tags")
        piped = sa.func.strpos(t.c.data, "|") > 0
    else:
        listed = sa.func.json_extract(t.c.data, "$.tags")
        piped = sa.func.instr(t.c.data, "|") > 0
    # The |a|b| column says the tags exactly unless the entry holds a | (a tag may) or an empty tag: then its JSON.
    exact = sa.and_(t.c.tags.is_not(None), sa.or_(t.c.tags == "", sa.and_(sa.not_(piped),
                                                                          t.c.tags.not_like("%||%"))))
    tags_json = sa.case((exact, sa.null()), else_=listed)
    place = place or bool(scope.get("county") or scope.get("industries"))
    columns = [t.c.id, t.c.supervision_class, t.c.risk_class, t.c.status, t.c.tags, tags_json]
    if place:
        columns += [t.c.county, t.c.industry]
    # In the primary key's order: on a database whose collation orders by bytes (C, C.UTF-8; SQLite's BINARY)
    # that is the pool's order and nothing is sorted; under another collation build_pool sorts.
    query = _within_scope(sa.select(*columns).where(t.c.position <= position), scope).order_by(t.c.id)
    out = TargetColumns(counties=[] if place else None, industries=[] if place else None)
    same = _Canonical()
    barred = _SplitBars()
    decoded = _DecodedTags()
    for rows in plain_batches(conn, query, batch):
        ids, classes, risks, statuses, bars, in_json, *where = zip(*rows)
        out.ids.extend(ids)
        out.supervision_classes.extend(map(same.__getitem__, classes))
        out.risk_classes.extend(map(same.__getitem__, risks))
        out.statuses.extend(map(same.__getitem__, statuses))
        if in_json.count(None) == len(in_json):
            out.tags.extend(map(barred.__getitem__, bars))
        else:
            out.tags.extend(barred[b] if j is None else decoded[j] for b, j in zip(bars, in_json))
        if out.counties is not None and out.industries is not None:
            out.counties.extend(map(same.__getitem__, where[0]))
            out.industries.extend(map(same.__getitem__, where[1]))
    return out


class _Canonical(dict[Any, Any]):
    """One object per distinct value: ``same[v]`` is the first ``v`` seen equal to it."""

    def __missing__(self, value: Any) -> Any:
        self[value] = value
        return value


class _SplitBars(dict[Any, Any]):
    """A ``|a|b|`` text -> its list, split once per distinct text ('' and None -> None)."""

    def __init__(self) -> None:
        super().__init__({None: None, "": None})

    def __missing__(self, text: str) -> Any:
        value = self[text] = split_bars(text)
        return value


class _DecodedTags(dict[Any, Any]):
    """A tags JSON text -> its list, decoded once per distinct text."""

    def __missing__(self, text: str) -> Any:
        value = self[text] = msgspec.json.decode(text)
        return value


def active_inspector_count(conn: Connection, department: str, on: dt.date) -> int:
    """The department's active inspectors whose certificate is valid on ``on``."""
    t = TABLES["inspector"]
    return int(
        conn.execute(
            sa.select(sa.func.count())
            .select_from(t)
            .where(t.c.owner == department, t.c.active.is_(True), t.c.certificate_expiry >= on.isoformat())
        ).scalar_one()
    )


def staff(
    engine: Engine | Connection, department: str
) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, dict[str, Any]]]]:
    """``(inspectors, experts)`` of the department: ``(entry id, data)`` each."""
    ti, te = TABLES["inspector"], TABLES["expert"]
    with reading(engine) as conn:
        inspectors = conn.execute(sa.select(ti.c.id, ti.c.data).where(ti.c.owner == department)).all()
        experts = conn.execute(sa.select(te.c.id, te.c.data).where(te.c.owner == department)).all()
    return [(r.id, json.loads(r.data)) for r in inspectors], [(r.id, json.loads(r.data)) for r in experts]


def inspector_aliases(engine: Engine, inspector_id: str) -> set[str]:
    """The inspector's entry id and, when in the directory, its staff id: a token's subject may be either."""
    t = TABLES["inspector"]
    with engine.connect() as conn:
        row = conn.execute(sa.select(t.c.id, t.c.staff_id).where(t.c.id == inspector_id)).first()
    return {inspector_id} | ({row.staff_id} if row else set())


def inspector_entries(conn: Connection, department: str, subject: str) -> list[str]:
    """Ids of the department's inspector entries a token's subject names (entry id or staff id)."""
    t = TABLES["inspector"]
    query = sa.select(t.c.id).where(
        sa.or_(t.c.id == subject, t.c.staff_id == subject), t.c.owner == department
    )
    return list(conn.execute(query).scalars())
