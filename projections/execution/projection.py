"""Execution read model: inspections (review, deadline, push state), public results (published, redacted),
referrals, follow-up rounds, and the names the public results show (items, departments, tasks, plan entries),
kept from their own events so that rows depend on the log alone. Enterprises' names and credit codes are the
directory read model's (``queries.names`` reads them there).

Inspection, referral and follow-up rows are rebuilt from the aggregates' own mutators (the aggregate is
rehydrated from its row's ``state_json``), as in the tasks read model. ``state_json`` holds confidential
fields: only ``queries.py`` reads it, and the public table never does.
"""

import json
from collections.abc import Sequence
from typing import Any, TypedDict

import msgspec
import sqlalchemy as sa
from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic
from sqlalchemy.engine import Connection

from domain.directory import KINDS, DirectoryEntry
from domain.execution.followup import FollowUpRound
from domain.execution.inspection import Inspection, ReviewState
from domain.execution.referral import Referral
from domain.execution.visit import VisitNotices
from domain.planning.plan import AnnualPlan
from domain.tasks.task import Task
from projections.aggregate_rows import bars, common_row, fold, replay_columns, split_bars, upsert
from projections.decode import StoredMeta
from projections.runner import insert_rows

metadata = sa.MetaData()

_AGGREGATES: dict[str, type] = {"inspection": Inspection, "referral": Referral, "follow_up_round": FollowUpRound}
# Directory entries whose names this read model keeps. Targets are not among them: the directory read model has
# every target's name and credit code (the whole county's directory, hundreds of thousands of rows: keeping a
# second copy doubled what an import or a rebuild writes), and the queries read them there (queries.names).
_NAMED = ("item", "department")
_SCOPE_CONDITIONS = ("industries", "supervision_classes", "risk_classes", "tags")


def _tables(md: sa.MetaData, suffix: str) -> dict[str, sa.Table]:
    return {
        "inspection": sa.Table(
            f"rm_inspection{suffix}", md,
            sa.Column("id", sa.String(36), primary_key=True),
            sa.Column("assignment_id", sa.String(36), index=True, nullable=False),
            sa.Column("task_id", sa.String(36), index=True, nullable=False),
            sa.Column("department", sa.String(32), index=True, nullable=False),
            sa.Column("target_id", sa.String(36), index=True, nullable=False),
            sa.Column("state", sa.String(16), index=True, nullable=False),
            sa.Column("inspected_on", sa.String(10)),
            sa.Column("approved_on", sa.String(10)),
            sa.Column("deadline", sa.String(10), index=True),
            sa.Column("provisional", sa.Boolean, nullable=False),
            sa.Column("uncovered_years", sa.String(60), nullable=False),  # "|2027|"
            sa.Column("published_on", sa.String(10)),
            sa.Column("push_state", sa.String(10)),
            *replay_columns(),
        ),
        "public": sa.Table(
            f"rm_public_result{suffix}", md,
            sa.Column("inspection_id", sa.String(36), primary_key=True),
            sa.Column("department", sa.String(32), index=True, nullable=False),
            sa.Column("target_id", sa.String(36), index=True, nullable=False),
            sa.Column("task_id", sa.String(36), nullable=False),
            sa.Column("inspected_on", sa.String(10)),
            sa.Column("published_on", sa.String(10), nullable=False),
            sa.Column("findings", sa.Text, nullable=False),  # redacted: result, public description, measures
            sa.Column("position", sa.BigInteger, index=True, nullable=False),
        ),
        "referral": sa.Table(
            f"rm_referral{suffix}", md,
            sa.Column("id", sa.String(36), primary_key=True),
            sa.Column("kind", sa.String(12), nullable=False),
            sa.Column("from_department", sa.String(32), index=True, nullable=False),
            sa.Column("to", sa.String(200), index=True, nullable=False),
            sa.Column("copy_to", sa.String(200), nullable=False),
            sa.Column("inspection_id", sa.String(36), index=True, nullable=False),
            sa.Column("item", sa.String(100), nullable=False),
            sa.Column("target_id", sa.String(36), nullable=False),
            sa.Column("state", sa.String(12), index=True, nullable=False),
            sa.Column("transferred_on", sa.String(10), nullable=False),
            sa.Column("respond_by", sa.String(10)),
            sa.Column("outcome_by", sa.String(10)),
            *replay_columns(),
        ),
        "follow_up": sa.Table(
            f"rm_follow_up{suffix}", md,
            sa.Column("id", sa.String(36), primary_key=True),
            sa.Column("department", sa.String(32), index=True, nullable=False),
            sa.Column("period", sa.String(8), nullable=False),
            sa.Column("pool_size", sa.Integer, nullable=False),
            sa.Column("quota", sa.Integer, nullable=False),
            sa.Column("drawn", sa.Boolean, nullable=False),
            sa.Column("visited", sa.Integer, nullable=False),
            *replay_columns(),
        ),
        # Which visit, department or referral names an evidence file (by SHA-256): who may download it is
        # decided from these rows (services/usecases/evidence.py). Rows are only ever added: a file once named
        # stays readable to those who read the record that named it (its history keeps the reference).
        "evidence": sa.Table(
            f"rm_evidence_use{suffix}", md,
            sa.Column("sha256", sa.String(64), primary_key=True),
            sa.Column("owner", sa.String(36), primary_key=True),  # the inspection, visit (assignment) or referral
            sa.Column("department", sa.String(200), primary_key=True),  # whose staff (or team) reads it
            sa.Column("kind", sa.String(8), nullable=False),  # finding / shared / referral
            sa.Column("assignment_id", sa.String(36)),  # finding: the visit whose team reads it
        ),
        "visit": sa.Table(  # VisitNotices id -> its visit and departments (DocumentsShared names neither)
            f"rm_evidence_visit{suffix}", md,
            sa.Column("id", sa.String(36), primary_key=True),
            sa.Column("assignment_id", sa.String(36), nullable=False),
            sa.Column("departments", sa.Text, nullable=False),  # "|hj-eeb|hj-amr|"
        ),
        "name": sa.Table(
            f"rm_exec_name{suffix}", md,
            sa.Column("kind", sa.String(16), primary_key=True),  # target item department task plan plan_entry
            sa.Column("id", sa.String(80), primary_key=True),
            sa.Column("name", sa.String(300), nullable=False),
            sa.Column("code", sa.String(64), index=True, nullable=False),  # credit code, item code, task number
            sa.Column("extra", sa.Text, nullable=False),  # JSON: a task's plan entry, directed, lead, year
        ),
    }


