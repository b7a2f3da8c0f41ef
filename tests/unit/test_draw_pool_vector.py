"""The pool and seed-share test vectors of docs/verifying-a-draw.md, checked against the server's pool fold
(domain/draw/pool.py, fed domain events) and against the standalone verifier (docs/verifier/verify_draws.py,
fed the same history as export items): both must give the documented pool and digests."""

import hashlib
import importlib.util
import re
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from domain.directory import Target
from domain.draw.pool import PoolLog

ROOT = Path(__file__).resolve().parents[2]
SPEC = (ROOT / "docs" / "verifying-a-draw.md").read_text(encoding="utf-8")
_spec = importlib.util.spec_from_file_location("verify_draws", ROOT / "docs" / "verifier" / "verify_draws.py")
assert _spec is not None and _spec.loader is not None
verifier: Any = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(verifier)

CODES = ["91410724MA00000001", "91410724MA00000002", "91410724MA00000003", "91410724MA00000004",
         "91410724MA00000005", "91410724MA00000006"]
SCOPE = {"county": "获嘉县", "supervision_classes": ["key", "general"], "tags": []}
OPTIONS = {"exclude_inspected_this_year": True, "weighted": False, "risk_weights": {"A": 1, "B": 1, "C": 1, "D": 1}}


def _data(code: str, sc: str, rc: str) -> dict[str, Any]:
    return {"credit_code": code, "name": "获嘉县示例公司", "address": "", "county": "获嘉县", "industry": "化工",
            "supervision_class": sc, "risk_class": rc, "tags": [], "status": "active"}


HISTORY: list[tuple[int, str, dict[str, Any]]] = [  # (target index, event, data): the documented history
    (0, "Registered", _data(CODES[0], "key", "A")),
    (1, "Registered", _data(CODES[1], "key", "B")),
    (2, "Registered", _data(CODES[2], "general", "B")),
    (3, "Registered", _data(CODES[3], "general", "C")),
    (4, "Registered", _data(CODES[4], "special", "A")),
    (5, "Registered", _data(CODES[5], "general", "D")),
    (1, "DetailsUpdated", {"changes": {"county": "辉县市"}}),  # out of the county
    (2, "Closed", {}),  # closed
    (4, "Reclassified", {"supervision_class": "key", "previous": "special"}),  # now in scope
    (3, "Tagged", {"tag": "positive_list"}),  # stays, off-site first
    (5, "RiskClassChanged", {"risk_class": "A", "previous": "D"}),  # stratum general/A
]
OTHER_DRAW = 0  # another task of 2024 with a shared item drew target 0: excluded


def _ids() -> list[str]:
    return [str(Target.create_id({"credit_code": c})) for c in CODES]


def _server_pool(options: dict[str, Any] = OPTIONS, by_class: bool = True) -> Any:
    ids = _ids()
    targets: dict[int, Target] = {}
    events: list[Any] = []
    for i, kind, data in HISTORY:
        if kind == "Registered":
            targets[i] = Target(data=data)
        elif kind == "DetailsUpdated":
            targets[i]._update_details(data["changes"])
        elif kind == "Closed":
            targets[i]._close()
        elif kind == "Reclassified":
            targets[i]._reclassify(data["supervision_class"], data["previous"])
        elif kind == "Tagged":
            targets[i]._tag(data["tag"])
        elif kind == "RiskClassChanged":
            targets[i]._change_risk(data["risk_class"], data["previous"])
        events.extend(targets[i].collect_events())
    log = PoolLog().apply_all(events)
    other = SimpleNamespace(id=uuid.uuid4(), year=2024, items=["item-1"], draw={"record": {}},
                            selected=[ids[OTHER_DRAW]])  # another task's current draw, as the tasks fold keeps it
    log.tasks[other.id] = other  # type: ignore[assignment]
    return log.pool("mine", 2024, ["item-1"], SCOPE, options, by_class=by_class)


