"""The chain of a round in the standalone verifier (docs/verifier/verify_draws.py; docs/verifying-a-draw.md
section 13, "The chain"): over synthetic exports of one joint task's round, drawn with the server's sampler, the
untouched round reproduces, and any change to what was recorded before the freeze (the seed's commitment, its
entropy source, a share's commitment), to a revealed share, or to the order of these events around the freeze and
the draw is a mismatch naming it."""

import hashlib
import importlib.util
import json
import math
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from domain.draw.sampler import Candidate, commitment, draw, pool_digest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("verify_draws", ROOT / "docs" / "verifier" / "verify_draws.py")
assert _spec is not None and _spec.loader is not None
verifier: Any = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(verifier)

TASK = "253bc9fa-0dda-55fa-8ceb-e92d18129e58"
T = "domain.tasks.task:Task."
DEPARTMENTS = ("hj-amr", "hj-eeb")


def _event(position: int, aggregate: str, topic: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"position": position, "aggregate_id": aggregate, "topic": topic, "data": data}


def _round(n: int, seed: bytes, shares: dict[str, bytes], entropy: str, source: str) -> list[dict[str, Any]]:
    """A joint task's round: n key/A targets, commitments, the freeze (quota ceil(n/2)), reveals, the draw.
    Positions step by 10, so that an event can be moved between two others."""
    targets = [f"00000000-0000-4000-8000-{i:012d}" for i in range(n)]
    items = [_event(10 * (i + 1), t, "domain.directory:Target.Registered", {"data": {
        "county": "获嘉县", "industry": "化工", "supervision_class": "key", "risk_class": "A", "tags": []}})
        for i, t in enumerate(targets)]
    p = 10 * n
    items.append(_event(p + 10, TASK, T + "Opened", {
        "year": 2024, "period": "2024Q2", "lead": "hj-eeb", "participants": {"hj-eeb": ["i1"], "hj-amr": ["i2"]},
        "rules": [{"supervision_class": "key", "min_ratio": "1/2"}], "scope": {"county": "获嘉县"},
        "options": {"exclude_inspected_this_year": False, "weighted": False}, "origin": "ad_hoc"}))
    items.append(_event(p + 20, TASK, T + "SeedCommitted", {"round": 1, "commitment": commitment(seed),
                                                           "entropy_source": source}))
    for k, d in enumerate(DEPARTMENTS):
        items.append(_event(p + 30 + 10 * k, TASK, T + "ShareCommitted", {
            "round": 1, "department": d, "commitment": hashlib.sha256(shares[d]).hexdigest()}))
    quota = math.ceil(n / 2)
    digest = pool_digest(targets)
    items.append(_event(p + 60, TASK, T + "PoolFrozen", {
        "round": 1, "position": p + 40, "pool_digest": digest, "pool_size": n,
        "strata": {"key/A": {"pool_size": n, "in_scope": n, "quota": quota}},
        "excluded": {"inactive": 0, "inspected_this_year": 0}}))
    for k, d in enumerate(DEPARTMENTS):
        items.append(_event(p + 70 + 10 * k, TASK, T + "ShareRevealed",
                            {"round": 1, "department": d, "share": shares[d].hex()}))
    result = draw(seed, entropy, [Candidate(t, "key/A") for t in targets], {"key/A": quota}, shares=shares)
    record = {**result.as_record(), "entropy_source": source, "freeze_position": p + 40}
    items.append(_event(p + 100, TASK, T + "TargetsDrawn", {"round": 1, "record": record, "off_site_first": []}))
    return items


def _find(items: list[dict[str, Any]], kind: str, department: str | None = None) -> dict[str, Any]:
    return next(i for i in items if i["topic"] == T + kind and i["data"].get("department") == department)


def _moved(items: list[dict[str, Any]], item: dict[str, Any], position: int) -> list[dict[str, Any]]:
    item["position"] = position
    return sorted(items, key=lambda i: i["position"])


OTHER = hashlib.sha256(b"another").hexdigest()


