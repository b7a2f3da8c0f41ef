"""A visit's notices to the enterprise, one for all its departments: the pre-visit notice (一次告知书), the
result notice (一表告知) once every department approved, their delivery, and documents shared among the
departments (资料互通)."""

import uuid
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Engine

from domain.access import Actor
from domain.documents import Document, render_html
from domain.errors import FieldProblem, InvalidInputError
from domain.execution.dates import parse_day, pre_visit_dates
from domain.execution.evidence import validate_refs
from domain.execution.inspection import Inspection, inspection_id
from domain.execution.joint_notices import lead_first, require_all_approved, review_states
from domain.execution.notices import (
    NoticeDepartment,
    NoticeHeader,
    NoticeInspector,
    NoticeItem,
    ResultNoticeDepartment,
    documents_to_prepare,
    html_sha256,
    pre_visit_document,
    result_document,
)
from domain.execution.readers import reads_everything, require_visit_reader
from domain.execution.visit import VisitNotices, visit_notices_id
from domain.tasks.assignment import Assignment
from domain.tasks.task import Task
from projections.runner import ProjectionRunner
from services.application import CommandContext, DualRandom
from services.usecases.common import EXECUTION_READ_MODELS, Clock, Done, UseCase, given
from services.usecases.evidence import Evidence
from services.usecases.lookups import Lookups


