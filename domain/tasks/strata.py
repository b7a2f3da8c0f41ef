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
        if s in override:
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
    unknown = sorted(set(override) - set(lines))
    problems += [
        FieldProblem(f"quotas.{s}", "unknown_stratum", "no target of the pool is in this stratum")
        for s in unknown
    ]
    if problems:
        raise InvalidInputError(problems)
    return out
