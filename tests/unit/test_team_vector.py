"""The inspector draw's test vector (docs/verifying-a-draw.md §16.8), checked against the server's draw
(domain/draw/matching.py, domain/tasks/teams.py) and the standalone verifier (docs/verifier/verify_draws.py,
written from the text); then both implementations against each other on random staff, needs and options, for the
team draw and for a recusal's redraw."""

import datetime as dt
import importlib.util
import re
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.draw.matching import (
    ExpertInfo,
    InspectorInfo,
    InsufficientInspectorsError,
    Team,
    match_teams,
    redraw_member,
)
from domain.tasks.task import team_key
from domain.tasks.teams import max_load, specialties, staff_digest, staff_digest_v1, staff_values, visit_needs

ROOT = Path(__file__).resolve().parents[2]
SPEC = (ROOT / "docs" / "verifying-a-draw.md").read_text(encoding="utf-8")
_spec = importlib.util.spec_from_file_location("verify_draws", ROOT / "docs" / "verifier" / "verify_draws.py")
assert _spec is not None and _spec.loader is not None
verifier: Any = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(verifier)

SEED = bytes(range(32)).hex()
TASK = "253bc9fa-0dda-55fa-8ceb-e92d18129e58"
DAY = dt.date(2024, 5, 15)
ITEMS = {"item-1": {"name": "污水排放检查", "specialty": "水", "needs_expert": True, "expert_field": "水质监测"}}
TARGETS = {"t1": {"county": "城关镇"}, "t2": {"county": "亢村镇"}, "t3": {"county": "城关镇"}}
PREVIOUS = {"t1": {"i2"}}


def _inspector(i: str, expiry: str, specialties: str, region: str, active: bool = True, conflicts: str = "") -> (
        InspectorInfo):
    return InspectorInfo(i, "hj-eeb", dt.date.fromisoformat(expiry), frozenset(specialties.split()), region, active,
                         frozenset(conflicts.split()))


STAFF = [  # the table of §16.8
    _inspector("i1", "2025-12-31", "水", "城关镇"),
    _inspector("i2", "2025-12-31", "", "城关镇"),
    _inspector("i3", "2025-12-31", "大气 水", "亢村镇", conflicts="t2"),
    _inspector("i4", "2024-03-31", "", "亢村镇"),
    _inspector("i5", "2025-12-31", "", "亢村镇"),
    _inspector("i6", "2025-12-31", "水", "城关镇", active=False),
    _inspector("i7", "2025-12-31", "", "城关镇"),
]
EXPERTS = [ExpertInfo("e1", "hj-eeb", "水质监测"), ExpertInfo("e2", "hj-eeb", "水质监测", frozenset({"t1"}))]
EXPECTED = {
    "t1": {"leader": "i1", "members": ["i1", "i7"], "experts": ["e1"]},
    "t2": {"leader": "i1", "members": ["i1", "i5"], "experts": ["e2"]},
    "t3": {"leader": "i3", "members": ["i3", "i2"], "experts": ["e2"]},
}
OPTIONS = {"team_size": 2, "exclude_previous_inspectors": True, "match_region": False}
LOADS = {"i1": 2, "i2": 1, "i3": 1, "i5": 1, "i7": 1}  # the teams of EXPECTED


def _documented(name: str) -> str:
    """A hex value the vector section states after ``name``."""
    section = SPEC[SPEC.index("### 16.8"):]
    match = re.search(re.escape(name) + r"[^0-9a-f]*([0-9a-f]{64})", section)
    assert match, name
    return match.group(1)


def _inputs(staff: list[InspectorInfo], experts: list[ExpertInfo], targets: dict[str, dict[str, Any]],
            items: dict[str, dict[str, Any]], previous: dict[str, set[str]],
            loads: dict[str, int] | None = None) -> dict[str, Any]:
    """The verifier's inputs (its JSON values), from the same facts the server's draw gets."""
    values = staff_values(staff, experts)
    return {"staff": [v for v in values if "active" in v], "experts": [v for v in values if "field" in v],
            "targets": {t: d.get("county", "") for t, d in targets.items()}, "items": list(items.values()),
            "previous": previous, "loads": loads or {}}


