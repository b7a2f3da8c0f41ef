"""The inspection task (抽查任务) aggregate: single-department or joint, and its verifiable target draw.

A task is opened from a plan entry (``planned``), ad hoc with a reason (``ad_hoc``), or for a case
(``case``: 个案检查, never counted as random). Its participants map each department to the items it brings;
the lead department is one of them, and the task is joint when there is more than one.

The target draw goes through rounds. In each round: ``commit_seed`` (the server keeps the secret seed and
only its SHA-256 is recorded) -> ``freeze_pool`` (the pool at a log position: its digest, strata, quotas)
-> ``record_draw`` (the seed is revealed; the record is what an auditor re-runs). Then each participating
department records its inspector teams (``record_teams``). ``withdraw_draw`` (with a reason) ends a round;
the next round starts from a new commitment. Nothing is ever deleted: every round stays in the history.
"""

import copy
import datetime as dt
import hashlib
import re
import uuid
from collections.abc import Collection, Mapping, Sequence
from typing import Any, ClassVar

from eventsourcing.domain import Aggregate, event

from domain.draw.entropy import check_source
from domain.draw.sampler import ALGORITHM, ALGORITHM_VERSION, SHARES_ALGORITHM_VERSION
from domain.errors import DomainError, FieldProblem, InvalidInputError
from domain.planning.plan import validate_scope
from domain.planning.rules import parse_period, rules_from_dict, rules_to_dict
from domain.text import MAX_REASON, REASON_RULE, reason_message
from domain.values import ItemCategory

