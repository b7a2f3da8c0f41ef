"""A visit's notices to the enterprise, one for all its departments: the pre-visit notice (一次告知书), the
result notice (一表告知) once every department approved, their delivery, and documents shared among the
departments (资料互通)."""

import uuid
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Engine

from domain.access import Actor
from domain.errors import FieldProblem, InvalidInputError
from domain.execution.dates import parse_day, pre_visit_dates
from domain.execution.evidence import validate_refs
from domain.execution.inspection import Inspection, inspection_id
from domain.execution.joint_notices import lead_first, require_all_approved, review_states
from domain.execution.notices import (
    NoticeDepartment,
    NoticeItem,
    ResultNoticeDepartment,
    documents_to_prepare,
    html_sha256,
    render_pre_visit_notice,
    render_result_notice,
)
from domain.execution.readers import reads_everything, require_visit_reader
from domain.execution.visit import VisitNotices, visit_notices_id
from domain.tasks.assignment import Assignment
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

    # -- pre-visit notice ----------------------------------------------------------------------------------
    def _pre_visit(
        self, a: Assignment, notices: VisitNotices | None, params: Mapping[str, Any]
    ) -> tuple[str, list[str], dict[str, str]]:
        issued = (notices.pre_visit if notices is not None else None) or {}
        vf, vt, on = pre_visit_dates(params, issued, a.visit_date, self.clock.today())
        departments = self._notice_departments(a)
        html = render_pre_visit_notice(
            target_name=self.lookups.target(a.target_id).get("name", a.target_id), departments=departments,
            visit_from=vf, visit_to=vt, issued_on=on, lead_department=departments[0].name,
        )
        docs = [doc for doc, _ in documents_to_prepare(departments)]
        return html, docs, {"visit_from": vf.isoformat(), "visit_to": vt.isoformat(), "issued_on": on.isoformat()}

    def _notice_departments(self, a: Assignment) -> list[NoticeDepartment]:
        order = lead_first(a.lead, a.departments)
        names = self.lookups.department_names(order)
        items = self.lookups.items([i for d in order for i in a.items[d]])
        return [
            NoticeDepartment(d, names[d], tuple(
                NoticeItem(items.get(i, {}).get("code", i), items.get(i, {}).get("name", i),
                           tuple(items.get(i, {}).get("documents") or ()))
                for i in a.items[d]))
            for d in order
        ]

    def pre_visit_notice(self, actor: Actor, aid: uuid.UUID, params: Mapping[str, Any]) -> dict[str, Any]:
        """一次告知书 as printable HTML (the issued one, when issued and no parameter is given)."""
        a = self.load(Assignment, aid, "assignment")
        require_visit_reader(actor, a.departments)
        html, docs, used = self._pre_visit(a, self.find(VisitNotices, visit_notices_id(a.id)), params)
        return {"html": html, "sha256": html_sha256(html), "documents": docs, **used}

    def issue_pre_visit_notice(self, ctx: CommandContext, aid: uuid.UUID, params: Mapping[str, Any]) -> Done:
        a = self.load(Assignment, aid, "assignment")
        notices = self._notices(a)
        html, docs, used = self._pre_visit(a, None, params)
        notices.issue_pre_visit_notice(ctx.actor, used["issued_on"], used["visit_from"], used["visit_to"], docs,
                                       html_sha256(html))
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
                reveal: Collection[str] | None = None) -> tuple[str, dict[str, str], str]:
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
            by_dept[d].inspected_on or "") for d in order]
        issued = (notices.result if notices is not None else None) or {}
        on = parse_day(issued_on or issued.get("issued_on"), "issued_on", self.clock.today())
        visit = min(p.inspected_on for p in parts if p.inspected_on)
        html = render_result_notice(target_name=self.lookups.target(a.target_id).get("name", a.target_id),
                                    departments=parts, visit_date=visit, issued_on=on,
                                    lead_department=names[a.lead], reveal=reveal)
        return html, states, on.isoformat()

    def result_notice(self, actor: Actor, aid: uuid.UUID, issued_on: Any = None) -> dict[str, Any]:
        """一表告知 as printable HTML, once every department approved: the enterprise's copy (its findings in full,
        confidential fields marked 不予公示) for the lead department (which issues and delivers it), admins and
        auditors; a partner department's staff read a copy without the other departments' confidential fields."""
        a = self.load(Assignment, aid, "assignment")
        require_visit_reader(actor, a.departments)
        reveal = None if reads_everything(actor) or actor.department == a.lead else {actor.department}
        html, states, on = self._result(a, self.find(VisitNotices, visit_notices_id(a.id)), issued_on, reveal)
        return {"html": html, "sha256": html_sha256(html), "issued_on": on, "review_states": states}

    def issue_result_notice(self, ctx: CommandContext, aid: uuid.UUID, issued_on: Any = None) -> Done:
        a = self.load(Assignment, aid, "assignment")
        notices = self._notices(a)
        html, states, on = self._result(a, None, issued_on)
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