def _export_items(options: dict[str, Any] = OPTIONS) -> list[dict[str, Any]]:
    ids = _ids()
    items: list[dict[str, Any]] = []
    for n, (i, kind, data) in enumerate(HISTORY, start=1):
        topic = ("domain.directory:DirectoryEntry.DetailsUpdated" if kind == "DetailsUpdated"
                 else f"domain.directory:Target.{kind}")
        payload = {"data": data} if kind == "Registered" else data
        items.append({"position": n, "aggregate_id": ids[i], "topic": topic, "data": payload})
    other = str(uuid.uuid4())
    items.append({"position": 20, "aggregate_id": other, "topic": "domain.tasks.task:Task.Opened", "data": {
        "year": 2024, "participants": {"hj-eeb": ["item-1"]}, "scope": {}, "options": {}, "origin": "ad_hoc"}})
    items.append({"position": 21, "aggregate_id": other, "topic": "domain.tasks.task:Task.TargetsDrawn",
                  "data": {"round": 1, "record": {"selected": [ids[OTHER_DRAW]]}}})
    items.append({"position": 22, "aggregate_id": "mine", "topic": "domain.tasks.task:Task.Opened", "data": {
        "year": 2024, "participants": {"hj-eeb": ["item-1"]}, "scope": SCOPE, "options": options,
        "origin": "ad_hoc"}})
    return items


def _documented(name: str) -> str:
    found = re.search(rf"{name}: `([0-9a-f]{{64}})`", SPEC)
    assert found, f"the spec publishes no {name}"
    return found.group(1)


def test_the_pool_vector_is_what_the_server_and_the_verifier_compute() -> None:
    ids = _ids()
    expected = sorted([ids[3], ids[4], ids[5]])  # 0 excluded, 1 moved away, 2 closed
    pool = _server_pool()
    assert [r.id for r in pool.rows] == expected
    assert {r.id: r.stratum for r in pool.rows} == {ids[3]: "general/C", ids[4]: "key/A", ids[5]: "general/A"}
    assert pool.off_site_first == {ids[3]}
    assert pool.excluded == {"inactive": 1, "inspected_this_year": 1}
    assert pool.in_scope == {("key", "A"): 2, ("general", "C"): 1, ("general", "A"): 1}
    log = verifier.Log()
    for item in _export_items():
        log.apply(item)
    rebuilt = log.pool("mine")
    assert sorted(r[0] for r in rebuilt.rows) == expected
    assert rebuilt.excluded == pool.excluded and rebuilt.in_scope == pool.in_scope
    assert rebuilt.sizes == {"general/C": 1, "key/A": 1, "general/A": 1}
    digest = hashlib.sha256("\n".join(expected).encode()).hexdigest()
    assert verifier.pool_digest(expected).hex() == digest == _documented("pool vector digest")
    for i, code in enumerate(CODES):
        assert f"`{code}` → `{ids[i]}`" in SPEC


SHARE_SEED = bytes(range(32))
SHARES = {"hj-eeb": bytes([0xEE]) * 32, "hj-amr": bytes([0xAA]) * 32}


def test_the_seed_share_vector() -> None:
    expected = hashlib.sha256(b"dualrandom-shares-v1\x00" + SHARE_SEED + b"\x00hj-amr\x00" + SHARES["hj-amr"]
                              + b"\x00hj-eeb\x00" + SHARES["hj-eeb"]).hexdigest()
    assert verifier.draw_seed(SHARE_SEED, SHARES).hex() == expected == _documented("shares_seed")
    assert verifier.draw_seed(SHARE_SEED, {}) == SHARE_SEED
    from domain.draw import sampler

    if hasattr(sampler, "draw_seed"):  # the server's one function (added with the seed shares)
        assert sampler.draw_seed(SHARE_SEED, SHARES).hex() == expected


@given(st.dictionaries(st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=6),
                       st.binary(min_size=32, max_size=32), max_size=4))
