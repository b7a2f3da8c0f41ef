"""Sampling rules (抽查比例) as configuration, periods, and the quotas they give; exact arithmetic only.

A rule says how many targets of one stratum (supervision class, optionally one credit-risk class) a plan
entry must draw per period. ``compute_quotas`` turns rules and the directory's pool sizes into one
``QuotaLine`` per stratum that explains its own arithmetic. Ratios are ``Fraction`` (a ``Decimal`` or a
text such as ``"0.25"``, ``"25%"``, ``"1/4"`` is accepted and converted); a ``float`` is refused, and every
quota is rounded up.
"""

import calendar
import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from fractions import Fraction
from typing import Any

from domain.errors import FieldProblem, InvalidInputError, problem
from domain.values import RiskClass, SupervisionClass

EITHER = "either"
LARGER = "larger"
COMBINES = (EITHER, LARGER)

SUPERVISION_ORDER: tuple[str, ...] = tuple(c.value for c in SupervisionClass)  # key, general, special
RISK_ORDER: tuple[str, ...] = tuple(c.value for c in RiskClass)  # A (low) .. D (high)

Ratio = Fraction | Decimal


# -- ratios ------------------------------------------------------------------------------------------
_RATIO_TEXT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$|^\s*(\d+)\s*/\s*(\d+)\s*$")


def to_ratio(value: object, field: str = "min_ratio") -> Fraction:
    """An exact ratio in [0, 1] from a Fraction, Decimal, int, or text ``"0.25"``/``"25%"``/``"1/4"``.

    Raises InvalidInputError naming ``field``; a float is refused because it is not exact.
    """
    result: Fraction | None = None
    if isinstance(value, (bool, float)):
        raise problem(
            field, "exact", 'must be exact (a Fraction, a Decimal or text such as "0.25"), not a float'
        )
    if isinstance(value, (Fraction, int)):
        result = Fraction(value)
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise problem(field, "range", "must be a finite number")
        result = Fraction(value)
    elif isinstance(value, str):
        m = _RATIO_TEXT.match(value)
        if m and m.group(1) is not None:
            result = Fraction(Decimal(m.group(1)))
            if m.group(2):
                result /= 100
        elif m and int(m.group(4)) != 0:
            result = Fraction(int(m.group(3)), int(m.group(4)))
        else:
            raise problem(field, "format", f'{value!r} is not a ratio such as "0.25", "25%" or "1/4"')
    else:
        raise problem(field, "type", "must be a ratio")
    if not 0 <= result <= 1:
        raise problem(field, "range", "must be between 0 and 1 (0% and 100%)")
    return result


def ratio_text(ratio: Fraction) -> str:
    """Exact text of a ratio: ``"0.25"``, or ``"1/3"`` when it has no finite decimal expansion."""
    n, d = ratio.numerator, ratio.denominator
    twos = fives = 0
    rest = d
    while rest % 2 == 0:
        rest //= 2
        twos += 1
    while rest % 5 == 0:
        rest //= 5
        fives += 1
    if rest != 1:
        return f"{n}/{d}"
    places = max(twos, fives)
    scaled = n * 10**places // d
    if places == 0:
        return str(scaled)
    sign = "-" if scaled < 0 else ""
    digits = str(abs(scaled)).rjust(places + 1, "0")
    return f"{sign}{digits[:-places]}.{digits[-places:]}".rstrip("0").rstrip(".")


def percent_text(ratio: Fraction) -> str:
    """``Fraction(1, 4)`` -> ``"25%"``; ``Fraction(1, 3)`` -> ``"100/3%"``."""
    return f"{ratio_text(ratio * 100)}%"


def share_text(ratio: Fraction) -> str:
    """A share for people: ``"25%"``, or ``"~21.62%"`` when the exact percentage is long."""
    return f"{_approx(ratio * 100)}%"


