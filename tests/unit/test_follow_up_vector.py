"""The follow-up round's test vector (docs/verifying-a-draw.md section 17.1), reproduced by the project's code
(``FollowUpRound.plan`` and ``draw_visitees``, ``follow_up_quota``, the sampler) and by the standalone verifier on
the vector's events written as an export; then every way the verifier can find a follow-up round wrong, one
change at a time, the vector of a round planned before entropy sources were declared (``Planned`` version 2), and
the quota rule for all sizes and ratios."""

import importlib.util
import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.access import Actor
from domain.draw import sampler
from domain.errors import InvalidInputError
from domain.execution.followup import FollowUpRound, follow_up_quota
from domain.planning.rules import ratio_text

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("verify_draws", ROOT / "docs" / "verifier" / "verify_draws.py")
assert _spec is not None and _spec.loader is not None
verifier: Any = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(verifier)

SEED = bytes(range(32))
SOURCE = "福彩3D 2024年第150期开奖号码"  # declared with the commitment (Planned version 3)
ENTROPY = "159"  # the value published for it, in its one form
PLANNER = Actor("eeb-plan", "hj-eeb", ("planner",))
INS = "domain.execution.inspection:Inspection."
F = "domain.execution.followup:FollowUpRound."
ROUND = "f34abb66-7d7b-54d7-b154-06d6b8dc6e04"
T = {  # section 10's ids, by their first 8 digits
    t[:8]: t for t in (
        "e799a731-2908-4e5e-87f3-b5146e20bb38", "2cb711a9-a1e4-4443-b40b-b2a347c378f4",
        "0ad05a85-fa0e-414f-bfde-a842307302f1", "4c2fa29c-bdc8-4efd-ab0e-f2f25742d2da",
        "36b49626-0fca-4159-b8e1-9cb806283d59", "9ef883bc-8252-4fb0-8028-91e6cc2ca64a",
        "fad4a670-b987-4be7-94c9-ed8173455e26", "d87e9601-13b8-48af-80ec-b571c150dab4",
        "dd97932a-7e6d-445a-9ac7-911bae368092", "5cd15ba1-1df4-45f7-b3aa-8db7910c975a",
        "ed9453c9-9a3c-4395-921e-ca9286528c45")
}
# (inspection, department, target, FindingsRecorded days in log order), section 17.1's table without m
INSPECTIONS = [
    ("a", "hj-eeb", "e799a731", ["2024-04-01"]), ("b", "hj-eeb", "2cb711a9", ["2024-06-30"]),
    ("c", "hj-eeb", "0ad05a85", ["2024-03-31"]), ("d", "hj-amr", "4c2fa29c", ["2024-05-10"]),
    ("e", "hj-eeb", "36b49626", ["2024-05-10", "2024-07-01"]), ("f", "hj-eeb", "9ef883bc", ["2024-07-02", "2024-06-02"]),
    ("g", "hj-eeb", "fad4a670", []), ("h", "hj-eeb", "e799a731", ["2024-05-20"]),
    ("i", "hj-eeb", "d87e9601", ["2024-04-15"]), ("j", "hj-eeb", "dd97932a", ["2024-05-05"]),
    ("k", "hj-eeb", "5cd15ba1", ["2024-06-10"]), ("l", "hj-eeb", "ed9453c9", ["2024-04-20"]),
]
POOL = sorted(T[k] for k in ("2cb711a9", "5cd15ba1", "9ef883bc", "d87e9601", "dd97932a", "e799a731", "ed9453c9"))
DIGEST = "8eedc5e8c770955e5365b2a4ca40e4cbc9c331aae2076275e3bb83324cea0fe9"
KEY = "ee63f383528c00a3896733d8a2f4497ce97abf0421950b09f2195d7fb19d6711"
RANKS = {"5cd15ba1": "1614e487fa1d5219", "d87e9601": "19ad6e7d11aead6a", "9ef883bc": "413e03dae69a8e3a",
         "ed9453c9": "6a041bcbef0a4cf5", "2cb711a9": "a79f4734be7b21fc", "e799a731": "c2b305c7a253685c",
         "dd97932a": "ecea048248524b36"}
