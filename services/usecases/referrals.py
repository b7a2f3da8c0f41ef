"""Referrals (移送) of a finding: to a department in the system, to judicial organs (copy to the procuratorate)
or to discipline inspection; their receipt, decision, outcome and deadlines."""

import copy
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Engine

from domain.access import Actor
from domain.errors import FieldProblem, InvalidInputError
from domain.execution.dates import parse_day
from domain.execution.inspection import Inspection
from domain.execution.readers import listed_department, require_visit_reader
from domain.execution.referral import Referral, require_referable
from projections.execution import queries as execution
from projections.runner import ProjectionRunner
from services.application import CommandContext, ConflictError, DualRandom
from services.usecases.common import EXECUTION_READ_MODELS, Clock, Done, UseCase, given, parse_uuid
from services.usecases.evidence import Evidence
from services.usecases.lookups import Lookups


class Referrals(UseCase):
    """A finding referred on, and each step the referral takes."""

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

    def refer(self, ctx: CommandContext, data: Mapping[str, Any]) -> Done:
        """移送 a finding: to a department in the system, to judicial organs (copy to the procuratorate) or to
        discipline inspection."""
        iid = parse_uuid(data.get("inspection_id"), "inspection_id")
        insp = self.load(Inspection, iid, "inspection")
        item = data.get("item")
        if item not in insp.findings:
            raise InvalidInputError([FieldProblem("item", "no_finding", "the inspection has no finding for this item")])
        require_referable(insp.findings[item])
        kind = given(data, "kind")
        if kind == "department":
            to = given(data, "to")
            if not self.lookups.department_known(to):
                raise InvalidInputError([FieldProblem("to", "unknown_department", f"no department {to!r} in the directory")])
        self.evidence.check(data.get("documents") or [], "documents")
        r = Referral.refer(
            ctx.actor, kind, insp.department, {"inspection_id": str(insp.id), "item": item, "target_id": insp.target_id},
            given(data, "to"), given(data, "reason"),
            parse_day(data.get("transferred_on"), "transferred_on", self.clock.today()),
            data.get("documents") or (), data.get("copy_to") or "", data.get("respond_by"), data.get("outcome_by"),
        )
        try:
            position = self.app.record(ctx, "refer_finding", r)
        except ConflictError:
            raise ConflictError(f"this finding was already referred to {r.to}: {r.id}") from None
        return self.done(r, position, state=r.state, departments=r.departments)

    def referral_step(self, ctx: CommandContext, rid: uuid.UUID, step: str, data: Mapping[str, Any]) -> Done:
        r = self.load(Referral, rid, "referral")
        on = parse_day(data.get("on"), "on", self.clock.today())
        if step == "receipt":
            r.record_receipt(ctx.actor, on, data.get("reference") or "")
        elif step == "accept":
            r.accept(ctx.actor, on, data.get("note") or "")
        elif step == "reject":
            r.reject(ctx.actor, on, data.get("reason") or "")
        elif step == "outcome":
            self.evidence.check(data.get("documents") or [], "documents")
            r.report_outcome(ctx.actor, on, data.get("text") or "", data.get("documents") or ())
        elif step == "deadline":
            r.extend_deadline(ctx.actor, given(data, "deadline"), given(data, "new"), data.get("reason") or "")
        elif step == "documents":
            self.evidence.check(data.get("documents") or [], "documents")
            r.add_documents(ctx.actor, data.get("documents") or (), data.get("note") or "")
        else:  # the API only routes the steps above
            raise InvalidInputError([FieldProblem("step", "choice", f"unknown step {step}")])
        position = self.app.record(ctx, f"referral_{step}", r)
        return self.done(r, position, state=r.state)

    def referral_view(self, actor: Actor, rid: uuid.UUID) -> dict[str, Any]:
        r = self.load(Referral, rid, "referral")
        require_visit_reader(actor, r.departments)
        return {
            "id": str(r.id), "version": r.version, "kind": r.kind, "from_department": r.from_department, "to": r.to,
            "copy_to": r.copy_to, "source": r.source, "reason": r.reason, "transferred_on": r.transferred_on,
            "documents": r.documents, "respond_by": r.respond_by, "outcome_by": r.outcome_by, "state": r.state,
            "receipt": r.receipt, "decision": r.decision, "outcome": r.outcome, "extensions": r.extensions,
            "overdue": r.overdue(self.clock.today()), **self._referred(r),
        }

    def _referred(self, r: Referral) -> dict[str, Any]:
        """What the receiving side needs to act: the referred finding as recorded (confidential fields too: a
        referral is between authorities, not public; evidence files are named by reference) and the names of the
        enterprise, the item and the departments next to their ids."""
        src = r.source
        insp = self.find(Inspection, uuid.UUID(src["inspection_id"]))
        finding = copy.deepcopy(insp.findings.get(src["item"])) if insp is not None else None
        if finding is not None and insp is not None:
            finding["inspected_on"] = insp.inspected_on
        return {"finding": finding, "names": self._names([r.from_department] + ([r.to] if r.kind == "department"
                                                                                 else []),
                                                           [src["target_id"]], [src["item"]])}

    def _names(self, departments: list[str], targets: list[str], items: list[str]) -> dict[str, Any]:
        found_targets = self.lookups.target_data(targets)
        found_items = self.lookups.items(items)
        return {
            "departments": self.lookups.department_names(departments),
            "targets": {t: {"name": found_targets.get(t, {}).get("name", ""),
                            "credit_code": found_targets.get(t, {}).get("credit_code", ""),
                            "address": found_targets.get(t, {}).get("address", "")} for t in targets},
            "items": {i: {"code": found_items.get(i, {}).get("code", ""), "name": found_items.get(i, {}).get("name", "")}
                      for i in items},
        }

    def list_referrals(self, actor: Actor, filters: Mapping[str, Any], limit: int, offset: int) -> dict[str, Any]:
        dept = listed_department(actor, filters.get("department"), "referrals")
        page = execution.list_referrals(self.engine, department=dept, direction=filters.get("direction"),
                                        today=self.clock.today(), state=filters.get("state"),
                                        kind=filters.get("kind"), limit=limit, offset=offset)
        rows = page["items"]
        names = self._names(sorted({d for x in rows for d in (x["from_department"], x["to"] if x["kind"] == "department"
                                                              else x["from_department"])}),
                            sorted({x["target_id"] for x in rows}), sorted({x["item"] for x in rows}))
        for x in rows:
            target = names["targets"].get(x["target_id"], {})
            x.update({"target_name": target.get("name", ""), "credit_code": target.get("credit_code", ""),
                      "address": target.get("address", ""),
                      "item_name": names["items"].get(x["item"], {}).get("name", ""),
                      "from_department_name": names["departments"].get(x["from_department"], x["from_department"]),
                      "to_name": names["departments"].get(x["to"], x["to"]) if x["kind"] == "department" else x["to"]})
        return page