def _approx(x: Fraction) -> str:
    """A readable value of an exact fraction: exact when short, else about two decimals (no float)."""
    exact = ratio_text(x)
    if "/" not in exact and len(exact.partition(".")[2]) <= 2:
        return exact
    hundredths = (x * 100 * 2 + 1) // 2  # round half up, exactly
    return "~" + ratio_text(Fraction(hundredths, 100))


# -- rules ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SamplingRule:
    """The minimum a plan entry draws per period from one stratum of the target directory.

    - ``supervision_class``: ``key`` / ``general`` / ``special`` (重点/一般/特殊监管对象).
    - ``risk_class``: ``None`` for every credit-risk class of that supervision class, or ``A``..``D``. A rule
      for one risk class replaces the class-wide rule for that stratum entirely (nothing is merged), which
      is how risk linkage (higher risk, higher ratio) is configured.
    - ``min_ratio``: at least this share of the stratum's pool per period, rounded up (stored as Fraction).
    - ``min_per_inspector``: at least this many visits per inspector per period; the total
      (``min_per_inspector x inspectors``) is spread over the strata the rule governs, see ``compute_quotas``.
    - ``combine``, when both bounds are set: ``"either"`` — either bound satisfies the rule, so the smaller
      total is the quota; ``"larger"`` — the larger total is the quota (the stricter reading).
    - ``full``: 100% of the stratum every period (overrides the other bounds).
    - ``once_a_year``: every target of the stratum at least once a year: per period
      ``ceil(not yet inspected this year / periods left including this one)``; it is one more lower bound
      (the quota is the larger of it and the ratio/per-inspector bound).
    - ``max_ratio``: always ``None``: there is no upper limit (key items in particular may be drawn at any
      share above the minimum); the field exists so that configuration saying so explicitly is accepted.

    A rule with no bound at all means "no minimum" (the 2024 notice's special objects: 根据实际自行设定).
    """

    supervision_class: str
    risk_class: str | None = None
    min_ratio: Ratio | None = None
    min_per_inspector: int | None = None
    combine: str = EITHER
    full: bool = False
    once_a_year: bool = False
    max_ratio: None = None

    def __post_init__(self) -> None:
        problems: list[FieldProblem] = []
        if self.supervision_class not in SUPERVISION_ORDER:
            problems.append(
                FieldProblem("supervision_class", "choice", f"must be one of: {', '.join(SUPERVISION_ORDER)}")
            )
        if self.risk_class is not None and self.risk_class not in RISK_ORDER:
            problems.append(
                FieldProblem(
                    "risk_class", "choice", f"must be empty (all) or one of: {', '.join(RISK_ORDER)}"
                )
            )
        if self.min_ratio is not None:
            try:
                object.__setattr__(self, "min_ratio", to_ratio(self.min_ratio))
            except InvalidInputError as exc:
                problems.extend(exc.problems)
        mpi = self.min_per_inspector
        if mpi is not None and (isinstance(mpi, bool) or not isinstance(mpi, int) or mpi < 0):
            problems.append(FieldProblem("min_per_inspector", "range", "must be a whole number >= 0"))
        if self.combine not in COMBINES:
            problems.append(FieldProblem("combine", "choice", f"must be one of: {', '.join(COMBINES)}"))
        for name in ("full", "once_a_year"):
            if not isinstance(getattr(self, name), bool):
                problems.append(FieldProblem(name, "type", "must be true or false"))
        if self.max_ratio is not None:
            problems.append(
                FieldProblem("max_ratio", "unsupported", "there is no upper limit; leave it empty")
            )
        if problems:
            raise InvalidInputError(problems)

    @property
    def stratum(self) -> str:
        """``"key"`` for a class-wide rule, ``"key/D"`` for a risk-class rule."""
        return (
            self.supervision_class
            if self.risk_class is None
            else f"{self.supervision_class}/{self.risk_class}"
        )

    @property
    def ratio(self) -> Fraction | None:
        """``min_ratio`` as the exact Fraction it is stored as."""
        return None if self.min_ratio is None else Fraction(self.min_ratio)

    def describe(self) -> str:
        """One line a planner reads, e.g. ``general: >= 5% or >= 6 per inspector``."""
        parts: list[str] = []
        if self.full:
            parts.append("100%")
        else:
            bounds: list[str] = []
            if self.ratio is not None:
                bounds.append(f">= {percent_text(self.ratio)}")
            if self.min_per_inspector is not None:
                bounds.append(f">= {self.min_per_inspector} per inspector")
            if len(bounds) == 2:
                parts.append(
                    " or ".join(bounds) if self.combine == EITHER else f"{' and '.join(bounds)} (the larger)"
                )
            elif bounds:
                parts.append(bounds[0])
            if self.once_a_year:
                parts.append("every target once a year")
        return f"{self.stratum}: {', '.join(parts) if parts else 'no minimum'} per period"