SELECTED = [T["5cd15ba1"], T["d87e9601"], T["9ef883bc"]]
# Section 17.2: the same round planned before sources were declared (Planned version 2), free-text entropy.
ENTROPY_V2 = "福彩3D 2024150: 1 5 9"
KEY_V2 = "6aa7326351d4127401f1626a2cd7b0e42a262ce816fd613ac4f0ceeec54981eb"
RANKS_V2 = {"d87e9601": "2c3b3de550f88e8e", "9ef883bc": "31eb7ad63341ac2c", "ed9453c9": "546bc3e5971c30c8",
            "5cd15ba1": "593eb4787ba095b1", "dd97932a": "76c979619b0262ac", "2cb711a9": "822b40a4ea6c9ec1",
            "e799a731": "b4e96e8913587a0c"}
SELECTED_V2 = [T["d87e9601"], T["9ef883bc"], T["ed9453c9"]]
PLANNED_V2 = ("department", "period", "ratio", "pool", "quota", "commitment", "by", "position")


def _inspection_id(name: str) -> str:
    return f"00000000-0000-4000-8000-{ord(name):012d}"


def _ev(position: int, aggregate: str, topic: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"position": position, "aggregate_id": aggregate, "topic": topic, "data": data}


def _planned_round(version: int = 3) -> FollowUpRound:
    """The vector's round; ``version`` 2: as a round planned before sources were declared loads (the upcaster
    reads its source as ``None``)."""
    inspected = [T[t] for _, d, t, days in INSPECTIONS if d == "hj-eeb" and days and "2024-04-01" <= days[-1]
                 <= "2024-06-30"]
    r = FollowUpRound.plan(PLANNER, "hj-eeb", "2024Q2", inspected, sampler.commitment(SEED), "0.3", position=27,
                           entropy_source=SOURCE if version >= 3 else "")
    if version < 3:
        r.entropy_source = None
    return r


def vector_export(version: int = 3) -> list[dict[str, Any]]:
    """The vector as an export: inspections a-l (positions 1-25), m opened (26), another event (27: the pool is
    read there), m's findings after the read (28), Planned (29), Drawn (30). ``version`` 2: section 17.2's."""
    out: list[dict[str, Any]] = []
    for name, dept, target, days in INSPECTIONS:
        oid = _inspection_id(name)
        out.append(_ev(0, oid, INS + "Opened", {"assignment_id": oid, "task_id": oid, "department": dept,
                                               "target_id": T[target], "items": ["EEB-001"], "team": ["i1"]}))
        out += [_ev(0, oid, INS + "FindingsRecorded", {"by": "i1", "inspected_on": d, "methods": [], "findings": {}})
                for d in days]
    for n, ev in enumerate(out, start=1):
        ev["position"] = n
    assert len(out) == 25
    m = _inspection_id("m")
    out.append(_ev(26, m, INS + "Opened", {"assignment_id": m, "task_id": m, "department": "hj-eeb",
                                         "target_id": T["4c2fa29c"], "items": ["EEB-001"], "team": ["i1"]}))
    out += [_ev(p, f"00000000-0000-4000-8000-{p:012d}", "domain.directory:Target.Registered",
                {"data": {"name": "filler"}}) for p in (27,)]
    r = _planned_round(version)
    planned = r.collect_events()
    if version >= 3:
        r.draw_visitees(PLANNER, SEED, ENTROPY, SOURCE)
    else:
        r.draw_visitees(PLANNER, SEED, ENTROPY_V2)
    drawn = r.collect_events()
    out.append(_ev(28, m, INS + "FindingsRecorded", {"by": "i1", "inspected_on": "2024-05-11", "methods": [],
                                                   "findings": {}}))
    fields = PLANNED_V2 + (("entropy_source",) if version >= 3 else ())
    out.append(_ev(29, ROUND, F + "Planned", {k: getattr(planned[0], k) for k in fields}))
    out.append(_ev(30, ROUND, F + "Drawn", {"by": "eeb-plan", "record": drawn[0].record}))  # type: ignore[attr-defined]
    return json.loads(json.dumps(out, ensure_ascii=False))


def test_the_project_reproduces_the_vector() -> None:
    assert follow_up_quota(7, Fraction("0.3")) == 3
    r = _planned_round()
    assert r.pool == POOL and r.quota == 3 and r.ratio == "0.3" and r.position == 27
    assert sampler.pool_digest(r.pool) == DIGEST
    assert r.entropy_source == SOURCE
    key = sampler.draw_key(SEED, ENTROPY, DIGEST)
    assert key.hex() == KEY
    assert {t[:8]: f"{sampler.rank(key, t):016x}" for t in POOL} == RANKS
    assert r.draw_visitees(PLANNER, SEED, ENTROPY, SOURCE) == SELECTED
    assert r.draw is not None and r.draw["pool_digest"] == DIGEST and r.draw["strata"]["all"]["took_all"] is False
    assert r.draw["entropy_source"] == SOURCE and r.draw["external_entropy"] == ENTROPY
    assert r.verify().match


