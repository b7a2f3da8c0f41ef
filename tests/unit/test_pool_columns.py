"""The pool made a column at a time (``build_pool`` over :class:`TargetColumns`, what a province-wide freeze and
its verification run) is the pool of the plain rule applied one target at a time, kept here as the reference,
for any targets, scope, exclusion, weights and ``full`` rules; and the pieces around it (the yearly exclusion,
the pool digest, the as-of merge of columns) agree with their plain forms."""

from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.draw.pool import targets_at
from domain.draw.sampler import _digest_of_sorted, pool_digest
from domain.errors import InvalidInputError
from domain.planning.rules import SamplingRule, resolve_rule, stratum_key
from domain.tasks.pool import (
    POSITIVE_LIST,
    PoolRow,
    PoolRows,
    TargetColumns,
    admits,
    build_pool,
    inspected_this_year,
)

CLASSES, RISKS = ["key", "general", "special"], list("ABCD")
TAGS = ["positive_list", "hazardous_waste", "a|b", ""]
DATA = st.fixed_dictionaries(
    {"supervision_class": st.sampled_from(CLASSES), "risk_class": st.sampled_from(RISKS)},
    optional={
        "county": st.sampled_from(["获嘉县", "辉县市"]),
        "industry": st.sampled_from(["化工", "造纸"]),
        "tags": st.one_of(st.none(), st.lists(st.sampled_from(TAGS), unique=True)),
        "status": st.sampled_from(["active", "active", "closed", "deregistered", None]),
    },
)
IDS = st.text(alphabet="0123456789abcdef-é中", min_size=1, max_size=6)
TARGETS = st.lists(st.tuples(IDS, DATA), unique_by=lambda t: t[0], max_size=40)
SCOPES = st.fixed_dictionaries({}, optional={
    "county": st.sampled_from(["", "获嘉县"]),
    "industries": st.lists(st.sampled_from(["化工", "造纸"]), unique=True),
    "supervision_classes": st.lists(st.sampled_from(CLASSES), unique=True),
    "risk_classes": st.lists(st.sampled_from(RISKS), unique=True),
    "tags": st.lists(st.sampled_from(TAGS), unique=True),
})
RULES = st.lists(st.builds(lambda c, r, full: SamplingRule(c, r, full=full) if full else
                           SamplingRule(c, r, min_ratio=Fraction(1, 4)),
                           st.sampled_from(CLASSES), st.sampled_from([None, *RISKS]), st.booleans()), max_size=3)


def reference_pool(
    targets: Iterable[tuple[str, Mapping[str, Any]]],
    scope: Mapping[str, Any],
    excluded_ids: set[str],
    weights: Mapping[str, int] | None,
    full_rules: Sequence[SamplingRule] | None,
    by_class: bool,
) -> dict[str, Any]:
    """The rule one target at a time (how build_pool read before it worked a column at a time)."""
    by_class = by_class and weights is not None
    rows: list[PoolRow] = []
    counts: dict[tuple[str, str], int] = {}
    in_scope: dict[tuple[str, str], int] = {}
    inspected: dict[tuple[str, str], int] = {}
    excluded = {"inactive": 0, "inspected_this_year": 0}
    if full_rules is not None:
        excluded["kept_by_full_rule"] = 0
    off_site = set()
    for tid, data in targets:
        if not admits(scope, data):
            continue
        if data.get("status", "active") != "active":
            excluded["inactive"] += 1
            continue
        pair = (data["supervision_class"], data["risk_class"])
        in_scope[pair] = in_scope.get(pair, 0) + 1
        rule = resolve_rule(full_rules, *pair) if full_rules is not None else None
        if tid in excluded_ids and rule is not None and rule.full:
            excluded["kept_by_full_rule"] += 1
        elif tid in excluded_ids:
            excluded["inspected_this_year"] += 1
            inspected[pair] = inspected.get(pair, 0) + 1
            continue
        stratum = pair[0] if by_class else stratum_key(*pair)
        rows.append(PoolRow(tid, stratum, weights.get(pair[1], 1) if weights else 1))
        counts[pair] = counts.get(pair, 0) + 1
        if POSITIVE_LIST in (data.get("tags") or ()):
            off_site.add(tid)
    rows.sort(key=lambda r: r.id)
    return {"rows": rows, "counts": counts, "in_scope": in_scope, "inspected": inspected, "excluded": excluded,
            "off_site_first": off_site, "by_class": by_class}


def as_dict(pool: Any) -> dict[str, Any]:
    return {"rows": list(pool.rows), "counts": pool.counts, "in_scope": pool.in_scope, "inspected": pool.inspected,
            "excluded": pool.excluded, "off_site_first": pool.off_site_first, "by_class": pool.by_class}