NOTICE_RULES: tuple[SamplingRule, ...] = (
    SamplingRule("key", min_ratio=Fraction(1, 4)),
    SamplingRule("general", min_ratio=Fraction(1, 20), min_per_inspector=6, combine=EITHER),
    SamplingRule("special"),
)
"""The 2024 notice's sampling rules, per quarter: key >= 25%; general >= 5% or >= 6 per inspector; special: set locally.

The 2024 notice says 一般监管对象抽查比例不低于5%或不少于人均6家次: "not below 5% *or* not fewer than 6 per
inspector". Read literally, meeting either bound complies, so the general rule uses ``combine="either"``
and its quota is the smaller of the two totals. ``combine="larger"`` is the stricter alternative (both
bounds must hold) for a bureau that reads the sentence as two floors. Special objects have no minimum
until configured (根据实际自行设定). No rule has an upper limit.
"""

NOTICE_MIN_TASKS_PER_QUARTER = 1
"""每季度开展抽查任务数不少于1次."""

NOTICE_MIN_JOINT_SHARE = Fraction(3, 5)
"""Joint share: joint tasks / (own + joint tasks) >= 60% (力争达到, configurable)."""


def risk_class_rules(supervision_class: str, ratios: Mapping[str, Ratio | str]) -> tuple[SamplingRule, ...]:
    """One rule per risk class; a ratio of 1 (100%) becomes ``full=True``."""
    out = []
    for risk in RISK_ORDER:
        if risk in ratios:
            r = to_ratio(ratios[risk])
            out.append(
                SamplingRule(supervision_class, risk, full=True)
                if r == 1
                else SamplingRule(supervision_class, risk, min_ratio=r)
            )
    unknown = sorted(set(ratios) - set(RISK_ORDER))
    if unknown:
        raise problem("risk_class", "choice", f"{', '.join(unknown)} not one of: {', '.join(RISK_ORDER)}")
    return tuple(out)


HENAN_AMR_2020_RISK_RULES: tuple[SamplingRule, ...] = risk_class_rules(
    "general", {"A": Fraction(4, 100), "B": Fraction(8, 100), "C": Fraction(20, 100), "D": Fraction(1)}
)
"""Example of risk linkage: Henan market regulation 2020 ratios on the four SAMR risk classes.

Henan grades five ways: low 1%, mid-low 4%, medium 8%, mid-high 20%, high 100%. SAMR (and ``RiskClass``)
has four: A low, B general (一般), C higher (较高), D high. Mapping by name gives B = medium 8%,
C = mid-high 20%, D = high 100% (``full``). Henan's low and mid-low grades both fall into A; A takes the
stricter of the two, 4%, because these are minimums: drawing a low-risk firm more often than 1% breaks
nothing, drawing a mid-low one at 1% would under-sample it. (A bureau that prefers A = 1% configures it.)
The rules are for general supervision objects; they replace the class-wide general rule in each risk
class, so combined with ``NOTICE_RULES`` they leave key (25%) and special untouched. Use
``risk_class_rules(cls, ratios)`` to apply such a table to another supervision class.
"""


