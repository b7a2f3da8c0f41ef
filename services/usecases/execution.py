"""Use cases of a visit from the draw to publication (issue 4): one transaction each, on the Application's store.

Inspections (one per assignment and department) are opened lazily from the Assignment the first time the
department's team or reviewers touch them, and their team follows the Assignment's (recusals, redraws) on
every entry and submission while the findings are still the team's to change. Publication deadlines come from
the official working-day calendar (the ``chinese-calendar`` years plus schedules an administrator loads);
loading a schedule recomputes the provisional deadlines it settles, in the same transaction. The follow-up
draw's secret seed is kept in ``follow_up_seeds`` between commitment and reveal, as the target draw's is.
"""

import datetime as dt
import json
import secrets
import tempfile
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from domain.access import Actor
from domain.calendar import CALENDAR_ID, CalendarSchedules, WorkCalendar, schedule_from_csv, schedule_from_json
from domain.draw.sampler import commitment
from domain.errors import FieldProblem, InvalidInputError, PermissionDeniedError
from domain.execution.access import can_read_confidential, require_staff
from domain.execution.clue import CLUE_SOURCE_LABELS, raised_risk_class, validate_clue
from domain.execution.evidence import EvidencePolicy, validate_refs
from domain.execution.followup import DEFAULT_FOLLOW_UP_RATIO, FollowUpRound
from domain.execution.inspection import Inspection, InvalidTransitionError, ReviewState, inspection_id
from domain.execution.notices import (
    NoticeDepartment,
    NoticeItem,
    ResultNoticeDepartment,
    documents_to_prepare,
    html_sha256,
    render_pre_visit_notice,
    render_result_notice,
)
from domain.execution.publicity import push_record
from domain.execution.referral import Referral
from domain.execution.visit import VisitNotices, visit_notices_id
from domain.execution.vocabulary import INSPECTION_METHOD_LABELS
from domain.planning.rules import parse_period
from domain.tasks import access as task_access
from domain.tasks.assignment import Assignment
from domain.tasks.task import TaskStateError
from domain.values import Role
from projections.directory.projection import TABLES as DIR
from projections.execution import queries as Q
from projections.runner import ProjectionRunner
from services.application import CommandContext, ConflictError, DualRandom, NotFoundError
from services.infra.evidence import EvidenceStore
from services.infra.publicity_export import write_manual_entry_csv, write_manual_entry_xlsx, write_push_json
from services.usecases.tasks import Done, Tasks

secrets_metadata = sa.MetaData()
follow_up_seeds = sa.Table(
    "follow_up_seeds", secrets_metadata,
    sa.Column("round_id", sa.String(36), primary_key=True),
    sa.Column("seed", sa.String(64), nullable=False),
)
"""Secret seeds of follow-up rounds between commitment and reveal. Never logged, never answered."""

