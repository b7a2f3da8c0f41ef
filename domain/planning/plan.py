"""The annual plan (年度抽查工作计划) aggregate, the check of a plan against the 2024 notice's rules (quarterly tasks,
sampling ratios, joint share), and the 2024 notice's plan.

One plan per department per year. Entries are numbered ``YYYYnnn`` in the order they are added (numbers
of removed entries are never reused: they may already be published). Rules live in events as plain
dicts (``rules_to_dict``); changing them during the year is ``RulesAdjusted`` with a reason.
"""

import copy
import datetime as dt
import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any, ClassVar

from eventsourcing.domain import Aggregate, event

from domain.directory import entry_id
from domain.errors import FieldProblem, InvalidInputError
from domain.fields import Field, Spec
from domain.planning.rules import (
    EITHER,
    NOTICE_MIN_JOINT_SHARE,
    NOTICE_MIN_TASKS_PER_QUARTER,
    NOTICE_RULES,
    SUPERVISION_ORDER,
    Period,
    PeriodKind,
    QuotaLine,
    SamplingRule,
    compute_quotas,
    parse_period,
    percent_text,
    resolve_rule,
    rules_from_dict,
    rules_to_dict,
    share_text,
    split_stratum,
)
from domain.values import ItemCategory, RiskClass, SupervisionClass

__all__ = [
    "NOTICE_DEPARTMENT_NAME",
    "NOTICE_ITEMS",
    "NOTICE_SCOPE",
    "AnnualPlan",
    "Breach",
    "Coverage",
    "PlanEntryNotFoundError",
    "carried_out_problem",
    "coverage_breaches",
    "notice_plan_2024",
    "plan_breaches",
    "plan_id",
    "rules_from_dict",
    "rules_to_dict",
    "validate_scope",
]

_CODE = re.compile(r"^[a-z][a-z0-9-]{1,31}$")  # a department code, as in the directory
MIN_YEAR, MAX_YEAR = 2000, 2100
MAX_ENTRIES = 999  # three-digit sequence

SCOPE_SPEC = Spec(
    [
        Field("county", max_len=50, default=""),
        Field("description", max_len=500, default=""),
        Field("industries", kind="list", max_len=100, default=[]),
        Field(
            "supervision_classes", kind="list", choices=tuple(c.value for c in SupervisionClass), default=[]
        ),
        Field("risk_classes", kind="list", choices=tuple(c.value for c in RiskClass), default=[]),
        Field("tags", kind="list", max_len=50, default=[]),
    ]
)
"""An entry's target scope (抽查对象范围). Every criterion given must hold; within a list any value matches;
empty means no restriction. ``description`` is the human wording (获嘉县行政区域内排放污染物的企业...)."""

_ENTRY_FIELDS = ("name", "items", "category", "scope", "period")


class PlanEntryNotFoundError(InvalidInputError):
    """No current entry with that number in the plan."""


def plan_id(department: str, year: int) -> uuid.UUID:
    """The id of a department's plan for a year: one plan per department per year."""
    return entry_id("plan", f"{department}/{year}")


def validate_scope(scope: Mapping[str, Any] | None, field: str = "scope") -> dict[str, Any]:
    """A complete, normalised scope; problems are named ``scope.<key>``."""
    if scope is None:
        scope = {}
    if not isinstance(scope, Mapping):
        raise InvalidInputError([FieldProblem(field, "type", "must be an object")])
    try:
        values = SCOPE_SPEC.validate(scope, partial=False)
    except InvalidInputError as exc:
        raise InvalidInputError(
            [FieldProblem(f"{field}.{p.field}", p.rule, p.message) for p in exc.problems]
        ) from None
    out = {**SCOPE_SPEC.defaults(), **values}
    return {k: ("" if v is None else v) for k, v in out.items()}


def _text(problems: list[FieldProblem], field: str, value: Any, max_len: int) -> str:
    if not isinstance(value, str) or not value.strip():
        problems.append(FieldProblem(field, "required", "must not be empty"))
        return ""
    if len(value.strip()) > max_len:
        problems.append(FieldProblem(field, "max_length", f"must be at most {max_len} characters"))
    return value.strip()