TABLES = _tables(metadata, "")
# Its own aggregates' modules, tasks (Opened), plans, and the directory events that carry a name.
_NAME_TOPICS = tuple(sorted(
    {get_topic(c) for kind in _NAMED for c in (KINDS[kind].Registered, KINDS[kind].DetailsUpdated)}  # type: ignore[attr-defined]
    | {get_topic(DirectoryEntry.DetailsUpdated)}
))
_VISIT_TOPICS = (get_topic(VisitNotices.Opened), get_topic(VisitNotices.DocumentsShared))
_TOPICS = tuple(sorted(
    {get_topic(cls).partition(":")[0] + ":" for cls in (*_AGGREGATES.values(), Task, AnnualPlan)} | set(_NAME_TOPICS)
    | set(_VISIT_TOPICS)
))


class _Named(msgspec.Struct):
    """The members of a directory event's stored state that carry a name (missing ones: None, as ``getattr``)."""

    data: Any = None  # Registered
    changes: Any = None  # DetailsUpdated
    meta: Any = msgspec.field(default=None, name="_meta")


class _NameData(TypedDict, total=False):
    name: Any
    credit_code: Any
    code: Any
    department: Any


class _NameChanges(TypedDict, total=False):
    name: Any


class _NamedOnly(msgspec.Struct):
    """``_Named`` with only the members ``_directory_name`` reads of each object: the rest is skipped unbuilt (a
    rebuild reads a million states). A member of another shape raises ValidationError: then ``_Named`` decides."""

    data: _NameData | None = None
    changes: _NameChanges | None = None
    meta: StoredMeta | None = msgspec.field(default=None, name="_meta")


_READ_NAMED = msgspec.json.Decoder(_Named).decode
_READ_NAMED_ONLY = msgspec.json.Decoder(_NamedOnly).decode


def is_directed(scope: dict[str, Any]) -> bool:
    """定向: drawn among the targets meeting conditions (industry, class, risk, tags); 不定向: the whole county."""
    return any(scope.get(k) for k in _SCOPE_CONDITIONS)