FRESH_PROJECTIONS = ("directory", "tasks", "execution")
CLUE_NAMESPACE = uuid.UUID("3c1f6a2e-9b7d-5e40-8a1c-4d2e6f8a0b13")
EXPORT_FORMATS = {
    "json": ("application/json", "json"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
    "csv": ("text/csv; charset=utf-8", "csv"),
}
_EDITABLE = (ReviewState.NOT_ENTERED.value, ReviewState.RETURNED.value)


def _uuid(value: Any, field: str) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise InvalidInputError([FieldProblem(field, "format", "must be a UUID")]) from None


def _day(value: Any, field: str, default: dt.date) -> dt.date:
    if value in (None, ""):
        return default
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise InvalidInputError([FieldProblem(field, "format", "must be a date YYYY-MM-DD")]) from None


def _reader(actor: Actor) -> bool:
    return actor.has(Role.ADMIN) or actor.has(Role.AUDITOR)


class Execution:
    """Findings, review, notices, publication, referrals, case-triggered tasks, follow-up visits, calendar."""

    def __init__(self, app: DualRandom, engine: Engine, runner: ProjectionRunner, tasks: Tasks, settings: Any) -> None:
        self.app = app
        self.engine = engine
        self.runner = runner
        self.tasks = tasks
        self.settings = settings
        self.working_days: int = int(getattr(settings, "publication_working_days", 20))
        self.evidence = EvidenceStore(
            Path(settings.var_dir) / "evidence",
            EvidencePolicy(max_bytes=min(settings.max_upload_bytes, EvidencePolicy().max_bytes)),
        )
        self.today: Callable[[], dt.date] = dt.date.today  # tests pin the clock here

    def setup(self) -> None:
        secrets_metadata.create_all(self.engine)

    # -- loading -----------------------------------------------------------------------------------------
    def _find(self, cls: type, agg_id: uuid.UUID) -> Any:
        try:
            agg = self.app.repository.get(agg_id)
        except Exception:  # AggregateNotFoundError
            return None
        return agg if isinstance(agg, cls) else None

    def _get(self, cls: type, agg_id: uuid.UUID, kind: str) -> Any:
        agg = self._find(cls, agg_id)
        if agg is None:
            raise NotFoundError(kind, str(agg_id))
        return agg

    def _done(self, agg: Any, position: int | None, **body: Any) -> Done:
        return self.tasks._done(agg, position, **body)

    def _fresh(self) -> None:
        """Bring the read models commands consult to the head of the log, in this thread."""
        self.runner.catch_up_named(FRESH_PROJECTIONS)

    def _as_inspector(self, actor: Actor) -> Actor:
        """A token's subject may be the inspector's staff id: act as the entry id the teams hold."""
        if not actor.has(Role.INSPECTOR):
            return actor
        t = DIR["inspector"]
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.c.id).where(
                t.c.owner == actor.department, sa.or_(t.c.id == actor.subject, t.c.staff_id == actor.subject))).first()
        return replace(actor, subject=row.id) if row is not None and row.id != actor.subject else actor

    def _department_names(self, codes: Iterable[str]) -> dict[str, str]:
        t = DIR["department"]
        codes = list(codes)
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.c.code, t.c.name).where(t.c.code.in_(codes))).all()
        found = {r.code: r.name for r in rows}
        return {c: found.get(c, c) for c in codes}

    def _target(self, target_id: str) -> dict[str, Any]:
        return self.tasks._target_data([target_id]).get(target_id, {})

    def _check_evidence(self, refs: Iterable[Mapping[str, Any]], field: str) -> None:
        problems = []
        for i, ref in enumerate(refs):
            sha = ref.get("sha256") if isinstance(ref, Mapping) else None
            if isinstance(sha, str) and len(sha) == 64 and not self.evidence.exists(sha):
                problems.append(FieldProblem(f"{field}[{i}].sha256", "unknown_evidence",
                                             "no uploaded file has this SHA-256: POST /api/v1/evidence first"))
        if problems:
            raise InvalidInputError(problems)

    # -- inspections -------------------------------------------------------------------------------------
    def _assignment(self, aid: uuid.UUID) -> Assignment:
        return self.tasks.assignment(aid)

    def _inspection(self, a: Assignment, department: str) -> Inspection:
        """The department's inspection of the visit: opened from the assignment when missing, its team synced
        with the assignment's current team while the findings are the team's to change (no event if same)."""
        if a.state in ("merged", "cancelled"):
            where = f" into {a.merged_into}" if a.merged_into else ""
            raise TaskStateError(f"the visit was {a.state}{where}; nothing is recorded on it")
        if department not in a.items:
            raise InvalidInputError([FieldProblem("department", "not_participant",
                                                  f"{department} has no items on this visit")])
        team = a.teams.get(department)
        if team is None:
            raise InvalidInputError([FieldProblem("department", "no_team",
                                                  f"{department} has not drawn its inspectors for this visit yet")])
        insp = self._find(Inspection, inspection_id(a.id, department))
        if insp is None:
            return Inspection.open(a.id, a.task_id, department, a.target_id, a.items[department], team["members"])
        if insp.state in _EDITABLE:
            insp.sync_team(team["members"])
        return insp

    def _inspection_by_id(self, iid: uuid.UUID) -> tuple[Inspection, Assignment]:
        insp = self._get(Inspection, iid, "inspection")
        a = self._assignment(uuid.UUID(insp.assignment_id))
        if insp.state in _EDITABLE and a.state not in ("merged", "cancelled") and insp.department in a.teams:
            insp.sync_team(a.teams[insp.department]["members"])
        return insp, a

    def open_inspection(self, ctx: CommandContext, aid: uuid.UUID, department: str) -> Done:
        """Open (or sync) the department's inspection of a visit: its staff, or an admin."""
        require_staff(ctx.actor, department, "open an inspection")
        insp = self._inspection(self._assignment(aid), department)
        position = self.app.record(ctx, "open_inspection", insp)
        return self._done(insp, position, state=insp.state, team=insp.team, items=insp.items)

    def record_findings(self, ctx: CommandContext, aid: uuid.UUID, department: str, data: Mapping[str, Any]) -> Done:
        """谁检查、谁录入: the department's team inspectors enter its findings."""
        actor = self._as_inspector(ctx.actor)
        insp = self._inspection(self._assignment(aid), department)
        findings = data.get("findings") or {}
        if isinstance(findings, Mapping):
            for code, f in findings.items():
                if isinstance(f, Mapping) and isinstance(f.get("evidence"), list):
                    self._check_evidence(f["evidence"], f"findings.{code}.evidence")
        insp.record(actor, data.get("inspected_on"), data.get("methods") or [], findings, today=self.today())
        position = self.app.record(ctx, "record_findings", insp)
        return self._done(insp, position, state=insp.state, recorded=sorted(findings))

    def submit(self, ctx: CommandContext, iid: uuid.UUID) -> Done:
        insp, _ = self._inspection_by_id(iid)
        insp.submit(self._as_inspector(ctx.actor))
        position = self.app.record(ctx, "submit_findings", insp)
        return self._done(insp, position, state=insp.state)

    def return_(self, ctx: CommandContext, iid: uuid.UUID, reason: str) -> Done:
        insp, _ = self._inspection_by_id(iid)
        insp.return_(ctx.actor, reason)
        position = self.app.record(ctx, "return_findings", insp)
        return self._done(insp, position, state=insp.state)

    def approve(self, ctx: CommandContext, iid: uuid.UUID, approved_on: Any = None) -> Done:
        """Approve; the publication deadline is ``working_days`` working days later (official calendar)."""
        today = self.today()
        day = _day(approved_on, "approved_on", today)
        if day > today:
            raise InvalidInputError([FieldProblem("approved_on", "not_future", "must not be after today")])
        insp, _ = self._inspection_by_id(iid)
        deadline = insp.approve(ctx.actor, day, self.calendar(), self.working_days)
        position = self.app.record(ctx, "approve_findings", insp)
        return self._done(insp, position, state=insp.state, deadline=deadline.as_dict())

    def publish(self, ctx: CommandContext, iid: uuid.UUID, published_on: Any = None) -> Done:
        today = self.today()
        day = _day(published_on, "published_on", today)
        if day > today:
            raise InvalidInputError([FieldProblem("published_on", "not_future", "must not be after today")])
        insp, _ = self._inspection_by_id(iid)
        insp.publish(ctx.actor, day)
        position = self.app.record(ctx, "publish_results", insp)
        return self._done(insp, position, state=insp.state, published_late=insp.published_late)

    def push(self, ctx: CommandContext, iid: uuid.UUID, data: Mapping[str, Any]) -> Done:
        """Push state: ``pushed`` (channel, reference), ``failed`` (reason) or ``confirmed`` (reference)."""
        insp, _ = self._inspection_by_id(iid)
        state = data.get("state")
        on = _day(data.get("on"), "on", self.today())
        if state == "pushed":
            insp.mark_pushed(ctx.actor, on, data.get("channel") or "data_push", data.get("reference") or "")
        elif state == "failed":
            insp.mark_push_failed(ctx.actor, on, data.get("reason") or "")
        elif state == "confirmed":
            insp.confirm_push(ctx.actor, on, data.get("reference") or "")
        else:
            raise InvalidInputError([FieldProblem("state", "choice", "must be one of: pushed, failed, confirmed")])
        position = self.app.record(ctx, f"push_{state}", insp)
        return self._done(insp, position, push_state=insp.push_state, push=insp.push)

    # -- reading inspections -----------------------------------------------------------------------------
    def _require_visit_reader(self, actor: Actor, departments: Sequence[str]) -> None:
        if _reader(actor):
            return
        if actor.department not in departments or actor.roles == (Role.PARTNER.value,):
            raise PermissionDeniedError(
                f"role {actor.role!r} of department {actor.department!r} may not read this visit's execution: "
                "only its departments' staff, admins and auditors")

    def inspection_view(self, actor: Actor, iid: uuid.UUID) -> dict[str, Any]:
        """Full findings for the team, the department's reviewers and auditors; redacted for the visit's other
        departments; 403 for anyone else."""
        insp = self._get(Inspection, iid, "inspection")
        a = self._find(Assignment, uuid.UUID(insp.assignment_id))
        self._require_visit_reader(actor, a.departments if a is not None else [insp.department])
        d = insp.publication_deadline()
        today = self.today()
        return {
            "id": str(insp.id), "version": insp.version, "assignment_id": insp.assignment_id,
            "task_id": insp.task_id, "department": insp.department, "target_id": insp.target_id,
            "items": insp.items, "team": insp.team, "state": insp.state, "inspected_on": insp.inspected_on,
            "methods": insp.methods, "method_labels": [INSPECTION_METHOD_LABELS.get(m, m) for m in insp.methods],
            "findings": insp.findings_for(self._as_inspector(actor)), "history": insp.history,
            "approved_on": insp.approved_on, "deadline": insp.deadline, "overdue": insp.is_overdue(today),
            "days_left": (self.calendar().working_days_between(today, d.date)
                          if d is not None and insp.state == ReviewState.APPROVED.value else None),
            "published_on": insp.published_on, "published_late": insp.published_late,
            "push_state": insp.push_state, "push": insp.push,
        }

    def visit_inspections(self, actor: Actor, aid: uuid.UUID) -> dict[str, Any]:
        """Every participating department's inspection state for one visit (absent ones: ``not_entered``)."""
        a = self._assignment(aid)
        self._require_visit_reader(actor, a.departments)
        out = {}
        for dept in a.departments:
            iid = inspection_id(a.id, dept)
            row = Q.inspection_row(self.engine, str(iid), self.today())
            out[dept] = row or {"id": str(iid), "department": dept, "state": ReviewState.NOT_ENTERED.value,
                                "opened": False}
        return {"assignment_id": str(a.id), "departments": a.departments, "lead": a.lead, "inspections": out}

    def list_inspections(self, actor: Actor, filters: Mapping[str, Any], limit: int, offset: int) -> dict[str, Any]:
        dept = filters.get("department")
        if not _reader(actor):
            if dept is not None and dept != actor.department:
                raise PermissionDeniedError(f"inspections of {dept} are not yours to list")
            if actor.roles == (Role.PARTNER.value,):
                raise PermissionDeniedError("partners read the published results only")
            dept = actor.department
        return Q.list_inspections(
            self.engine, departments=[dept] if dept else None, today=filters.get("as_of") or self.today(),
            state=filters.get("state"), assignment_id=filters.get("assignment_id"),
            target_id=filters.get("target_id"), overdue=filters.get("overdue"),
            provisional=filters.get("provisional"), push_state=filters.get("push_state"), limit=limit,
            offset=offset,
        )

    # -- calendar ------------------------------------------------------------------------------------------
    def calendar(self) -> WorkCalendar:
        """The official calendar: the package's years with the administrator's loaded schedules on top."""
        schedules = self._find(CalendarSchedules, CALENDAR_ID)
        return schedules.calendar() if schedules is not None else WorkCalendar.official()

    def calendar_view(self) -> dict[str, Any]:
        schedules = self._find(CalendarSchedules, CALENDAR_ID)
        cal = schedules.calendar() if schedules is not None else WorkCalendar.official()
        return {
            "covered_years": list(cal.covered_years), "working_days": self.working_days,
            "loaded": [s.as_dict() for s in schedules.schedules()] if schedules is not None else [],
            "version": schedules.version if schedules is not None else 0,
        }

    def deadline(self, start: dt.date, working_days: int | None = None) -> dict[str, Any]:
        return self.calendar().add_working_days(start, self.working_days if working_days is None
                                                else working_days).as_dict()

    def load_schedule(self, ctx: CommandContext, content: str | bytes, fmt: str, source: str = "") -> Done:
        """An administrator loads a year's official schedule (JSON or CSV); the provisional deadlines that
        counted that year are recomputed in the same transaction."""
        if not ctx.actor.has(Role.ADMIN):
            raise PermissionDeniedError("only an admin loads the working-day calendar")
        text = content.decode("utf-8-sig") if isinstance(content, bytes) else content
        if fmt == "json":
            schedule = schedule_from_json(text)
            if source and not schedule.source:
                schedule = replace(schedule, source=source)
        elif fmt == "csv":
            schedule = schedule_from_csv(text, source)
        else:
            raise InvalidInputError([FieldProblem("format", "choice", "must be json or csv")])
        schedules = self._find(CalendarSchedules, CALENDAR_ID) or CalendarSchedules()
        loaded = schedules.load(schedule)
        cal = schedules.calendar()
        self._fresh()
        ids = Q.provisional_inspections(self.engine, [schedule.year])
        found = self.app.load_many(Inspection, [uuid.UUID(i) for i in ids]) if ids else {}  # type: ignore[arg-type]
        changed = [insp for insp in found.values() if insp.recompute_deadline(cal)]
        position = self.app.record(ctx, "load_calendar_schedule", schedules, *changed)
        return self._done(schedules, position, year=schedule.year, loaded=loaded,
                          recomputed=[{"id": str(i.id), "deadline": i.deadline} for i in changed])

    # -- evidence -------------------------------------------------------------------------------------------
    def upload_evidence(self, actor: Actor, stream: BinaryIO | bytes, name: str, media_type: str) -> dict[str, Any]:
        if not any(actor.has(r) for r in (Role.INSPECTOR, Role.REVIEWER, Role.PLANNER, Role.ADMIN)):
            raise PermissionDeniedError(f"role {actor.role!r} may not upload evidence")
        return self.evidence.put(stream, name, media_type).as_dict()

    def open_evidence(self, actor: Actor, sha256: str) -> Any:
        if actor.roles == (Role.PARTNER.value,):
            raise PermissionDeniedError("partners read the published results only")
        if not self.evidence.exists(sha256):
            raise NotFoundError("evidence file", sha256)
        return self.evidence.iter_chunks(sha256)

    # -- notices ----------------------------------------------------------------------------------------------
    def _notice_departments(self, a: Assignment) -> list[NoticeDepartment]:
        order = [a.lead, *[d for d in a.departments if d != a.lead]]
        names = self._department_names(order)
        items = self.tasks._items([i for d in order for i in a.items[d]])
        return [
            NoticeDepartment(d, names[d], tuple(
                NoticeItem(items.get(i, {}).get("code", i), items.get(i, {}).get("name", i),
                           tuple(items.get(i, {}).get("documents") or ()))
                for i in a.items[d]))
            for d in order
        ]

    def _pre_visit(self, a: Assignment, notices: VisitNotices | None, params: Mapping[str, Any]) -> tuple[str, list[str], dict[str, str]]:
        issued = (notices.pre_visit if notices is not None else None) or {}
        today = self.today()
        visit = dt.date.fromisoformat(a.visit_date) if a.visit_date else today
        vf = _day(params.get("visit_from") or issued.get("visit_from"), "visit_from", visit)
        vt = _day(params.get("visit_to") or issued.get("visit_to"), "visit_to", vf)
        on = _day(params.get("issued_on") or issued.get("issued_on"), "issued_on", today)
        departments = self._notice_departments(a)
        html = render_pre_visit_notice(
            target_name=self._target(a.target_id).get("name", a.target_id), departments=departments,
            visit_from=vf, visit_to=vt, issued_on=on, lead_department=departments[0].name,
        )
        docs = [doc for doc, _ in documents_to_prepare(departments)]
        return html, docs, {"visit_from": vf.isoformat(), "visit_to": vt.isoformat(), "issued_on": on.isoformat()}

    def _notices(self, a: Assignment) -> VisitNotices:
        found = self._find(VisitNotices, visit_notices_id(a.id))
        return found or VisitNotices.open(a.id, a.target_id, a.lead, a.departments)

    def pre_visit_notice(self, actor: Actor, aid: uuid.UUID, params: Mapping[str, Any]) -> dict[str, Any]:
        """一次告知书 as printable HTML (the issued one, when issued and no parameter is given)."""
        a = self._assignment(aid)
        self._require_visit_reader(actor, a.departments)
        html, docs, used = self._pre_visit(a, self._find(VisitNotices, visit_notices_id(a.id)), params)
        return {"html": html, "sha256": html_sha256(html), "documents": docs, **used}

    def issue_pre_visit_notice(self, ctx: CommandContext, aid: uuid.UUID, params: Mapping[str, Any]) -> Done:
        a = self._assignment(aid)
        notices = self._notices(a)
        html, docs, used = self._pre_visit(a, None, params)
        notices.issue_pre_visit_notice(ctx.actor, used["issued_on"], used["visit_from"], used["visit_to"], docs,
                                       html_sha256(html))
        position = self.app.record(ctx, "issue_pre_visit_notice", notices)
        return self._done(notices, position, sha256=html_sha256(html), documents=docs, **used)

    def record_pre_visit_sent(self, ctx: CommandContext, aid: uuid.UUID, data: Mapping[str, Any]) -> Done:
        notices = self._get(VisitNotices, visit_notices_id(aid), "pre-visit notice")
        notices.record_pre_visit_notice_sent(ctx.actor, _day(data.get("sent_on"), "sent_on", self.today()),
                                             data.get("method"), data.get("recipient") or "", data.get("note") or "")
        position = self.app.record(ctx, "record_pre_visit_notice_sent", notices)
        return self._done(notices, position, sent=notices.pre_visit["sent"] if notices.pre_visit else [])

    def share_documents(self, ctx: CommandContext, aid: uuid.UUID, documents: Sequence[Any], note: str = "") -> Done:
        """资料互通: files attached to the visit are visible to every participating department."""
        a = self._assignment(aid)
        problems: list[FieldProblem] = []
        refs = validate_refs(documents, "documents", problems)
        if problems:
            raise InvalidInputError(problems)
        self._check_evidence(refs, "documents")
        notices = self._notices(a)
        notices.share_documents(ctx.actor, refs, note)
        position = self.app.record(ctx, "share_documents", notices)
        return self._done(notices, position, shared=len(notices.shared))

    def notices_view(self, actor: Actor, aid: uuid.UUID) -> dict[str, Any]:
        a = self._assignment(aid)
        self._require_visit_reader(actor, a.departments)
        n = self._find(VisitNotices, visit_notices_id(a.id))
        return {"assignment_id": str(a.id), "lead": a.lead, "departments": a.departments,
                "version": n.version if n else 0, "pre_visit": n.pre_visit if n else None,
                "result": n.result if n else None, "shared": n.shared if n else []}

    def _result(self, a: Assignment, notices: VisitNotices | None, issued_on: Any) -> tuple[str, dict[str, str], str]:
        found = self.app.load_many(Inspection, [inspection_id(a.id, d) for d in a.departments])  # type: ignore[arg-type]
        by_dept = {i.department: i for i in found.values()}
        states = {d: by_dept[d].state if d in by_dept else ReviewState.NOT_ENTERED.value for d in a.departments}
        waiting = [d for d, s in states.items() if s not in (ReviewState.APPROVED.value, ReviewState.PUBLISHED.value)]
        if waiting:
            raise InvalidTransitionError([FieldProblem(
                "review_states", "not_all_approved",
                f"not yet approved by: {', '.join(waiting)}; the result notice covers every department")])
        order = [a.lead, *[d for d in a.departments if d != a.lead]]
        names = self._department_names(order)
        items = self.tasks._items([i for d in order for i in a.items[d]])
        parts = [ResultNoticeDepartment(
            d, names[d], {i: items.get(i, {}).get("name", i) for i in by_dept[d].items},
            [by_dept[d].findings[i] for i in by_dept[d].items if i in by_dept[d].findings],
            by_dept[d].inspected_on or "") for d in order]
        issued = (notices.result if notices is not None else None) or {}
        on = _day(issued_on or issued.get("issued_on"), "issued_on", self.today())
        visit = min(p.inspected_on for p in parts if p.inspected_on)
        html = render_result_notice(target_name=self._target(a.target_id).get("name", a.target_id),
                                    departments=parts, visit_date=visit, issued_on=on,
                                    lead_department=names[a.lead])
        return html, states, on.isoformat()

    def result_notice(self, actor: Actor, aid: uuid.UUID, issued_on: Any = None) -> dict[str, Any]:
        """一表告知 as printable HTML, once every department approved (confidential fields never on it)."""
        a = self._assignment(aid)
        self._require_visit_reader(actor, a.departments)
        html, states, on = self._result(a, self._find(VisitNotices, visit_notices_id(a.id)), issued_on)
        return {"html": html, "sha256": html_sha256(html), "issued_on": on, "review_states": states}

    def issue_result_notice(self, ctx: CommandContext, aid: uuid.UUID, issued_on: Any = None) -> Done:
        a = self._assignment(aid)
        notices = self._notices(a)
        html, states, on = self._result(a, None, issued_on)
        notices.issue_result_notice(ctx.actor, on, html_sha256(html), states)
        position = self.app.record(ctx, "issue_result_notice", notices)
        return self._done(notices, position, sha256=html_sha256(html), issued_on=on)

    def record_result_delivered(self, ctx: CommandContext, aid: uuid.UUID, data: Mapping[str, Any]) -> Done:
        notices = self._get(VisitNotices, visit_notices_id(aid), "result notice")
        notices.record_result_notice_delivered(
            ctx.actor, _day(data.get("delivered_on"), "delivered_on", self.today()), data.get("method"),
            data.get("recipient") or "", data.get("note") or "")
        position = self.app.record(ctx, "record_result_notice_delivered", notices)
        return self._done(notices, position, delivered=notices.result["delivered"] if notices.result else [])

    # -- publicity ---------------------------------------------------------------------------------------------
    def public_results(self, q: str | None, limit: int, offset: int) -> dict[str, Any]:
        return Q.public_results(self.engine, q, limit, offset)

    def export(self, actor: Actor, fmt: str, department: str | None, published_only: bool = False,
               since: dt.date | None = None, until: dt.date | None = None) -> tuple[bytes, str, str]:
        """The data-push JSON or the manual-entry sheet (XLSX, CSV) of approved results; redacted."""
        if fmt not in EXPORT_FORMATS:
            raise InvalidInputError([FieldProblem("format", "choice", "must be one of: json, xlsx, csv")])
        dept = department or (None if _reader(actor) else actor.department)
        if not _reader(actor) and not (actor.department == dept and (actor.has(Role.REVIEWER)
                                                                       or actor.has(Role.PLANNER))):
            raise PermissionDeniedError("the export is for the department's reviewers and planners, admins and "
                                        "auditors")
        inspections = Q.approved_inspections(self.engine, dept, published_only, since, until)
        with self.engine.connect() as conn:
            ctxs = Q.contexts(conn, [{"id": str(i.id), "task_id": i.task_id, "department": i.department,
                                      "target_id": i.target_id, "items": i.items} for i in inspections])
        records = [push_record(ctxs[str(i.id)], i) for i in inspections]
        media, ext = EXPORT_FORMATS[fmt]
        writer = {"json": write_push_json, "xlsx": write_manual_entry_xlsx, "csv": write_manual_entry_csv}[fmt]
        with tempfile.TemporaryDirectory() as tmp:
            path = writer(records, Path(tmp) / f"export.{ext}")
            content = path.read_bytes()
        name = f"dualrandom-{dept or 'all'}-{self.today().isoformat()}.{ext}"
        return content, media, name

    # -- referrals ---------------------------------------------------------------------------------------------
    def refer(self, ctx: CommandContext, data: Mapping[str, Any]) -> Done:
        """移送 a finding: to a department in the system, to judicial organs (copy to the procuratorate) or to
        discipline inspection."""
        iid = _uuid(data.get("inspection_id"), "inspection_id")
        insp = self._get(Inspection, iid, "inspection")
        item = data.get("item")
        if item not in insp.findings:
            raise InvalidInputError([FieldProblem("item", "no_finding", "the inspection has no finding for this item")])
        kind = data.get("kind")
        if kind == "department":
            to = data.get("to")
            t = DIR["department"]
            with self.engine.connect() as conn:
                known = conn.execute(sa.select(t.c.code).where(t.c.code == to)).first()
            if known is None:
                raise InvalidInputError([FieldProblem("to", "unknown_department", f"no department {to!r} in the directory")])
        self._check_evidence(data.get("documents") or [], "documents")
        r = Referral.refer(
            ctx.actor, kind, insp.department, {"inspection_id": str(insp.id), "item": item, "target_id": insp.target_id},
            data.get("to"), data.get("reason"), _day(data.get("transferred_on"), "transferred_on", self.today()),
            data.get("documents") or (), data.get("copy_to") or "", data.get("respond_by"), data.get("outcome_by"),
        )
        try:
            position = self.app.record(ctx, "refer_finding", r)
        except ConflictError:
            raise ConflictError(f"this finding was already referred to {r.to}: {r.id}") from None
        return self._done(r, position, state=r.state, departments=r.departments)

    def referral_step(self, ctx: CommandContext, rid: uuid.UUID, step: str, data: Mapping[str, Any]) -> Done:
        r = self._get(Referral, rid, "referral")
        on = _day(data.get("on"), "on", self.today())
        if step == "receipt":
            r.record_receipt(ctx.actor, on, data.get("reference") or "")
        elif step == "accept":
            r.accept(ctx.actor, on, data.get("note") or "")
        elif step == "reject":
            r.reject(ctx.actor, on, data.get("reason") or "")
        elif step == "outcome":
            self._check_evidence(data.get("documents") or [], "documents")
            r.report_outcome(ctx.actor, on, data.get("text") or "", data.get("documents") or ())
        elif step == "deadline":
            r.extend_deadline(ctx.actor, data.get("deadline"), data.get("new"), data.get("reason") or "")
        elif step == "documents":
            self._check_evidence(data.get("documents") or [], "documents")
            r.add_documents(ctx.actor, data.get("documents") or (), data.get("note") or "")
        else:  # the API only routes the steps above
            raise InvalidInputError([FieldProblem("step", "choice", f"unknown step {step}")])
        position = self.app.record(ctx, f"referral_{step}", r)
        return self._done(r, position, state=r.state)

    def referral_view(self, actor: Actor, rid: uuid.UUID) -> dict[str, Any]:
        r = self._get(Referral, rid, "referral")
        self._require_visit_reader(actor, r.departments)
        return {
            "id": str(r.id), "version": r.version, "kind": r.kind, "from_department": r.from_department, "to": r.to,
            "copy_to": r.copy_to, "source": r.source, "reason": r.reason, "transferred_on": r.transferred_on,
            "documents": r.documents, "respond_by": r.respond_by, "outcome_by": r.outcome_by, "state": r.state,
            "receipt": r.receipt, "decision": r.decision, "outcome": r.outcome, "extensions": r.extensions,
            "overdue": r.overdue(self.today()),
        }

    def list_referrals(self, actor: Actor, filters: Mapping[str, Any], limit: int, offset: int) -> dict[str, Any]:
        dept = filters.get("department")
        if not _reader(actor):
            if dept is not None and dept != actor.department:
                raise PermissionDeniedError(f"referrals of {dept} are not yours to list")
            dept = actor.department
        return Q.list_referrals(self.engine, department=dept, direction=filters.get("direction"),
                                today=self.today(), state=filters.get("state"), kind=filters.get("kind"),
                                limit=limit, offset=offset)

    # -- case-triggered tasks from clues ---------------------------------------------------------------------
    def record_clue(self, ctx: CommandContext, data: Mapping[str, Any]) -> dict[str, Any]:
        """个案检查 from a clue: the target's risk is raised (an event on the target) and a case-triggered task
        (not random) is opened for it and its target named, in one transaction whose events carry the clue's id as
        causation id; the clue itself is the task's reason."""
        own = {k: v for k, v in data.items() if k not in ("items", "period")}
        clue = validate_clue(own, self.today())
        task_access.require_lead(ctx.actor, clue.department)
        items = list(data.get("items") or [])
        if not items:
            raise InvalidInputError([FieldProblem("items", "required", "name the department's items to inspect")])
        self.tasks._fresh()
        self.tasks._check_items(clue.department, items, "items")
        period = data.get("period") or f"{self.today().year}Q{(self.today().month - 1) // 3 + 1}"
        parse_period(period)
        tid = _uuid(clue.target_id, "target_id")
        try:
            target = self.app.load("target", tid)
        except NotFoundError:
            raise InvalidInputError([FieldProblem("target_id", "unknown_target", f"no target {tid}")]) from None
        clue_id = uuid.uuid5(CLUE_NAMESPACE, json.dumps(clue.as_dict(), sort_keys=True, ensure_ascii=False))
        cctx = CommandContext(actor=ctx.actor, correlation_id=ctx.correlation_id, causation_id=str(clue_id))
        previous = target.data["risk_class"]
        raised = raised_risk_class(previous)
        label = CLUE_SOURCE_LABELS[clue.source]
        reason = f"个案检查（{label}）{clue.received_on}：{clue.summary}"
        if clue.method:
            reason += f"；方式：{INSPECTION_METHOD_LABELS.get(clue.method, clue.method)}"
        if clue.reference:
            reason += f"；编号：{clue.reference}"

        def with_target(task: Any) -> list[Any]:
            task.designate_targets([str(tid)], secrets.token_bytes(32).hex())
            fresh = self.app.load("target", tid)
            if raised != fresh.data["risk_class"]:
                fresh.change({"risk_class": raised})
            return [fresh]

        # One transaction: the case-triggered task, its named target and the target's raised risk.
        task = self.tasks.open_task(cctx, {"origin": "case", "lead": clue.department, "period": period,
                                           "participants": {clue.department: items}, "reason": reason},
                                    also=with_target, command="record_clue")
        return {"clue_id": str(clue_id), "clue": clue.as_dict(), "target_id": str(tid),
                "risk": {"previous": previous, "risk_class": raised, "position": task.position},
                "task": {"id": task.id, "number": task.body.get("number"), "name": task.body.get("name"),
                         "is_random": False}, "position": task.position, "version": task.version}

    # -- follow-up visits ---------------------------------------------------------------------------------------
    def plan_follow_up(self, ctx: CommandContext, department: str, period: str, ratio: Any = None) -> Done:
        """Freeze the targets the department inspected in the period and commit to a secret seed."""
        self._fresh()
        try:
            p = parse_period(period)
        except (InvalidInputError, AttributeError):
            raise InvalidInputError([FieldProblem("period", "format", "must be 2024Q1, 2024-03, 2024H1 or 2024")]) from None
        pool = Q.inspected_targets(self.engine, department, p.start, p.end)
        seed = secrets.token_bytes(32)
        r = FollowUpRound.plan(ctx.actor, department, period, pool, commitment(seed),
                               DEFAULT_FOLLOW_UP_RATIO if ratio in (None, "") else ratio)
        with self.engine.begin() as conn:
            conn.execute(follow_up_seeds.delete().where(follow_up_seeds.c.round_id == str(r.id)))
            conn.execute(follow_up_seeds.insert().values(round_id=str(r.id), seed=seed.hex()))
        try:
            position = self.app.record(ctx, "plan_follow_up", r)
        except ConflictError:
            raise ConflictError(f"{department} has a follow-up round for {r.period} already: {r.id}") from None
        return self._done(r, position, pool_size=len(r.pool), quota=r.quota, ratio=r.ratio, commitment=r.commitment)

    def draw_follow_up(self, ctx: CommandContext, rid: uuid.UUID, external_entropy: str = "") -> Done:
        r = self._get(FollowUpRound, rid, "follow-up round")
        with self.engine.connect() as conn:
            seed = conn.execute(sa.select(follow_up_seeds.c.seed).where(follow_up_seeds.c.round_id == str(rid))).scalar()
        if seed is None and r.draw is None:
            raise InvalidTransitionError([FieldProblem("seed", "missing", "the committed seed is not on this server")])
        selected = r.draw_visitees(ctx.actor, bytes.fromhex(seed or "00" * 32), external_entropy)
        position = self.app.record(ctx, "draw_follow_up", r)
        with self.engine.begin() as conn:
            conn.execute(follow_up_seeds.delete().where(follow_up_seeds.c.round_id == str(rid)))
        return self._done(r, position, selected=selected)

    def follow_up_step(self, ctx: CommandContext, rid: uuid.UUID, step: str, data: Mapping[str, Any]) -> Done:
        r = self._get(FollowUpRound, rid, "follow-up round")
        target = str(data.get("target_id") or "")
        on = _day(data.get("on"), "on", self.today())
        if step == "visit":
            r.record_visit(ctx.actor, target, _day(data.get("visited_on"), "visited_on", self.today()),
                           data.get("method"), data.get("opinions") or "", data.get("problems") or "")
        elif step == "escalation":
            r.escalate(ctx.actor, target, on, data.get("authority") or "", data.get("reason") or "")
        elif step == "escalation_outcome":
            r.record_escalation_outcome(ctx.actor, target, on, data.get("outcome") or "")
        elif step == "feedback":
            r.give_feedback(ctx.actor, target, on, data.get("feedback") or "", data.get("method") or "letter")
        else:
            raise InvalidInputError([FieldProblem("step", "choice", f"unknown step {step}")])
        position = self.app.record(ctx, f"follow_up_{step}", r)
        return self._done(r, position, target_id=target)

    def follow_up_view(self, actor: Actor, rid: uuid.UUID) -> dict[str, Any]:
        r = self._get(FollowUpRound, rid, "follow-up round")
        self._require_visit_reader(actor, [r.department])
        return {
            "id": str(r.id), "version": r.version, "department": r.department, "period": r.period,
            "ratio": r.ratio, "pool": r.pool, "quota": r.quota, "commitment": r.commitment, "draw": r.draw,
            "selected": r.selected, "visits": r.visits_for(actor),
            "opinions_visible": can_read_confidential(actor, r.department),
        }

    def verify_follow_up(self, actor: Actor, rid: uuid.UUID) -> dict[str, Any]:
        r = self._get(FollowUpRound, rid, "follow-up round")
        self._require_visit_reader(actor, [r.department])
        outcome = r.verify()
        return {"id": str(r.id), "match": outcome.match, "first_difference": outcome.first_difference}

    def list_follow_ups(self, actor: Actor, department: str | None) -> list[dict[str, Any]]:
        if not _reader(actor):
            if department is not None and department != actor.department:
                raise PermissionDeniedError(f"follow-up rounds of {department} are not yours to list")
            department = actor.department
        return Q.list_follow_ups(self.engine, department)

