"""Rows of read models kept by replaying aggregates: the aggregate is rehydrated from its row's ``state_json``
and the event applied with the domain's own mutator, so a read model cannot drift from the domain's rules.
Shared by the tasks and execution read models."""

import datetime as dt
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

_PRIVATE = {"_id", "_version", "_created_on", "_modified_on", "_pending_events"}


def bars(values: Sequence[str]) -> str:
    """``"|a|b|"``: a list in one column; ``LIKE '%|a|%'`` finds a member on any database."""
    return "|" + "|".join(values) + "|" if values else ""


def split_bars(text: str | None) -> list[str]:
    """The list ``bars`` wrote."""
    return [v for v in (text or "").split("|") if v]


def state_of(agg: Any) -> str:
    return json.dumps(
        {k: v for k, v in vars(agg).items() if k not in _PRIVATE}, ensure_ascii=False, sort_keys=True
    )


def rehydrate(cls: type, oid: uuid.UUID, version: int, created_on: str, modified_on: str, state: str) -> Any:
    agg: Any = object.__new__(cls)
    agg.__dict__.update(
        _id=oid,
        _version=version,
        _created_on=dt.datetime.fromisoformat(created_on),
        _modified_on=dt.datetime.fromisoformat(modified_on),
        _pending_events=[],
        **json.loads(state),
    )
    return agg


def load(conn: Connection, table: sa.Table, cls: type, oid: uuid.UUID) -> Any:
    """The aggregate as its row left it, or None."""
    t = table
    row = conn.execute(
        sa.select(t.c.version, t.c.created_on, t.c.modified_on, t.c.state_json).where(t.c.id == str(oid))
    ).first()
    if row is None:
        return None
    return rehydrate(cls, oid, row.version, row.created_on, row.modified_on, row.state_json)


def fold(
    conn: Connection,
    events: Sequence[tuple[int, Any]],
    aggregates: Mapping[str, type],
    table_of: Callable[[str], sa.Table],
    skip: Callable[[str | None, Any], bool] = lambda kind, ev: False,
) -> dict[uuid.UUID, list[Any]]:
    """Apply a batch to the aggregates of the given kinds: ``id -> [kind, aggregate, last position, first
    position (None: the row exists)]``. ``skip(kind, event)`` lets a projection take an event elsewhere."""
    states: dict[uuid.UUID, list[Any]] = {}
    for position, ev in events:
        kind = (getattr(ev, "_meta", None) or {}).get("aggregate")
        if skip(kind, ev):
            continue
        cls = aggregates.get(kind)  # type: ignore[arg-type]
        if cls is None:
            continue
        oid = ev.originator_id
        entry = states.get(oid)
        if entry is None:
            agg = load(conn, table_of(kind), cls, oid)  # type: ignore[arg-type]
            entry = states[oid] = [kind, agg, position, None if agg is not None else position]
        agg = entry[1]
        entry[1] = ev.mutate(agg) if agg is None else (ev.mutate(agg) or agg)
        entry[2] = position
    return states


def replay_columns() -> list[sa.Column[Any]]:
    """The columns every replayed aggregate's table ends with (``common_row`` fills them but ``first_position``,
    which ``upsert`` sets on insert); new objects each call, as a table owns its columns."""
    return [
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("first_position", sa.BigInteger, index=True, nullable=False),
        sa.Column("created_on", sa.String(40), nullable=False),
        sa.Column("modified_on", sa.String(40), nullable=False),
        sa.Column("state_json", sa.Text, nullable=False),
    ]


def common_row(agg: Any, position: int) -> dict[str, Any]:
    return {
        "id": str(agg.id),
        "version": agg.version,
        "position": position,
        "created_on": agg.created_on.isoformat(),
        "modified_on": agg.modified_on.isoformat(),
        "state_json": state_of(agg),
    }


def upsert(conn: Connection, table: sa.Table, row: dict[str, Any], first: int | None) -> None:
    """Insert the row (``first``: its first position) or update it."""
    if first is not None:
        conn.execute(table.insert().values(**row, first_position=first))
    else:
        conn.execute(table.update().where(table.c.id == row["id"]).values(**row))