@settings(max_examples=300)
@given(TARGETS, SCOPES, st.data(), st.sampled_from([None, {"A": 1, "B": 2, "C": 4, "D": 8}, {}]), st.booleans())
def test_the_pool_a_column_at_a_time_is_the_pool_one_target_at_a_time(targets, scope, data, weights,
                                                                      by_class) -> None:
    ids = [t for t, _ in targets]
    excluded = set(data.draw(st.lists(st.sampled_from(ids), unique=True))) if ids else set()
    full_rules = data.draw(st.one_of(st.none(), RULES))
    expected = reference_pool(targets, scope, excluded, weights, full_rules, by_class)
    got = build_pool(targets, scope, excluded_ids=excluded, weights=weights, full_rules=full_rules,
                     by_class=by_class)
    assert as_dict(got) == expected
    columns = TargetColumns.from_pairs(sorted(targets))  # a reader's order: no sort needed, same pool
    again = build_pool(columns, scope, excluded_ids=excluded, weights=weights, full_rules=full_rules,
                       by_class=by_class)
    assert as_dict(again) == expected


def test_a_target_without_a_class_in_the_pool_is_refused_as_before() -> None:
    with pytest.raises(KeyError):
        build_pool([("t1", {"risk_class": "A"})], {})
    assert build_pool([("t1", {"risk_class": "A", "status": "closed"})], {}).excluded["inactive"] == 1


def test_a_scope_on_a_column_not_read_is_an_error_not_an_empty_pool() -> None:
    columns = TargetColumns(["t1"], ["key"], ["A"], [None], [None])
    with pytest.raises(ValueError, match="county"):
        build_pool(columns, {"county": "获嘉县"})
    assert [r.id for r in build_pool(columns, {"supervision_classes": ["key"]}).rows] == ["t1"]


@given(TARGETS, st.data())
def test_columns_as_of_a_position_are_the_pairs_as_of_it(targets, data) -> None:
    ids = [t for t, _ in targets]
    changed = set(data.draw(st.lists(st.sampled_from(ids), unique=True))) if ids else set()
    recent = [(t, {**d, "risk_class": "D"}) for t, d in targets if t in changed]
    pairs = list(targets_at(targets, changed, recent))
    columns = targets_at(TargetColumns.from_pairs(targets), changed, recent)
    assert isinstance(columns, TargetColumns)
    assert build_pool(columns, {}) == build_pool(pairs, {})
    fields = ("supervision_class", "risk_class", "county", "industry", "tags")

    def read(d: Mapping[str, Any]) -> tuple[Any, ...]:  # as a pool or an item reads a target
        return (*(d.get(k) for k in fields), d.get("status", "active") == "active")

    assert sorted((t, read(d)) for t, d in columns.pairs()) == sorted((t, read(d)) for t, d in pairs)


def test_pool_rows_read_as_a_sequence_of_rows() -> None:
    rows = PoolRows(["a", "b", "c"], ["key/A", "key/A", "general/B"], [1, 2, 1])
    assert len(rows) == 3 and rows[1] == PoolRow("b", "key/A", 2) and rows[-1].id == "c"
    assert rows[:2] == [PoolRow("a", "key/A", 1), PoolRow("b", "key/A", 2)]
    assert list(rows) == [PoolRow("a", "key/A", 1), PoolRow("b", "key/A", 2), PoolRow("c", "general/B", 1)]
    assert rows == list(rows) and rows != list(rows)[:2] and rows != PoolRows([], [], [])
    assert not PoolRows([], [], [])
    with pytest.raises(ValueError):
        PoolRows(["a"], [], [1])


DRAWS = st.lists(st.tuples(st.sampled_from(["a", "b", "c", "me"]), st.sampled_from([2023, 2024]),
                           st.lists(st.sampled_from(["i1", "i2", "i3"])),
                           st.lists(st.sampled_from(["t1", "t2", "t3", "t4"]))), max_size=6)


@given(DRAWS, st.lists(st.sampled_from(["i1", "i2", "i3"]), min_size=1, unique=True), st.booleans())
def test_the_yearly_exclusion_is_the_per_target_rule(draws, items, every_item) -> None:
    mine = set(items)
    covered: dict[str, set[str]] = {}
    for other, year, its, selected in draws:
        if other != "me" and year == 2024 and mine & set(its):
            for t in selected:
                covered.setdefault(t, set()).update(mine & set(its))
    expected = {t for t, done in covered.items() if done >= mine or not every_item}
    assert inspected_this_year(draws, "me", 2024, items, every_item=every_item) == expected


@given(st.lists(IDS, max_size=30))
def test_the_pool_digest_is_that_of_the_ids_sorted_whatever_their_order(ids) -> None:
    assert pool_digest(ids) == _digest_of_sorted(sorted(ids)) == pool_digest(sorted(ids, reverse=True))


@pytest.mark.parametrize("bad", [["a", ""], ["a\nb"], ["a", None], ["\ud800"]])
def test_the_pool_digest_still_names_a_bad_id(bad) -> None:
    with pytest.raises(InvalidInputError):
        pool_digest(bad)