def test_a_round_planned_before_sources_were_declared_reproduces_its_vector() -> None:
    r = _planned_round(version=2)
    key = sampler.draw_key(SEED, ENTROPY_V2, DIGEST)
    assert key.hex() == KEY_V2
    assert {t[:8]: f"{sampler.rank(key, t):016x}" for t in POOL} == RANKS_V2
    assert r.draw_visitees(PLANNER, SEED, ENTROPY_V2) == SELECTED_V2  # any text, as then
    assert r.draw is not None and "entropy_source" not in r.draw and r.verify().match
    assert verifier.verify(vector_export(version=2)) == [(f"follow-up {ROUND}", 1, None)]


@pytest.mark.parametrize(("source", "value", "field", "rule"), [
    (SOURCE, "1 5 9", "external_entropy", "source_format"),  # the one form of a 福彩3D result
    (SOURCE, "159\n", "external_entropy", "source_format"),
    (SOURCE, "", "external_entropy", "required"),
    ("福彩3D 2024年第151期开奖号码", "159", "entropy_source", "declared_source"),  # another draw's source
    ("", "159", "entropy_source", "declared_source"),
])
def test_the_draw_takes_only_the_declared_sources_value(source: str, value: str, field: str, rule: str) -> None:
    r = _planned_round()
    with pytest.raises(InvalidInputError) as refused:
        r.draw_visitees(PLANNER, SEED, value, source)
    assert (refused.value.problems[0].field, refused.value.problems[0].rule) == (field, rule)
    assert r.draw is None and len(r.collect_events()) == 1  # only Planned


def test_a_round_that_declared_no_source_takes_no_external_entropy() -> None:
    inspected = POOL
    r = FollowUpRound.plan(PLANNER, "hj-eeb", "2024Q2", inspected, sampler.commitment(SEED), "0.3", position=27)
    assert r.entropy_source == ""
    with pytest.raises(InvalidInputError) as refused:
        r.draw_visitees(PLANNER, SEED, "159")
    assert refused.value.problems[0].rule == "no_declared_source"
    r.draw_visitees(PLANNER, SEED)
    assert r.draw is not None and r.draw["entropy_source"] == "" and r.draw["external_entropy"] == ""
    assert r.verify().match
    r.draw["external_entropy"] = "159"  # an insider's edit of the record
    assert r.verify().first_difference == \
        "external_entropy: the commitment declared no entropy source, the draw used some"


def test_a_declared_source_is_text_on_one_line() -> None:
    with pytest.raises(InvalidInputError) as refused:
        FollowUpRound.plan(PLANNER, "hj-eeb", "2024Q2", POOL, sampler.commitment(SEED), "0.3", position=27,
                           entropy_source="福彩3D\x00")
    assert refused.value.problems[0].field == "entropy_source"
    with pytest.raises(InvalidInputError) as refused:
        FollowUpRound.plan(PLANNER, "hj-eeb", "2024Q2", POOL, sampler.commitment(SEED), "0.3", position=27,
                           entropy_source=["福彩3D"])
    assert (refused.value.problems[0].field, refused.value.problems[0].rule) == ("entropy_source", "type")


def test_the_standalone_verifier_reproduces_the_vector() -> None:
    items = vector_export()
    log = verifier.Log()
    for ev in items:
        if ev["position"] <= 27:
            log.apply(ev)
    assert log.follow_up_pool("hj-eeb", "2024Q2") == POOL
    assert verifier.follow_up_quota("0.3", 7) == 3
    assert verifier.pool_digest(POOL).hex() == DIGEST
    assert verifier.verify(items) == [(f"follow-up {ROUND}", 1, None)]


def _changed(change: Any) -> str | None:
    items = vector_export()
    change({ev["position"]: ev for ev in items})
    items.sort(key=lambda ev: ev["position"])
    [(what, _, difference)] = verifier.verify(items)
    assert what.startswith(f"follow-up {ROUND}")
    return difference


def _set(at: int, **data: Any) -> Any:
    return lambda by: by[at]["data"].update(data)