def validate_rules(rules: Iterable[SamplingRule]) -> tuple[SamplingRule, ...]:
    """The rules as a tuple; two rules for the same stratum are refused (field ``rules``)."""
    out = tuple(rules)
    seen: set[str] = set()
    problems: list[FieldProblem] = []
    for i, rule in enumerate(out):
        if not isinstance(rule, SamplingRule):
            problems.append(FieldProblem(f"rules[{i}]", "type", "must be a sampling rule"))
        elif rule.stratum in seen:
            problems.append(FieldProblem(f"rules[{i}]", "duplicate", f"a second rule for {rule.stratum}"))
        else:
            seen.add(rule.stratum)
    if problems:
        raise InvalidInputError(problems)
    return out


def resolve_rule(
    rules: Iterable[SamplingRule], supervision_class: str, risk_class: str
) -> SamplingRule | None:
    """The rule governing one stratum: its risk-class rule, else its class-wide rule, else None."""
    class_wide = None
    for rule in rules:
        if rule.supervision_class != supervision_class:
            continue
        if rule.risk_class == risk_class:
            return rule
        if rule.risk_class is None:
            class_wide = rule
    return class_wide


# -- serialisation (plain JSON types, for events) ------------------------------------------------
def rule_to_dict(rule: SamplingRule) -> dict[str, Any]:
    """``{"supervision_class", "risk_class", "min_ratio": "0.25" | None, "min_per_inspector", "combine",
    "full", "once_a_year"}``; ratios as exact text (``"0.25"``, or ``"1/3"``)."""
    return {
        "supervision_class": rule.supervision_class,
        "risk_class": rule.risk_class,
        "min_ratio": None if rule.ratio is None else ratio_text(rule.ratio),
        "min_per_inspector": rule.min_per_inspector,
        "combine": rule.combine,
        "full": rule.full,
        "once_a_year": rule.once_a_year,
    }


_RULE_KEYS = (
    "supervision_class",
    "risk_class",
    "min_ratio",
    "min_per_inspector",
    "combine",
    "full",
    "once_a_year",
    "max_ratio",
)


def rule_from_dict(data: Mapping[str, Any] | SamplingRule, field: str = "rules[0]") -> SamplingRule:
    """The rule of ``rule_to_dict``; problems are named ``<field>.<key>``. Missing keys take the defaults."""
    if isinstance(data, SamplingRule):
        return data
    if not isinstance(data, Mapping):
        raise problem(field, "type", "must be a sampling rule object")
    problems = [
        FieldProblem(f"{field}.{k}", "unknown_field", "is not a field of a sampling rule")
        for k in data
        if k not in _RULE_KEYS
    ]
    kwargs = {k: data[k] for k in _RULE_KEYS if k in data}
    if "supervision_class" not in data:
        problems.append(FieldProblem(f"{field}.supervision_class", "required", "is required"))
        kwargs["supervision_class"] = SUPERVISION_ORDER[0]  # a stand-in, only to report the other fields too
    if kwargs.get("risk_class") == "":
        kwargs["risk_class"] = None
    for flag in ("full", "once_a_year"):
        if kwargs.get(flag) is None:
            kwargs.pop(flag, None)
    if kwargs.get("combine") is None:
        kwargs.pop("combine", None)
    try:
        rule = SamplingRule(**kwargs)
    except InvalidInputError as exc:
        problems.extend(FieldProblem(f"{field}.{p.field}", p.rule, p.message) for p in exc.problems)
    if problems:
        raise InvalidInputError(problems)
    return rule


def rules_to_dict(rules: Iterable[SamplingRule]) -> list[dict[str, Any]]:
    """A list of ``rule_to_dict`` (what ``AnnualPlan`` events carry)."""
    return [rule_to_dict(r) for r in rules]


