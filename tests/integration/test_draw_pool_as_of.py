"""The pool as of a position on the real store (SQLite and PostgreSQL): the freeze and the server's verification
read the read models' rows unchanged since the freeze position plus the targets and tasks changed after it,
folded from the log up to it (``services.usecases.draw_pool``). After a freeze, targets move out of and into
the county, are closed, reclassified, tagged (one tag holds a ``|``) and registered, and another task's draw is
withdrawn: the verification still answers match, and at every position since the freeze the as-of pool equals
the whole fold's (the reference) and its digest the frozen one at the freeze position."""

import uuid
from typing import Any

from domain.draw.sampler import pool_digest
from domain.tasks.overlap import OverlapError
from domain.tasks.pool import Pool
from tests.support.builders import a_target
from tests.support.scenario import ADMIN, AUDITOR, EEB_PLANNER, build_county, ctx

SOURCE = "福彩3D 2024年第059期开奖号码"
RULES = [{"supervision_class": c, "min_ratio": "50%"} for c in ("key", "general", "special")]


def _open(rt: Any, county: Any, scope: dict[str, Any], exclude: bool = True, **extra: Any) -> uuid.UUID:
    data = {"period": "2024Q2", "reason": "专项检查", "participants": {"hj-eeb": county.items["hj-eeb"][:1]},
            "rules": RULES, "scope": scope, "options": {"exclude_inspected_this_year": exclude}, **extra}
    try:
        return uuid.UUID(rt.task_opening.open_task(ctx(EEB_PLANNER), data).id)
    except OverlapError as exc:
        data = {**data, "overlaps": [f.id for f in exc.undeclared], "overlap_reason": "测试：再次抽取"}
        return uuid.UUID(rt.task_opening.open_task(ctx(EEB_PLANNER), data).id)


def _pool_fields(pool: Pool) -> tuple[Any, ...]:
    return (pool.rows, pool.counts, pool.in_scope, pool.inspected, pool.excluded, pool.off_site_first,
            pool.by_class)


def _head(rt: Any) -> int:
    return int(rt.app.recorder.max_notification_id() or 0)


def test_changes_after_the_freeze_leave_the_pool_and_its_verification_alone(runtime) -> None:
    rt = runtime
    county = build_county(rt, targets=24)
    t = county.targets
    elsewhere = [rt.app.register("target", a_target(county="辉县市", supervision_class="key", risk_class="A"),
                                 ctx(ADMIN)).id for _ in range(3)]
    rt.app.update("target", uuid.UUID(t[2]), {"tags": ["危化品", "a|b"]}, ctx(ADMIN))
    rt.app.update("target", uuid.UUID(t[3]), {"tags": ["positive_list"]}, ctx(ADMIN))
    other = _open(rt, county, {"county": "获嘉县"})  # another task of the year draws: the yearly exclusion
    rt.target_draws.commit(ctx(EEB_PLANNER), other, SOURCE)
    rt.target_draws.freeze(ctx(EEB_PLANNER), other)
    rt.target_draws.draw_targets(ctx(EEB_PLANNER), other, "581", SOURCE)
    excluded = len(rt.task_opening.task(other).selected)
    assert excluded > 0

    # (the tagged task does not exclude: its one tagged target may be among the other task's selection)
    tasks = {name: _open(rt, county, scope, exclude) for name, scope, exclude in (
        ("county", {"county": "获嘉县"}, True), ("tags", {"tags": ["a|b", "危化品"]}, False),
        ("classes", {"county": "获嘉县", "supervision_classes": ["key"], "industries": ["化工"]}, True))}
    frozen = {}
    for tid in tasks.values():
        rt.target_draws.commit(ctx(EEB_PLANNER), tid, SOURCE)
        frozen[tid] = rt.target_draws.freeze(ctx(EEB_PLANNER), tid).body
    position = frozen[tasks["county"]]["frozen_at"]
    assert frozen[tasks["county"]]["excluded"]["inspected_this_year"] == excluded

    # After the freezes: out of the county, into it, closed, reclassified, (un)tagged, registered, and the other
    # task's draw withdrawn (its selection no longer excludes anything).
    rt.app.update("target", uuid.UUID(t[0]), {"county": "辉县市"}, ctx(ADMIN))
    rt.app.update("target", uuid.UUID(elsewhere[0]), {"county": "获嘉县"}, ctx(ADMIN))
    rt.app.update("target", uuid.UUID(t[1]), {"status": "closed"}, ctx(ADMIN))
    rt.app.update("target", uuid.UUID(t[4]), {"supervision_class": "special"}, ctx(ADMIN))
    rt.app.update("target", uuid.UUID(t[2]), {"tags": []}, ctx(ADMIN))
    rt.app.update("target", uuid.UUID(t[5]), {"tags": ["a|b"], "industry": "食品"}, ctx(ADMIN))
    rt.app.register("target", a_target(supervision_class="key"), ctx(ADMIN))
    rt.target_draws.withdraw(ctx(EEB_PLANNER), other, "抽取有误")
    for tid in tasks.values():
        rt.target_draws.draw_targets(ctx(EEB_PLANNER), tid, "581", SOURCE)
    rt.app.update("target", uuid.UUID(t[6]), {"county": "辉县市"}, ctx(ADMIN))  # after the draws too

    for name, tid in tasks.items():
        out = rt.target_draws.verify_draw(AUDITOR, tid)
        assert out["match"] is True, (name, out)
        assert out["pool_digest"] == frozen[tid]["pool_digest"], name
        task = rt.task_opening.task(tid)
        at = rt.target_draws.pools.pool_at(task, frozen[tid]["frozen_at"])
        fold = rt.target_draws.pools.pool_by_fold(task, frozen[tid]["frozen_at"])
        assert _pool_fields(at) == _pool_fields(fold), name
        assert pool_digest([r.id for r in at.rows]) == frozen[tid]["pool_digest"], name

    # At every position from the first freeze to the head (read models at the head), both ways agree.
    task = rt.task_opening.task(tasks["county"])
    tagged = rt.task_opening.task(tasks["tags"])
    assert _head(rt) > position
    for p in range(position, _head(rt) + 1):
        for tk in (task, tagged):
            assert _pool_fields(rt.target_draws.pools.pool_at(tk, p)) == \
                _pool_fields(rt.target_draws.pools.pool_by_fold(tk, p)), (p, tk.scope)


def test_a_read_model_behind_the_freeze_position_is_brought_to_it_first(runtime) -> None:
    """The as-of pool needs the read models at or after the position: a verification finding them behind (a
    store whose projections were stopped) brings them there before it reads."""
    rt = runtime
    county = build_county(rt, targets=12)
    tid = _open(rt, county, {"county": "获嘉县"})
    rt.target_draws.commit(ctx(EEB_PLANNER), tid, SOURCE)
    frozen = rt.target_draws.freeze(ctx(EEB_PLANNER), tid).body
    rt.target_draws.draw_targets(ctx(EEB_PLANNER), tid, "581", SOURCE)
    task = rt.task_opening.task(tid)
    # A position ahead of the read models: a target registered and the read models not yet told.
    registered = rt.app.register("target", a_target(supervision_class="key"), ctx(ADMIN))
    head = _head(rt)
    at = rt.target_draws.pools.pool_at(task, head)
    assert all(p >= head for n, p in rt.runner.positions().items() if n in ("directory", "tasks"))
    assert registered.id in {r.id for r in at.rows}
    assert _pool_fields(at) == _pool_fields(rt.target_draws.pools.pool_by_fold(task, head))
    assert rt.target_draws.verify_draw(AUDITOR, tid)["pool_digest"] == frozen["pool_digest"]