def _as_dicts(teams: dict[str, Team]) -> dict[str, dict[str, Any]]:
    return {t: {"leader": x.leader, "members": list(x.members), "experts": list(x.experts)} for t, x in teams.items()}


def test_the_team_vector_is_what_the_server_and_the_verifier_draw() -> None:
    key = team_key(SEED, TASK, "hj-eeb")
    assert key.hex() == _documented("`team_key` =") == verifier.team_key(SEED, TASK, "hj-eeb").hex()
    needs = visit_needs(["t1", "t2", "t3"], TARGETS, ITEMS)
    drawn = match_teams(key, "hj-eeb", needs, STAFF, DAY, experts=EXPERTS, team_size=2, previous=PREVIOUS)
    assert _as_dicts(drawn) == EXPECTED
    inputs = _inputs(STAFF, EXPERTS, TARGETS, ITEMS, PREVIOUS)
    assert verifier.match_teams(key, "hj-eeb", ["t1", "t2", "t3"], inputs, DAY.isoformat(), OPTIONS) == EXPECTED
    # Both digest versions give the documented value for this staff (only strings, booleans, null, ASCII names).
    digest = _documented("`inspectors_digest` (both versions)")
    assert staff_digest(STAFF, EXPERTS) == staff_digest_v1(STAFF, EXPERTS) == digest
    assert verifier.staff_digest(inputs["staff"], inputs["experts"]) == digest
    for target, team in EXPECTED.items():  # the documented outcome, as the text states it
        assert f"**{target}: leader {team['leader']}, members {', '.join(team['members'])}" in SPEC


def test_the_redraw_vector_is_what_the_server_and_the_verifier_draw() -> None:
    key = team_key(SEED, TASK, "hj-eeb")
    team = Team("i1", ("i1", "i7"), ("e1",))
    need = visit_needs(["t1"], TARGETS, ITEMS)[0]
    cap = max_load(2, 3, sum(1 for i in STAFF if i.active))
    assert cap == 2
    new = redraw_member(key, 1, "hj-eeb", need, team, "i1", STAFF, DAY, previous=PREVIOUS, loads=LOADS, max_load=cap)
    inputs = _inputs(STAFF, EXPERTS, {"t1": TARGETS["t1"]}, ITEMS, PREVIOUS, LOADS)
    again = verifier.redraw_member(key, 1, "hj-eeb", "t1", {"members": ["i1", "i7"]}, "i1", inputs,
                                   DAY.isoformat(), OPTIONS, 3, set())
    assert new == again == "i3" and "**new i3**, leader i7" in SPEC


def test_a_changed_team_is_the_first_difference() -> None:
    recorded = {t: {**v, "members": list(v["members"])} for t, v in EXPECTED.items()}
    assert verifier.check_teams(recorded, EXPECTED) is None
    recorded["t2"]["members"] = ["i1", "i2"]
    assert verifier.check_teams(recorded, EXPECTED) == \
        "teams['t2'].members: recorded ['i1', 'i2'], recomputed ['i1', 'i5']"


# -- the server's draw and the verifier agree on random inputs ------------------------------------------------
IDS = [f"p{n:02d}" for n in range(12)]
REGIONS = ["", "城关镇", "亢村镇"]
SPECIALTIES = ["水", "大气", "固废"]


