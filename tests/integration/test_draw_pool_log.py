"""One pool computation (SQLite and PostgreSQL): over random directory histories (every target event kind),
overlapping tasks, withdrawn rounds and case tasks, every round ever drawn verifies as a match, and any change
to the pool, a stratum, the seed or the selection is reported with the first difference."""

import copy
import hashlib
import importlib.util
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from domain.draw.sampler import EmptyPoolError
from domain.errors import InvalidInputError, PermissionDeniedError
from domain.tasks.overlap import OverlapError
from services.audit.log import export_chunks
from tests.support.builders import a_target
from tests.support.draws import commit_shares, reveal_shares
from tests.support.scenario import ADMIN, AMR_PLANNER, AUDITOR, EEB_PLANNER, build_county, ctx

_spec = importlib.util.spec_from_file_location(
    "verify_draws", Path(__file__).resolve().parents[2] / "docs" / "verifier" / "verify_draws.py")
assert _spec is not None and _spec.loader is not None
verifier: Any = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(verifier)

SOURCE = "福彩3D 2024年第059期开奖号码"
RULES = [{"supervision_class": c, "min_ratio": "50%"} for c in ("key", "general", "special")]
VALUES: dict[str, list[Any]] = {
    "county": ["获嘉县", "辉县市"],  # DetailsUpdated
    "industry": ["化工", "食品"],  # DetailsUpdated
    "name": ["获嘉县甲公司", "获嘉县乙公司"],  # DetailsUpdated, no effect on a pool
    "status": ["active", "closed", "deregistered"],  # Closed, Deregistered, Reactivated
    "supervision_class": ["key", "general", "special"],  # Reclassified
    "risk_class": ["A", "B", "C", "D"],  # RiskClassChanged
    "tags": [[], ["positive_list"], ["危化品"], ["positive_list", "危化品"]],  # Tagged, Untagged
}
SCOPES = [
    {"county": "获嘉县"},
    {"county": "获嘉县", "industries": ["化工"]},
    {"tags": ["危化品"]},
    {"supervision_classes": ["key", "general"], "risk_classes": ["A", "B"]},
]

change = st.tuples(st.just("change"), st.integers(0, 9), st.sampled_from(sorted(VALUES)), st.integers(0, 3))
register = st.tuples(st.just("register"), st.sampled_from(["key", "general", "special"]), st.sampled_from("ABCD"))
VARIANTS = ["plain", "full", "weighted", "two_items", "joint_amr", "joint_eeb"]
"""plain: hj-eeb, its first item; full: a 100% rule for key (wins over the yearly exclusion); weighted: risk
weights, strata by supervision class; two_items: hj-eeb brings both its items (a target goes only once drawn for
both); joint_amr: hj-amr leads, hj-eeb brings its first item (shares one item with hj-eeb's own tasks; seed
shares, version 2); joint_eeb: hj-eeb leads with hj-amr (seed shares)."""
random_task = st.tuples(st.just("task"), st.integers(0, len(SCOPES) - 1), st.booleans(),
                        st.sampled_from(["keep", "withdraw", "redraw"]), st.sampled_from(VARIANTS))
case_task = st.tuples(st.just("case"), st.lists(st.integers(0, 9), min_size=1, max_size=3))
step = st.one_of(change, change, register, random_task, case_task)


def _variant(county: Any, variant: str) -> tuple[Any, dict[str, Any]]:
    """The lead planner and the opening fields of one task variant (see VARIANTS)."""
    eeb, amr = county.items["hj-eeb"], county.items["hj-amr"]
    if variant == "full":
        return EEB_PLANNER, {"rules": [{"supervision_class": "key", "full": True}, *RULES[1:]]}
    if variant == "weighted":
        return EEB_PLANNER, {"options": {"weighted": True, "risk_weights": {"A": 1, "B": 2, "C": 4, "D": 8}}}
    if variant == "two_items":  # and every kind of quota bound: once a year, per inspector (the larger)
        return EEB_PLANNER, {"participants": {"hj-eeb": eeb}, "rules": [
            {"supervision_class": "key", "min_ratio": "25%", "once_a_year": True},
            {"supervision_class": "general", "min_ratio": "5%", "min_per_inspector": 1, "combine": "larger"},
            {"supervision_class": "special", "risk_class": "A", "min_ratio": "1/3"}]}
    if variant == "joint_amr":
        return AMR_PLANNER, {"participants": {"hj-amr": amr[:1], "hj-eeb": eeb[:1]}}
    if variant == "joint_eeb":
        return EEB_PLANNER, {"participants": {"hj-eeb": eeb[:1], "hj-amr": amr[1:]}}
    return EEB_PLANNER, {}


