"""What the API reads from the directory read models: filtered, paginated listings and single rows."""

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from domain.directory import KINDS
from projections.directory.projection import TABLES, TEXT_SEARCH


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


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


def list_entries(engine: Engine, kind: str, filters: dict[str, Any], limit: int = 50, offset: int = 0) -> Page:
    """Rows of ``kind`` matching every filter (text fields: contains; list fields: has member)."""
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
            conditions.append(table.c[name].startswith(value, autoescape=True))
        else:
            conditions.append(table.c[name] == value)
    where = sa.and_(sa.true(), *conditions)
    with engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(table).where(where)).scalar_one()
        rows = conn.execute(
            sa.select(table).where(where).order_by(table.c.first_position).limit(limit).offset(offset)
        ).all()
    return Page([to_view(r) for r in rows], int(total), limit, offset)


def get_entry(engine: Engine, kind: str, entry_id: str) -> dict[str, Any] | None:
    table = TABLES[kind]
    with engine.connect() as conn:
        row = conn.execute(sa.select(table).where(table.c.id == entry_id)).first()
    return to_view(row) if row else None