def rules_from_dict(data: Iterable[Mapping[str, Any] | SamplingRule]) -> tuple[SamplingRule, ...]:
    """Rules from ``rules_to_dict`` output (rules pass through); every problem named ``rules[i].<key>``."""
    if isinstance(data, (str, bytes, Mapping)) or not isinstance(data, Iterable):
        raise problem("rules", "type", "must be a list of sampling rules")
    out: list[SamplingRule] = []
    problems: list[FieldProblem] = []
    for i, item in enumerate(data):
        try:
            out.append(rule_from_dict(item, f"rules[{i}]"))
        except InvalidInputError as exc:
            problems.extend(exc.problems)
    if problems:
        raise InvalidInputError(problems)
    return validate_rules(out)


# -- periods -------------------------------------------------------------------------------------
class PeriodKind(str, Enum):
    """How long a plan period is."""

    QUARTER = "quarter"
    MONTH = "month"
    HALF = "half"
    YEAR = "year"


_PER_YEAR = {PeriodKind.QUARTER: 4, PeriodKind.MONTH: 12, PeriodKind.HALF: 2, PeriodKind.YEAR: 1}
_MONTHS = {PeriodKind.QUARTER: 3, PeriodKind.MONTH: 1, PeriodKind.HALF: 6, PeriodKind.YEAR: 12}
_PERIOD_FORMS = "2024Q1 (quarter), 2024-03 (month), 2024H1 (half year) or 2024 (year)"


def periods_in_year(kind: "PeriodKind | str") -> int:
    """4 quarters, 12 months, 2 halves, 1 year."""
    try:
        return _PER_YEAR[PeriodKind(kind)]
    except ValueError:
        raise problem(
            "period", "choice", f"kind must be one of: {', '.join(k.value for k in PeriodKind)}"
        ) from None