def _items(problems: list[FieldProblem], value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        problems.append(FieldProblem("items", "required", "must list at least one inspection item id"))
        return []
    out: list[str] = []
    for v in value:
        try:
            text = str(uuid.UUID(str(v)))
        except ValueError:
            problems.append(FieldProblem("items", "format", f"{v!r} is not an item id (UUID)"))
            continue
        if text not in out:
            out.append(text)
    return out


def _category(problems: list[FieldProblem], value: Any) -> str:
    choices = tuple(c.value for c in ItemCategory)
    if value not in choices:
        problems.append(FieldProblem("category", "choice", f"must be one of: {', '.join(choices)}"))
    return str(value)


def _period(problems: list[FieldProblem], value: Any, year: int) -> str:
    try:
        p = parse_period(value)
    except InvalidInputError as exc:
        problems.extend(exc.problems)
        return ""
    if p.year != year:
        problems.append(FieldProblem("period", "plan_year", f"{p.text} is not in the plan's year {year}"))
    return p.text


def _rules(problems: list[FieldProblem], value: Any) -> list[dict[str, Any]]:
    try:
        rules = rules_from_dict(value)
    except InvalidInputError as exc:
        problems.extend(exc.problems)
        return []
    if not rules:
        problems.append(FieldProblem("rules", "required", "must hold at least one sampling rule (抽查比例)"))
    return rules_to_dict(rules)


def _scope(problems: list[FieldProblem], value: Any) -> dict[str, Any]:
    try:
        return validate_scope(value)
    except InvalidInputError as exc:
        problems.extend(exc.problems)
        return {}


class AnnualPlan(Aggregate):
    """年度抽查工作计划: a department's random-inspection plan for one year.

    ``entries`` maps each current entry's number to its data: ``number``, ``name``, ``items`` (item ids),
    ``category`` (general/key), ``scope`` (see ``SCOPE_SPEC``), ``period`` (``2024Q1``...), ``rules``
    (``rules_to_dict``) and ``adjustments`` (``[{"reason", "previous"}]``, oldest first). ``removed`` maps
    removed entries' numbers to the reason.
    """

    KIND: ClassVar[str] = "plan"

    department: str
    year: int
    name: str
    entries: dict[str, dict[str, Any]]
    removed: dict[str, str]
    last_sequence: int

    class Created(Aggregate.Created):
        department: str
        year: int
        name: str

    class EntryAdded(Aggregate.Event):
        number: str
        name: str
        items: list[str]
        category: str
        scope: dict[str, Any]
        period: str
        rules: list[dict[str, Any]]

    class EntryChanged(Aggregate.Event):
        """Plain fields of an entry changed (not its rules)."""

        number: str
        changes: dict[str, Any]

    class RulesAdjusted(Aggregate.Event):
        """抽查比例 changed during the year, with the reason and the rules it replaced."""

        entry_number: str
        rules: list[dict[str, Any]]
        reason: str
        previous: list[dict[str, Any]]

    class EntryRemoved(Aggregate.Event):
        number: str
        reason: str

    @staticmethod
    def create_id(department: str, year: int) -> uuid.UUID:
        return plan_id(department, year)

    @classmethod
    def draw_up(
        cls, department: str, year: int, name: str | None = None, department_name: str = ""
    ) -> "AnnualPlan":
        """Start a department's plan for a year.

        The name defaults to ``<department name>2024年“双随机、一公开”监管随机抽查工作计划``
        (``新乡市生态环境局获嘉分局2024年…``): every department has one, so the name says whose it is.
        """
        problems: list[FieldProblem] = []
        if not isinstance(department, str) or not _CODE.match(department):
            problems.append(FieldProblem("department", "format", "must be a department code"))
        if isinstance(year, bool) or not isinstance(year, int) or not MIN_YEAR <= year <= MAX_YEAR:
            problems.append(FieldProblem("year", "range", f"must be a year {MIN_YEAR}..{MAX_YEAR}"))
        if name is None and problems:  # the default name is made from a valid year: no name problem of its own
            raise InvalidInputError(problems)
        if name is None:
            name = f"{department_name.strip()}{year}年“双随机、一公开”监管随机抽查工作计划"
        text = _text(problems, "name", name, 200)
        if problems:
            raise InvalidInputError(problems)
        return cls(department=department, year=year, name=text)

    @event(Created)
    def __init__(self, department: str, year: int, name: str) -> None:
        self.department = department
        self.year = year
        self.name = name
        self.entries = {}
        self.removed = {}
        self.last_sequence = 0

    # -- commands --------------------------------------------------------------------------------
    def add_entry(
        self,
        name: str,
        items: Sequence[str],
        category: str,
        period: str | Period,
        rules: Iterable[SamplingRule | Mapping[str, Any]],
        scope: Mapping[str, Any] | None = None,
    ) -> str:
        """Add an entry; returns its number (``YYYYnnn``, the next in sequence)."""
        problems: list[FieldProblem] = []
        values: dict[str, Any] = {
            "name": _text(problems, "name", name, 200),
            "items": _items(problems, items),
            "category": _category(problems, category),
            "scope": _scope(problems, scope),
            "period": _period(problems, period, self.year),
            "rules": _rules(problems, rules),
        }
        if self.last_sequence >= MAX_ENTRIES:
            problems.append(FieldProblem("number", "exhausted", f"a plan has at most {MAX_ENTRIES} entries"))
        if problems:
            raise InvalidInputError(problems)
        number = f"{self.year}{self.last_sequence + 1:03d}"
        self._add_entry(number=number, **values)
        return number

    def change_entry(self, number: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change an entry's name, items, category, scope or period; returns what differed (empty: no event).

        Rules change only through ``adjust_rules`` (with a reason).
        """
        current = self._entry(number)
        problems: list[FieldProblem] = []
        for key in changes:
            if key == "rules":
                problems.append(
                    FieldProblem("rules", "adjust_rules", "rules change only with adjust_rules and a reason")
                )
            elif key not in _ENTRY_FIELDS:
                problems.append(FieldProblem(key, "unknown_field", "is not a field of a plan entry"))
        checks: dict[str, Callable[[Any], Any]] = {
            "name": lambda v: _text(problems, "name", v, 200),
            "items": lambda v: _items(problems, v),
            "category": lambda v: _category(problems, v),
            "scope": lambda v: _scope(problems, v),
            "period": lambda v: _period(problems, v, self.year),
        }
        values = {k: checks[k](v) for k, v in changes.items() if k in checks}
        if problems:
            raise InvalidInputError(problems)
        differ = {k: v for k, v in values.items() if current[k] != v}
        if differ:
            self._change_entry(number=number, changes=differ)
        return differ

    def adjust_rules(
        self, number: str, rules: Iterable[SamplingRule | Mapping[str, Any]], reason: str
    ) -> bool:
        """Replace an entry's rules during the year (适时调整比例); False when unchanged (no event)."""
        current = self._entry(number)
        problems: list[FieldProblem] = []
        new = _rules(problems, rules)
        why = _text(problems, "reason", reason, 1000)
        if problems:
            raise InvalidInputError(problems)
        if new == current["rules"]:
            return False
        self._adjust_rules(
            entry_number=number, rules=new, reason=why, previous=copy.deepcopy(current["rules"])
        )
        return True

    def remove_entry(self, number: str, reason: str) -> None:
        """Withdraw an entry; its number is not reused."""
        self._entry(number)
        problems: list[FieldProblem] = []
        why = _text(problems, "reason", reason, 1000)
        if problems:
            raise InvalidInputError(problems)
        self._remove_entry(number=number, reason=why)

    # -- queries ---------------------------------------------------------------------------------
    def entry(self, number: str) -> dict[str, Any]:
        """A copy of a current entry's data."""
        return copy.deepcopy(self._entry(number))

    def entry_rules(self, number: str) -> tuple[SamplingRule, ...]:
        return rules_from_dict(self._entry(number)["rules"])

    def quotas(
        self,
        number: str,
        counts: Mapping[tuple[str, str], int],
        inspectors: int,
        already_inspected: Mapping[tuple[str, str], int] | None = None,
    ) -> dict[str, QuotaLine]:
        """The entry's quotas for its period from the current pool sizes (see ``compute_quotas``)."""
        entry = self._entry(number)
        period = parse_period(entry["period"])
        return compute_quotas(
            rules_from_dict(entry["rules"]),
            counts,
            inspectors,
            period.periods_in_year,
            period.index,
            already_inspected,
        )

    def _entry(self, number: str) -> dict[str, Any]:
        if number not in self.entries:
            why = "was removed" if number in self.removed else "is not an entry of this plan"
            raise PlanEntryNotFoundError([FieldProblem("number", "not_found", f"{number} {why}")])
        return self.entries[number]

    # -- mutators (also run on replay) -----------------------------------------------------------
    @event(EntryAdded)
    def _add_entry(
        self,
        number: str,
        name: str,
        items: list[str],
        category: str,
        scope: dict[str, Any],
        period: str,
        rules: list[dict[str, Any]],
    ) -> None:
        self.entries[number] = {
            "number": number,
            "name": name,
            "items": list(items),
            "category": category,
            "scope": copy.deepcopy(scope),
            "period": period,
            "rules": copy.deepcopy(rules),
            "adjustments": [],
        }
        self.last_sequence = max(self.last_sequence, int(number[4:]))

    @event(EntryChanged)
    def _change_entry(self, number: str, changes: dict[str, Any]) -> None:
        self.entries[number].update(copy.deepcopy(changes))

    @event(RulesAdjusted)
    def _adjust_rules(
        self, entry_number: str, rules: list[dict[str, Any]], reason: str, previous: list[dict[str, Any]]
    ) -> None:
        entry = self.entries[entry_number]
        entry["rules"] = copy.deepcopy(rules)
        entry["adjustments"] = [
            *entry["adjustments"],
            {"reason": reason, "previous": copy.deepcopy(previous)},
        ]

    @event(EntryRemoved)
    def _remove_entry(self, number: str, reason: str) -> None:
        del self.entries[number]
        self.removed[number] = reason


def carried_out_problem(number: str, published: Mapping[str, int]) -> str | None:
    """Why a plan entry may not be removed: a task opened from it has published results (``published``: task
    number -> published results); None when it may go. Rule ``entry_carried_out``: what was carried out and made
    public stays in the plan it was carried out under."""
    done = {n: c for n, c in published.items() if c}
    if not done:
        return None
    listed = ", ".join(f"task {n}: {c} published" for n, c in sorted(done.items()))
    return (f"entry_carried_out: plan entry {number} was carried out and its results published ({listed}); "
            "it stays in the plan (change it with a reason instead)")


# -- breaches -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Breach:
    """One broken rule: ``rule`` names it (``key_ratio``, see ``plan_breaches``), ``period`` is its period's text."""

    rule: str
    period: str
    message: str
    stratum: str | None = None


def _task_count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else len(value)


def _is_joint(task: Any) -> bool:
    if isinstance(task, Mapping):
        return bool(task.get("is_joint"))
    return bool(getattr(task, "is_joint", False))


def _year_of(plan_entries: Sequence[Mapping[str, Any]], *keys: Iterable[str]) -> int | None:
    for entry in plan_entries:
        return parse_period(entry["period"]).year
    for group in keys:
        for k in group:
            return parse_period(k).year
    return None


@dataclass
class _Group:
    """Quota lines of one quarter (quarter and month periods) or of one longer period."""

    period: Period
    quarters: int
    pool: dict[str, int]
    quota: dict[str, int]
    inspectors: int | None = None


def _groups(quotas_by_period: Mapping[str, Mapping[str, QuotaLine]]) -> list[_Group]:
    groups: dict[str, _Group] = {}
    for text, lines in quotas_by_period.items():
        p = parse_period(text)
        key = p.quarters()[0] if p.kind in (PeriodKind.MONTH, PeriodKind.QUARTER) else p
        g = groups.setdefault(key.text, _Group(key, len(key.quarters()), {}, {}))
        for s, line in lines.items():
            g.pool[s] = max(g.pool.get(s, 0), line.pool_size)
            g.quota[s] = g.quota.get(s, 0) + line.quota
            if line.inspectors is not None:
                g.inspectors = max(g.inspectors or 0, line.inspectors)
    return sorted(groups.values(), key=lambda g: (g.period.start, g.period.end))


def _baseline_breaches(g: _Group, baseline: Sequence[SamplingRule]) -> list[Breach]:
    out: list[Breach] = []
    for rule in baseline:
        strata = [s for s in g.pool if resolve_rule(baseline, *split_stratum(s)) is rule]
        pool = sum(g.pool[s] for s in strata)
        planned = sum(g.quota[s] for s in strata)
        if not strata or pool == 0:
            continue
        needs: list[str] = []
        if rule.full:
            required = pool
            needs.append(f"100% ({pool})")
        else:
            by_ratio = by_insp = None
            if rule.ratio is not None:
                by_ratio = min(pool, g.quarters * math.ceil(rule.ratio * pool))
                needs.append(f"{percent_text(rule.ratio)} (needs {by_ratio})")
            if rule.min_per_inspector is not None and g.inspectors is not None:
                by_insp = min(pool, g.quarters * rule.min_per_inspector * g.inspectors)
                needs.append(
                    f"{rule.min_per_inspector} per inspector (needs {by_insp} for {g.inspectors} inspectors)"
                )
            bounds = [b for b in (by_ratio, by_insp) if b is not None]
            if not bounds:
                continue
            required = (min if rule.combine == "either" else max)(bounds)
        if planned >= required:
            continue
        share = share_text(Fraction(planned, pool))
        per = "per quarter" if g.quarters == 1 else f"per quarter, x{g.quarters} quarters"
        joined = " and ".join(needs) if rule.combine == "either" else " or ".join(needs)
        out.append(
            Breach(
                f"{rule.supervision_class}_ratio",
                g.period.text,
                f"{rule.stratum}: {planned} of {pool} planned ({share}), below {joined} {per}",
                rule.stratum,
            )
        )
    return out


def _rule_breaches(
    text: str, lines: Mapping[str, QuotaLine], plan_entries: Sequence[Mapping[str, Any]]
) -> list[Breach]:
    p = parse_period(text)
    counts = {split_stratum(s): line.pool_size for s, line in lines.items()}
    already = {split_stratum(s): line.already_inspected for s, line in lines.items()}
    known = [line.inspectors for line in lines.values() if line.inspectors is not None]
    out: list[Breach] = []
    for entry in plan_entries:
        if parse_period(entry["period"]) != p:
            continue
        rules = rules_from_dict(entry["rules"])
        if not known:  # unknown inspectors: only the other bounds can be checked
            rules = tuple(replace(r, min_per_inspector=None) for r in rules)
        required = compute_quotas(rules, counts, max(known, default=0), p.periods_in_year, p.index, already)
        for s, line in lines.items():
            need = required[s]
            if line.quota < need.quota:
                out.append(
                    Breach(
                        "rule_minimum",
                        p.text,
                        f"{s}: {line.quota} planned, below entry {entry.get('number', '?')}'s rule "
                        f"“{need.rule_text}”: needs {need.quota} ({need.basis})",
                        s,
                    )
                )
    return out


def plan_breaches(
    plan_entries: Iterable[Mapping[str, Any]],
    quotas_by_period: Mapping[str, Mapping[str, QuotaLine]],
    tasks_by_period: Mapping[str, int | Sequence[Any]],
    *,
    year: int | None = None,
    as_of: dt.date | None = None,
    baseline: Sequence[SamplingRule] = NOTICE_RULES,
    min_tasks_per_quarter: int = NOTICE_MIN_TASKS_PER_QUARTER,
    min_joint_share: Fraction | None = NOTICE_MIN_JOINT_SHARE,
) -> list[Breach]:
    """Every breach of the 2024 notice's rules and of the entries' own rules, in period order.

    Args:
        plan_entries: the plan's current entries (``plan.entries.values()``): ``number``, ``period``,
            ``rules``.
        quotas_by_period: per period text (``2024Q1``, ``2024-03``, ...), the planned quota lines per stratum
            (``compute_quotas`` output, or lines whose ``quota`` a planner set).
        tasks_by_period: per period text, the random tasks (not case-triggered): a count, or the tasks
            themselves (mappings or objects with ``is_joint``), which also enables the ``joint_share`` check.
        year: the plan year (default: from the entries, else from the keys).
        as_of: a date; when given, only quarters that have ended by then are checked for tasks.
        baseline: the rules every period is held to (default the 2024 notice's rules, ``NOTICE_RULES``).

    Checks:
        - ``tasks_per_quarter``: each quarter of the year has at least ``min_tasks_per_quarter`` tasks;
          a task counts for a quarter when its period (a month or the quarter) lies within it.
        - ``<class>_ratio`` (``key_ratio``, ``general_ratio``, ...): per quarter, the planned quotas
          of a baseline rule's strata sum to at least its minimum over their pools: key ``ceil(25% x pool)``;
          general ``ceil(5% x pool)`` or ``6 x inspectors`` (either suffices, so only being below both is a
          breach; with unknown inspectors only the ratio is checked). Month lines add up into their quarter;
          a half-year or year line must reach the per-quarter minimum times its quarters (capped at the pool).
        - ``rule_minimum``: per period, each stratum's quota is at least what the rules of the entries for
          exactly that period require (``compute_quotas`` again on the lines' pool sizes, inspectors and
          already-inspected counts).
        - ``joint_share``: over the tasks given as tasks (counts say nothing about jointness), joint / all
          >= ``min_joint_share`` (60%) for the year.
    """
    entries = list(plan_entries)
    if year is None:
        year = _year_of(entries, quotas_by_period, tasks_by_period)
    if year is None:
        raise InvalidInputError(
            [FieldProblem("year", "required", "no entries, quotas or tasks to take the year from")]
        )
    out: list[Breach] = []

    per_quarter: dict[Period, int] = {}
    joint = total = 0
    listed = False
    for text, tasks in tasks_by_period.items():
        p = parse_period(text)
        n = _task_count(tasks)
        if p.year == year and not isinstance(tasks, int):
            listed = True
            total += n
            joint += sum(1 for t in tasks if _is_joint(t))
        if p.kind in (PeriodKind.MONTH, PeriodKind.QUARTER):
            q = p.quarters()[0]
            per_quarter[q] = per_quarter.get(q, 0) + n
    for index in range(1, 5):
        q = Period(year, PeriodKind.QUARTER, index)
        if as_of is not None and q.end >= as_of:
            continue
        n = per_quarter.get(q, 0)
        if n < min_tasks_per_quarter:
            planned = [e.get("number", "?") for e in entries if q.contains(parse_period(e["period"]))]
            has = (
                f"the plan's entries for it: {', '.join(planned)}"
                if planned
                else "the plan has no entry for it"
            )
            out.append(
                Breach(
                    "tasks_per_quarter",
                    q.text,
                    f"{n} random task(s) in {q.text}; at least {min_tasks_per_quarter} per quarter "
                    f"(每季度开展抽查任务数不少于{min_tasks_per_quarter}次); {has}",
                )
            )
    if listed and min_joint_share is not None and total and Fraction(joint, total) < min_joint_share:
        out.append(
            Breach(
                "joint_share",
                str(year),
                f"{joint} of {total} tasks are joint ({share_text(Fraction(joint, total))}), "
                f"below {percent_text(Fraction(min_joint_share))}",
            )
        )

    for g in _groups(quotas_by_period):
        out.extend(_baseline_breaches(g, baseline))
    ordered = sorted(quotas_by_period, key=lambda t: (parse_period(t).start, parse_period(t).end))
    for text in ordered:
        out.extend(_rule_breaches(text, quotas_by_period[text], entries))
    return out


@dataclass(frozen=True)
class Coverage:
    """What a department's random tasks actually drew of one supervision class in one period (a quarter, or the
    year): ``drawn`` targets, of ``directory_size`` targets of the class, with ``inspectors`` active ones."""

    drawn: int
    directory_size: int
    inspectors: int | None = None


def coverage_breaches(
    year: int,
    coverage: Mapping[str, Mapping[str, Coverage]],
    *,
    as_of: dt.date | None = None,
    baseline: Sequence[SamplingRule] = NOTICE_RULES,
) -> list[Breach]:
    """The plan's promises checked against what was drawn: ``<class>_coverage`` breaches (``key_coverage``...).

    ``coverage``: per period text (``2024Q1``..``2024Q4``, and ``2024`` for the year), per supervision class, what
    the department's random tasks drew (the KPIs' coverage). Each class-wide baseline rule requires, per quarter,
    ``ceil(ratio x directory size)`` (``full``: the whole class), or with a per-inspector bound
    ``min_per_inspector x inspectors`` (``either``: the smaller suffices; ``larger``: the larger); the year needs
    four quarters' worth. A period is checked once it has ended by ``as_of`` (every period when ``as_of`` is
    None, like ``tasks_per_quarter``). A class with no minimum or no target is never a breach."""
    out: list[Breach] = []
    rules = {r.supervision_class: r for r in baseline if r.risk_class is None}

    def ordered(text: str) -> tuple[dt.date, dt.date]:
        p = parse_period(text)
        return (p.end, p.start) if p.kind is PeriodKind.YEAR else (p.start, p.end)

    for text in sorted(coverage, key=ordered):
        p = parse_period(text)
        if p.year != year or (as_of is not None and p.end >= as_of):
            continue
        quarters = len(p.quarters())
        for cls, c in sorted(coverage[text].items(), key=lambda kv: SUPERVISION_ORDER.index(kv[0])
                             if kv[0] in SUPERVISION_ORDER else len(SUPERVISION_ORDER)):
            rule = rules.get(cls)
            if rule is None or c.directory_size == 0:
                continue
            times = "" if quarters == 1 else f" per quarter x {quarters}"
            needs: list[str] = []
            if rule.full:
                required = c.directory_size * quarters
                needs.append(f"100% of {c.directory_size}{times}")
            else:
                bounds = []
                if rule.ratio is not None:
                    per_quarter = math.ceil(rule.ratio * c.directory_size)
                    bounds.append(quarters * per_quarter)
                    needs.append(f"ceil({percent_text(rule.ratio)} x {c.directory_size}) = {per_quarter}{times}")
                if rule.min_per_inspector is not None and c.inspectors is not None:
                    bounds.append(quarters * rule.min_per_inspector * c.inspectors)
                    needs.append(f"{rule.min_per_inspector} per inspector x {c.inspectors}{times}")
                if not bounds:
                    continue
                required = (min if rule.combine == EITHER else max)(bounds)
                if quarters > 1 and required > c.directory_size:
                    # Same item, same target, once a year: over several quarters every target once is the most
                    # the yearly exclusion lets a department draw (25% x 37 rounded up is 10, x 4 = 40 > 37).
                    required = c.directory_size
                    needs.append(f"at most every target once: {required}")
            if required == 0 or c.drawn >= required:
                continue
            word = " or " if rule.combine == EITHER else " and "
            out.append(Breach(
                f"{cls}_coverage", p.text,
                f"{cls}: {c.drawn} of {required} targets drawn in {p.text} (抽查覆盖不足): the baseline needs "
                f"{word.join(needs)}", cls,
            ))
    return out


# -- the 2024 notice's plan ---------------------------------------------------------------------------
NOTICE_DEPARTMENT_NAME = "新乡市生态环境局获嘉分局"

NOTICE_ITEMS: tuple[str, ...] = (
    "放射性污染防治监督检查",
    "水污染防治监督检查",
    "大气污染防治监督检查",
    "固体废物污染防治监督检查",
    "噪声污染防治监督检查",
    "污染源自动监控设施的现场监督检查",
    "医疗废物污染防治监督检查",
    "危险废物经营单位监督检查",
    "危险化学品监督检查",
    "新化学物质监督检查",
    "对废弃电器电子产品处理活动监督检查",
    "对企事业单位环境风险防范和环境安全隐患排查治理工作进行抽查或者突击检查",
    "对土壤污染防治监督检查",
    "对建设项目环境保护设施设计、施工、验收、投入生产或者使用情况，以及有关环境影响评价文件确定的其他环境保护措施落实情况进行现场检查",
)
"""The 14 items the 2024 notice merges into one visit (多项合一), in its order."""

NOTICE_SCOPE: dict[str, Any] = {
    "county": "获嘉县",
    "description": "获嘉县行政区域内排放污染物的企业和其他生产经营者",
}


def notice_plan_2024(
    department: str, item_ids: Sequence[str], *, department_name: str = NOTICE_DEPARTMENT_NAME
) -> AnnualPlan:
    """The 2024 notice's plan: entries 2024001..2024004, one per quarter, all items in one visit."""
    plan = AnnualPlan.draw_up(
        department, 2024, f"{department_name}2024年“双随机、一公开”监管随机抽查工作计划"
    )
    for q, word in enumerate("一二三四", start=1):
        plan.add_entry(
            name=f"{department_name}{word}季度随机抽查",
            items=list(item_ids),
            category=ItemCategory.GENERAL.value,
            period=f"2024Q{q}",
            rules=NOTICE_RULES,
            scope=NOTICE_SCOPE,
        )
    return plan