class ExecutionProjection:
    """Keeps ``rm_inspection``, ``rm_public_result``, ``rm_referral``, ``rm_follow_up``, ``rm_exec_name`` and the
    evidence uses (``rm_evidence_use``, ``rm_evidence_visit``)."""

    name = "execution"
    topics = _TOPICS  # the runner decodes and passes only these events
    stored_topics = _NAME_TOPICS  # ... and these undecoded when it can (_name_stored reads three members)

    def __init__(self, suffix: str = "") -> None:
        self.suffix = suffix
        if suffix:
            self.metadata = sa.MetaData()
            self.tables = _tables(self.metadata, suffix)
        else:
            self.metadata, self.tables = metadata, TABLES

    def apply_batch(self, conn: Connection, events: Sequence[tuple[int, Any]]) -> None:
        names: dict[tuple[str, str], dict[str, Any]] = {}  # (kind, id) -> {"row": {...}} | {"rename": name}
        rest: list[tuple[int, Any]] = []  # the events of the aggregates kept whole, for fold
        uses: dict[tuple[str, str, str], dict[str, Any]] = {}  # (sha256, owner, department) -> rm_evidence_use row
        named: dict[str, set[str]] = {}  # inspection or referral id -> SHA-256 its events in this batch name
        for position, ev in events:  # names in log order, whichever form their events come in
            if isinstance(ev, Notification):  # stored_topics: a directory event left undecoded
                self._name_stored(names, ev)
                continue
            if isinstance(ev, (VisitNotices.Opened, VisitNotices.DocumentsShared)):
                self._shared(conn, uses, ev)
                continue
            for ref in _evidence_named(ev):
                named.setdefault(str(ev.originator_id), set()).add(ref)
            kind = (getattr(ev, "_meta", None) or {}).get("aggregate")
            if kind in _NAMED or kind in ("task", "plan"):
                self._name(names, kind, ev)
            else:
                rest.append((position, ev))
        states = fold(conn, rest, _AGGREGATES, lambda kind: self.tables[_TABLE[kind]])
        if names:
            self._write_names(conn, names)
        for kind, agg, position, first in states.values():
            getattr(self, f"_write_{kind}")(conn, agg, position, first)
            for sha in sorted(named.get(str(agg.id), ())):
                if kind == "inspection":
                    uses[(sha, str(agg.id), agg.department)] = {"kind": "finding", "assignment_id": agg.assignment_id}
                elif kind == "referral":
                    for dept in {agg.from_department, agg.to}:
                        uses[(sha, str(agg.id), dept)] = {"kind": "referral", "assignment_id": None}
        if uses:
            self._write_uses(conn, uses)

    # -- evidence uses --------------------------------------------------------------------------------------
    def _shared(self, conn: Connection, uses: dict[tuple[str, str, str], dict[str, Any]], ev: Any) -> None:
        """资料互通: a shared document is read by the staff of every department of the visit."""
        t = self.tables["visit"]
        if isinstance(ev, VisitNotices.Opened):
            conn.execute(t.insert().values(id=str(ev.originator_id), assignment_id=ev.assignment_id,
                                           departments=bars(sorted(ev.departments))))
            return
        row = conn.execute(sa.select(t.c.assignment_id, t.c.departments)
                           .where(t.c.id == str(ev.originator_id))).first()
        if row is None:  # cannot happen: Opened is the aggregate's first event, applied before
            return
        for ref in ev.documents:
            for dept in split_bars(row.departments):
                uses[(ref["sha256"], row.assignment_id, dept)] = {"kind": "shared", "assignment_id": row.assignment_id}

    def _write_uses(self, conn: Connection, uses: dict[tuple[str, str, str], dict[str, Any]]) -> None:
        t = self.tables["evidence"]
        shas = sorted({k[0] for k in uses})
        existing = {(r.sha256, r.owner, r.department) for r in conn.execute(
            sa.select(t.c.sha256, t.c.owner, t.c.department).where(t.c.sha256.in_(shas)))}
        insert_rows(conn, t, [{"sha256": k[0], "owner": k[1], "department": k[2], **v}
                              for k, v in sorted(uses.items()) if k not in existing])

    # -- names --------------------------------------------------------------------------------------------
    @staticmethod
    def _put(names: dict[tuple[str, str], dict[str, Any]], kind: str, key: str, name: str, code: str = "",
             extra: dict[str, Any] | None = None, new: bool = False) -> None:
        """``new``: the key is its aggregate's id and the event its first (version 1), so no row exists yet."""
        names[(kind, key)] = {"row": {"kind": kind, "id": key, "name": name or "", "code": code or "",
                                      "extra": _dumps(extra) if extra else "{}"},
                              "new": new}

    @staticmethod
    def _rename(names: dict[tuple[str, str], dict[str, Any]], kind: str, key: str, name: str) -> None:
        pending = names.get((kind, key))
        if pending is not None and "row" in pending:
            pending["row"]["name"] = name
        else:
            names[(kind, key)] = {"rename": name}

    def _directory_name(self, names: dict[tuple[str, str], dict[str, Any]], kind: str, oid: str, version: int,
                        data: Any, changes: Any) -> None:
        if isinstance(data, dict) and "name" in data:  # Registered
            code = data.get("credit_code") or data.get("code") or ""
            extra = {"department": data.get("department", "")} if kind == "item" else None
            self._put(names, kind, oid, data["name"], code, extra, new=version == 1)
        if isinstance(changes, dict) and "name" in changes:  # DetailsUpdated
            self._rename(names, kind, oid, changes["name"])

    def _name_stored(self, names: dict[tuple[str, str], dict[str, Any]], n: Notification) -> None:
        """``_name`` of a directory event from its stored state: the three members it reads, nothing decoded else
        (a directory import or rebuild brings hundreds of thousands of them)."""
        if n.topic.rpartition(".")[2] not in _NAME_EVENTS:
            return
        try:
            fields: _Named | _NamedOnly = _READ_NAMED_ONLY(n.state)
        except msgspec.ValidationError:
            fields = _READ_NAMED(n.state)
        kind = fields.meta.get("aggregate") if isinstance(fields.meta, dict) else None
        if kind in _NAMED:
            self._directory_name(names, kind, str(n.originator_id), n.originator_version, fields.data, fields.changes)

    def _name(self, names: dict[tuple[str, str], dict[str, Any]], kind: str, ev: Any) -> None:
        if kind in _NAMED:
            # Only a Registered (data) or DetailsUpdated (changes) event carries a name: the class says so before
            # anything else is looked at (a directory import or rebuild brings mostly other events).
            if type(ev).__name__ in _NAME_EVENTS:
                self._directory_name(names, kind, str(ev.originator_id), ev.originator_version,
                                     getattr(ev, "data", None), getattr(ev, "changes", None))
        elif kind == "task" and isinstance(ev, Task.Opened):
            oid = str(ev.originator_id)
            self._put(names, "task", oid, ev.name, ev.number, {
                "lead": ev.lead, "year": ev.year, "plan_entry": ev.plan_entry or "", "origin": ev.origin,
                "directed": is_directed(ev.scope or {}), "period": ev.period,
            }, new=ev.originator_version == 1)
        elif kind == "plan":
            oid = str(ev.originator_id)
            if isinstance(ev, AnnualPlan.Created):
                self._put(names, "plan", oid, ev.name, str(ev.year), {"department": ev.department},
                          new=ev.originator_version == 1)
            elif isinstance(ev, AnnualPlan.EntryAdded):
                self._put(names, "plan_entry", f"{oid}/{ev.number}", ev.name, ev.number)
            elif isinstance(ev, AnnualPlan.EntryChanged) and "name" in (ev.changes or {}):
                self._rename(names, "plan_entry", f"{oid}/{ev.number}", ev.changes["name"])

    def _write_names(self, conn: Connection, names: dict[tuple[str, str], dict[str, Any]]) -> None:
        """New rows in bulk (a directory import brings thousands); existing rows updated one by one."""
        t = self.tables["name"]
        existing: set[tuple[str, str]] = set()
        by_kind: dict[str, list[str]] = {}
        for (kind, row_id), pending in names.items():
            if not pending.get("new"):  # an aggregate's first event made this row: it cannot exist yet
                by_kind.setdefault(kind, []).append(row_id)
        pg = conn.dialect.name == "postgresql"
        step = 5000 if pg else 500
        for kind, keys in by_kind.items():
            for start in range(0, len(keys), step):
                chunk = keys[start:start + step]
                if pg:  # one array parameter: one short statement, a primary-key lookup per key
                    cond = t.c.id == sa.func.any(sa.cast(sa.literal(chunk, sa.ARRAY(sa.String)), sa.ARRAY(sa.String)))
                else:
                    cond = t.c.id.in_(chunk)
                found = conn.execute(sa.select(t.c.id).where(t.c.kind == kind, cond))
                existing.update((kind, k) for k in found.scalars())
        new = []
        for key, pending in names.items():
            if "row" in pending and key not in existing:
                new.append(pending["row"])
                continue
            if "row" not in pending and key not in existing:
                continue
            where = (t.c.kind == key[0]) & (t.c.id == key[1])
            if "row" in pending:
                row = pending["row"]
                conn.execute(t.update().where(where).values(name=row["name"], code=row["code"], extra=row["extra"]))
            else:
                conn.execute(t.update().where(where).values(name=pending["rename"]))
        insert_rows(conn, t, new)

    # -- aggregates ---------------------------------------------------------------------------------------
    def _write_inspection(self, conn: Connection, insp: Inspection, position: int, first: int | None) -> None:
        d = insp.deadline or {}
        row = {
            **common_row(insp, position),
            "assignment_id": insp.assignment_id, "task_id": insp.task_id, "department": insp.department,
            "target_id": insp.target_id, "state": insp.state, "inspected_on": insp.inspected_on,
            "approved_on": insp.approved_on, "deadline": d.get("date"), "provisional": bool(d.get("provisional")),
            "uncovered_years": bars([str(y) for y in d.get("uncovered_years", [])]),
            "published_on": insp.published_on, "push_state": insp.push_state,
        }
        upsert(conn, self.tables["inspection"], row, first)
        if insp.state == ReviewState.PUBLISHED.value:
            pub = self.tables["public"]
            conn.execute(pub.delete().where(pub.c.inspection_id == str(insp.id)))
            conn.execute(pub.insert().values(
                inspection_id=str(insp.id), department=insp.department, target_id=insp.target_id,
                task_id=insp.task_id, inspected_on=insp.inspected_on, published_on=insp.published_on,
                findings=json.dumps(insp.public_findings(), ensure_ascii=False, sort_keys=True), position=position,
            ))

    def _write_referral(self, conn: Connection, r: Referral, position: int, first: int | None) -> None:
        row = {
            **common_row(r, position),
            "kind": r.kind, "from_department": r.from_department, "to": r.to, "copy_to": r.copy_to,
            "inspection_id": r.source["inspection_id"], "item": r.source["item"], "target_id": r.source["target_id"],
            "state": r.state, "transferred_on": r.transferred_on, "respond_by": r.respond_by,
            "outcome_by": r.outcome_by,
        }
        upsert(conn, self.tables["referral"], row, first)

    def _write_follow_up_round(self, conn: Connection, f: FollowUpRound, position: int, first: int | None) -> None:
        row = {
            **common_row(f, position),
            "department": f.department, "period": f.period, "pool_size": len(f.pool), "quota": f.quota,
            "drawn": f.draw is not None, "visited": sum(1 for v in f.visits.values() if v["visits"]),
        }
        upsert(conn, self.tables["follow_up"], row, first)


def _evidence_named(ev: Any) -> list[str]:
    """The SHA-256 of every evidence file an inspection's findings or a referral's step names."""
    if isinstance(ev, Inspection.FindingsRecorded):
        return [ref["sha256"] for f in (ev.findings or {}).values() if isinstance(f, dict)
                for ref in (f.get("evidence") or [])]
    if isinstance(ev, (Referral.Referred, Referral.DocumentsAdded, Referral.ReceiptRecorded, Referral.OutcomeReported)):
        found = list(getattr(ev, "documents", None) or [])
        receipt = getattr(ev, "receipt", None)
        if isinstance(receipt, dict):
            found += receipt.get("documents") or []
        return [ref["sha256"] for ref in found if isinstance(ref, dict)]
    return []


_dumps = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode  # json.dumps(..., same options), built once
_NAME_EVENTS = frozenset({"Registered", "DetailsUpdated"})
_TABLE = {"inspection": "inspection", "referral": "referral", "follow_up_round": "follow_up"}
