"""The server's verification of a follow-up round (``GET /follow-ups/{id}/verification``): the round's stored
events and the log's inspection events up to the round's read position, streamed from the event store into
``domain.execution.followup_check`` (the specification the standalone verifier implements too)."""

import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import sqlalchemy as sa
from eventsourcing.persistence import StoredEvent
from sqlalchemy.engine import Engine

from domain.execution.followup_check import (
    FINDINGS,
    OPENED,
    FollowUpCheck,
    InspectedTargets,
    check_follow_up,
    period_problem,
    read_position,
)
from services.application import DualRandom

ROUND = "domain.execution.followup:FollowUpRound."
PLAN_FIELDS = ("department", "period", "ratio", "pool", "quota", "commitment", "position", "entropy_source")
BATCH = 2000


def _rows(app: DualRandom, engine: Engine, where: Any) -> Iterator[tuple[int, str, Any]]:
    """``(log position, topic, domain event)`` of the stored events matching ``where``, in log order, streamed
    (a server-side cursor on PostgreSQL: the rows are not all held at once)."""
    recorder: Any = app.recorder
    table = recorder.events_record_cls.__table__
    query = (sa.select(table.c.id, table.c.originator_id, table.c.originator_version, table.c.topic, table.c.state)
             .where(where(table)).order_by(table.c.id))
    to_domain_event = app.mapper.to_domain_event
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=BATCH).execute(query)
        for position, oid, version, topic, state in result:
            oid = oid if isinstance(oid, uuid.UUID) else uuid.UUID(str(oid))
            yield int(position), topic, to_domain_event(StoredEvent(oid, version, topic, bytes(state)))


def _plan(event: Any) -> dict[str, Any]:
    """A ``Planned`` event's data as the check reads it (a field the stored event lacks reads as None)."""
    return {k: getattr(event, k, None) for k in PLAN_FIELDS}


def verify_round(app: DualRandom, engine: Engine, rid: uuid.UUID) -> FollowUpCheck:
    """The first difference of round ``rid`` (docs/verifying-a-draw.md section 17, "What a verifier checks")."""
    planned: tuple[int, dict[str, Any]] | None = None
    drawn: list[tuple[int, Mapping[str, Any]]] = []
    for position, topic, event in _rows(app, engine, lambda t: t.c.originator_id == rid):
        if topic == ROUND + "Planned" and planned is None:
            planned = (position, _plan(event))
        elif topic == ROUND + "Drawn":
            drawn.append((position, event.record))
    if not drawn:
        return FollowUpCheck("draw: the round has not been drawn")
    if planned is None or planned[0] > drawn[0][0]:
        return FollowUpCheck("planned: no Planned event before the draw")
    planned_at, plan = planned
    record = drawn[0][1]
    if len(drawn) > 1:
        return check_follow_up(plan, planned_at, record, None, [p for p, _ in drawn])
    upto = read_position(plan, planned_at)
    if upto is None:  # the check names what is wrong with the position
        return check_follow_up(plan, planned_at, record, None)
    wrong = period_problem(plan["period"])
    if wrong:
        return FollowUpCheck(wrong)
    fold = InspectedTargets(str(plan["department"]), str(plan["period"]))
    for _, topic, event in _rows(app, engine, lambda t: sa.and_(t.c.id <= upto, t.c.topic.in_((OPENED, FINDINGS)))):
        fold.apply(topic, event.originator_id, event.__dict__)
    return check_follow_up(plan, planned_at, record, fold.pool())
