"""The target draw: commit, freeze, draw, verify, withdraw.

``commit`` (a secret seed is generated and kept in ``draw_seeds``, outside the log; the event records only its
SHA-256) -> ``freeze`` (the pool as of one log position: the directory and tasks read models are brought to that
position under their position locks) -> ``draw`` (the seed is revealed in the event). ``verify`` recomputes the
pool as of the freeze position and re-runs the draw. Both compute the pool with ``DrawPools.pool_at``
(``services.usecases.draw_pool``): the read models' rows unchanged since the position, the targets and tasks
changed after it folded from the log up to it, through the one pure ``domain.draw.pool.pool_at``.
"""

import secrets
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any, cast

import sqlalchemy as sa
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import StoredEvent
from sqlalchemy.engine import Connection, Engine

from domain.access import Actor
from domain.draw.chain import chain_checks, first_difference
from domain.draw.entropy import check_draw_entropy
from domain.draw.pool import legacy_weighted
from domain.draw.rounds import rounds_of
from domain.draw.sampler import (
    Candidate,
    CandidateColumns,
    EmptyPoolError,
    commitment,
    draw,
    pool_digest,
    verify,
)
from domain.errors import FieldProblem, InvalidInputError
from domain.execution.inspection import Inspection, inspection_id
from domain.planning.applicability import applies, restricted
from domain.planning.rules import parse_period
from domain.tasks import access
from domain.tasks.assignment import Assignment, assignment_id
from domain.tasks.drawn_list import require_drawn_list
from domain.tasks.merging import require_redraw_allowed
from domain.tasks.pool import Pool, TargetColumns
from domain.tasks.strata import frozen_strata
from domain.tasks.task import DrawNotReadyError, Task, TaskStateError
from projections.aggregate_rows import split_bars
from projections.directory import queries as directory
from projections.runner import ProjectionRunner
from projections.tasks import queries as tasks
from services.application import CommandContext, DualRandom, NotFoundError
from services.infra.rank_helper import ProcessRankHelper
from services.usecases.common import TASK_READ_MODELS, Done, UseCase
from services.usecases.draw_pool import DrawPools
from services.usecases.merges import Merges
from services.usecases.seeds import SeedVault
from services.usecases.witnessed import WitnessGate

seeds_metadata = sa.MetaData()
draw_seeds = sa.Table(
    "draw_seeds",
    seeds_metadata,
    sa.Column("task_id", sa.String(36), primary_key=True),
    sa.Column("round", sa.Integer, primary_key=True),
    sa.Column("seed", sa.String(64), nullable=False),
)
"""Secret seeds of rounds committed before ``services.usecases.seeds`` (read, never written). Never logged, never
answered; the reveal is the event."""
frozen_pools = sa.Table(
    "frozen_pools",
    seeds_metadata,
    sa.Column("task_id", sa.String(36), primary_key=True),
    sa.Column("round", sa.Integer, primary_key=True),
    sa.Column("ids", sa.Text, nullable=False),  # sorted candidate ids, "\n"-joined
    sa.Column("strata", sa.Text, nullable=False),  # their strata, same order
    sa.Column("weights", sa.Text, nullable=False),  # their weights, same order
    sa.Column("off_site", sa.Text, nullable=False),  # "|id|id|": positive-list targets (off-site first)
)
"""The frozen pool of a round, kept for its draw (the event holds its digest, which the draw checks).
An auditor never needs it: verification rebuilds the pool from the log."""