def _open(rt: Any, county: Any, scope: dict[str, Any], exclude: bool, variant: str = "plain",
          **extra: Any) -> uuid.UUID | None:
    planner, fields = _variant(county, variant)
    options = {"exclude_inspected_this_year": exclude, **fields.pop("options", {})}
    data = {"period": "2024Q2", "reason": "专项检查", "participants": {"hj-eeb": county.items["hj-eeb"][:1]},
            "rules": RULES, "scope": scope, "options": options, **fields, **extra}
    try:
        try:
            return uuid.UUID(rt.task_opening.open_task(ctx(planner), data).id)
        except OverlapError as exc:  # the histories draw the same ground again on purpose: declared
            data = {**data, "overlaps": [f.id for f in exc.undeclared], "overlap_reason": "随机历史：再次抽取"}
            return uuid.UUID(rt.task_opening.open_task(ctx(planner), data).id)
    except InvalidInputError:  # a weighted task where weighting cannot matter (one risk class in scope ...)
        if variant != "weighted":
            raise
        return None


def _draw(rt: Any, tid: uuid.UUID) -> bool:
    lead = ctx(AMR_PLANNER if rt.task_opening.task(tid).lead == "hj-amr" else EEB_PLANNER)
    rt.target_draws.commit(lead, tid, SOURCE)
    commit_shares(rt, tid)
    try:
        rt.target_draws.freeze(lead, tid)
    except EmptyPoolError:
        rt.target_draws.withdraw(lead, tid, "空池")
        return False
    reveal_shares(rt, tid)
    rt.target_draws.draw_targets(lead, tid, "314", SOURCE)
    return True


def _apply(rt: Any, county: Any, targets: list[str], s: tuple[Any, ...]) -> uuid.UUID | None:
    kind = s[0]
    if kind == "change":
        _, i, name, v = s
        values = VALUES[name]
        rt.app.update("target", uuid.UUID(targets[i % len(targets)]), {name: values[v % len(values)]}, ctx(ADMIN))
    elif kind == "register":
        targets.append(rt.app.register("target", a_target(supervision_class=s[1], risk_class=s[2]), ctx(ADMIN)).id)
    elif kind == "task":
        _, scope, exclude, then, variant = s
        tid = _open(rt, county, SCOPES[scope], exclude, variant)
        if tid is None:
            return None
        if _draw(rt, tid) and then != "keep":
            lead = AMR_PLANNER if variant == "joint_amr" else EEB_PLANNER
            rt.target_draws.withdraw(ctx(lead), tid, "抽取有误")
            if then == "redraw":
                _draw(rt, tid)
        return tid
    else:
        tid = _open(rt, county, {"county": "获嘉县"}, True, origin="case")
        assert tid is not None
        rt.task_opening.designate(ctx(EEB_PLANNER), tid, sorted({targets[i % len(targets)] for i in s[1]}))
        return tid
    return None


def _drawn_rounds(rt: Any, tid: uuid.UUID) -> list[dict[str, Any]]:
    return [r for r in rt.target_draws.rounds(AUDITOR, tid)["rounds"] if r["stage"] == "drawn" and not r["designated"]]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=st.lists(step, min_size=1, max_size=14))
@example(history=[  # every variant at least once: each pool rule and seed shares, whatever hypothesis generates
    ("task", 0, True, "keep", "plain"), ("task", 0, True, "keep", "joint_amr"), ("task", 0, True, "keep", "two_items"),
    ("task", 0, True, "keep", "full"), ("change", 3, "risk_class", 3), ("task", 0, True, "redraw", "weighted"),
    ("task", 0, True, "keep", "joint_eeb")])
def test_every_round_of_every_task_verifies_over_any_history(runtime, history) -> None:
    if not hasattr(runtime, "_county"):
        runtime._county = build_county(runtime, targets=10)
        runtime._tasks = []
    county, tasks = runtime._county, runtime._tasks
    targets = list(county.targets)
    for s in history:
        tid = _apply(runtime, county, targets, s)
        if tid is not None:
            tasks.append(tid)
    rounds = 0
    for tid in tasks:
        for r in _drawn_rounds(runtime, tid):
            out = runtime.target_draws.verify_draw(AUDITOR, tid, r["round"])
            assert out["match"] is True, (r, out)
            assert out["status"] == r["status"]
            rounds += 1
    # The standalone verifier, written from the spec alone, agrees on every round over the same log.
    lines = b"".join(export_chunks(runtime.app.recorder)).decode().splitlines()
    results = verifier.verify(verifier.read_export(lines))
    assert len(results) == rounds and [d for _, _, d in results if d is not None] == [], results