@st.composite
def worlds(draw: Any) -> dict[str, Any]:
    staff = [
        InspectorInfo(
            i, "hj-eeb",
            draw(st.sampled_from([None, dt.date(2024, 1, 31), *[dt.date(2025, 12, 31)] * 4])),
            frozenset(draw(st.sets(st.sampled_from(SPECIALTIES), max_size=2))),
            draw(st.sampled_from(REGIONS[1:])),
            draw(st.sampled_from([True, True, True, False])),
            frozenset(draw(st.sets(st.sampled_from(["t0", "t1", "t2", "t3", "t4"]), max_size=1))),
        )
        for i in draw(st.lists(st.sampled_from(IDS), min_size=3, max_size=12, unique=True))
    ]
    experts = [ExpertInfo(f"e{n}", "hj-eeb", draw(st.sampled_from(["水质", "水质", "土壤"])),
                          frozenset(draw(st.sets(st.sampled_from(["t0", "t1"]), max_size=1))))
               for n in range(draw(st.integers(0, 4)))]
    targets = {f"t{n}": {"county": draw(st.sampled_from(REGIONS))} for n in range(draw(st.integers(1, 5)))}
    items = {f"item-{n}": {"name": f"事项{n}", "specialty": draw(st.sampled_from(["", "", *SPECIALTIES])),
                           "needs_expert": draw(st.sampled_from([False, False, True])),
                           "expert_field": draw(st.sampled_from(["水质", "水质", ""]))}
             for n in range(draw(st.integers(0, 2)))}
    ids = [s.id for s in staff]
    previous = {t: set(draw(st.sets(st.sampled_from(ids), max_size=1))) for t in targets}
    options = {"team_size": draw(st.integers(2, 3)), "exclude_previous_inspectors": draw(st.booleans()),
               "match_region": draw(st.booleans())}
    return {"staff": staff, "experts": experts, "targets": targets, "items": items, "previous": previous,
            "options": options, "seed": draw(st.binary(min_size=32, max_size=32)).hex()}


@settings(max_examples=150, deadline=None)
@given(worlds())
def test_the_server_and_the_verifier_draw_the_same_teams(world: dict[str, Any]) -> None:
    key = team_key(world["seed"], TASK, "hj-eeb")
    options, selected = world["options"], sorted(world["targets"])
    needs = visit_needs(selected, world["targets"], world["items"])
    try:
        drawn: dict[str, Any] | None = _as_dicts(match_teams(
            key, "hj-eeb", needs, world["staff"], DAY, experts=world["experts"], team_size=options["team_size"],
            previous=world["previous"], exclude_previous=options["exclude_previous_inspectors"],
            match_region=options["match_region"]))
    except InsufficientInspectorsError:
        drawn = None
    inputs = _inputs(world["staff"], world["experts"], world["targets"], world["items"], world["previous"])
    again = verifier.match_teams(key, "hj-eeb", selected, inputs, DAY.isoformat(), options)
    assert (None if isinstance(again, str) else again) == drawn
    if drawn is None:
        return
    # A recusal on the first target: both implementations pick the same replacement (or neither finds one).
    target = selected[0]
    team = drawn[target]
    loads: dict[str, int] = {}
    for t in drawn.values():
        for m in t["members"]:
            loads[m] = loads.get(m, 0) + 1
    cap = max_load(options["team_size"], len(selected), sum(1 for i in world["staff"] if i.active))
    need = next(n for n in needs if n.target_id == target)
    need = type(need)(target, need.region, specialties(world["items"]))
    try:
        new: str | None = redraw_member(
            key, 1, "hj-eeb", need, Team(team["leader"], tuple(team["members"]), tuple(team["experts"])),
            team["members"][0], world["staff"], DAY, previous=world["previous"],
            exclude_previous=options["exclude_previous_inspectors"], match_region=options["match_region"],
            loads=loads, max_load=cap, excluded={team["members"][0]})
    except InsufficientInspectorsError:
        new = None
    inputs["loads"] = loads
    assert verifier.redraw_member(key, 1, "hj-eeb", target, team, team["members"][0], inputs, DAY.isoformat(),
                                  options, len(selected), set()) == new