@pytest.mark.parametrize(("change", "expected"), [
    # a target left out of the planned pool, one added, the recorded read moved before inspection l's findings
    (_set(29, pool=POOL[1:]), f"pool: recorded 6 ids, recomputed 7; first difference at [0]: recorded "
                              f"'{POOL[1]}', recomputed '{POOL[0]}'"),
    (_set(29, pool=sorted([*POOL, T["4c2fa29c"]])), "pool: recorded 8 ids, recomputed 7; first difference at [1]: "
                                                   f"recorded '{T['4c2fa29c']}', recomputed '{POOL[1]}'"),
    (_set(29, position=29), "position: 29 is not below the Planned event's own position 29"),
    (_set(29, quota=2), "quota: planned 2, recomputed 3"),
    (_set(29, ratio="0.25"), "quota: planned 3, recomputed 2"),
    (_set(29, ratio="1.5"), "ratio: '1.5' is not an exact ratio in (0, 1]"),
    (_set(29, commitment="00" * 32), "commitment: the draw's is not the one made when the round was planned"),
    (lambda by: by[30]["data"]["record"]["strata"]["all"].update(selected=list(reversed(SELECTED))),
     "strata['all'].selected[0]: differs"),
    (lambda by: by[30]["data"]["record"].update(external_entropy="160"), "strata['all'].selected[0]: differs"),
    (lambda by: by[30]["data"]["record"].update(entropy_source="福彩3D 2024年第151期开奖号码"),
     f"entropy_source: the draw names '福彩3D 2024年第151期开奖号码', the commitment declared '{SOURCE}'"),
    (_set(29, entropy_source="福彩3D 2024年第149期开奖号码"),
     f"entropy_source: the draw names '{SOURCE}', the commitment declared '福彩3D 2024年第149期开奖号码'"),
    (lambda by: (by[29]["data"].update(entropy_source=""), by[30]["data"]["record"].update(entropy_source="")),
     "external_entropy: the commitment declared no entropy source, the draw used some"),
])
def test_the_verifier_names_what_changed(change: Any, expected: str) -> None:
    assert _changed(change) == expected


def test_an_inspection_day_changed_before_the_read_is_a_pool_difference() -> None:
    def moved(by: dict[int, Any]) -> None:  # l's findings dated a day after the period: ed9453c9 leaves the pool
        l_findings = next(ev for ev in by.values() if ev["topic"] == INS + "FindingsRecorded"
                          and ev["aggregate_id"] == _inspection_id("l"))
        l_findings["data"]["inspected_on"] = "2024-07-01"
    assert _changed(moved) == f"pool: recorded 7 ids, recomputed 6; first difference at [6]: recorded " \
                              f"'{T['ed9453c9']}', recomputed nothing"


def test_a_second_draw_and_a_version_1_round() -> None:
    items = vector_export()
    again = json.loads(json.dumps(items[-1]))
    again["position"] = 31
    [(_, _, difference)] = verifier.verify([*items, again])  # one line for the round, not an OK and a MISMATCH
    assert difference == "drawn: the round was drawn 2 times (positions 30, 31)"
    # version 1 (no position): the pool is read just before Planned, so m's findings (28) count: skipped, not a
    # mismatch (an inspection recorded between the read and the event could explain it) ...
    v1 = vector_export()
    del next(ev for ev in v1 if ev["position"] == 29)["data"]["position"]
    [(what, _, skipped)] = verifier.verify(v1)
    assert what == f"follow-up {ROUND} (version 1)" and isinstance(skipped, verifier.Skipped)
    assert skipped == "version 1 (no position): with the inspections just before it, pool: recorded 7 ids, " \
                      f"recomputed 8; first difference at [1]: recorded '{POOL[1]}', recomputed '{T['4c2fa29c']}'"
    # ... and without them it reproduces
    v1 = [ev for ev in v1 if ev["position"] != 28]
    assert verifier.verify(v1) == [(f"follow-up {ROUND} (version 1)", 1, None)]


@given(st.integers(0, 5000), st.integers(1, 1000), st.integers(1, 1000))
def test_the_quota_rule_is_the_projects_for_every_size_and_ratio(n: int, p: int, q: int) -> None:
    ratio = Fraction(min(p, q), max(p, q))
    text = ratio_text(ratio)
    assert verifier.follow_up_quota(text, n) == follow_up_quota(n, ratio)
    assert follow_up_quota(n, ratio) >= ratio * n and (n == 0 or follow_up_quota(n, ratio) - 1 < ratio * n)
