"""The pool as of a position (read-model rows unchanged since it, plus the aggregates changed after it folded up
to it: ``domain.draw.pool.pool_at``) equals the whole fold's (``PoolLog``, the reference) at EVERY position of
random histories: registrations, detail updates (a county change moves a target in and out of the scope),
reclassifications, risk changes, closures, deregistrations and reactivations, tags (one holding a ``|``), and
other tasks' draws, designations, new rounds and withdrawals (other years too).

The read model is modelled as the projection keeps it: each aggregate's state after all its events, with the
position of its last event; the database side (the rows, the log queries) is ``tests/integration/
test_draw_pool_as_of.py``'s."""

from dataclasses import dataclass, field
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from domain.directory import Target
from domain.draw.pool import (
    PoolLog,
    draws_at,
    fold_targets,
    fold_tasks,
    pool_at,
    pool_for,
    targets_at,
)
from domain.errors import InvalidInputError
from domain.tasks.pool import Pool
from domain.tasks.task import Task

COUNTIES = ["获嘉县", "辉县市"]
INDUSTRIES = ["化工", "食品", None]
TAGS = ["positive_list", "危化品", "a|b"]
PARTICIPANTS = [
    {"hj-eeb": ["i1"]},
    {"hj-eeb": ["i1", "i2"]},
    {"hj-eeb": ["i2"]},
    {"hj-amr": ["a1"], "hj-eeb": ["i1"]},
    {"hj-amr": ["a1"]},
]
SCOPES = [
    {},
    {"county": "获嘉县"},
    {"county": "辉县市", "industries": ["化工"]},
    {"tags": ["危化品", "a|b"]},
    {"supervision_classes": ["key", "general"], "risk_classes": ["A", "B"]},
]

target_step = st.one_of(
    st.tuples(st.just("register"), st.sampled_from(COUNTIES), st.sampled_from(INDUSTRIES),
              st.sampled_from(["key", "general", "special"]), st.sampled_from("ABCD"),
              st.lists(st.sampled_from(TAGS), unique=True, max_size=2), st.booleans()),
    st.tuples(st.just("county"), st.integers(0, 30), st.sampled_from(COUNTIES)),
    st.tuples(st.just("industry"), st.integers(0, 30), st.sampled_from(INDUSTRIES)),
    st.tuples(st.just("name"), st.integers(0, 30)),
    st.tuples(st.just("class"), st.integers(0, 30), st.sampled_from(["key", "general", "special"])),
    st.tuples(st.just("risk"), st.integers(0, 30), st.sampled_from("ABCD")),
    st.tuples(st.just("tag"), st.integers(0, 30), st.sampled_from(TAGS)),
    st.tuples(st.just("untag"), st.integers(0, 30), st.sampled_from(TAGS)),
    st.tuples(st.just("status"), st.integers(0, 30), st.sampled_from(["close", "deregister", "reactivate"])),
)
task_step = st.one_of(
    st.tuples(st.just("open"), st.sampled_from(range(len(PARTICIPANTS))), st.sampled_from([2024, 2024, 2023]),
              st.booleans()),
    st.tuples(st.just("draw"), st.integers(0, 10), st.lists(st.integers(0, 30), min_size=1, max_size=6)),
    st.tuples(st.just("round"), st.integers(0, 10)),
    st.tuples(st.just("withdraw"), st.integers(0, 10)),
)
mine = st.fixed_dictionaries({
    "participants": st.sampled_from(PARTICIPANTS[:4]),
    "scope": st.sampled_from(range(len(SCOPES))),
    "exclude": st.booleans(),
    "per_visit": st.booleans(),
    "weighted": st.booleans(),
    "full": st.booleans(),
})


@dataclass
class History:
    """The log (events with positions, in order) and the aggregates as the read models hold them now."""

    events: list[tuple[int, Any]] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    numbers: int = 0

    def record(self, agg: Any) -> None:
        for ev in agg.collect_events():
            self.events.append((len(self.events) + 1, ev))