def test_shares_are_taken_in_utf8_byte_order_whatever_the_mapping_order(shares: dict[str, bytes]) -> None:
    reordered = dict(reversed(list(shares.items())))
    assert verifier.draw_seed(SHARE_SEED, shares) == verifier.draw_seed(SHARE_SEED, reordered)


def _v2_round() -> tuple[dict[str, Any], dict[str, Any], list[tuple[str, str, int]], dict[str, int]]:
    """A version-2 record as the server makes it: the sampler keyed with the shares' seed."""
    from domain.draw.sampler import Candidate, draw

    pool = [(str(uuid.UUID(int=i)), "key/A" if i % 3 else "general/B", 1) for i in range(1, 31)]
    sizes = {"key/A": 20, "general/B": 10}
    result = draw(verifier.draw_seed(SHARE_SEED, SHARES), "福彩3D 2024059 3-1-4",
                  [Candidate(i, s, w) for i, s, w in pool], {"key/A": 5, "general/B": 2})
    record = {**result.as_record(), "seed": SHARE_SEED.hex(), "commitment": hashlib.sha256(SHARE_SEED).hexdigest(),
              "algorithm_version": 2, "seed_shares": {d: s.hex() for d, s in SHARES.items()},
              "share_commitments": {d: hashlib.sha256(s).hexdigest() for d, s in SHARES.items()}}
    frozen = {"pool_digest": record["pool_digest"], "strata": {s: {"pool_size": n} for s, n in sizes.items()}}
    return record, frozen, pool, sizes


def test_the_verifier_reproduces_a_version_2_draw_and_names_a_bad_share() -> None:
    record, frozen, pool, sizes = _v2_round()
    assert verifier.check(record, frozen, pool, sizes) is None
    bad = {**record, "seed_shares": {**record["seed_shares"], "hj-amr": "bb" * 32}}
    assert verifier.check(bad, frozen, pool, sizes).startswith("seed_shares['hj-amr']")
    missing = {**record, "seed_shares": {"hj-eeb": record["seed_shares"]["hj-eeb"]}}
    assert verifier.check(missing, frozen, pool, sizes).startswith("seed_shares['hj-amr']")
    assert verifier.check({**record, "algorithm_version": 1}, frozen, pool, sizes).startswith("algorithm_version")
    # The same shares keyed as version 1 (shares ignored) select other targets: the shares matter.
    as_v1 = {**record, "algorithm_version": 1, "seed_shares": {}, "share_commitments": {}}
    assert verifier.check(as_v1, frozen, pool, sizes) is not None


QUOTA_RULES: list[dict[str, Any]] = [{"supervision_class": "key", "min_ratio": "0.25", "once_a_year": True},
               {"supervision_class": "general", "min_ratio": "0.05", "min_per_inspector": 6, "combine": "larger"},
               {"supervision_class": "general", "risk_class": "D", "full": True},
               {"supervision_class": "special", "risk_class": "A", "min_ratio": "1/3"}]
QUOTA_VECTOR = {  # stratum: (in scope, done, minimum), as the spec's table lists them
    "key/A": (10, 4, 3), "key/C": (3, 3, 1), "general/A": (40, 0, 9), "general/B": (23, 0, 5),
    "general/C": (17, 0, 4), "general/D": (4, 0, 4), "special/A": (5, 0, 2), "special/B": (2, 0, 0)}


def _pair(stratum: str) -> tuple[str, str]:
    c, _, r = stratum.partition("/")
    return c, r


