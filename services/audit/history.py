"""One aggregate's history, and its state as of a version or a time (replayed from its stored events)."""

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from eventsourcing.persistence import StoredEvent
from sqlalchemy.engine import Engine

from domain.audit.leaf import aggregate_kind, envelope, record_item
from domain.errors import FieldProblem, InvalidInputError
from services.application import NotFoundError
from services.audit.log import aggregate_records


class NotYetError(NotFoundError):
    """The aggregate did not exist yet at the time asked for."""

    def __init__(self, entry_id: str, at: dt.datetime, first: str) -> None:
        Exception.__init__(self, f"aggregate {entry_id} did not exist yet at {at.isoformat()} (first event at {first})")
        self.kind = "aggregate"
        self.entry_id = entry_id


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return str(value)


def state_of(agg: Any) -> dict[str, Any]:
    """The fields of an aggregate (``data`` for directory entries; public attributes otherwise)."""
    data = getattr(agg, "data", None)
    fields = data if isinstance(data, dict) else {k: v for k, v in vars(agg).items() if not k.startswith("_")}
    return {
        "id": str(agg.id), "version": agg.version,
        "created_on": agg.created_on.isoformat(), "modified_on": agg.modified_on.isoformat(),
        **_jsonable(fields),
    }


def aggregate_at(
    app: Any, engine: Engine, events: sa.Table, aggregate_id: uuid.UUID,
    version: int | None = None, at: dt.datetime | None = None,
) -> dict[str, Any]:
    """Every event of the aggregate and its state as of ``version`` or time ``at`` (default: now)."""
    records = aggregate_records(engine, events, aggregate_id)
    if not records:
        raise NotFoundError("aggregate", str(aggregate_id))
    items = [record_item(*r) for r in records]
    current = records[-1][2]
    if version is not None:
        if not 1 <= version <= current:
            raise InvalidInputError([FieldProblem("version", "range", f"the aggregate has versions 1 to {current}")])
        upto = version
    elif at is not None:
        upto = 0
        for r in records:
            if dt.datetime.fromisoformat(envelope(*r)["time"]) <= at:
                upto = r[2]
            else:
                break
        if upto == 0:
            raise NotYetError(str(aggregate_id), at, items[0].get("time", "?"))
    else:
        upto = current
    agg: Any = None
    for _position, oid, v, topic, state in records:
        if v > upto:
            break
        ev: Any = app.mapper.to_domain_event(StoredEvent(oid, v, topic, state))
        agg = ev.mutate(agg)
    chosen = next(i for i in items if i["version"] == upto)
    first = items[0]
    return {
        "id": str(aggregate_id),
        "kind": first.get("aggregate_kind") or aggregate_kind(first["topic"], None),
        "version": current,
        "as_of": {"version": upto, "position": chosen["position"], "time": chosen.get("time")},
        "state": state_of(agg),
        "events": items,
    }