def _target(h: History, s: tuple[Any, ...]) -> None:
    kind = s[0]
    if kind == "register":
        _, county, industry, sc, rc, tags, with_status = s
        data: dict[str, Any] = {"credit_code": f"91410724MA{len(h.targets):08d}", "name": "示例公司",
                                "county": county, "supervision_class": sc, "risk_class": rc, "tags": list(tags)}
        if industry is not None:
            data["industry"] = industry
        if with_status:  # a stored registration without a status reads as active
            data["status"] = "active"
        t = Target(data=data)
        h.targets.append(t)
        h.record(t)
        return
    if not h.targets:
        return
    t = h.targets[s[1] % len(h.targets)]
    if kind == "county":
        t._update_details({"county": s[2]})
    elif kind == "industry":
        t._update_details({"industry": s[2]})
    elif kind == "name":
        t._update_details({"name": "改名公司"})
    elif kind == "class":
        t._reclassify(s[2], t.data["supervision_class"])
    elif kind == "risk":
        t._change_risk(s[2], t.data["risk_class"])
    elif kind == "tag":
        if s[2] not in t.data["tags"]:
            t._tag(s[2])
    elif kind == "untag":
        t._untag(s[2])
    else:
        {"close": t._close, "deregister": t._deregister, "reactivate": t._reactivate}[s[2]]()
    h.record(t)


def _open(h: History, participants: dict[str, list[str]], year: int, case: bool = False,
          scope: dict[str, Any] | None = None, options: dict[str, Any] | None = None,
          rules: list[dict[str, Any]] | None = None) -> Task:
    h.numbers += 1
    lead = "hj-eeb" if "hj-eeb" in participants else "hj-amr"
    return Task.open(number=f"{year}-{h.numbers:03d}", name="随机抽查", lead=lead, period=f"{year}Q2",
                     category="general", origin="case" if case else "ad_hoc", reason="专项", participants=participants,
                     scope=scope or {}, options=options, rules=rules or [])


def _task(h: History, s: tuple[Any, ...]) -> None:
    kind = s[0]
    if kind == "open":
        task = _open(h, PARTICIPANTS[s[1]], s[2], case=s[3])
        h.tasks.append(task)
        h.record(task)
        return
    if not h.tasks:
        return
    task = h.tasks[s[1] % len(h.tasks)]
    ids = [str(t.id) for t in h.targets]
    if kind == "draw" and ids:
        selected = sorted({ids[i % len(ids)] for i in s[2]})
        if task.origin == "case":
            if task.state != "open":
                return
            task._designate(round=task.round + 1, targets=selected, seed="00" * 32)
        else:
            if task.state != "committed":
                task._commit(round=task.round + 1, commitment="00" * 32, entropy_source="")
            task._drawn(round=task.round, record={"selected": selected}, off_site_first=[])
    elif kind == "round" and task.origin != "case":
        task._commit(round=task.round + 1, commitment="11" * 32, entropy_source="")
    elif kind == "withdraw" and task.state != "open":
        task._withdraw(round=task.round, reason="抽取有误", stage=task.state)
    h.record(task)


def _spans(events: list[tuple[int, Any]]) -> dict[str, tuple[int, int]]:
    """Aggregate id -> (first position, last position) among ``events``."""
    out: dict[str, tuple[int, int]] = {}
    for position, ev in events:
        key = str(ev.originator_id)
        out[key] = (out.get(key, (position, position))[0], position)
    return out


def _row(data: dict[str, Any]) -> dict[str, Any]:
    """A target's data as ``projections.directory.queries.target_rows_until`` reads it from its row."""
    row = {"county": data.get("county"), "industry": data.get("industry"),
           "supervision_class": data["supervision_class"], "risk_class": data["risk_class"]}
    if data.get("status") is not None:
        row["status"] = data["status"]
    if data.get("tags"):
        row["tags"] = list(data["tags"])
    return row


