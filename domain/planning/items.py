"""Which inspection items a department may name: its own, and only those in the directory."""

from collections.abc import Mapping, Sequence
from typing import Any

from domain.errors import FieldProblem


def item_problems(
    department: str, items: Sequence[Any], known: Mapping[str, Mapping[str, Any]], field: str
) -> list[FieldProblem]:
    """One problem per item not in ``known`` (item id -> ``{department, ...}``) or another department's."""
    problems = []
    for i, item in enumerate(items):
        found = known.get(str(item))
        if found is None:
            problems.append(FieldProblem(f"{field}[{i}]", "unknown_item", f"no inspection item {item}"))
        elif found["department"] != department:
            problems.append(
                FieldProblem(
                    f"{field}[{i}]",
                    "other_department",
                    f"item {item} belongs to {found['department']}, not {department}",
                )
            )
    return problems
