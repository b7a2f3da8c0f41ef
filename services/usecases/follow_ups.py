"""Follow-up visits (回访): a department freezes the targets it inspected in a period and commits to a secret
seed, draws the visitees, records visits, escalations and feedback. The seed is kept in ``follow_up_seeds``
between commitment and reveal, as the target draw's is."""

import secrets
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from domain.access import Actor
from domain.draw.sampler import commitment
from domain.errors import FieldProblem, InvalidInputError, PermissionDeniedError
from domain.execution.access import can_read_confidential
from domain.execution.dates import parse_day
from domain.execution.followup import DEFAULT_FOLLOW_UP_RATIO, FollowUpRound, RoundExistsError
from domain.execution.inspection import InvalidTransitionError
from domain.execution.readers import listed_department, require_visit_reader
from domain.planning.rules import parse_period
from domain.tasks.overlap import follow_up_overlaps
from projections.directory import queries as directory
from projections.execution import queries as execution
from projections.runner import ProjectionRunner
from services.application import CommandContext, ConflictError, DualRandom
from services.usecases.common import EXECUTION_READ_MODELS, Clock, Done, UseCase, given
from services.usecases.seeds import SeedVault
from services.usecases.witnessed import WitnessGate

secrets_metadata = sa.MetaData()
follow_up_seeds = sa.Table(
    "follow_up_seeds", secrets_metadata,
    sa.Column("round_id", sa.String(36), primary_key=True),
    sa.Column("seed", sa.String(64), nullable=False),
)
"""Secret seeds of follow-up rounds planned before ``services.usecases.seeds`` (read, never written). Never logged,
never answered."""