def test_each_pool_rule_and_seed_shares_verify_in_the_server_and_the_verifier(runtime) -> None:
    """The per-visit exclusion, the full-rule keep, weighted strata and version 2 each happen, and verify."""
    county = build_county(runtime, targets=12)
    tids = {v: _apply(runtime, county, list(county.targets), ("task", 0, v != "plain", "keep", v))
            for v in ("weighted", "joint_eeb", "plain", "joint_amr", "two_items", "full")}
    task = {v: runtime.task_opening.task(t) for v, t in tids.items() if t is not None}
    assert all(t.state == "drawn" for t in task.values()) and len(task) == 6, {v: t.state for v, t in task.items()}
    # hj-eeb's first item was drawn (weighted, joint_eeb, plain, joint_amr), its second never: all stay in.
    assert task["two_items"].frozen["excluded"] == {"inactive": 0, "inspected_this_year": 0, "kept_by_full_rule": 0}
    assert task["full"].frozen["excluded"]["kept_by_full_rule"] >= 1  # key targets plain drew for the same item
    weighted = task["weighted"].draw["record"]["strata"]
    assert weighted and all("/" not in name for name in weighted)  # one stratum per supervision class
    assert [task[v].draw["record"]["algorithm_version"] for v in ("plain", "joint_amr", "joint_eeb")] == [1, 2, 2]
    for t in task.values():
        assert runtime.target_draws.verify_draw(AUDITOR, t.id)["match"] is True
    lines = b"".join(export_chunks(runtime.app.recorder)).decode().splitlines()
    assert [(w, d) for w, _, d in verifier.verify(verifier.read_export(lines))] == [
        (f"task {t.id}", None) for t in task.values()]


def test_details_updated_before_the_freeze_verifies(runtime) -> None:
    """The reported false alarm: a county or industry change before the freeze was dropped by the replay."""
    county = build_county(runtime, targets=12)
    runtime.app.update("target", uuid.UUID(county.targets[0]), {"county": "辉县市"}, ctx(ADMIN))
    runtime.app.update("target", uuid.UUID(county.targets[4]), {"industry": "食品"}, ctx(ADMIN))
    tid = _open(runtime, county, {"county": "获嘉县", "industries": ["化工"]}, True)
    assert tid is not None
    assert _draw(runtime, tid)
    assert runtime.task_opening.task(tid).frozen["pool_size"] == 10
    assert runtime.target_draws.verify_draw(ADMIN, tid)["match"] is True


def _tamper(r: dict[str, Any], what: str) -> str:
    """Change one thing in a drawn round; returns the prefix the first difference must start with."""
    rec, frozen = r["record"], r["frozen"]
    name = sorted(n for n, s in rec["strata"].items() if s["selected"])[0]
    if what == "seed":
        rec["seed"] = hashlib.sha256(b"another seed").hexdigest()
        return "commitment"
    if what == "selection":
        rec["strata"][name]["selected"][0] = str(uuid.UUID(int=0))
        return f"strata[{name!r}].selected[0]"
    if what == "order":
        rec["selected"] = list(reversed(rec["selected"]))
        return "selected[0]"
    if what == "quota":
        rec["strata"][name]["quota"] -= 1
        return f"strata[{name!r}]"
    if what == "stratum":
        frozen["strata"][name]["pool_size"] += 1
        frozen["pool_digest"] = "0" * 64
        return f"strata[{name!r}].pool_size: frozen"
    assert what == "pool"  # the record's freeze position moved back, before a target entered the pool: the chain
    rec["freeze_position"] = 1  # (section 13.1) is checked first, and no freeze of the round is at position 1
    return "freeze_position: no freeze of this round at the recorded position"


@pytest.mark.parametrize("what", ["seed", "selection", "order", "quota", "stratum", "pool"])
def test_any_change_is_reported_with_the_first_difference(runtime, what) -> None:
    county = build_county(runtime, targets=16)
    tid = _open(runtime, county, {"county": "获嘉县"}, True)
    assert tid is not None
    assert _draw(runtime, tid)
    task = runtime.task_opening.task(tid)
    r = copy.deepcopy(runtime.target_draws.read_round(AUDITOR, tid, task.round))
    assert runtime.target_draws.check_round(task, r)["match"] is True
    expected = _tamper(r, what)
    out = runtime.target_draws.check_round(task, r)
    assert out["match"] is False and out["first_difference"].startswith(expected), out


def test_withdrawn_rounds_stay_readable_and_verifiable_by_admins_and_auditors(runtime) -> None:
    county = build_county(runtime, targets=12)
    tid = _open(runtime, county, {"county": "获嘉县"}, True)
    assert tid is not None
    assert _draw(runtime, tid)
    first = runtime.task_opening.task(tid).selected
    runtime.target_draws.withdraw(ctx(EEB_PLANNER), tid, "抽取有误")
    assert _draw(runtime, tid)
    listed = runtime.target_draws.rounds(ADMIN, tid)
    assert [(r["round"], r["status"], r["stage"]) for r in listed["rounds"]] == [
        (1, "withdrawn", "drawn"), (2, "current", "drawn")]
    assert listed["rounds"][0]["withdrawn_reason"] == "抽取有误"
    assert runtime.target_draws.read_round(AUDITOR, tid, 1)["record"]["selected"] == first
    for who in (ADMIN, AUDITOR, EEB_PLANNER):
        assert runtime.target_draws.verify_draw(who, tid, 1)["match"] is True
        assert runtime.target_draws.verify_draw(who, tid)["round"] == 2
    with pytest.raises(PermissionDeniedError):  # a planner of a department outside the task
        runtime.target_draws.rounds(AMR_PLANNER, tid)
    with pytest.raises(PermissionDeniedError):
        runtime.target_draws.verify_draw(AMR_PLANNER, tid, 1)
