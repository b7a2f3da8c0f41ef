"""The strata a freeze records: per stratum the pool size, the quota and how it was computed."""

from collections.abc import Iterable, Mapping
from typing import Any

from domain.errors import FieldProblem, InvalidInputError
from domain.planning.rules import compute_quotas, parse_period, rules_from_dict, split_stratum
from domain.tasks.pool import Pool


def frozen_strata(
    rules: Iterable[Mapping[str, Any]],
    period: str,
    pool: Pool,
    inspectors: int,
    override: Mapping[str, int],
) -> dict[str, dict[str, Any]]:
    """Per stratum: pool size, quota (the rules' minimum, or a planner's larger figure), how it was computed.

    Ratios apply to the targets in scope (before excluding those inspected this year); the quota is then
    capped by what is left in the pool, and ``once_a_year`` counts the excluded as already inspected. A
    planner's figure below the minimum, or for a stratum the pool lacks, is refused (``quotas.<stratum>``).
    """
    p = parse_period(period)
    lines = compute_quotas(
        rules_from_dict(rules), pool.in_scope, inspectors, p.periods_in_year, p.index, pool.inspected
    )
    problems = []
    out: dict[str, dict[str, Any]] = {}
    for s, line in lines.items():
        size = pool.counts.get(split_stratum(s), 0)
        quota = min(line.quota, size)
        basis = line.basis
        if s in override and not pool.by_class:
            wanted = override[s]
            if isinstance(wanted, bool) or not isinstance(wanted, int) or wanted < quota:
                problems.append(
                    FieldProblem(
                        f"quotas.{s}",
                        "rule_minimum",
                        f"must be a whole number >= {quota} ({line.rule_text}: {line.basis})",
                    )
                )
                continue
            quota, basis = min(wanted, size), f"set by the planner: {wanted} (minimum {quota}: {line.basis})"
        out[s] = {
            "pool_size": size,
            "in_scope": line.pool_size,
            "quota": quota,
            "rule": line.rule_text,
            "basis": basis,
        }
    if pool.by_class:
        return _by_class(out, override, problems)
    unknown = sorted(set(override) - set(lines))
    problems += [
        FieldProblem(f"quotas.{s}", "unknown_stratum", "no target of the pool is in this stratum")
        for s in unknown
    ]
    if problems:
        raise InvalidInputError(problems)
    return out


def _by_class(
    lines: Mapping[str, Mapping[str, Any]], override: Mapping[str, int], problems: list[FieldProblem]
) -> dict[str, dict[str, Any]]:
    """A weighted draw's strata: one per supervision class, the sum of its risk classes' sizes and minimums (the
    weights then decide which risk classes the quota goes to). A planner's figure is per class, never below."""
    out: dict[str, dict[str, Any]] = {}
    for s in sorted(lines):
        c = split_stratum(s)[0]
        line = lines[s]
        agg = out.setdefault(c, {"pool_size": 0, "in_scope": 0, "quota": 0, "rule": line["rule"], "parts": []})
        agg["pool_size"] += line["pool_size"]
        agg["in_scope"] += line["in_scope"]
        agg["quota"] += line["quota"]
        agg["parts"].append(f"{s}: {line['basis']}")
    for c, agg in out.items():
        parts = agg.pop("parts")
        agg["basis"] = f"weighted, one stratum per supervision class: {' + '.join(parts)} = {agg['quota']}"
        if c in override:
            wanted, minimum = override[c], agg["quota"]
            if isinstance(wanted, bool) or not isinstance(wanted, int) or wanted < minimum:
                problems.append(FieldProblem(f"quotas.{c}", "rule_minimum",
                                             f"must be a whole number >= {minimum} ({agg['basis']})"))
                continue
            agg["quota"] = min(wanted, agg["pool_size"])
            agg["basis"] = f"set by the planner: {wanted} (minimum {minimum}: {agg['basis']})"
    problems += [
        FieldProblem(f"quotas.{s}", "unknown_stratum",
                     "no target of the pool is in this stratum (a weighted draw's strata are supervision classes)")
        for s in sorted(set(override) - set(out))
    ]
    if problems:
        raise InvalidInputError(problems)
    return out