def _compress_pools_fast(engine: Engine) -> None:
    """On PostgreSQL 14+ built with LZ4, the frozen pools' long texts are compressed with it: a province's pool
    (1,000,000 ids, 37 MB) is stored in 0.3 s instead of the default pglz's 1.1 s. Left as it is elsewhere."""
    if engine.dialect.name != "postgresql":
        return
    columns = ("ids", "strata", "weights", "off_site")
    try:
        with engine.begin() as conn:
            have = {str(n) for n, c in conn.execute(sa.text(
                "SELECT attname, attcompression FROM pg_attribute WHERE attrelid = 'frozen_pools'::regclass "
                "AND attname = ANY(:names)"), {"names": list(columns)}) if c == "l"}
        if have == set(columns):
            return
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE frozen_pools " + ", ".join(
                f"ALTER COLUMN {c} SET COMPRESSION lz4" for c in columns)))
    except sa.exc.DBAPIError:  # a server without LZ4 (or before 14): pglz, slower, as before
        return


@dataclass(frozen=True)
class StoredPool:
    rows: CandidateColumns
    off_site_first: set[str]


class TargetDraws(UseCase):
    """The lead department's planners commit, freeze, draw and withdraw; the task's planners and auditors
    verify."""

    def __init__(self, app: DualRandom, engine: Engine, runner: ProjectionRunner, merges: Merges) -> None:
        super().__init__(app, engine, runner)
        self.merges = merges
        self.gate = WitnessGate(app, engine, runner)  # the runtime shares one with the follow-up draws
        self.seeds = SeedVault(engine)
        self.pools = DrawPools(app, engine, runner)
        self.rank_helper = ProcessRankHelper()  # a second core for the ranking of a large pool

    def close(self) -> None:
        self.rank_helper.close()

    @property
    def checkpoint_gate(self) -> bool:
        """Settings.draw_checkpoint_gate: whether draws wait for a published checkpoint covering the freeze."""
        return self.gate.enabled

    @checkpoint_gate.setter
    def checkpoint_gate(self, on: bool) -> None:
        self.gate.enabled = on

    def setup(self) -> None:
        seeds_metadata.create_all(self.engine)
        self.seeds.setup()
        _compress_pools_fast(self.engine)

    def commit(self, ctx: CommandContext, tid: uuid.UUID, entropy_source: str = "") -> Done:
        """Commit to a secret seed and declare the public source of the draw's external entropy."""
        task = self.load(Task, tid, "task")
        access.require_lead(ctx.actor, task.lead)
        if task.origin == "case":
            raise TaskStateError("a case-triggered task (个案检查) has designated targets, not a random draw")
        seed = secrets.token_bytes(32)
        round_ = task.commit_seed(commitment(seed), entropy_source)
        self.seeds.keep(tid, seed)  # under its commitment: a concurrent commit's seed never replaces it
        position = self.app.record(ctx, "commit_draw_seed", task)
        return self.done(task, position, round=round_, commitment=task.commitment,
                         entropy_source=task.entropy_source, shares_needed=task.missing_share_commitments())

    def commit_share(self, ctx: CommandContext, tid: uuid.UUID, department: str, share_commitment: str) -> Done:
        """A joint task's participating department commits to its seed share (before the freeze)."""
        task = self.load(Task, tid, "task")
        access.require_share_holder(ctx.actor, department)
        task.commit_share(department, share_commitment)
        position = self.app.record(ctx, "commit_seed_share", task)
        return self.done(task, position, round=task.round, department=department,
                         shares_needed=task.missing_share_commitments())

    def reveal_share(self, ctx: CommandContext, tid: uuid.UUID, department: str, share: str) -> Done:
        """The department reveals its share (after the freeze); it must hash to its commitment."""
        task = self.load(Task, tid, "task")
        access.require_share_holder(ctx.actor, department)
        task.reveal_share(department, share)
        position = self.app.record(ctx, "reveal_seed_share", task)
        return self.done(task, position, round=task.round, department=department, shares_missing=task.missing_shares())

    def freeze(self, ctx: CommandContext, tid: uuid.UUID, quotas: Mapping[str, int] | None = None) -> Done:
        task = self.load(Task, tid, "task")
        access.require_lead(ctx.actor, task.lead)
        if task.state != "committed":
            task.require_state("committed", "the pool is frozen after a commitment and before the draw")
        position, pool, inspectors = self._frozen_pool(task)
        if not pool.rows:
            raise EmptyPoolError(
                "the candidate pool is empty: no target matches the task's scope after the exclusions "
                f"({pool.excluded['inactive']} closed or deregistered, {pool.excluded['inspected_this_year']} "
                "inspected this year for these items); nothing was recorded"
            )
        strata = frozen_strata(task.rules, task.period, pool, inspectors, quotas or {})
        digest = pool_digest(pool.rows.ids)
        task.freeze_pool(position, digest, len(pool.rows), strata, pool.excluded)
        with self.engine.begin() as conn:
            key = (frozen_pools.c.task_id == str(tid)) & (frozen_pools.c.round == task.round)
            conn.execute(frozen_pools.delete().where(key))
            conn.execute(
                frozen_pools.insert().values(
                    task_id=str(tid),
                    round=task.round,
                    ids="\n".join(pool.rows.ids),
                    strata="\n".join(pool.rows.strata),
                    weights="\n".join(map(str, pool.rows.weights)),
                    off_site="|" + "|".join(sorted(pool.off_site_first)) + "|",
                )
            )
        stored = self.app.record(ctx, "freeze_pool", task)
        self.gate.pool_fixed()  # the draw waits for a published checkpoint covering this freeze: ask for it now
        return self.done(
            task,
            stored,
            round=task.round,
            frozen_at=position,
            pool_size=len(pool.rows),
            pool_digest=digest,
            strata=strata,
            excluded=pool.excluded,
        )

    def _frozen_pool(self, task: Task) -> tuple[int, Pool, int]:
        """The pool as of one log position: the read models are brought to it (under their position locks, so
        freezes are serialised), then the pool is read as of it (``DrawPools.pool_at``, as the verification
        reads it)."""
        with self.engine.begin() as conn:
            position = self.runner.align(conn, TASK_READ_MODELS)  # one position, freezes serialised
            inspectors = directory.active_inspector_count(conn, task.lead, parse_period(task.period).start)
        items = directory.items(self.engine, task.items)
        wanted = [items.get(i, {}) for i in task.items]
        suspects: set[str] = set()

        def watch(columns: TargetColumns) -> None:
            # 多项合一 merges only what applies: the targets read to which no item of the task applies (only
            # when every item names its targets; else nothing is looked at), decided once per distinct
            # (industry, class, tags)
            seen: dict[tuple[Any, Any, Any], bool] = {}
            for tid, industry, sc, tags in zip(columns.ids, columns.industries or repeat(None),
                                               columns.supervision_classes, columns.tags):
                key = (industry, sc, tuple(tags) if tags else None)
                fits = seen.get(key)
                if fits is None:
                    data = {"industry": industry, "supervision_class": sc, "tags": tags}
                    fits = seen[key] = any(applies(i, data) for i in wanted)
                if not fits:
                    suspects.add(tid)

        check = bool(wanted) and all(restricted(i) for i in wanted)
        pool = self.pools.pool_at(task, position, watch=watch if check else None)
        if suspects:
            self._require_items_apply([i for i in pool.rows.ids if i in suspects])
        return position, pool, inspectors

    def _require_items_apply(self, missing: Sequence[str]) -> None:
        """A pool holding a target to which no item of the task applies is refused (422 ``scope``/
        ``no_item_applies``, naming up to 5 of them), so no such target is drawn. Free when an item of the task
        applies to every target (the usual case)."""
        if missing:
            data = directory.target_data(self.engine, list(missing[:5]))
            named = "、".join(f"{data.get(t, {}).get('name', '')}（{data.get(t, {}).get('credit_code', '')}）"
                             for t in missing[:5])
            raise InvalidInputError([FieldProblem(
                "scope", "no_item_applies",
                f"{len(missing)} target(s) of the pool match no item of the task (by the items' industries, tags "
                f"and supervision classes), e.g. {named}: narrow the task's scope or widen an item's "
                "applicability; nothing was recorded")])

    def _pool_at(self, task: Task, position: int, by_class: bool = True) -> Pool:
        """The pool of ``task`` as of ``position`` (inclusive): freeze and verification alike."""
        return self.pools.pool_at(task, position, by_class=by_class)

    def draw_targets(
        self, ctx: CommandContext, tid: uuid.UUID, external_entropy: str = "", entropy_source: str = ""
    ) -> Done:
        """Reveal the seed and draw: only with entropy for the declared source, and (joint tasks) once every
        participating department revealed its seed share."""
        self.fresh()
        task = self.load(Task, tid, "task")
        access.require_lead(ctx.actor, task.lead)
        if task.state != "frozen":
            task.require_state("frozen", "the draw comes after the pool is frozen")
        external_entropy = check_draw_entropy(task.entropy_source, entropy_source, external_entropy)
        missing = task.missing_shares()
        if missing:
            raise DrawNotReadyError(
                f"every participating department reveals its seed share before the draw; missing: {', '.join(missing)}",
                "shares")
        shares = {d: bytes.fromhex(h) for d, h in task.seed_shares.items()}
        if self.gate.enabled:
            self.gate.require_published(self._freeze_event_position(tid))
        seed = self._seed(tid, task.round, task.commitment)
        frozen = task.frozen or {}
        pool = self._stored_pool(tid, task.round, bool(task.options["weighted"]))
        quotas = {s: v["quota"] for s, v in frozen["strata"].items() if v["pool_size"] > 0}
        rows = cast(Sequence[Candidate], pool.rows)  # the columns read as the rows they stand for
        result = draw(seed, external_entropy, rows, quotas, weighted=bool(task.options["weighted"]), shares=shares,
                      helper=self.rank_helper)
        record = {**result.as_record(), "entropy_source": task.entropy_source, "freeze_position": frozen["position"]}
        off_site = sorted(set(result.selected) & pool.off_site_first)
        task.record_draw(record, off_site)
        position = self.app.record(ctx, "draw_targets", task)
        with self.engine.begin() as conn:
            self.seeds.forget(tid, conn)
            conn.execute(draw_seeds.delete().where(draw_seeds.c.task_id == str(tid)))
            conn.execute(frozen_pools.delete().where(frozen_pools.c.task_id == str(tid)))
        return self.done(
            task,
            position,
            round=task.round,
            selected=len(result.selected),
            strata={
                s: {
                    "pool_size": o.pool_size,
                    "quota": o.quota,
                    "took_all": o.took_all,
                    "selected": len(o.selected),
                }
                for s, o in result.strata.items()
            },
            off_site_first=len(off_site),
            overlaps=self.merges.overlaps_of(task),
        )

    # -- the freeze is witnessed before the seed is revealed (services.usecases.witnessed) -------------------
    def _freeze_event_position(self, tid: uuid.UUID) -> int:
        """The log position of the task's last ``PoolFrozen`` event (the current round's freeze)."""
        position = self.gate.event_position(tid, "domain.tasks.task:Task.PoolFrozen")
        if position is None:
            raise TaskStateError("the freeze of this round is not in the log")
        return position

    def _stored_pool(self, tid: uuid.UUID, round_: int, weighted: bool) -> StoredPool:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(frozen_pools).where(
                    frozen_pools.c.task_id == str(tid), frozen_pools.c.round == round_
                )
            ).first()
        if row is None:
            raise TaskStateError(
                "the frozen pool of this round is not on this server; freeze again after a redraw"
            )
        weights = [int(w) for w in row.weights.split("\n")] if weighted else None
        return StoredPool(
            CandidateColumns(row.ids.split("\n"), row.strata.split("\n"), weights),
            set(split_bars(row.off_site)),
        )

    def _seed(self, tid: uuid.UUID, round_: int, committed: str | None) -> bytes:
        def before_vault(conn: Connection) -> str | None:  # a round committed before services.usecases.seeds
            return conn.execute(sa.select(draw_seeds.c.seed).where(
                draw_seeds.c.task_id == str(tid), draw_seeds.c.round == round_)).scalar()

        value = self.seeds.seed(tid, committed or "", before_vault)
        if value is None:
            raise TaskStateError(
                "the committed seed is not on this server (was the round committed elsewhere?)"
            )
        return value

    # -- the pool as the log says it was -------------------------------------------------------------------
    def rounds(self, actor: Actor, tid: uuid.UUID) -> dict[str, Any]:
        """Every round of the task (current and withdrawn), without the selected ids."""
        task = self.load(Task, tid, "task")
        require_drawn_list(actor, task.departments)
        out = []
        for r in rounds_of(self._task_events(tid)):
            record = r["record"] or {}
            out.append({
                "round": r["round"], "status": r["status"], "stage": r["stage"],
                "withdrawn_reason": r["withdrawn_reason"], "commitment": r["commitment"],
                "freeze_position": (r["frozen"] or {}).get("position"),
                "pool_size": (r["frozen"] or {}).get("pool_size"),
                "designated": bool(record.get("designated")), "selected": len(record.get("selected", [])),
            })
        return {"task_id": str(tid), "current_round": task.round, "rounds": out}

    def read_round(self, actor: Actor, tid: uuid.UUID, round_: int) -> dict[str, Any]:
        """One round in full: the commitment, the freeze, the draw record and the teams."""
        task = self.load(Task, tid, "task")
        require_drawn_list(actor, task.departments)
        return {"task_id": str(tid), **self._round(tid, round_)}

    def _round(self, tid: uuid.UUID, round_: int) -> dict[str, Any]:
        for r in rounds_of(self._task_events(tid)):
            if r["round"] == round_:
                return r
        raise NotFoundError("round", f"{tid}/{round_}")

    def _task_events(self, tid: uuid.UUID) -> list[Any]:
        return list(self.app.repository.event_store.get(tid))

    def verify_draw(self, actor: Actor, tid: uuid.UUID, round_: int | None = None) -> dict[str, Any]:
        """Recompute the pool from the log at the freeze position and re-run the draw: match or first difference.

        ``round_``: any round that was drawn, current or withdrawn (default: the current round)."""
        task = self.load(Task, tid, "task")
        require_drawn_list(actor, task.departments)
        return self.check_round(task, self._round(tid, task.round if round_ is None else round_))

    def check_round(self, task: Task, r: Mapping[str, Any]) -> dict[str, Any]:
        """Check one round (as :func:`rounds_of` reads it) against the pool recomputed from the log."""
        record, frozen = r["record"], r["frozen"] or {}
        if not record:
            raise TaskStateError(f"round {r['round']} has no draw to verify")
        if record.get("designated"):
            raise TaskStateError(
                "a case-triggered task (个案检查) names its targets: there is no random draw to verify"
            )
        checks = chain_checks(self._positioned_events(task.id), r["round"], record)
        broken = first_difference(checks)
        chain = {"match": broken is None, "first_difference": broken, "checks": [c.as_dict() for c in checks]}
        position = record["freeze_position"]
        pool = self._pool_at(task, position, by_class=not legacy_weighted(frozen))
        rows = cast(Sequence[Candidate], CandidateColumns(pool.rows.ids, pool.rows.strata, pool.rows.weights))
        outcome = verify(record, rows, self.rank_helper)  # a match: the recomputed pool's digest is the record's
        digest = record.get("pool_digest") if outcome.match else pool_digest(pool.rows.ids) if pool.rows else None
        out: dict[str, Any] = {
            "task_id": str(task.id),
            "round": r["round"],
            "status": r["status"],
            "freeze_position": position,
            "pool_size": len(pool.rows),
            "pool_digest": digest,
            "chain": chain,
        }
        if broken is not None:  # section 13.1 first: the record stands for the log only when its chain holds
            return {**out, "match": False, "first_difference": broken}
        if digest != frozen.get("pool_digest"):
            return {**out, "match": False, "first_difference": _pool_difference(frozen, pool, digest)}
        return {**out, "match": outcome.match, "first_difference": outcome.first_difference}

    def _positioned_events(self, tid: uuid.UUID) -> list[tuple[int, Any]]:
        """The task's events with their log positions, in log order (the chain of a round is about positions)."""
        recorder: Any = self.app.recorder
        table = recorder.events_record_cls.__table__
        query = (
            sa.select(table.c.id, table.c.originator_version, table.c.topic, table.c.state)
            .where(table.c.originator_id == tid)
            .order_by(table.c.id)
        )
        to_domain_event = self.app.mapper.to_domain_event
        with self.engine.connect() as conn:
            return [(int(position), to_domain_event(StoredEvent(tid, version, topic, bytes(state))))
                    for position, version, topic, state in conn.execute(query)]

    # -- redraw --------------------------------------------------------------------------------------------
    def withdraw(self, ctx: CommandContext, tid: uuid.UUID, reason: str) -> Done:
        """Redraw the whole task: end the round with a reason; its assignments are cancelled."""
        self.fresh()
        task = self.load(Task, tid, "task")
        access.require_lead(ctx.actor, task.lead)
        visits = self._assignments_of(tid, task.round) if task.state == "drawn" else []
        shares_a_visit = any(len(a.tasks) > 1 for a in visits)
        opened = self.load_many(Inspection, (inspection_id(a.id, d) for a in visits for d in sorted(a.items)))
        require_redraw_allowed(
            shares_a_visit=shares_a_visit,
            merged_away=not shares_a_visit and tasks.has_merged_assignment(self.engine, str(tid)),
            inspected=len({i.assignment_id for i in opened.values()}),
        )
        round_ = task.withdraw_draw(reason)
        aggs: list[Aggregate] = [task]
        for a in visits:
            a.cancel(f"draw round {round_} withdrawn: {reason.strip()}")
            aggs.append(a)
        position = self.app.record(ctx, "withdraw_draw", *aggs)
        return self.done(task, position, round=round_)

    def _assignments_of(self, tid: uuid.UUID, round_: int) -> list[Assignment]:
        t = self.load(Task, tid, "task")
        ids = [assignment_id(tid, round_, target) for target in (t.selected if t.round == round_ else [])]
        ids += [uuid.UUID(r) for r in tasks.assignments_with_task(self.engine, str(tid))]
        found = self.load_many(Assignment, dict.fromkeys(ids))
        return [
            a
            for a in found.values()
            if a.state not in ("cancelled", "merged")
            and any(str(x["task_id"]) == str(tid) and x.get("round", round_) == round_ for x in a.tasks)
        ]


def _pool_difference(frozen: Mapping[str, Any], pool: Pool, digest: str | None) -> str:
    """The first difference between the frozen pool (its event) and the recomputed one: the first stratum (in
    name order) whose size differs, else the total, else the digest alone (same sizes, other ids)."""
    sizes = Counter(pool.rows.strata)
    strata = frozen.get("strata") or {}
    for name in sorted(set(strata) | set(sizes)):
        recorded = (strata.get(name) or {}).get("pool_size", 0)
        if recorded != sizes.get(name, 0):
            return (f"strata[{name!r}].pool_size: frozen {recorded}, recomputed {sizes.get(name, 0)} "
                    f"(pool_digest: frozen {frozen.get('pool_digest')}, recomputed {digest})")
    if frozen.get("pool_size") != len(pool.rows):
        return f"pool_size: frozen {frozen.get('pool_size')}, recomputed {len(pool.rows)}"
    return (f"pool_digest: frozen {frozen.get('pool_digest')}, recomputed {digest} "
            "(same stratum sizes: other targets)")