_CODE = re.compile(r"^[a-z][a-z0-9-]{1,31}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

ORIGINS = ("planned", "ad_hoc", "case")
"""``planned``: from a plan entry; ``ad_hoc``: outside the plan, with a reason; ``case``: 个案检查 (not random)."""

DEFAULT_OPTIONS: dict[str, Any] = {
    "exclude_inspected_this_year": True,  # same item, same target, once a year by default
    # The exclusion per visit: only targets already drawn this year for every item of the task, and never from a
    # stratum a ``full`` rule governs (``domain.tasks.pool``). Tasks opened before the option keep the old rule.
    "exclusion_per_visit": True,
    "exclude_previous_inspectors": True,  # not who inspected the target in the previous period
    "match_region": False,  # inspectors only from the target's region
    "team_size": 2,  # at least 2 certified inspectors per department and target
    "weighted": False,  # risk-weighted draw (Efraimidis-Spirakis keys with ``risk_weights``)
    "risk_weights": {"A": 1, "B": 2, "C": 4, "D": 8},
}

STATES = ("open", "committed", "frozen", "drawn")
"""``open`` (no round running), ``committed`` (seed committed), ``frozen`` (pool frozen), ``drawn``."""

NAMESPACE = uuid.UUID("0f8f3c55-8a7c-5e54-a3a4-8b1e0b7c2d41")


class TaskStateError(DomainError):
    """The command does not fit the task's state (e.g. drawing before the pool is frozen)."""

    title = "Not possible in the task's current state"

    def __init__(self, message: str, field: str = "state") -> None:
        super().__init__(message, [FieldProblem(field, "state", message)])


class DrawNotReadyError(TaskStateError):
    """A step of the draw waits for something others must do first (a seed share, a published checkpoint):
    409, and the request may be repeated once it is done. ``retry_after``: seconds, when worth saying."""

    title = "The draw is not ready for this step"
    status = 409

    def __init__(self, message: str, field: str = "state", retry_after: int | None = None) -> None:
        super().__init__(message, field)
        self.retry_after = retry_after


def task_id(lead: str, number: str) -> uuid.UUID:
    """A task's id: one task per (lead department, number)."""
    return uuid.uuid5(NAMESPACE, f"task:{lead}/{number}")


def team_key(seed_hex: str, task: str, department: str) -> bytes:
    """The key of a department's inspector draw in a task: derived from the revealed target-draw seed, so
    that the teams are deterministic from the same seed and anyone holding the record can recompute them.

    ``SHA-256("dualrandom-teams-v1" 0x00 seed 0x00 UTF-8(task id) 0x00 UTF-8(department))``.
    """
    return hashlib.sha256(
        b"dualrandom-teams-v1\x00"
        + bytes.fromhex(seed_hex)
        + b"\x00"
        + task.encode()
        + b"\x00"
        + department.encode()
    ).digest()


def validate_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Draw options with defaults; problems are named ``options.<key>``."""
    out = copy.deepcopy(DEFAULT_OPTIONS)
    problems: list[FieldProblem] = []
    for key, value in (options or {}).items():
        if key not in DEFAULT_OPTIONS:
            problems.append(FieldProblem(f"options.{key}", "unknown_field", "is not a draw option"))
        elif key == "team_size":
            if isinstance(value, bool) or not isinstance(value, int) or not 2 <= value <= 20:
                problems.append(
                    FieldProblem("options.team_size", "range", "must be a whole number 2..20 (至少2名)")
                )
            else:
                out[key] = value
        elif key == "risk_weights":
            if (
                not isinstance(value, Mapping)
                or set(value) - {"A", "B", "C", "D"}
                or any(
                    isinstance(w, bool) or not isinstance(w, int) or not 1 <= w <= 1000
                    for w in value.values()
                )
            ):
                problems.append(
                    FieldProblem(
                        "options.risk_weights",
                        "format",
                        "must map risk classes A..D to whole numbers 1..1000",
                    )
                )
            else:
                out[key] = {**DEFAULT_OPTIONS["risk_weights"], **dict(value)}
        elif not isinstance(value, bool):
            problems.append(FieldProblem(f"options.{key}", "type", "must be true or false"))
        else:
            out[key] = value
    if out["weighted"] and not problems and len(set(out["risk_weights"].values())) == 1:
        problems.append(FieldProblem("options.weighted", "weights_equal",
                                     "every risk class has the same weight: a weighted draw would select what the "
                                     "uniform one does; give higher-risk classes larger risk_weights"))
    if problems:
        raise InvalidInputError(problems)
    return out


def weighting_problems(options: Mapping[str, Any], rules: Sequence[Mapping[str, Any]],
                       scope: Mapping[str, Any]) -> list[FieldProblem]:
    """Where weighting cannot change the selection, the weighted task is refused (``options.weighted``): rules
    with per-risk-class quotas (risk linkage fixes how many of each risk class; a weighted draw's stratum is the
    whole supervision class) or a scope of one risk class (one weight)."""
    if not options.get("weighted"):
        return []
    problems = []
    linked = sorted({f"{r['supervision_class']}/{r['risk_class']}" for r in rules if r.get("risk_class")})
    if linked:
        problems.append(FieldProblem(
            "options.weighted", "risk_class_rules",
            f"the rules already set quotas per risk class ({', '.join(linked)}): risk linkage and a weighted draw "
            "are two ways to favour higher risk; use one"))
    risks = scope.get("risk_classes") or []
    if len(set(risks)) == 1:
        problems.append(FieldProblem("options.weighted", "single_risk_class",
                                     f"the scope admits only risk class {risks[0]}: every weight would be equal"))
    return problems


def validate_participants(
    lead: str, participants: Mapping[str, Sequence[str]] | None
) -> dict[str, list[str]]:
    """Department -> item ids; the lead must bring items; every department code well formed."""
    problems: list[FieldProblem] = []
    if not isinstance(lead, str) or not _CODE.match(lead):
        problems.append(FieldProblem("lead", "format", "must be a department code"))
    if not isinstance(participants, Mapping) or not participants:
        problems.append(
            FieldProblem("participants", "required", "must map each department to the items it brings")
        )
        raise InvalidInputError(problems)
    out: dict[str, list[str]] = {}
    for dept, items in participants.items():
        field = f"participants.{dept}"
        if not isinstance(dept, str) or not _CODE.match(dept):
            problems.append(FieldProblem(field, "format", "must be a department code"))
            continue
        if isinstance(items, str) or not isinstance(items, Sequence) or not items:
            problems.append(
                FieldProblem(field, "required", "a participating department brings at least one item")
            )
            continue
        clean = []
        for item in items:
            if not isinstance(item, str) or not item.strip():
                problems.append(FieldProblem(field, "format", "items are item ids"))
            elif item.strip() not in clean:
                clean.append(item.strip())
        out[dept] = clean
    if isinstance(lead, str) and lead not in out and not problems:
        problems.append(
            FieldProblem("participants", "lead", f"the lead department {lead} must bring items too")
        )
    if problems:
        raise InvalidInputError(problems)
    return {d: out[d] for d in sorted(out)}


class Task(Aggregate):
    """抽查任务. ``participants``: department -> item ids (the lead included); ``departments``: their codes."""

    KIND: ClassVar[str] = "task"

    number: str
    name: str
    lead: str
    year: int
    period: str
    category: str
    origin: str
    reason: str
    plan_entry: str | None
    participants: dict[str, list[str]]
    scope: dict[str, Any]
    rules: list[dict[str, Any]]
    options: dict[str, Any]
    state: str
    round: int
    commitment: str | None
    frozen: dict[str, Any] | None
    draw: dict[str, Any] | None
    teams: dict[str, dict[str, Any]]
    withdrawn: list[dict[str, Any]]
    overlaps: list[dict[str, str]]
    overlap_reason: str
    entropy_source: str
    share_commitments: dict[str, str]
    seed_shares: dict[str, str]

    class Opened(Aggregate.Created):
        number: str
        name: str
        lead: str
        year: int
        period: str
        category: str
        origin: str
        reason: str
        plan_entry: str | None
        participants: dict[str, list[str]]
        scope: dict[str, Any]
        rules: list[dict[str, Any]]
        options: dict[str, Any]

    class SeedCommitted(Aggregate.Event):
        """The lead planner committed to a secret seed: only its SHA-256 is recorded, with the public source
        the draw's external entropy will come from (version 2; ``""``: none declared, as every version 1)."""

        class_version = 2

        round: int
        commitment: str
        entropy_source: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["entropy_source"] = ""

    class ShareCommitted(Aggregate.Event):
        """A participating department's planner committed to a seed share (joint tasks): SHA-256 of 32 bytes
        only they know, before the pool is frozen."""

        round: int
        department: str
        commitment: str

    class ShareRevealed(Aggregate.Event):
        """The department revealed its share (hex) after the freeze; its SHA-256 equals its commitment."""

        round: int
        department: str
        share: str

    class OverlapDeclared(Aggregate.Event):
        """The task overlaps current random tasks (``domain.tasks.overlap``), declared when it was opened:
        each one's id, number, name and period, and why a second draw over the same ground is needed."""

        overlaps: list[dict[str, str]]
        reason: str

    class PoolFrozen(Aggregate.Event):
        """The candidate pool as of log position ``position``: digest, per-stratum sizes and quotas."""

        round: int
        position: int
        pool_digest: str
        pool_size: int
        strata: dict[str, dict[str, Any]]
        excluded: dict[str, int]

    class TargetsDrawn(Aggregate.Event):
        """The seed revealed and the draw made; ``record`` is what an auditor re-runs."""

        round: int
        record: dict[str, Any]
        off_site_first: list[str]

    class TargetsDesignated(Aggregate.Event):
        """个案检查: the targets of a case-triggered task are named, not drawn; ``seed`` keys its inspector
        draw (revealed at once: there is no target draw to protect)."""

        round: int
        targets: list[str]
        seed: str

    class InspectorsDrawn(Aggregate.Event):
        """One participating department's teams for every drawn target of the round.

        Version 2 adds ``position``: the log position at which every input of the draw was read (the staff,
        the targets' counties, the items, the previous period's inspectors), so that anyone can rebuild them
        from the log (docs/verifying-a-draw.md section 16); its ``inspectors_digest`` is SHA-256 of the staff's
        RFC 8785 canonical JSON. Version 1 is upcast with ``position`` None (read at no recorded position)
        and keeps its digest of Python's ``json.dumps`` form."""

        class_version = 2

        round: int
        department: str
        visit_date: str
        teams: dict[str, dict[str, Any]]
        inspectors_digest: str
        position: int | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["position"] = None

    class DrawWithdrawn(Aggregate.Event):
        """The running round ended before use (redraw of the whole task), with the reason."""

        round: int
        reason: str
        stage: str

    @staticmethod
    def create_id(lead: str, number: str, **_: Any) -> uuid.UUID:
        return task_id(lead, number)

    @classmethod
    def open(
        cls,
        *,
        number: str,
        name: str,
        lead: str,
        period: str,
        category: str,
        origin: str,
        participants: Mapping[str, Sequence[str]],
        scope: Mapping[str, Any] | None = None,
        rules: Sequence[Mapping[str, Any]] = (),
        options: Mapping[str, Any] | None = None,
        reason: str = "",
        plan_entry: str | None = None,
    ) -> "Task":
        """Validate everything and open the task (name checked by the caller against the naming rule)."""
        problems: list[FieldProblem] = []

        def collect(fn: Any, *args: Any) -> Any:
            try:
                return fn(*args)
            except InvalidInputError as exc:
                problems.extend(exc.problems)
                return None

        parts = collect(validate_participants, lead, participants)
        sc = collect(validate_scope, scope)
        opts = collect(validate_options, options)
        p = collect(_period, period)
        rl = collect(lambda r: rules_to_dict(rules_from_dict(r)), list(rules))
        if opts is not None and rl is not None and sc is not None:
            problems.extend(weighting_problems(opts, rl, sc))
        if category not in (ItemCategory.GENERAL.value, ItemCategory.KEY.value):
            problems.append(FieldProblem("category", "choice", "must be one of: general, key"))
        if origin not in ORIGINS:
            problems.append(FieldProblem("origin", "choice", f"must be one of: {', '.join(ORIGINS)}"))
        why = reason.strip() if isinstance(reason, str) else ""
        if origin in ("ad_hoc", "case") and not why:
            problems.append(
                FieldProblem("reason", "required", f"a task outside the plan ({origin}) needs a reason")
            )
        if len(why) > MAX_REASON:
            problems.append(FieldProblem("reason", REASON_RULE, reason_message()))
        if origin == "planned" and not plan_entry:
            problems.append(FieldProblem("plan_entry", "required", "a planned task names its plan entry"))
        if not isinstance(name, str) or not name.strip():
            problems.append(FieldProblem("name", "required", "must not be empty"))
        if not isinstance(number, str) or not re.match(r"^\d{4}-\d{3,4}$", number or ""):
            problems.append(FieldProblem("number", "format", "must be YYYY-nnn"))
        if problems:
            raise InvalidInputError(problems)
        return cls._create(
            cls.Opened,
            id=task_id(lead, number),
            number=number,
            name=name.strip(),
            lead=lead,
            year=p.year,
            period=p.text,
            category=category,
            origin=origin,
            reason=why,
            plan_entry=plan_entry,
            participants=parts,
            scope=sc,
            rules=rl,
            options=opts,
        )

    @event(Opened)
    def __init__(
        self,
        number: str,
        name: str,
        lead: str,
        year: int,
        period: str,
        category: str,
        origin: str,
        reason: str,
        plan_entry: str | None,
        participants: dict[str, list[str]],
        scope: dict[str, Any],
        rules: list[dict[str, Any]],
        options: dict[str, Any],
    ) -> None:
        self.number = number
        self.name = name
        self.lead = lead
        self.year = year
        self.period = period
        self.category = category
        self.origin = origin
        self.reason = reason
        self.plan_entry = plan_entry
        self.participants = copy.deepcopy(participants)
        self.scope = copy.deepcopy(scope)
        self.rules = copy.deepcopy(rules)
        self.options = copy.deepcopy(options)
        self.state = "open"
        self.round = 0
        self.commitment = None
        self.frozen = None
        self.draw = None
        self.teams = {}
        self.withdrawn = []
        self.overlaps = []
        self.overlap_reason = ""
        self.entropy_source = ""
        self.share_commitments = {}
        self.seed_shares = {}

    # -- what the rest of the system reads --------------------------------------------------------
    @property
    def department(self) -> str:
        """The owning department (events' ``owner``): the lead."""
        return self.lead

    @property
    def departments(self) -> list[str]:
        return sorted(self.participants)

    @property
    def is_joint(self) -> bool:
        return len(self.participants) > 1

    @property
    def is_random(self) -> bool:
        """Counted as a random inspection: everything but case-triggered tasks (个案检查)."""
        return self.origin != "case"

    @property
    def items(self) -> list[str]:
        """Every item of every department, each once."""
        out: list[str] = []
        for d in self.departments:
            out.extend(i for i in self.participants[d] if i not in out)
        return out

    @property
    def selected(self) -> list[str]:
        return list(self.draw["record"]["selected"]) if self.draw else []

    def require_state(self, state: str, rule: str) -> None:
        """TaskStateError saying ``rule`` unless the task is in ``state``."""
        if self.state != state:
            raise TaskStateError(f"{rule}; the task is {self.state}")

    # -- commands -----------------------------------------------------------------------------------
    def declare_overlaps(self, overlaps: Sequence[Mapping[str, str]], reason: str) -> None:
        """Record the current random tasks this one overlaps and why (see ``domain.tasks.overlap``)."""
        why = reason.strip() if isinstance(reason, str) else ""
        if not overlaps:
            return
        if not why:
            raise InvalidInputError([FieldProblem("overlap_reason", "required",
                                                  "a task that overlaps current random tasks records why")])
        if len(why) > MAX_REASON:
            raise InvalidInputError([FieldProblem("overlap_reason", REASON_RULE, reason_message())])
        self._overlaps(overlaps=[dict(o) for o in overlaps], reason=why)

    def commit_seed(self, commitment: str, entropy_source: str = "") -> int:
        """Start a round with the seed's SHA-256 and the declared entropy source; returns the round number."""
        if self.state != "open":
            raise TaskStateError(
                f"round {self.round} is {self.state}: withdraw it (with a reason) before committing again"
                if self.state != "drawn"
                else f"the targets are drawn (round {self.round}); a redraw of the whole task needs a recorded reason"
            )
        if not isinstance(commitment, str) or not _HEX64.match(commitment):
            raise InvalidInputError([FieldProblem("commitment", "format", "must be 64 lowercase hex digits")])
        source = check_source(entropy_source)
        self._commit(round=self.round + 1, commitment=commitment, entropy_source=source)
        return self.round

    @property
    def shares_needed(self) -> bool:
        """A joint task's draw takes a seed share from every participating department."""
        return self.is_joint

    def commit_share(self, department: str, commitment: str) -> None:
        """A participating department commits to its seed share (once per round, before the freeze)."""
        if department not in self.participants:
            raise InvalidInputError([FieldProblem("department", "participant",
                                                  f"{department} does not take part in this task")])
        if not self.shares_needed:
            raise TaskStateError("only a joint task's draw takes seed shares", "department")
        self.require_state("committed", "a seed share is committed after the seed and before the freeze")
        if department in self.share_commitments:
            raise TaskStateError(f"{department} committed its share of round {self.round} already", "department")
        if not isinstance(commitment, str) or not _HEX64.match(commitment):
            raise InvalidInputError([FieldProblem("commitment", "format",
                                                  "must be SHA-256 of the 32-byte share: 64 lowercase hex digits")])
        self._share_committed(round=self.round, department=department, commitment=commitment)

    def reveal_share(self, department: str, share: str) -> None:
        """The department reveals its share after the freeze; it must hash to its commitment."""
        if department not in self.share_commitments:
            raise TaskStateError(f"{department} committed no share in round {self.round}", "department")
        self.require_state("frozen", "a seed share is revealed after the freeze and before the draw")
        if department in self.seed_shares:
            raise TaskStateError(f"{department} revealed its share of round {self.round} already", "department")
        if not isinstance(share, str) or not _HEX64.match(share):
            raise InvalidInputError([FieldProblem("share", "format", "must be 32 bytes as 64 lowercase hex digits")])
        if hashlib.sha256(bytes.fromhex(share)).hexdigest() != self.share_commitments[department]:
            raise InvalidInputError([FieldProblem(
                "share", "commitment",
                f"its SHA-256 is not {department}'s commitment {self.share_commitments[department]}")])
        self._share_revealed(round=self.round, department=department, share=share)

    def missing_share_commitments(self) -> list[str]:
        return [d for d in self.departments if d not in self.share_commitments] if self.shares_needed else []

    def missing_shares(self) -> list[str]:
        return [d for d in self.departments if d not in self.seed_shares] if self.shares_needed else []

    def freeze_pool(
        self,
        position: int,
        pool_digest: str,
        pool_size: int,
        strata: Mapping[str, Mapping[str, Any]],
        excluded: Mapping[str, int],
    ) -> None:
        self.require_state("committed", "the pool is frozen after a commitment and before the draw")
        missing = self.missing_share_commitments()
        if missing:
            raise DrawNotReadyError(
                f"the pool of a joint task is frozen once every participating department committed a seed share; "
                f"missing: {', '.join(missing)}", "shares")
        if pool_size == 0:
            raise TaskStateError(
                "the pool is empty: no target matches the task's scope after the exclusions", "pool"
            )
        self._freeze(
            round=self.round,
            position=int(position),
            pool_digest=pool_digest,
            pool_size=int(pool_size),
            strata={k: dict(v) for k, v in strata.items()},
            excluded=dict(excluded),
        )

    def record_draw(self, record: Mapping[str, Any], off_site_first: Sequence[str]) -> None:
        """Record the draw made with the committed seed over the frozen pool (both are checked)."""
        self.require_state("frozen", "the draw comes after the pool is frozen")
        seed_hex = record.get("seed", "")
        if hashlib.sha256(bytes.fromhex(seed_hex)).hexdigest() != self.commitment:
            raise TaskStateError("the revealed seed does not match the commitment", "seed")
        if record.get("pool_digest") != (self.frozen or {}).get("pool_digest"):
            raise TaskStateError("the draw was not made over the frozen pool", "pool_digest")
        expected = SHARES_ALGORITHM_VERSION if self.seed_shares else ALGORITHM_VERSION
        if record.get("algorithm") != ALGORITHM or record.get("algorithm_version") != expected:
            raise TaskStateError("unknown draw algorithm", "algorithm")
        missing = self.missing_shares()
        if missing:
            raise DrawNotReadyError(f"every participating department reveals its seed share before the draw; "
                                    f"missing: {', '.join(missing)}", "shares")
        if dict(record.get("seed_shares") or {}) != self.seed_shares:
            raise TaskStateError("the draw was not made with the revealed seed shares", "seed_shares")
        if record.get("entropy_source", "") != self.entropy_source:
            raise TaskStateError("the draw names another entropy source than the commitment", "entropy_source")
        self._drawn(round=self.round, record=dict(record), off_site_first=sorted(off_site_first))

    def designate_targets(self, targets: Sequence[str], seed_hex: str) -> None:
        """Name the targets of a case-triggered task (never a random draw)."""
        if self.origin != "case":
            raise TaskStateError(
                "only a case-triggered task (个案检查) names its targets; others draw them", "origin"
            )
        if self.state != "open":
            raise TaskStateError(f"the task's targets are already set (state {self.state})")
        clean = sorted({str(t) for t in targets if isinstance(t, str) and t.strip()})
        if not clean:
            raise InvalidInputError([FieldProblem("targets", "required", "name at least one target")])
        self._designate(round=self.round + 1, targets=clean, seed=seed_hex)

    def record_teams(
        self,
        department: str,
        visit_date: dt.date,
        teams: Mapping[str, Mapping[str, Any]],
        inspectors_digest: str,
        position: int | None = None,
        not_needed: Collection[str] = (),
    ) -> None:
        """``not_needed``: drawn targets none of the department's items applies to (多项合一 merges only what
        applies): the department draws no team for them."""
        self.require_state("drawn", "inspectors are drawn after the targets")
        if department not in self.participants:
            raise InvalidInputError(
                [
                    FieldProblem(
                        "department",
                        "not_participant",
                        f"{department} does not take part in task {self.number}",
                    )
                ]
            )
        if department in self.teams:
            raise TaskStateError(
                f"{department} has drawn its teams for round {self.round} already", "department"
            )
        missing = sorted(set(self.selected) - set(teams) - set(not_needed))
        if missing:
            raise InvalidInputError(
                [FieldProblem("teams", "missing", f"no team for {len(missing)} drawn targets")]
            )
        self._teams(
            round=self.round,
            department=department,
            visit_date=visit_date.isoformat(),
            teams={t: dict(teams[t]) for t in self.selected if t in teams},
            inspectors_digest=inspectors_digest,
            position=position,
        )

    def withdraw_draw(self, reason: str) -> int:
        """End the running round (a redraw of the whole task) with a reason; returns the withdrawn round."""
        why = reason.strip() if isinstance(reason, str) else ""
        if not why:
            raise InvalidInputError([FieldProblem("reason", "required", "a redraw needs a recorded reason")])
        if len(why) > MAX_REASON:
            raise InvalidInputError([FieldProblem("reason", REASON_RULE, reason_message())])
        if self.state == "open":
            raise TaskStateError("no draw is running: nothing to withdraw")
        self._withdraw(round=self.round, reason=why, stage=self.state)
        return self.round

    # -- mutators -------------------------------------------------------------------------------------
    @event(SeedCommitted)
    def _commit(self, round: int, commitment: str, entropy_source: str) -> None:
        self.round = round
        self.commitment = commitment
        self.entropy_source = entropy_source
        self.share_commitments = {}
        self.seed_shares = {}
        self.frozen = None
        self.draw = None
        self.teams = {}
        self.state = "committed"

    @event(ShareCommitted)
    def _share_committed(self, round: int, department: str, commitment: str) -> None:
        self.share_commitments[department] = commitment

    @event(ShareRevealed)
    def _share_revealed(self, round: int, department: str, share: str) -> None:
        self.seed_shares[department] = share

    @event(OverlapDeclared)
    def _overlaps(self, overlaps: list[dict[str, str]], reason: str) -> None:
        self.overlaps = copy.deepcopy(overlaps)
        self.overlap_reason = reason

    @event(PoolFrozen)
    def _freeze(
        self,
        round: int,
        position: int,
        pool_digest: str,
        pool_size: int,
        strata: dict[str, dict[str, Any]],
        excluded: dict[str, int],
    ) -> None:
        self.frozen = {
            "position": position,
            "pool_digest": pool_digest,
            "pool_size": pool_size,
            "strata": copy.deepcopy(strata),
            "excluded": dict(excluded),
        }
        self.state = "frozen"

    @event(TargetsDrawn)
    def _drawn(self, round: int, record: dict[str, Any], off_site_first: list[str]) -> None:
        # Not copied: a draw record is large (every selected id) and nothing mutates it.
        self.draw = {"record": record, "off_site_first": list(off_site_first)}
        self.state = "drawn"

    @event(TargetsDesignated)
    def _designate(self, round: int, targets: list[str], seed: str) -> None:
        self.round = round
        self.draw = {
            "record": {"selected": list(targets), "seed": seed, "designated": True},
            "off_site_first": [],
        }
        self.teams = {}
        self.state = "drawn"

    @event(InspectorsDrawn)
    def _teams(
        self,
        round: int,
        department: str,
        visit_date: str,
        teams: dict[str, dict[str, Any]],
        inspectors_digest: str,
        position: int | None,
    ) -> None:
        self.teams[department] = {
            "visit_date": visit_date,
            "teams": copy.deepcopy(teams),
            "inspectors_digest": inspectors_digest,
            "position": position,
        }

    @event(DrawWithdrawn)
    def _withdraw(self, round: int, reason: str, stage: str) -> None:
        self.withdrawn.append({"round": round, "reason": reason, "stage": stage})
        self.state = "open"
        self.commitment = None
        self.entropy_source = ""
        self.share_commitments = {}
        self.seed_shares = {}
        self.frozen = None
        self.draw = None
        self.teams = {}


def _period(text: str) -> Any:
    try:
        return parse_period(text)
    except InvalidInputError as exc:
        raise InvalidInputError([FieldProblem("period", p.rule, p.message) for p in exc.problems]) from None