@dataclass(frozen=True)
class Period:
    """A plan period: ``index`` counts from 1 within the year (Q1 = 1, March = 3, H2 = 2, the year = 1)."""

    year: int
    kind: PeriodKind
    index: int = 1

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", PeriodKind(self.kind))
        except ValueError:
            raise problem(
                "period", "choice", f"kind must be one of: {', '.join(k.value for k in PeriodKind)}"
            ) from None
        if isinstance(self.year, bool) or not isinstance(self.year, int) or not 1000 <= self.year <= 9999:
            raise problem("period", "year", "the year must have four digits")
        if (
            isinstance(self.index, bool)
            or not isinstance(self.index, int)
            or not 1 <= self.index <= _PER_YEAR[self.kind]
        ):
            raise problem("period", "index", f"a {self.kind.value} index must be 1..{_PER_YEAR[self.kind]}")

    @property
    def text(self) -> str:
        """Canonical text: ``2024Q1``, ``2024-03``, ``2024H1``, ``2024``."""
        if self.kind is PeriodKind.QUARTER:
            return f"{self.year}Q{self.index}"
        if self.kind is PeriodKind.MONTH:
            return f"{self.year}-{self.index:02d}"
        if self.kind is PeriodKind.HALF:
            return f"{self.year}H{self.index}"
        return str(self.year)

    def __str__(self) -> str:
        return self.text

    @property
    def first_month(self) -> int:
        return (self.index - 1) * _MONTHS[self.kind] + 1

    @property
    def last_month(self) -> int:
        return self.index * _MONTHS[self.kind]

    @property
    def start(self) -> dt.date:
        """First day (inclusive)."""
        return dt.date(self.year, self.first_month, 1)

    @property
    def end(self) -> dt.date:
        """Last day (inclusive)."""
        return dt.date(self.year, self.last_month, calendar.monthrange(self.year, self.last_month)[1])

    @property
    def periods_in_year(self) -> int:
        return _PER_YEAR[self.kind]

    def contains(self, other: "Period | dt.date") -> bool:
        """Whether a day, or all of another period, lies within this one."""
        if isinstance(other, Period):
            return self.start <= other.start and other.end <= self.end
        return self.start <= other <= self.end

    def quarters(self) -> tuple["Period", ...]:
        """The quarters this period overlaps (a month: its quarter; a year: all four)."""
        first = (self.first_month - 1) // 3 + 1
        last = (self.last_month - 1) // 3 + 1
        return tuple(Period(self.year, PeriodKind.QUARTER, q) for q in range(first, last + 1))

    @classmethod
    def of(cls, kind: "PeriodKind | str", day: dt.date) -> "Period":
        """The period of ``kind`` containing ``day``."""
        kind = PeriodKind(kind)
        return cls(day.year, kind, (day.month - 1) // _MONTHS[kind] + 1)


_PERIOD_RE = re.compile(r"^(\d{4})(?:[Qq]([1-4])|-(\d{2})|[Hh]([12]))?$")


def parse_period(text: "str | Period") -> Period:
    """``"2024Q1"``, ``"2024-03"``, ``"2024H1"`` or ``"2024"``; else InvalidInputError on ``period``."""
    if isinstance(text, Period):
        return text
    m = _PERIOD_RE.match(text.strip()) if isinstance(text, str) else None
    if not m:
        raise problem("period", "format", f"{text!r} is not a period: use {_PERIOD_FORMS}")
    year = int(m.group(1))
    if m.group(2):
        return Period(year, PeriodKind.QUARTER, int(m.group(2)))
    if m.group(3):
        month = int(m.group(3))
        if not 1 <= month <= 12:
            raise problem("period", "format", f"{text!r}: the month must be 01..12")
        return Period(year, PeriodKind.MONTH, month)
    if m.group(4):
        return Period(year, PeriodKind.HALF, int(m.group(4)))
    return Period(year, PeriodKind.YEAR, 1)


# -- quotas --------------------------------------------------------------------------------------
def stratum_key(supervision_class: str, risk_class: str) -> str:
    """``"key/A"``: the stratum a draw samples from."""
    return f"{supervision_class}/{risk_class}"


def split_stratum(stratum: str) -> tuple[str, str]:
    """``"key/A"`` -> ``("key", "A")``."""
    sc, _, rc = stratum.partition("/")
    return sc, rc


def _stratum_order(key: tuple[str, str]) -> tuple[int, int]:
    return SUPERVISION_ORDER.index(key[0]), RISK_ORDER.index(key[1])


@dataclass(frozen=True)
class QuotaLine:
    """The quota of one stratum for one period and how it was computed.

    ``basis`` spells out the arithmetic (``"ceil(25% x 37) = 10"``). ``inspectors`` and
    ``already_inspected`` are the inputs it was computed with (``None``: not known), kept so that a line
    can be re-checked against a rule later (``plan_breaches``).
    """

    stratum: str
    pool_size: int
    quota: int
    rule_text: str
    basis: str
    inspectors: int | None = None
    already_inspected: int = 0


def _largest_remainder(
    total: int, pools: Sequence[tuple[tuple[str, str], int]]
) -> dict[tuple[str, str], tuple[int, Fraction]]:
    """Split ``total`` proportionally to pool sizes: floors, then one more to the largest remainders.

    Ties go to the higher risk class (D before A), then to the stratum order, so the split is deterministic
    and leans towards risk. Returns each stratum's share and its exact proportional value.
    """
    whole = sum(p for _, p in pools)
    if whole == 0:
        return {k: (0, Fraction(0)) for k, _ in pools}
    exact = {k: Fraction(total * p, whole) for k, p in pools}
    shares = {k: math.floor(v) for k, v in exact.items()}
    left = total - sum(shares.values())
    order = sorted(exact, key=lambda k: (-(exact[k] - shares[k]), -RISK_ORDER.index(k[1]), _stratum_order(k)))
    for k in order[:left]:
        shares[k] += 1
    return {k: (shares[k], exact[k]) for k in exact}


def _check_counts(name: str, counts: Mapping[tuple[str, str], int]) -> dict[tuple[str, str], int]:
    problems: list[FieldProblem] = []
    out: dict[tuple[str, str], int] = {}
    for key, n in counts.items():
        if not (
            isinstance(key, tuple) and len(key) == 2 and key[0] in SUPERVISION_ORDER and key[1] in RISK_ORDER
        ):
            problems.append(
                FieldProblem(name, "stratum", f"{key!r} is not a (supervision class, risk class) pair")
            )
        elif isinstance(n, bool) or not isinstance(n, int) or n < 0:
            problems.append(FieldProblem(name, "range", f"{stratum_key(*key)}: must be a whole number >= 0"))
        else:
            out[key] = n
    if problems:
        raise InvalidInputError(problems)
    return out


def _rule_bounds(
    rule: SamplingRule,
    pools: list[tuple[tuple[str, str], int]],
    inspectors: int,
    done: Mapping[tuple[str, str], int],
    remaining_periods: int,
) -> dict[tuple[str, str], tuple[int, list[str]]]:
    """Uncapped quota and basis parts of each stratum one rule governs (see ``compute_quotas``)."""
    keys = [k for k, _ in pools]
    bound: dict[tuple[str, str], tuple[int, list[str]]] = {k: (0, []) for k in keys}
    if rule.full:
        bound = {k: (p, [f"100% of {p} = {p}"]) for k, p in pools}
    else:
        by_ratio = by_inspector = None
        if rule.ratio is not None:
            r = rule.ratio
            by_ratio = {
                k: (math.ceil(r * p), f"ceil({percent_text(r)} x {p}) = {math.ceil(r * p)}") for k, p in pools
            }
        if rule.min_per_inspector is not None:
            total = rule.min_per_inspector * inspectors
            whole = sum(p for _, p in pools)
            split = _largest_remainder(total, pools)
            head = f"{rule.min_per_inspector} per inspector x {inspectors} inspectors = {total}"
            by_inspector = {
                k: (
                    split[k][0],
                    f"{head}, share of {rule.stratum} (pool {whole}): {total} x {p}/{whole} = "
                    f"{_approx(split[k][1])} -> {split[k][0]} (largest remainder)"
                    if len(pools) > 1
                    else f"{head}",
                )
                for k, p in pools
            }
        if by_ratio is not None and by_inspector is not None:
            t_ratio = sum(q for q, _ in by_ratio.values())
            t_insp = sum(q for q, _ in by_inspector.values())
            use_ratio = t_ratio <= t_insp if rule.combine == EITHER else t_ratio >= t_insp
            word = "either bound suffices, the smaller" if rule.combine == EITHER else "the larger bound"
            chosen = "ratio" if use_ratio else "per inspector"
            note = f"{word}: {rule.stratum} totals ratio {t_ratio} vs per inspector {t_insp} -> {chosen}"
            pick = by_ratio if use_ratio else by_inspector
            other = by_inspector if use_ratio else by_ratio
            bound = {k: (pick[k][0], [pick[k][1], f"(not used: {other[k][1]})", note]) for k in keys}
        else:
            only = by_ratio if by_ratio is not None else by_inspector
            if only is not None:
                bound = {k: (only[k][0], [only[k][1]]) for k in keys}
        if rule.once_a_year:
            for k, p in pools:
                left = max(p - done.get(k, 0), 0)
                once = math.ceil(Fraction(left, remaining_periods))
                text = (
                    f"once a year: ceil({left} not yet inspected / {remaining_periods} periods left) = {once}"
                )
                q, parts = bound[k]
                parts = [*parts, text, f"the larger: {max(q, once)}"] if parts else [text]
                bound[k] = (max(q, once), parts)
    return bound


def compute_quotas(
    rules: Iterable[SamplingRule],
    counts: Mapping[tuple[str, str], int],
    inspectors: int,
    periods_in_year: int,
    period_index: int,
    already_inspected: Mapping[tuple[str, str], int] | None = None,
) -> dict[str, QuotaLine]:
    """The quota of every stratum in ``counts`` for one period, keyed ``"key/A"``, in stratum order.

    Args:
        rules: the entry's rules (at most one per stratum; a risk-class rule overrides the class-wide one).
        counts: pool size per (supervision class, risk class) from the current directory.
        inspectors: inspectors available to the department in the period.
        periods_in_year: 4 for quarters, 12 for months, ...
        period_index: which period this is, counted from 1 (Q3 = 3).
        already_inspected: per stratum, targets already inspected this year (for ``once_a_year``).

    Computation, for each rule and the strata it governs (all strata of its class that have no risk-class
    rule of their own, or its one stratum):
        - ``full``: the pool.
        - ratio bound: ``ceil(min_ratio x pool)`` per stratum.
        - per-inspector bound: ``min_per_inspector x inspectors`` spread over the governed strata in
          proportion to their pools, by largest remainder (floors first; the units left go to the
          largest fractional parts; ties to the higher risk class, then to the stratum order).
        - both bounds set: the two *totals* over the governed strata are compared and one bound is used
          for all of them: ``either`` takes the smaller, ``larger`` the larger (ties: the ratio). Choosing
          per stratum could leave the total below both bounds.
        - ``once_a_year``: ``ceil(max(pool - already inspected, 0) / (periods_in_year - period_index + 1))``,
          and the quota is the larger of this and the bound above.
        - no rule, or a rule without bounds: 0.
    Every quota is rounded up and then capped at the pool size (the basis says so when capping bites).
    """
    rules = validate_rules(rules)
    counts = _check_counts("counts", counts)
    done = _check_counts("already_inspected", already_inspected or {})
    problems: list[FieldProblem] = []
    if isinstance(inspectors, bool) or not isinstance(inspectors, int) or inspectors < 0:
        problems.append(FieldProblem("inspectors", "range", "must be a whole number >= 0"))
    if isinstance(periods_in_year, bool) or not isinstance(periods_in_year, int) or periods_in_year < 1:
        problems.append(FieldProblem("periods_in_year", "range", "must be a whole number >= 1"))
    elif (
        isinstance(period_index, bool)
        or not isinstance(period_index, int)
        or not 1 <= period_index <= periods_in_year
    ):
        problems.append(FieldProblem("period_index", "range", f"must be 1..{periods_in_year}"))
    if problems:
        raise InvalidInputError(problems)

    strata = sorted(counts, key=_stratum_order)
    governed: dict[int, list[tuple[str, str]]] = {}
    lines: dict[str, QuotaLine] = {}
    for key in strata:
        rule = resolve_rule(rules, *key)
        if rule is None:
            lines[stratum_key(*key)] = QuotaLine(
                stratum_key(*key),
                counts[key],
                0,
                "no rule",
                f"no rule for {stratum_key(*key)}: no minimum",
                inspectors,
                done.get(key, 0),
            )
        else:
            governed.setdefault(rules.index(rule), []).append(key)

    remaining_periods = periods_in_year - period_index + 1
    for index, keys in governed.items():
        rule = rules[index]
        pools = [(k, counts[k]) for k in keys]
        bound = _rule_bounds(rule, pools, inspectors, done, remaining_periods)
        for k, p in pools:
            q, parts = bound[k]
            if not parts:
                parts = ["no minimum"]
            if q > p:
                parts = [*parts, f"capped at pool size {p}"]
                q = p
            lines[stratum_key(*k)] = QuotaLine(
                stratum_key(*k), p, q, rule.describe(), "; ".join(parts), inspectors, done.get(k, 0)
            )
    return {stratum_key(*k): lines[stratum_key(*k)] for k in strata}