class Notices(UseCase):
    """The notices of one visit (an assignment): rendered, issued, sent or delivered, and shared documents."""

    read_models = EXECUTION_READ_MODELS

    def __init__(
        self,
        app: DualRandom,
        engine: Engine,
        runner: ProjectionRunner,
        *,
        lookups: Lookups,
        evidence: Evidence,
        clock: Clock,
    ) -> None:
        super().__init__(app, engine, runner)
        self.lookups = lookups
        self.evidence = evidence
        self.clock = clock

    def _notices(self, a: Assignment) -> VisitNotices:
        found = self.find(VisitNotices, visit_notices_id(a.id))
        return found or VisitNotices.open(a.id, a.target_id, a.lead, a.departments)

    # -- what both notices print ----------------------------------------------------------------------------
    def _header(self, a: Assignment) -> NoticeHeader:
        """文号 (the visit's number: ``<lead>-<task number>-<nn>``, nn its place in the drawn list, ``R<round>``
        after a redraw), the enterprise's credit code and address, the lead department's contact and phone."""
        target = self.lookups.target(a.target_id)
        lead = self.lookups.department(a.lead) if self.lookups.department_known(a.lead) else {}
        task = self.find(Task, uuid.UUID(a.task_id))
        number = ""
        if task is not None and task.number:
            selected = list(task.selected)
            place = selected.index(a.target_id) + 1 if a.target_id in selected else 0
            rnd = f"-R{task.round}" if task.round > 1 else ""
            number = f"{a.lead}-{task.number}{rnd}-{place:02d}" if place else f"{a.lead}-{task.number}{rnd}"
        return NoticeHeader(notice_no=number, credit_code=str(target.get("credit_code", "")),
                            address=str(target.get("address", "")), contact=str(lead.get("contact") or ""),
                            phone=str(lead.get("phone") or ""))

    def _inspectors(self, team: Mapping[str, Any] | None) -> tuple[NoticeInspector, ...]:
        """A team's inspectors (leader first) with their certificate numbers, by name."""
        if not team:
            return ()
        members = list(team.get("members") or [])
        people = self.lookups.people(members)
        return tuple(NoticeInspector(str(people.get(m, {}).get("name", m)),
                                     str(people.get(m, {}).get("certificate_no", "")), m == team.get("leader"))
                     for m in members)

    # -- pre-visit notice ----------------------------------------------------------------------------------
    def _pre_visit(
        self, a: Assignment, notices: VisitNotices | None, params: Mapping[str, Any], *, issuing: bool = False
    ) -> tuple[Document, list[str], dict[str, str | None]]:
        issued = (notices.pre_visit if notices is not None else None) or {}
        vf, vt, on = pre_visit_dates(params, issued, a.visit_date, self.clock.today())
        if issuing and vf is None:
            raise InvalidInputError([FieldProblem(
                "visit_from", "required", "the visit has no date yet (no team drawn): give visit_from")])
        departments = self._notice_departments(a)
        doc = pre_visit_document(
            target_name=self.lookups.target(a.target_id).get("name", a.target_id), departments=departments,
            visit_from=vf, visit_to=vt, issued_on=on, lead_department=departments[0].name,
            header=self._header(a),
        )
        docs = [d for d, _ in documents_to_prepare(departments)]
        window = {"visit_from": vf.isoformat() if vf else None, "visit_to": vt.isoformat() if vt else None}
        return doc, docs, {**window, "issued_on": on.isoformat()}

    def _notice_departments(self, a: Assignment) -> list[NoticeDepartment]:
        order = lead_first(a.lead, a.departments)
        names = self.lookups.department_names(order)
        items = self.lookups.items([i for d in order for i in a.items[d]])
        return [
            NoticeDepartment(d, names[d], tuple(
                NoticeItem(items.get(i, {}).get("code", i), items.get(i, {}).get("name", i),
                           tuple(items.get(i, {}).get("documents") or ()))
                for i in a.items[d]), self._inspectors(a.teams.get(d)))
            for d in order
        ]

    def pre_visit_notice(self, actor: Actor, aid: uuid.UUID, params: Mapping[str, Any]) -> dict[str, Any]:
        """一次告知书 as printable HTML (the issued one, when issued and no parameter is given)."""
        a = self.load(Assignment, aid, "assignment")
        require_visit_reader(actor, a.departments)
        doc, docs, used = self._pre_visit(a, self.find(VisitNotices, visit_notices_id(a.id)), params)
        html = render_html(doc)
        return {"html": html, "sha256": html_sha256(html), "documents": docs, "document": doc, **used}

    def issue_pre_visit_notice(self, ctx: CommandContext, aid: uuid.UUID, params: Mapping[str, Any]) -> Done:
        a = self.load(Assignment, aid, "assignment")
        notices = self._notices(a)
        doc, docs, used = self._pre_visit(a, None, params, issuing=True)
        html = render_html(doc)
        notices.issue_pre_visit_notice(ctx.actor, str(used["issued_on"]), str(used["visit_from"]),
                                       str(used["visit_to"] or used["visit_from"]), docs, html_sha256(html))
        position = self.app.record(ctx, "issue_pre_visit_notice", notices)
        return self.done(notices, position, sha256=html_sha256(html), documents=docs, **used)

    def record_pre_visit_sent(self, ctx: CommandContext, aid: uuid.UUID, data: Mapping[str, Any]) -> Done:
        notices = self.load(VisitNotices, visit_notices_id(aid), "pre-visit notice")
        notices.record_pre_visit_notice_sent(ctx.actor, parse_day(data.get("sent_on"), "sent_on", self.clock.today()),
                                             given(data, "method"), data.get("recipient") or "", data.get("note") or "")
        position = self.app.record(ctx, "record_pre_visit_notice_sent", notices)
        return self.done(notices, position, sent=notices.pre_visit["sent"] if notices.pre_visit else [])

    # -- shared documents ----------------------------------------------------------------------------------
    def share_documents(self, ctx: CommandContext, aid: uuid.UUID, documents: Sequence[Any], note: str = "") -> Done:
        """资料互通: files attached to the visit are visible to every participating department."""
        a = self.load(Assignment, aid, "assignment")
        problems: list[FieldProblem] = []
        refs = validate_refs(documents, "documents", problems)
        if problems:
            raise InvalidInputError(problems)
        self.evidence.check(refs, "documents")
        notices = self._notices(a)
        notices.share_documents(ctx.actor, refs, note)
        position = self.app.record(ctx, "share_documents", notices)
        return self.done(notices, position, shared=len(notices.shared))

    def notices_view(self, actor: Actor, aid: uuid.UUID) -> dict[str, Any]:
        a = self.load(Assignment, aid, "assignment")
        require_visit_reader(actor, a.departments)
        n = self.find(VisitNotices, visit_notices_id(a.id))
        return {"assignment_id": str(a.id), "lead": a.lead, "departments": a.departments,
                "version": n.version if n else 0, "pre_visit": n.pre_visit if n else None,
                "result": n.result if n else None, "shared": n.shared if n else []}

    # -- result notice -------------------------------------------------------------------------------------
    def _result(self, a: Assignment, notices: VisitNotices | None, issued_on: Any,
                reveal: Collection[str] | None = None) -> tuple[Document, dict[str, str], str]:
        found = self.load_many(Inspection, [inspection_id(a.id, d) for d in a.departments])
        by_dept = {i.department: i for i in found.values()}
        states = review_states(a.departments, {d: i.state for d, i in by_dept.items()})
        require_all_approved(states)
        order = lead_first(a.lead, a.departments)
        names = self.lookups.department_names(order)
        items = self.lookups.items([i for d in order for i in a.items[d]])
        parts = [ResultNoticeDepartment(
            d, names[d], {i: items.get(i, {}).get("name", i) for i in by_dept[d].items},
            [by_dept[d].findings[i] for i in by_dept[d].items if i in by_dept[d].findings],
            by_dept[d].inspected_on or "",
            self._inspectors({"members": by_dept[d].team, "leader": (a.teams.get(d) or {}).get("leader")}))
            for d in order]
        issued = (notices.result if notices is not None else None) or {}
        on = parse_day(issued_on or issued.get("issued_on"), "issued_on", self.clock.today())
        days = sorted(p.inspected_on for p in parts if p.inspected_on)
        doc = result_document(target_name=self.lookups.target(a.target_id).get("name", a.target_id),
                              departments=parts, visit_date=days[0], visit_last=days[-1], issued_on=on,
                              lead_department=names[a.lead], reveal=reveal, header=self._header(a))
        return doc, states, on.isoformat()

    def result_notice(self, actor: Actor, aid: uuid.UUID, issued_on: Any = None) -> dict[str, Any]:
        """一表告知 as printable HTML, once every department approved: the enterprise's copy (its findings in full,
        confidential fields marked 不予公示) for the lead department (which issues and delivers it), admins and
        auditors; a partner department's staff read a copy without the other departments' confidential fields."""
        a = self.load(Assignment, aid, "assignment")
        require_visit_reader(actor, a.departments)
        reveal = None if reads_everything(actor) or actor.department == a.lead else {actor.department}
        doc, states, on = self._result(a, self.find(VisitNotices, visit_notices_id(a.id)), issued_on, reveal)
        html = render_html(doc)
        return {"html": html, "sha256": html_sha256(html), "issued_on": on, "review_states": states,
                "document": doc}

    def issue_result_notice(self, ctx: CommandContext, aid: uuid.UUID, issued_on: Any = None) -> Done:
        a = self.load(Assignment, aid, "assignment")
        notices = self._notices(a)
        doc, states, on = self._result(a, None, issued_on)
        html = render_html(doc)
        notices.issue_result_notice(ctx.actor, on, html_sha256(html), states)
        position = self.app.record(ctx, "issue_result_notice", notices)
        return self.done(notices, position, sha256=html_sha256(html), issued_on=on)

    def record_result_delivered(self, ctx: CommandContext, aid: uuid.UUID, data: Mapping[str, Any]) -> Done:
        notices = self.load(VisitNotices, visit_notices_id(aid), "result notice")
        notices.record_result_notice_delivered(
            ctx.actor, parse_day(data.get("delivered_on"), "delivered_on", self.clock.today()), given(data, "method"),
            data.get("recipient") or "", data.get("note") or "")
        position = self.app.record(ctx, "record_result_notice_delivered", notices)
        return self.done(notices, position, delivered=notices.result["delivered"] if notices.result else [])