def test_the_quota_vector_is_what_the_rules_and_the_verifier_compute() -> None:
    from domain.planning.rules import compute_quotas, rules_from_dict

    in_scope = {_pair(s): v[0] for s, v in QUOTA_VECTOR.items()}
    done = {_pair(s): v[1] for s, v in QUOTA_VECTOR.items() if v[1]}
    server = compute_quotas(rules_from_dict(QUOTA_RULES), in_scope, 3, 4, 3, done)
    standalone = verifier.minimum_quotas(QUOTA_RULES, in_scope, 3, "2024Q3", done)
    for s, (n, d, q) in QUOTA_VECTOR.items():
        assert server[s].quota == standalone[_pair(s)] == q, s
        assert f"| `{s}` | {n} | {d} | {q} |" in SPEC, s


@given(st.dictionaries(st.tuples(st.sampled_from(["key", "general", "special"]), st.sampled_from("ABCD")),
                       st.integers(0, 60), max_size=12),
       st.integers(0, 12), st.integers(1, 4), st.sampled_from(["either", "larger"]), st.booleans())
def test_the_verifier_derives_the_quotas_the_rules_give_for_any_counts(
        in_scope: dict[tuple[str, str], int], inspectors: int, quarter: int, combine: str, once: bool) -> None:
    from domain.planning.rules import compute_quotas, rules_from_dict

    rules = [{"supervision_class": "key", "min_ratio": "1/3", "once_a_year": once},
             {"supervision_class": "general", "min_ratio": "0.05", "min_per_inspector": 2, "combine": combine},
             {"supervision_class": "general", "risk_class": "A", "min_per_inspector": 1},
             {"supervision_class": "special", "risk_class": "D", "full": True}]
    done = {k: n // 2 for k, n in in_scope.items()}
    server = compute_quotas(rules_from_dict(rules), in_scope, inspectors, 4, quarter, done)
    standalone = verifier.minimum_quotas(rules, in_scope, inspectors, f"2024Q{quarter}", done)
    assert {k: server["/".join(k)].quota for k in in_scope} == standalone


def test_an_older_weighted_freeze_with_risk_strata_still_verifies_on_the_server_and_the_verifier() -> None:
    """Weighted freezes made before weighted strata were the supervision class named them ``<class>/<risk>``:
    both the server (``legacy_weighted``) and the standalone verifier tell them apart by those names."""
    from domain.draw.pool import legacy_weighted
    from domain.draw.sampler import Candidate, draw, verify

    options = {**OPTIONS, "weighted": True, "risk_weights": {"A": 1, "B": 2, "C": 4, "D": 8}}
    old = _server_pool(options, by_class=False)
    assert {r.stratum for r in old.rows} == {"general/A", "general/C", "key/A"}
    quotas = dict.fromkeys({r.stratum for r in old.rows}, 1)
    record = draw(SHARE_SEED, "", [Candidate(r.id, r.stratum, r.weight) for r in old.rows], quotas,
                  weighted=True).as_record()
    sizes = {s: sum(1 for r in old.rows if r.stratum == s) for s in quotas}
    frozen = {"pool_digest": record["pool_digest"], "strata": {s: {"pool_size": n} for s, n in sizes.items()}}
    assert legacy_weighted(frozen) and verifier.legacy_weighted(frozen)
    server = _server_pool(options, by_class=not legacy_weighted(frozen))
    assert verify(record, server.rows).match is True
    assert verify(record, _server_pool(options).rows).match is False  # read with today's strata: no match
    log = verifier.Log()
    for item in _export_items(options):
        log.apply(item)
    rebuilt = log.pool("mine", by_class=not verifier.legacy_weighted(frozen))
    assert verifier.check(record, frozen, rebuilt.rows, rebuilt.sizes) is None
    today = log.pool("mine")
    assert {s for _, s, _ in today.rows} == {"general", "key"}


VISIT_CODES = [f"91410724MA0000001{i}" for i in range(1, 6)]  # V1..V5
VISIT_RISK = ["A", "A", "A", "A", "B"]
VISIT_DRAWS = [  # (lead, participants, selected V indices): other tasks' current draws of 2024
    ("hj-amr", {"hj-amr": ["a1"], "hj-eeb": ["i1"]}, [0, 1, 4]),
    ("hj-eeb", {"hj-eeb": ["i2"]}, [1, 2, 4]),
    ("hj-amr", {"hj-amr": ["a1"]}, [3]),
]
VISIT_TASK: dict[str, Any] = {"lead": "hj-eeb", "participants": {"hj-eeb": ["i1", "i2"], "hj-amr": ["a1"]},
              "rules": [{"supervision_class": "key", "risk_class": "B", "full": True, "min_ratio": None},
                        {"supervision_class": "key", "min_ratio": "0.5"}]}


def _visit_ids() -> list[str]:
    return [str(Target.create_id({"credit_code": c})) for c in VISIT_CODES]


def _visit_export(per_visit: bool) -> list[dict[str, Any]]:
    ids = _visit_ids()
    items: list[dict[str, Any]] = [
        {"position": n, "aggregate_id": ids[n - 1], "topic": "domain.directory:Target.Registered",
         "data": {"data": _data(code, "key", VISIT_RISK[n - 1])}} for n, code in enumerate(VISIT_CODES, start=1)]
    for n, (lead, participants, selected) in enumerate(VISIT_DRAWS):
        other = f"other-{n}"
        items.append({"position": 10 + 2 * n, "aggregate_id": other, "topic": "domain.tasks.task:Task.Opened",
                      "data": {"year": 2024, "lead": lead, "participants": participants, "scope": {},
                               "options": {}, "origin": "ad_hoc"}})
        items.append({"position": 11 + 2 * n, "aggregate_id": other, "topic": "domain.tasks.task:Task.TargetsDrawn",
                      "data": {"round": 1, "record": {"selected": [ids[i] for i in selected]}}})
    options = {**OPTIONS, "exclusion_per_visit": True} if per_visit else OPTIONS
    items.append({"position": 30, "aggregate_id": "mine", "topic": "domain.tasks.task:Task.Opened", "data": {
        "year": 2024, "period": "2024Q2", "scope": {"county": "获嘉县"}, "options": options, "origin": "ad_hoc",
        **VISIT_TASK}})
    return items


def test_the_per_visit_vector_is_what_the_server_and_the_verifier_compute() -> None:
    ids = _visit_ids()
    log = PoolLog()
    log.targets.update({uuid.UUID(i): Target(data=_data(c, "key", r)) for i, c, r in zip(ids, VISIT_CODES, VISIT_RISK)})
    for n, (_, participants, selected) in enumerate(VISIT_DRAWS):
        union = sorted({i for v in participants.values() for i in v})
        other = SimpleNamespace(id=uuid.UUID(int=n + 1), year=2024, items=union, draw={"record": {}},
                                selected=[ids[i] for i in selected])
        log.tasks[other.id] = other  # type: ignore[assignment]
    for per_visit, expected, excluded in (
            (True, [0, 2, 3, 4], {"inactive": 0, "inspected_this_year": 1, "kept_by_full_rule": 1}),
            (False, [], {"inactive": 0, "inspected_this_year": 5})):
        options = {**OPTIONS, "exclusion_per_visit": per_visit} if per_visit else OPTIONS
        server = log.pool("mine", 2024, ["a1", "i1", "i2"], {"county": "获嘉县"}, options,
                          lead_items=["i1", "i2"], rules=VISIT_TASK["rules"])
        standalone = verifier.Log()
        for item in _visit_export(per_visit):
            standalone.apply(item)
        rebuilt = standalone.pool("mine")
        want = sorted(ids[i] for i in expected)
        assert [r.id for r in server.rows] == want == sorted(r[0] for r in rebuilt.rows), per_visit
        assert server.excluded == excluded == rebuilt.excluded, per_visit
    assert verifier.pool_digest(sorted(ids[i] for i in (0, 2, 3, 4))).hex() == _documented("per-visit vector digest")
    for i, code in enumerate(VISIT_CODES):
        assert f"`{code}` → `{ids[i]}`" in SPEC