def _tamper(items: list[dict[str, Any]], how: str, d: str) -> tuple[list[dict[str, Any]], str]:
    """One change; returns the export and the start of the difference the verifier must report."""
    seed, frozen = _find(items, "SeedCommitted"), _find(items, "PoolFrozen")
    drawn = _find(items, "TargetsDrawn")
    share, revealed = _find(items, "ShareCommitted", d), _find(items, "ShareRevealed", d)
    if how == "seed_commitment":
        seed["data"]["commitment"] = OTHER
        return items, "commitment: the draw record's "
    if how == "entropy_source":
        seed["data"]["entropy_source"] += "（改）"
        return items, "entropy_source: the draw record's "
    if how == "share_commitment":
        share["data"]["commitment"] = OTHER
        return items, f"share_commitments[{d!r}]: the draw record's "
    if how == "revealed_share":
        revealed["data"]["share"] = OTHER
        return items, f"seed_shares[{d!r}]: the share revealed at position {revealed['position']} does not hash"
    if how == "record_share":  # the record names another share than the one revealed
        drawn["data"]["record"]["seed_shares"][d] = OTHER
        return items, f"seed_shares[{d!r}]: the draw record's share is not the one revealed at position "
    if how == "no_seed":
        return [i for i in items if i is not seed], "commitment: no Task.SeedCommitted of this round"
    if how == "seed_of_another_round":
        seed["data"]["round"] = 2
        return items, "commitment: no Task.SeedCommitted of this round"
    if how == "committed_twice":
        again = json.loads(json.dumps(seed))
        return _moved([*items, again], again, frozen["position"] - 5), "commitment: the round was committed 2 times"
    if how == "seed_after_freeze":
        return _moved(items, seed, frozen["position"] + 5), \
            f"commitment: Task.SeedCommitted at position {frozen['position'] + 5} is not before the freeze"
    if how == "share_after_freeze":
        return _moved(items, share, frozen["position"] + 5), \
            f"share_commitments[{d!r}]: Task.ShareCommitted at position {frozen['position'] + 5} is not before"
    if how == "reveal_before_freeze":
        return _moved(items, revealed, frozen["position"] - 5), \
            f"seed_shares[{d!r}]: Task.ShareRevealed at position {frozen['position'] - 5} is not after the freeze"
    if how == "reveal_after_draw":
        return _moved(items, revealed, drawn["position"] + 5), \
            f"seed_shares[{d!r}]: in the draw record, but {d} revealed no share before the draw"
    if how == "freeze_after_draw":
        return _moved(items, frozen, drawn["position"] + 5), "freeze_position: no freeze of this round"
    assert how == "frozen_twice"
    again = json.loads(json.dumps(frozen))
    return _moved([*items, again], again, frozen["position"] + 5), "freeze_position: the round was frozen 2 times"


CHANGES = ["seed_commitment", "entropy_source", "share_commitment", "revealed_share", "record_share", "no_seed",
           "seed_of_another_round", "committed_twice", "seed_after_freeze", "share_after_freeze",
           "reveal_before_freeze", "reveal_after_draw", "freeze_after_draw", "frozen_twice"]
rounds = st.tuples(st.integers(1, 12), st.binary(min_size=32, max_size=32),
                   st.fixed_dictionaries({d: st.binary(min_size=32, max_size=32) for d in DEPARTMENTS}),
                   st.text(max_size=12), st.sampled_from(["", "福彩3D 2024年第059期开奖号码"]))


@given(rounds, st.sampled_from(CHANGES), st.sampled_from(DEPARTMENTS))
def test_any_change_to_the_chain_is_a_mismatch_naming_it(round_: tuple[Any, ...], how: str, d: str) -> None:
    items = _round(*round_)
    assert verifier.verify(items) == [(f"task {TASK}", 1, None)]
    tampered, expected = _tamper(json.loads(json.dumps(items)), how, d)
    ((what, number, difference),) = verifier.verify(tampered)
    assert (what, number) == (f"task {TASK}", 1)
    assert difference is not None and difference.startswith(expected), (how, difference)