class FollowUps(UseCase):
    """A department's follow-up rounds."""

    read_models = EXECUTION_READ_MODELS

    def __init__(self, app: DualRandom, engine: Engine, runner: ProjectionRunner, clock: Clock) -> None:
        super().__init__(app, engine, runner)
        self.clock = clock

        self.gate = WitnessGate(app, engine, runner)  # the runtime shares the target draws' gate
        self.seeds = SeedVault(engine)

    def setup(self) -> None:
        secrets_metadata.create_all(self.engine)
        self.seeds.setup()

    def plan_follow_up(
        self, ctx: CommandContext, department: str, period: str, ratio: Any = None,
        overlaps: Sequence[str] = (), overlap_reason: str = "", entropy_source: object = "",
    ) -> Done:
        """Freeze the targets the department inspected in the period, commit to a secret seed and declare the
        public source of the draw's external entropy. A period that shares a month with another round of the
        department is refused (409) unless ``overlaps`` names every such round and ``overlap_reason`` says why
        (``domain.tasks.overlap.follow_up_overlaps``). The draw will wait until a checkpoint covering this event
        was published (``services.usecases.witnessed``): one is asked for now."""
        self.fresh()
        try:
            p = parse_period(period)
        except (InvalidInputError, AttributeError):
            raise InvalidInputError([FieldProblem("period", "format", "must be 2024Q1, 2024-03, 2024H1 or 2024")]) from None
        with self.engine.begin() as conn:  # the inspected targets as of one log position, which the round records
            at = self.runner.align(conn, ("execution",))
            pool = execution.inspected_targets(conn, department, p.start, p.end)
        seed = secrets.token_bytes(32)
        r = FollowUpRound.plan(ctx.actor, department, period, pool, commitment(seed),
                               DEFAULT_FOLLOW_UP_RATIO if ratio in (None, "") else ratio, position=at,
                               entropy_source=entropy_source)
        others = [(row["id"], row["period"]) for row in execution.list_follow_ups(self.engine, department)
                  if row["id"] != str(r.id)]  # the same period again is the conflict below
        r.declare_overlaps(follow_up_overlaps(r.period, others, list(overlaps), overlap_reason), overlap_reason)
        if self.find(FollowUpRound, r.id) is not None:  # one round a period: refused before its seed is kept
            raise RoundExistsError(department, r.period)
        self.seeds.keep(r.id, seed)  # under its commitment: a refused or concurrent second plan never replaces it
        try:
            position = self.app.record(ctx, "plan_follow_up", r)
        except ConflictError:
            raise RoundExistsError(department, r.period) from None
        self.gate.pool_fixed()
        return self.done(r, position, pool_size=len(r.pool), quota=r.quota, ratio=r.ratio, commitment=r.commitment,
                         entropy_source=r.entropy_source, overlaps=r.overlaps)

    def draw_follow_up(
        self, ctx: CommandContext, rid: uuid.UUID, external_entropy: object = "", entropy_source: object = ""
    ) -> Done:
        """Reveal the seed and draw, with the value published for the declared source, once a checkpoint covering
        the round's ``Planned`` event (its pool) was published to partners."""
        r = self.load(FollowUpRound, rid, "follow-up round")
        r.check_draw(ctx.actor, external_entropy, entropy_source)  # 403/409/422 before the gate's 409
        if self.gate.enabled:
            planned = self.gate.event_position(rid, "domain.execution.followup:FollowUpRound.Planned")
            if planned is not None:
                self.gate.require_published(planned, "the round's pool (its Planned event)")

        def before_vault(conn: Connection) -> str | None:  # a round planned before services.usecases.seeds
            return conn.execute(sa.select(follow_up_seeds.c.seed).where(follow_up_seeds.c.round_id == str(rid))).scalar()

        seed = self.seeds.seed(rid, r.commitment, before_vault)
        if seed is None:
            raise InvalidTransitionError([FieldProblem("seed", "missing", "the committed seed is not on this server")])
        selected = r.draw_visitees(ctx.actor, seed, external_entropy, entropy_source)
        position = self.app.record(ctx, "draw_follow_up", r)
        with self.engine.begin() as conn:
            self.seeds.forget(rid, conn)
            conn.execute(follow_up_seeds.delete().where(follow_up_seeds.c.round_id == str(rid)))
        return self.done(r, position, selected=selected)

    def follow_up_step(self, ctx: CommandContext, rid: uuid.UUID, step: str, data: Mapping[str, Any]) -> Done:
        r = self.load(FollowUpRound, rid, "follow-up round")
        target = str(data.get("target_id") or "")
        today = self.clock.today
        on = parse_day(data.get("on"), "on", today())
        if step == "visit":
            r.record_visit(ctx.actor, target, parse_day(data.get("visited_on"), "visited_on", today()),
                           given(data, "method"), data.get("opinions") or "", data.get("problems") or "",
                           inspected_by=self._inspectors(r, [target]).get(target, set()),
                           aliases=self._aliases(ctx.actor))
        elif step == "escalation":
            r.escalate(ctx.actor, target, on, data.get("authority") or "", data.get("reason") or "")
        elif step == "escalation_outcome":
            r.record_escalation_outcome(ctx.actor, target, on, data.get("outcome") or "")
        elif step == "feedback":
            r.give_feedback(ctx.actor, target, on, data.get("feedback") or "", data.get("method") or "letter")
        else:
            raise InvalidInputError([FieldProblem("step", "choice", f"unknown step {step}")])
        position = self.app.record(ctx, f"follow_up_{step}", r)
        return self.done(r, position, target_id=target)

    def follow_up_view(self, actor: Actor, rid: uuid.UUID) -> dict[str, Any]:
        r = self.load(FollowUpRound, rid, "follow-up round")
        require_visit_reader(actor, [r.department])
        inspectors, aliases = self._inspectors(r, r.selected), self._aliases(actor)
        whole = r.sees_whole_round(actor)
        hidden = r.hidden_from(actor, inspectors, aliases)
        visits = {t: v for t, v in r.visits_for(actor, inspectors, aliases).items() if t not in hidden}
        return {
            "id": str(r.id), "version": r.version, "department": r.department, "period": r.period,
            "ratio": r.ratio, "pool": r.pool if whole else None, "quota": r.quota, "commitment": r.commitment,
            "entropy_source": r.entropy_source, "position": r.position, "draw": r.draw if whole else None,
            "selected": [t for t in r.selected if t not in hidden], "whole_round": whole,
            "visits": visits,
            "overlaps": r.overlaps, "overlap_reason": r.overlap_reason,
            "opinions_visible": can_read_confidential(actor, r.department),
        }

    def _aliases(self, actor: Actor) -> list[str]:
        """The inspector entry ids the actor's token subject names (an entry id or a staff id)."""
        with self.engine.connect() as conn:
            return directory.inspector_entries(conn, actor.department, actor.subject)

    def _inspectors(self, r: FollowUpRound, targets: list[str]) -> dict[str, set[str]]:
        """Per target, who of the department inspected it in the round's period (by inspector id)."""
        p = parse_period(r.period)
        return execution.inspectors_of(self.engine, r.department, targets, p.start, p.end)

    def verify_follow_up(self, actor: Actor, rid: uuid.UUID) -> dict[str, Any]:
        """What the standalone verifier checks of the round (docs/verifying-a-draw.md section 17): the pool
        re-derived from the log's inspections at the round's position, the chain, then the draw. ``skipped``: a
        version 1 round whose pool just before its ``Planned`` event differs (not a match, not a mismatch)."""
        from services.usecases.follow_up_verification import verify_round

        r = self.load(FollowUpRound, rid, "follow-up round")
        require_visit_reader(actor, [r.department])
        if not r.sees_whole_round(actor):  # the verification re-runs the whole selection
            raise PermissionDeniedError(
                f"role {actor.role!r} may not verify follow-up draws: the department's planners and reviewers, "
                "admins and auditors do")
        outcome = verify_round(self.app, self.engine, rid)
        return {"id": str(r.id), "match": outcome.match, "first_difference": outcome.first_difference,
                "skipped": outcome.skipped}

    def list_follow_ups(self, actor: Actor, department: str | None) -> list[dict[str, Any]]:
        return execution.list_follow_ups(self.engine, listed_department(actor, department, "follow-up rounds"))