def _as_of(h: History, task: Task, position: int, seen: int | None = None) -> Pool:
    """The pool as the server reads it at ``position`` with the read models at ``seen`` (>= ``position``; default
    the head: a read model may lag the log): their rows unchanged since ``position``, the aggregates changed after
    it (in the whole log) folded up to it."""
    seen = len(h.events) if seen is None else seen
    log_spans = _spans(h.events)
    model = PoolLog().apply_all(e for p, e in h.events if p <= seen)  # the read models' states at ``seen``
    spans = _spans([(p, e) for p, e in h.events if p <= seen])

    def changed(ids: list[str]) -> set[str]:  # existed at the position, an event after it (in the log)
        return {i for i in ids if log_spans[i][0] <= position < log_spans[i][1]}

    def events_until(ids: set[str]) -> list[Any]:
        return [e for p, e in h.events if p <= position and str(e.originator_id) in ids]

    changed_targets = changed([str(t.id) for t in h.targets])
    changed_tasks = changed([str(t.id) for t in h.tasks])
    county = task.scope.get("county")
    rows = [(str(oid), _row(t.data)) for oid, t in model.targets.items()
            if spans[str(oid)][1] <= position and (not county or t.data.get("county") == county)]
    draw_rows = [(str(oid), t.year, t.items, t.selected) for oid, t in model.tasks.items()
                 if spans[str(oid)][1] <= position and t.draw and t.year == task.year]
    targets = targets_at(rows, changed_targets, fold_targets(events_until(changed_targets)))
    draws = draws_at(draw_rows, changed_tasks, fold_tasks(events_until(changed_tasks)), task.year)
    return pool_at(task, targets, draws)


def _same(a: Pool, b: Pool) -> None:
    assert a.rows == b.rows
    assert a.counts == b.counts and a.in_scope == b.in_scope and a.inspected == b.inspected
    assert a.excluded == b.excluded and a.off_site_first == b.off_site_first and a.by_class == b.by_class


@settings(max_examples=150)
@given(steps=st.lists(st.one_of(target_step, target_step, task_step), min_size=1, max_size=40), me=mine)
def test_the_pool_as_of_any_position_is_the_folds(steps, me) -> None:
    h = History()
    options = {"exclude_inspected_this_year": me["exclude"], "exclusion_per_visit": me["per_visit"],
               "weighted": me["weighted"]}
    if me["weighted"]:
        options["risk_weights"] = {"A": 1, "B": 2, "C": 4, "D": 8}
    rules = [{"supervision_class": "key", "full": True}] if me["full"] else []
    try:
        task = _open(h, me["participants"], 2024, scope=SCOPES[me["scope"]], options=options, rules=rules)
    except InvalidInputError:  # weighted where weighting cannot matter
        assume(False)
    h.tasks.append(task)
    h.record(task)
    for s in steps:
        (_target if s[0] in {"register", "county", "industry", "name", "class", "risk", "tag", "untag", "status"}
         else _task)(h, s)
    for position in range(1, len(h.events) + 1):
        reference = pool_for(PoolLog().apply_all(e for p, e in h.events if p <= position), task)
        _same(_as_of(h, task, position), reference)
        lagging = position + (len(h.events) - position) // 2  # read models half way between it and the head
        _same(_as_of(h, task, position, lagging), reference)


def test_a_target_changed_after_the_position_is_taken_as_it_was() -> None:
    """One history by hand: a target moves out of the county after the freeze position, another is closed, a
    third is registered after it, another task's draw is withdrawn after it: the pool at the position is the
    one before those changes."""
    h = History()
    task = _open(h, {"hj-eeb": ["i1"]}, 2024, scope={"county": "获嘉县"},
                 options={"exclude_inspected_this_year": True, "exclusion_per_visit": True})
    h.tasks.append(task)
    h.record(task)
    for _ in range(3):
        _target(h, ("register", "获嘉县", "化工", "key", "A", [], True))
    _task(h, ("open", 0, 2024, False))
    _task(h, ("draw", 1, [2]))
    position = len(h.events)
    _target(h, ("county", 0, "辉县市"))
    _target(h, ("status", 1, "close"))
    _target(h, ("register", "获嘉县", "化工", "key", "A", [], True))
    _task(h, ("withdraw", 1))
    pool = _as_of(h, task, position)
    ids = [str(t.id) for t in h.targets]
    assert [r.id for r in pool.rows] == sorted(ids[:2])
    assert pool.excluded == {"inactive": 0, "inspected_this_year": 1, "kept_by_full_rule": 0}
    _same(pool, pool_for(PoolLog().apply_all(e for p, e in h.events if p <= position), task))
    assert ids[3] not in {r.id for r in pool.rows}  # registered after the position