def test_an_older_round_without_an_entropy_source_still_verifies() -> None:
    """SeedCommitted version 1 and records made before the entropy source lack it: both read as ""."""
    items = _round(5, bytes(32), {d: bytes([k + 1]) * 32 for k, d in enumerate(DEPARTMENTS)}, "317", "")
    del _find(items, "SeedCommitted")["data"]["entropy_source"]
    del _find(items, "TargetsDrawn")["data"]["record"]["entropy_source"]
    assert verifier.verify(items) == [(f"task {TASK}", 1, None)]
    _find(items, "SeedCommitted")["data"]["entropy_source"] = "福彩3D"
    assert verifier.verify(items)[0][2] == "entropy_source: the draw record's '' is not the one declared with the " \
        f"commitment ('福彩3D' at position {_find(items, 'SeedCommitted')['position']})"


# -- the server's rule (domain/draw/chain.py), an implementation of its own, against the verifier ----------------
def _domain_events(items: list[dict[str, Any]]) -> list[tuple[int, Any]]:
    """The export's chain events and draws as the task's domain events, with their log positions."""
    import datetime as dt
    import uuid

    from domain.tasks.task import Task

    out = []
    for n, i in enumerate(items, start=1):
        kind = i["topic"][len(T):] if i["topic"].startswith(T) else ""
        if kind in ("SeedCommitted", "PoolFrozen", "ShareCommitted", "ShareRevealed", "TargetsDrawn"):
            data = dict(i["data"])
            if kind == "SeedCommitted":
                data.setdefault("entropy_source", "")  # the upcaster's reading of version 1
            event = getattr(Task, kind)(originator_id=uuid.UUID(TASK), originator_version=n,
                                        timestamp=dt.datetime(2024, 5, 1, tzinfo=dt.UTC), **data)
            out.append((i["position"], event))
    return out


def _server(items: list[dict[str, Any]]) -> tuple[str | None, list[str]]:
    from domain.draw.chain import chain_checks, first_difference

    record = _find(items, "TargetsDrawn")["data"]["record"]
    checks = chain_checks(_domain_events(items), 1, record)
    assert [c.name for c in checks] == ["freeze", "commitment", "entropy_source", "share_commitments", "seed_shares"]
    return first_difference(checks), [c.status for c in checks]


@given(rounds, st.sampled_from(CHANGES), st.sampled_from(DEPARTMENTS))
def test_the_servers_chain_rule_names_the_same_first_difference_as_the_verifier(round_: tuple[Any, ...], how: str,
                                                                               d: str) -> None:
    items = _round(*round_)
    assert _server(items) == (None, ["ok"] * 5)
    tampered, expected = _tamper(json.loads(json.dumps(items)), how, d)
    difference, statuses = _server(tampered)
    assert difference is not None and difference.startswith(expected), (how, difference)
    ((_, _, theirs),) = verifier.verify(tampered)
    assert difference == theirs
    assert "differs" in statuses
    if statuses[0] == "differs":  # without the one freeze, what is relative to it is not checked
        assert set(statuses[3:]) == {"not_checked"}


def test_the_servers_chain_reports_every_check() -> None:
    """Two links broken at once: each check says its own, the first difference is the earlier in section 13.1."""
    items = _round(4, bytes(32), {d: bytes([k + 1]) * 32 for k, d in enumerate(DEPARTMENTS)}, "317", "福彩3D")
    _find(items, "SeedCommitted")["data"]["entropy_source"] = "体彩"
    _find(items, "ShareRevealed", "hj-eeb")["data"]["share"] = OTHER
    difference, statuses = _server(items)
    assert statuses == ["ok", "ok", "differs", "ok", "differs"]
    assert difference == "entropy_source: the draw record's '福彩3D' is not the one declared with the commitment " \
        f"('体彩' at position {_find(items, 'SeedCommitted')['position']})"
