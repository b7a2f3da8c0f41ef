#!/usr/bin/env python3
"""Standalone verifier of dualrandom draws (targets and inspector teams): Python 3.11+, standard library only.

    python3 verify_draws.py EXPORT.ndjson [--year 2024]      (or: ... < EXPORT.ndjson, with "-" for stdin)

EXPORT.ndjson is the output of ``GET /api/v1/audit/export`` (one JSON event per line, in log order). For every
follow-up draw (回访: its pool re-derived from the inspections, section 17, its quota) and every drawn round of every random task (of ``--year``,
default all years), current and withdrawn, the verifier
rebuilds the candidate pool from the log as it stood at the round's freeze position (inclusive), exactly as
``docs/verifying-a-draw.md`` ("The pool") specifies, and re-runs the draw (its sections 1-8, algorithm
versions 1 and 2). It prints one line per check, ``OK``, ``MISMATCH`` with the first difference, or ``SKIPPED``
(a record that cannot be re-derived, with why). Exit status: 0 when every check reproduces (or is skipped),
1 when any does not, 2 with a one-line message on standard error when the input is not an export (a missing or
unreadable file, an empty one, a line that is not one JSON export item, positions not increasing).

Before the pool, it checks each drawn round's chain (section 13.1): the seed's commitment, the declared entropy
source and every seed share's commitment recorded before the freeze, every share revealed after it and hashing to
its commitment, all as the draw record repeats them. It also re-derives every stratum's quota from the task's
recorded rules ("Quotas"), checks the freeze's ``in_scope`` and ``excluded`` counts, and re-derives every
inspector team draw and every recusal redraw from the log at the position its inputs were read at (section 16):
the staff digest, then each team or replacement.
Whether the export itself is the log the partners witnessed is checked with the audit proofs (docs/auditing.md).
"""

import argparse
import calendar
import hashlib
import hmac
import json
import math
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction
from typing import Any

TARGET = "domain.directory:Target."
DETAILS = "domain.directory:DirectoryEntry.DetailsUpdated"
TASK = "domain.tasks.task:Task."
POSITIVE_LIST = "positive_list"
FOLLOW_UP = "domain.execution.followup:FollowUpRound."
INSPECTOR = "domain.directory:Inspector."
EXPERT = "domain.directory:Expert."
ITEM = "domain.directory:InspectionItem."
DIRECTORY = "domain.directory:"
ASSIGNMENT = "domain.tasks.assignment:Assignment."
INSPECTION = "domain.execution.inspection:Inspection."
SUPERVISION_ORDER = ("key", "general", "special")
TARGET_FIELDS = frozenset({"county", "industry", "supervision_class", "risk_class", "tags", "status"})
"""A target's fields that a pool (section 12), a team's region or an item's applicability (section 16) reads."""
RISK_ORDER = ("A", "B", "C", "D")


# -- the draw (docs/verifying-a-draw.md sections 1-8) ---------------------------------------------------------
def nl(x: int) -> int:
    """NL(x), section 7: fixed-point -log2(x / 2^64) with 64 fractional bits."""
    n = x.bit_length() - 1
    m, f = (x << (63 - n) if n <= 63 else 2**63), 0
    for _ in range(64):
        m, f = (m * m) >> 63, f << 1
        if m >= 2**64:
            m, f = m >> 1, f + 1
    return ((64 - n) << 64) - f


def pool_digest(ids: Iterable[str]) -> bytes:
    return hashlib.sha256(b"\n".join(sorted(i.encode() for i in ids))).digest()


def hex32(value: Any) -> bytes | None:
    """32 bytes from 64 lowercase hex digits, else None."""
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-f]{64}", value):
        return None
    return bytes.fromhex(value)


def draw_seed(seed: bytes, shares: dict[str, bytes]) -> bytes:
    """The seed-share rule (algorithm version 2): SHA-256("dualrandom-shares-v1" 0x00 seed S1 S2 ...)."""
    if not shares:
        return seed
    parts = [b"dualrandom-shares-v1\x00", seed]
    for dept in sorted(shares, key=lambda d: d.encode()):
        parts += [b"\x00", dept.encode(), b"\x00", shares[dept]]
    return hashlib.sha256(b"".join(parts)).digest()


def redraw(seed: bytes, entropy: str, pool: list[tuple[str, str, int]], quotas: dict[str, int],
           weighted: bool) -> tuple[str, dict[str, tuple[list[str], bool]]]:
    """The pool digest (hex) and, per stratum, (selected ids in (rank, id) order, took_all)."""
    digest = pool_digest(i for i, _, _ in pool)
    key = hashlib.sha256(b"dualrandom-draw-v1\x00" + seed + b"\x00" + entropy.encode() + b"\x00" + digest).digest()

    def rank(i: str) -> int:
        return int.from_bytes(hmac.new(key, i.encode(), hashlib.sha256).digest()[:8], "big")

    out: dict[str, tuple[list[str], bool]] = {}
    for s in sorted({s for _, s, _ in pool}, key=str.encode):
        members = [(i, w) for i, t, w in pool if t == s]
        q = quotas.get(s, 0)
        if q >= len(members):
            rows = sorted((rank(i), i.encode(), i) for i, _ in members)
            out[s] = ([r[2] for r in rows], True)
            continue
        ranked = sorted(
            ((nl(2**64 - r) // w if weighted else 0), r, i.encode(), i) for i, w in members for r in [rank(i)]
        )
        out[s] = ([r[3] for r in sorted(ranked[:q], key=lambda r: r[1:3])], False)
    return digest.hex(), out


# -- the log ------------------------------------------------------------------------------------------------
class NotAnExport(ValueError):
    """The input is not an audit export: the verifier answers exit status 2 and checks nothing."""


def read_export(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The export's items, in log order: each line one JSON object with an integer ``position`` (increasing),
    text ``aggregate_id`` and ``topic``, and an object ``data``; blank lines are skipped. Anything else, or no
    item at all, raises :class:`NotAnExport`."""
    last, n = 0, 0
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise NotAnExport(f"line {n}: not JSON ({exc})") from None
        if not isinstance(item, dict) or not {"position", "aggregate_id", "topic", "data"} <= set(item):
            raise NotAnExport(f"line {n}: not an export item (an object with position, aggregate_id, topic, data)")
        position = item["position"]
        if type(position) is not int or not isinstance(item["aggregate_id"], str) or \
                not isinstance(item["topic"], str) or not isinstance(item["data"], dict):
            raise NotAnExport(f"line {n}: not an export item (position an integer, aggregate_id and topic texts, "
                              "data an object)")
        if position <= last:
            raise NotAnExport(f"line {n}: position {position} after {last}: not in log order")
        last = position
        yield item
    if last == 0:
        raise NotAnExport("no event in it" if n else "it is empty")


def shared(value: Any) -> Any:
    """A copy of a target's field, its texts interned: a million targets share a few dozen counties, industries
    and classes, so the state holds each text once (a province's directory in about a third of the memory)."""
    if isinstance(value, str):
        return sys.intern(value)
    if isinstance(value, list):
        return [sys.intern(v) if isinstance(v, str) else v for v in value]
    return json.loads(json.dumps(value))


class Log:
    """Targets and tasks as the events applied so far say (docs/verifying-a-draw.md, "The pool")."""

    def __init__(self) -> None:
        self.targets: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.inspectors: dict[str, dict[str, Any]] = {}
        self.experts: dict[str, dict[str, Any]] = {}
        self.items: dict[str, dict[str, Any]] = {}
        self.assignments: dict[str, dict[str, Any]] = {}
        self.inspections: dict[str, list[str]] = {}  # inspection -> [department, target, inspection day or ""]

    def apply(self, ev: dict[str, Any]) -> None:
        topic, oid, data = ev["topic"], ev["aggregate_id"], ev["data"]
        if topic.startswith(TARGET):
            kind = topic[len(TARGET):]
            if kind == "Registered":  # only what a pool, a scope or an item's applicability reads
                self.targets[oid] = {sys.intern(k): shared(v) for k, v in data["data"].items() if k in TARGET_FIELDS}
                return
            t = self.targets[oid]
            if kind == "Reclassified":
                t["supervision_class"] = data["supervision_class"]
            elif kind == "RiskClassChanged":
                t["risk_class"] = data["risk_class"]
            elif kind == "Tagged":
                t["tags"] = [*t.get("tags", []), data["tag"]]
            elif kind == "Untagged":
                t["tags"] = [x for x in t.get("tags", []) if x != data["tag"]]
            elif kind in ("Closed", "Deregistered", "Reactivated"):
                t["status"] = {"Closed": "closed", "Deregistered": "deregistered", "Reactivated": "active"}[kind]
        elif topic.startswith(DIRECTORY) and topic.endswith(".DetailsUpdated"):
            if oid in self.targets:
                self.targets[oid].update({sys.intern(k): shared(v) for k, v in data["changes"].items()
                                          if k in TARGET_FIELDS})
            for entries in (self.inspectors, self.experts, self.items):
                if oid in entries:
                    entries[oid].update(json.loads(json.dumps(data["changes"])))
        elif topic.startswith(DIRECTORY) and topic.endswith((".ConflictDeclared", ".ConflictWithdrawn")):
            entry = self.inspectors.get(oid) or self.experts.get(oid)
            if entry is not None:
                rest = [t for t in entry.get("conflicts") or [] if t != data["target_id"]]
                entry["conflicts"] = [*rest, data["target_id"]] if topic.endswith("Declared") else rest
        elif topic.startswith(INSPECTOR):
            kind = topic[len(INSPECTOR):]
            if kind == "Registered":
                self.inspectors[oid] = json.loads(json.dumps(data["data"]))
            elif kind in ("Activated", "Deactivated"):
                self.inspectors[oid]["active"] = kind == "Activated"
        elif topic == EXPERT + "Registered":
            self.experts[oid] = json.loads(json.dumps(data["data"]))
        elif topic == ITEM + "Registered":
            self.items[oid] = json.loads(json.dumps(data["data"]))
        elif topic.startswith(ASSIGNMENT):
            self.apply_assignment(topic[len(ASSIGNMENT):], oid, data)
        elif topic == INSPECTION + "Opened":
            self.inspections[oid] = [data["department"], data["target_id"], ""]
        elif topic == INSPECTION + "FindingsRecorded":
            self.inspections[oid][2] = data["inspected_on"]
        elif topic.startswith(TASK):
            kind = topic[len(TASK):]
            if kind == "Opened":
                items: list[str] = []
                for d in sorted(data["participants"]):
                    items.extend(i for i in data["participants"][d] if i not in items)
                self.tasks[oid] = {"year": data["year"], "period": data.get("period", ""), "items": items,
                                   "lead": data.get("lead", ""), "participants": data["participants"],
                                   "rules": data.get("rules") or [], "scope": data["scope"],
                                   "options": data["options"], "origin": data["origin"], "selected": None,
                                   "seed": None, "round": 0, "teams": {}}
            elif kind in ("SeedCommitted", "DrawWithdrawn"):
                self.tasks[oid]["selected"] = None
            elif kind == "TargetsDrawn":
                self.tasks[oid]["selected"] = list(data["record"]["selected"])
                self.tasks[oid]["seed"] = data["record"].get("seed")
            elif kind == "TargetsDesignated":
                self.tasks[oid]["selected"] = list(data["targets"])
                self.tasks[oid]["seed"] = data.get("seed")
            if kind in ("SeedCommitted", "TargetsDesignated"):
                self.tasks[oid]["round"] = data["round"]
                self.tasks[oid]["teams"] = {}
            elif kind == "InspectorsDrawn":
                self.tasks[oid]["teams"][data["department"]] = data["visit_date"]

    def apply_assignment(self, kind: str, oid: str, data: dict[str, Any]) -> None:
        """A visit's teams and state (section 16, "Previous inspectors and loads")."""
        if kind == "Created":
            self.assignments[oid] = {"task_id": data["task_id"], "target_id": data["target_id"],
                                     "period": data["period"], "items": data["items"], "teams": {},
                                     "visit_date": None, "live": True, "recused": [], "redraws": {}}
            return
        a = self.assignments[oid]
        if kind == "TeamAssigned":
            a["teams"][data["department"]] = {"leader": data["leader"], "members": list(data["members"]),
                                              "experts": list(data["experts"])}
            a["visit_date"] = a["visit_date"] or data["visit_date"]
        elif kind == "InspectorRecused":
            a["recused"].append((data["department"], data["inspector_id"]))
        elif kind == "MemberRedrawn":
            team = a["teams"][data["department"]]
            team["members"] = [m for m in team["members"] if m != data["removed"]] + [data["new"]]
            team["leader"] = data["leader"]
            a["redraws"][data["department"]] = data["counter"]
        elif kind == "TaskMerged":
            for d, its in data["items"].items():
                mine = a["items"].setdefault(d, [])
                mine.extend(i for i in its if i not in mine)
            for d, team in data["teams"].items():
                a["teams"].setdefault(d, json.loads(json.dumps(team)))
        elif kind in ("MergedInto", "Cancelled"):
            a["live"] = False

    def team_inputs(self, department: str, participants: dict[str, list[str]], targets: list[str], period: str,
                    loads_of: str | None = None) -> dict[str, Any]:
        """Everything a team draw or a redraw reads, as the log stands now (section 16, "The inputs"):
        ``participants`` the task's (a redraw: the department's items on the visit)."""
        staff = [inspector_value(i, department, d) for i, d in self.inspectors.items()
                 if d.get("department") == department]
        experts = [expert_value(i, department, d) for i, d in self.experts.items() if d.get("department") == department]
        wanted = set(targets)
        before = previous_period(period)
        previous: dict[str, set[str]] = {}
        loads: dict[str, int] = {}
        for a in self.assignments.values():
            team = a["teams"].get(department)
            if not a["live"] or team is None:
                continue
            if a["period"] == before and a["target_id"] in wanted:
                previous.setdefault(a["target_id"], set()).update(team["members"])
            if loads_of is not None and a["task_id"] == loads_of:
                for m in set(team["members"]):
                    loads[m] = loads.get(m, 0) + 1
        item_ids = {i for ids in participants.values() for i in ids}
        return {"staff": staff, "experts": experts, "previous": previous, "loads": loads,
                "participants": {d: list(ids) for d, ids in participants.items()},
                "targets": {t: json.loads(json.dumps(self.targets[t])) for t in targets if t in self.targets},
                "items": {i: json.loads(json.dumps(self.items[i])) for i in sorted(item_ids) if i in self.items}}

    def follow_up_pool(self, department: str, period: str) -> list[str]:
        """The targets ``department`` inspected in ``period``, sorted (section 17, "The pool"): its inspections'
        targets whose last ``FindingsRecorded`` day lies in the period."""
        start, end = period_start(period), period_end(period)
        return sorted({t for d, t, day in self.inspections.values() if d == department and start <= day <= end},
                      key=str.encode)

    def pool(self, task_id: str, by_class: bool = True) -> "Pool":
        """The task's pool over the state so far ("The pool"); ``by_class``: a weighted pool's stratum is the
        supervision class (every weighted freeze since weighting weighs; see ``legacy_weighted``)."""
        task = self.tasks[task_id]
        scope, options = task["scope"], task["options"]
        per_visit = options.get("exclusion_per_visit") is True  # absent: opened before the option
        excluded: set[str] = set()
        if options.get("exclude_inspected_this_year"):
            counted = set(task["participants"].get(task["lead"], []) if per_visit else task["items"])
            covered: dict[str, set[str]] = {}
            for other, t in self.tasks.items():
                shared = counted & set(t["items"])
                if other != task_id and t["selected"] is not None and t["year"] == task["year"] and shared:
                    for i in t["selected"]:
                        covered.setdefault(i, set()).update(shared)
            excluded = {i for i, done in covered.items() if not per_visit or done >= counted}
        weights = options.get("risk_weights") if options.get("weighted") else None
        pool = Pool()
        pool.by_class = bool(weights) and by_class
        if per_visit:
            pool.excluded["kept_by_full_rule"] = 0
        for tid in sorted(self.targets):
            data = self.targets[tid]
            if not admits(scope, data):
                continue
            if data.get("status", "active") != "active":
                pool.excluded["inactive"] += 1
                continue
            sc, rc = data["supervision_class"], data["risk_class"]
            pool.in_scope[(sc, rc)] = pool.in_scope.get((sc, rc), 0) + 1
            if tid in excluded and per_visit and (resolve_rule(task["rules"], sc, rc) or {}).get("full"):
                pool.excluded["kept_by_full_rule"] += 1
            elif tid in excluded:
                pool.excluded["inspected_this_year"] += 1
                pool.inspected[(sc, rc)] = pool.inspected.get((sc, rc), 0) + 1
                continue
            stratum = sc if pool.by_class else f"{sc}/{rc}"
            pool.rows.append((tid, stratum, weights.get(rc, 1) if weights else 1))
            pool.sizes[stratum] = pool.sizes.get(stratum, 0) + 1
            pool.counts[(sc, rc)] = pool.counts.get((sc, rc), 0) + 1
        start = period_start(task["period"]) if task["period"] else ""
        pool.inspectors = sum(1 for i in self.inspectors.values() if i.get("department") == task["lead"]
                              and i.get("active", True) is True and str(i.get("certificate_expiry", "")) >= start)
        return pool


class Pool:
    """One frozen pool as the verifier rebuilds it: ``rows`` ``(id, stratum, weight)``; ``sizes`` per stratum;
    ``in_scope`` and ``inspected`` per (supervision class, risk class); ``excluded`` counts by reason."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, int]] = []
        self.sizes: dict[str, int] = {}
        self.in_scope: dict[tuple[str, str], int] = {}
        self.inspected: dict[tuple[str, str], int] = {}
        self.counts: dict[tuple[str, str], int] = {}  # the pool per (supervision class, risk class)
        self.excluded: dict[str, int] = {"inactive": 0, "inspected_this_year": 0}
        self.by_class = False  # weighted: one stratum per supervision class
        self.inspectors = 0  # the lead department's active inspectors certified on the period's first day


def resolve_rule(rules: list[dict[str, Any]], sc: str, rc: str) -> dict[str, Any] | None:
    """The rule governing stratum (sc, rc): its risk-class rule, else its class-wide rule, else none."""
    same = [r for r in rules if r["supervision_class"] == sc]
    return next((r for r in same if r.get("risk_class") == rc), None) or \
        next((r for r in same if not r.get("risk_class")), None)


# -- quotas (docs/verifying-a-draw.md, "Quotas") -----------------------------------------------------------
_PERIOD = re.compile(r"^(\d{4})(?:Q([1-4])|-(\d{2})|H([12]))?$")


def period_parts(period: str) -> tuple[int, int, int, int]:
    """``(year, periods in the year, index from 1, months per period)`` of ``2024Q2``, ``2024-05``, ``2024H1``,
    ``2024``."""
    m = _PERIOD.match(period)
    if not m:
        raise ValueError(f"period {period!r}")
    if m.group(2):
        return int(m.group(1)), 4, int(m.group(2)), 3
    if m.group(3):
        return int(m.group(1)), 12, int(m.group(3)), 1
    if m.group(4):
        return int(m.group(1)), 2, int(m.group(4)), 6
    return int(m.group(1)), 1, 1, 12


def period_start(period: str) -> str:
    """The period's first day, ``YYYY-MM-DD``."""
    year, _, index, months = period_parts(period)
    return f"{year:04d}-{(index - 1) * months + 1:02d}-01"


def minimum_quotas(rules: list[dict[str, Any]], in_scope: dict[tuple[str, str], int], inspectors: int,
                   period: str, done: dict[tuple[str, str], int]) -> dict[tuple[str, str], int]:
    """Per (supervision class, risk class) in scope: the minimum the rules require, capped at ``in_scope``."""
    _, per_year, index, _ = period_parts(period)
    order = sorted(in_scope, key=lambda k: (SUPERVISION_ORDER.index(k[0]), RISK_ORDER.index(k[1])))
    governed: dict[int, list[tuple[str, str]]] = {}
    out: dict[tuple[str, str], int] = {}
    for k in order:
        rule = resolve_rule(rules, *k)
        if rule is None:
            out[k] = 0
        else:
            governed.setdefault(rules.index(rule), []).append(k)
    for n, keys in governed.items():
        rule = rules[n]
        pools = {k: in_scope[k] for k in keys}
        if rule.get("full"):
            bound = dict(pools)
        else:
            by_ratio = by_insp = None
            if rule.get("min_ratio") is not None:
                r = Fraction(rule["min_ratio"])
                by_ratio = {k: math.ceil(r * p) for k, p in pools.items()}
            if rule.get("min_per_inspector") is not None:
                by_insp = largest_remainder(rule["min_per_inspector"] * inspectors, pools)
            if by_ratio is not None and by_insp is not None:
                t_ratio, t_insp = sum(by_ratio.values()), sum(by_insp.values())
                either = rule.get("combine", "either") == "either"
                bound = by_ratio if (t_ratio <= t_insp if either else t_ratio >= t_insp) else by_insp
            else:
                bound = by_ratio if by_ratio is not None else by_insp or dict.fromkeys(keys, 0)
            if rule.get("once_a_year"):
                left = per_year - index + 1
                bound = {k: max(bound[k], math.ceil(Fraction(max(p - done.get(k, 0), 0), left)))
                         for k, p in pools.items()}
        out.update({k: min(bound[k], pools[k]) for k in keys})
    return out


def largest_remainder(total: int, pools: dict[tuple[str, str], int]) -> dict[tuple[str, str], int]:
    """``total`` split in proportion to the pools: floors, then one more each to the largest remainders (ties:
    the higher risk class first, then supervision class order, then risk class order)."""
    whole = sum(pools.values())
    if whole == 0:
        return dict.fromkeys(pools, 0)
    exact = {k: Fraction(total * p, whole) for k, p in pools.items()}
    shares = {k: math.floor(v) for k, v in exact.items()}
    ranked = sorted(exact, key=lambda k: (-(exact[k] - shares[k]), -RISK_ORDER.index(k[1]),
                                         SUPERVISION_ORDER.index(k[0]), RISK_ORDER.index(k[1])))
    for k in ranked[:total - sum(shares.values())]:
        shares[k] += 1
    return shares


def check_quotas(task: dict[str, Any], frozen: dict[str, Any], pool: "Pool", by_class: bool) -> str | None:
    """Every frozen stratum's ``in_scope`` and ``quota`` against the rules: the quota is the rules' minimum
    (capped at the pool), or, when the basis says a planner set it, between that minimum and the pool size."""
    minimum = minimum_quotas(task["rules"], pool.in_scope, pool.inspectors, task["period"], pool.inspected)
    expected: dict[str, dict[str, int]] = {}
    for (sc, rc), m in minimum.items():
        name = sc if by_class else f"{sc}/{rc}"
        line = expected.setdefault(name, {"in_scope": 0, "quota": 0})
        line["in_scope"] += pool.in_scope[(sc, rc)]
        line["quota"] += min(m, pool.counts.get((sc, rc), 0))
    strata = frozen.get("strata", {})
    for name in sorted(set(expected) | set(strata), key=str.encode):
        rec, want = strata.get(name, {}), expected.get(name, {"in_scope": 0, "quota": 0})
        if "in_scope" in rec and rec["in_scope"] != want["in_scope"]:  # older freezes did not record it
            return f"strata[{name!r}].in_scope: frozen {rec.get('in_scope')}, recomputed {want['in_scope']}"
        quota, size = rec.get("quota"), rec.get("pool_size", 0)
        if quota == want["quota"]:
            continue
        by_planner = str(rec.get("basis", "")).startswith("set by the planner: ")
        if not (by_planner and isinstance(quota, int) and want["quota"] <= quota <= size):
            return f"strata[{name!r}].quota: frozen {quota}, the rules give {want['quota']}" + \
                (f" (a planner may set {want['quota']}..{size})" if by_planner else "")
    return None


def legacy_weighted(frozen: dict[str, Any]) -> bool:
    """A weighted freeze made before weighted strata were the supervision class: its strata are named
    ``<class>/<risk>`` (the weights were then equal inside each stratum)."""
    return any("/" in name for name in frozen.get("strata", {}))


def admits(scope: dict[str, Any], t: dict[str, Any]) -> bool:
    """Each given scope field must hold; within a list any value matches; tags: at least one shared."""
    if scope.get("county") and t.get("county") != scope["county"]:
        return False
    for field, attr in (("industries", "industry"), ("supervision_classes", "supervision_class"),
                        ("risk_classes", "risk_class")):
        if scope.get(field) and t.get(attr) not in scope[field]:
            return False
    return not scope.get("tags") or bool(set(scope["tags"]) & set(t.get("tags") or []))


# -- the inspector draw (docs/verifying-a-draw.md section 16) ------------------------------------------------
def previous_period(period: str) -> str:
    """The period before, of the same kind: 2024Q1 -> 2023Q4, 2024-01 -> 2023-12, 2024H1 -> 2023H2, 2024 -> 2023."""
    year, per_year, index, _ = period_parts(period)
    if index == 1:
        year, index = year - 1, per_year
    else:
        index -= 1
    return {4: f"{year}Q{index}", 12: f"{year}-{index:02d}", 2: f"{year}H{index}", 1: f"{year}"}[per_year]


def period_end(period: str) -> str:
    """The period's last day, ``YYYY-MM-DD``."""
    year, _, index, months = period_parts(period)
    month = index * months if months < 12 else 12
    return f"{year:04d}-{month:02d}-{calendar.monthrange(year, month)[1]:02d}"


def inspector_value(entry_id: str, department: str, d: dict[str, Any]) -> dict[str, Any]:
    """An inspector as the draw reads it (section 16, "The staff")."""
    return {"id": entry_id, "department": department, "certificate_expiry": d.get("certificate_expiry") or None,
            "specialties": sorted(set(d.get("specialties") or []), key=str.encode), "region": d.get("region") or "",
            "active": bool(d.get("active", True)), "conflicts": sorted(set(d.get("conflicts") or []), key=str.encode)}


def expert_value(entry_id: str, department: str, d: dict[str, Any]) -> dict[str, Any]:
    return {"id": entry_id, "department": department, "field": d.get("field", ""),
            "conflicts": sorted(set(d.get("conflicts") or []), key=str.encode)}


def canonical(value: Any) -> bytes:
    """RFC 8785 canonical JSON of strings, booleans, null, integers, lists and objects (all a staff list holds)."""
    if isinstance(value, dict):
        members = sorted(value, key=lambda k: k.encode("utf-16-be"))
        return b"{" + b",".join(canonical(k) + b":" + canonical(value[k]) for k in members) + b"}"
    if isinstance(value, list):
        return b"[" + b",".join(canonical(v) for v in value) + b"]"
    return json.dumps(value, ensure_ascii=False).encode("utf-8")  # RFC 8785 escaping for str; ints; true/false/null


def staff_digest(staff: list[dict[str, Any]], experts: list[dict[str, Any]]) -> str:
    """``inspectors_digest`` version 2: SHA-256 of the canonical JSON of inspectors and experts by id."""
    return hashlib.sha256(canonical(sorted(staff + experts, key=lambda v: v["id"].encode()))).hexdigest()


def staff_digest_v1(staff: list[dict[str, Any]], experts: list[dict[str, Any]]) -> str:
    """``inspectors_digest`` version 1: the same array as Python's ``json.dumps`` wrote it."""
    data = json.dumps(sorted(staff + experts, key=lambda v: v["id"].encode()), sort_keys=True, ensure_ascii=False,
                      separators=(",", ":"))
    return hashlib.sha256(data.encode()).hexdigest()


def team_key(seed_hex: str, task_id: str, department: str) -> bytes:
    return hashlib.sha256(b"dualrandom-teams-v1\x00" + bytes.fromhex(seed_hex) + b"\x00" + task_id.encode() + b"\x00"
                          + department.encode()).digest()


def r(key: bytes, label: str) -> int:
    return int.from_bytes(hmac.new(key, label.encode(), hashlib.sha256).digest()[:8], "big")


class Buckets:
    """Section 16, "Load buckets": per partition, ``levels[L]`` lists the people with L visits, in bucket order."""

    def __init__(self, partitions: dict[str, list[str]], caps: dict[str, int] | None) -> None:
        self.levels = {p: [list(ids)] for p, ids in partitions.items()}
        self.part = {i: p for p, ids in partitions.items() for i in ids}
        self.caps = caps

    def pick(self, h: int, ok: Any, names: list[str]) -> str | None:
        names = [p for p in names if p in self.levels]
        tops = {p: len(self.levels[p]) if self.caps is None else min(len(self.levels[p]), self.caps[p]) for p in names}
        for level in range(max(tops.values(), default=0)):
            row = [i for p in names if level < tops[p] for i in self.levels[p][level]]
            for step in range(len(row)):
                person = row[(h % len(row) + step) % len(row)]
                if ok(person):
                    bucket = self.levels[self.part[person]][level]
                    k, last = bucket.index(person), bucket.pop()
                    if last != person:
                        bucket[k] = last
                    if level + 1 == len(self.levels[self.part[person]]):
                        self.levels[self.part[person]].append([])
                    self.levels[self.part[person]][level + 1].append(person)
                    return person
        return None


def eligible_staff(staff: list[dict[str, Any]], day: str) -> dict[str, dict[str, Any]]:
    """Active, with a certificate not expired on ``day`` (ISO dates compare as text)."""
    return {v["id"]: v for v in staff if v["active"] and v["certificate_expiry"] and v["certificate_expiry"] >= day}


def applies(item: dict[str, Any], target: dict[str, Any]) -> bool:
    """Section 16.1, "Applicability": each of the item's lists that is given must hold for the target."""
    if item.get("applies_to_industries") and target.get("industry") not in item["applies_to_industries"]:
        return False
    if item.get("applies_to_classes") and target.get("supervision_class") not in item["applies_to_classes"]:
        return False
    tags = item.get("applies_to_tags")
    return not tags or bool(set(tags) & set(target.get("tags") or []))


def visit_items(inputs: dict[str, Any], target: str) -> dict[str, list[str]]:
    """Per department, the task's items that apply to the target (every department's items when none applies)."""
    data = inputs["targets"].get(target, {})
    found = {d: [i for i in ids if applies(inputs["items"].get(i, {}), data)]
             for d, ids in inputs["participants"].items()}
    found = {d: ids for d, ids in found.items() if ids}
    return found or inputs["participants"]


def needs_of(items: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """The specialties and the expert fields a department's items ask for, each sorted."""
    specialties = {i["specialty"] for i in items if i.get("specialty")}
    fields = {str(i.get("expert_field") or i.get("specialty") or i.get("name")) for i in items if i.get("needs_expert")}
    return sorted(specialties, key=str.encode), sorted(fields, key=str.encode)


def match_teams(key: bytes, department: str, selected: list[str], inputs: dict[str, Any], day: str,
                options: dict[str, Any]) -> dict[str, dict[str, Any]] | str:
    """Section 16: the team of every selected target the department's items apply to, or the first target that
    could not get one."""
    staff = eligible_staff(inputs["staff"], day)
    size, by_region, previous = options["team_size"], bool(options["match_region"]), inputs["previous"]
    needs: dict[str, tuple[list[str], list[str]]] = {}  # target -> (specialties, expert fields)
    for t in selected:
        mine = visit_items(inputs, t).get(department, [])
        if mine:
            needs[t] = needs_of([inputs["items"].get(i, {}) for i in mine])
    selected = [t for t in selected if t in needs]
    region = {t: str(inputs["targets"].get(t, {}).get("county") or "") for t in selected}

    def excluded(t: str) -> set[str]:
        out = {i for i, v in staff.items() if t in v["conflicts"]}
        if options["exclude_previous_inspectors"]:
            out |= {i for i in previous.get(t, ()) if i in staff}
        return out

    def eligible(t: str) -> int:
        within = by_region and region[t] != ""
        return sum(1 for i, v in staff.items() if not within or v["region"] == region[t]) - \
            sum(1 for i in excluded(t) if not within or staff[i]["region"] == region[t])

    order = sorted(selected, key=lambda t: (eligible(t), r(key, f"{department}\n{t}"), t.encode()))
    partitions: dict[str, list[str]] = {}
    for i in sorted(staff, key=str.encode):
        partitions.setdefault(staff[i]["region"] if by_region else "", []).append(i)
    if by_region:
        anywhere = sum(1 for t in selected if not region[t])
        caps = {p: -(-size * (sum(1 for t in selected if region[t] == p) + anywhere) // len(ids)) + 1
                for p, ids in partitions.items()}
    else:
        caps = {"": -(-size * len(selected) // len(staff)) + 1} if staff else {}
    buckets = Buckets(partitions, caps)
    by_field: dict[str, list[str]] = {}
    for e in sorted(inputs["experts"], key=lambda v: v["id"].encode()):
        by_field.setdefault(e["field"], []).append(e["id"])
    conflicts = {e["id"]: e["conflicts"] for e in inputs["experts"]}
    expert_buckets = {f: Buckets({"": ids}, None) for f, ids in by_field.items()}
    teams: dict[str, dict[str, Any]] = {}
    for t in order:
        out, chosen = excluded(t), list[str]()
        names = [region[t]] if by_region and region[t] else sorted(partitions, key=str.encode)

        def usable(i: str, t: str = t, out: set[str] = out, chosen: list[str] = chosen) -> bool:
            return i not in out and i not in chosen and (not by_region or not region[t] or
                                                         staff[i]["region"] == region[t])
        specialties, fields = needs[t]
        for s in specialties:
            if any(s in staff[m]["specialties"] for m in chosen):
                continue
            pick = buckets.pick(r(key, f"{department}\n{t}\n{len(chosen)}"),
                                lambda i, s=s: usable(i) and s in staff[i]["specialties"], names)
            if pick is None:
                return f"target {t}: no eligible inspector with specialty {s!r}"
            chosen.append(pick)
        while len(chosen) < size:
            pick = buckets.pick(r(key, f"{department}\n{t}\n{len(chosen)}"), usable, names)
            if pick is None:
                return f"target {t}: fewer than {size} eligible inspectors"
            chosen.append(pick)
        experts: list[str] = []
        for f in fields:
            pick = None if f not in expert_buckets else expert_buckets[f].pick(
                r(key, f"{department}\n{t}\nexpert\n{f}"), lambda e, t=t, x=experts: t not in conflicts[e] and e not in x,
                [""])
            if pick is None:
                return f"target {t}: no expert in {f!r}"
            experts.append(pick)
        teams[t] = {"leader": chosen[0], "members": chosen, "experts": experts}
    return teams


def redraw_member(key: bytes, counter: int, department: str, target: str, team: dict[str, Any], removed: str,
                  inputs: dict[str, Any], day: str, options: dict[str, Any], selected: int, out: set[str]) -> str | None:
    """Section 16, "Recusal redraws": the replacement, or None when nobody qualifies."""
    staff = eligible_staff(inputs["staff"], day)
    specialties, _ = needs_of([inputs["items"].get(i, {}) for i in inputs["participants"].get(department, [])])
    remaining = [m for m in team["members"] if m != removed]
    uncovered = {s for s in specialties if not any(m in staff and s in staff[m]["specialties"] for m in remaining)}
    active = sum(1 for v in inputs["staff"] if v["active"])
    cap = -(-options["team_size"] * max(selected, 1) // max(active, 1)) + 1
    region, loads = str(inputs["targets"].get(target, {}).get("county") or ""), inputs["loads"]
    out = set(team["members"]) | out | {removed}
    candidates = [i for i, v in staff.items() if i not in out
                  and not (options["match_region"] and region and v["region"] != region)
                  and target not in v["conflicts"]
                  and not (options["exclude_previous_inspectors"] and i in inputs["previous"].get(target, ()))
                  and loads.get(i, 0) < cap and uncovered <= set(v["specialties"])]
    if not candidates:
        return None
    return min(candidates, key=lambda i: (loads.get(i, 0), r(key, f"{department}\n{target}\nredraw\n{counter}\n{i}"),
                                          i.encode()))


def check_teams(recorded: dict[str, Any], again: dict[str, dict[str, Any]] | str) -> str | None:
    """The first difference between a recorded team draw and its re-run (targets in byte order)."""
    if isinstance(again, str):
        return f"teams: the re-run finds no team: {again}"
    for t in sorted(set(recorded) | set(again), key=str.encode):
        if t not in recorded or t not in again:
            return f"teams[{t!r}]: in one of the record and the re-run only"
        for part in ("leader", "members", "experts"):
            if recorded[t].get(part) != again[t][part]:
                return f"teams[{t!r}].{part}: recorded {recorded[t].get(part)}, recomputed {again[t][part]}"
    return None


# -- checking one round -------------------------------------------------------------------------------------
def check(record: dict[str, Any], frozen: dict[str, Any], pool: list[tuple[str, str, int]],
          sizes: dict[str, int]) -> str | None:
    """The first difference between the recorded round and its re-run, or None."""
    version = record.get("algorithm_version")
    if record.get("algorithm") != "dualrandom-draw" or version not in (1, 2):
        return f"algorithm: {record.get('algorithm')} v{version} is not dualrandom-draw v1 or v2"
    seed = hex32(record.get("seed"))
    if seed is None:
        return "seed: not 32 bytes as 64 lowercase hex digits"
    if hashlib.sha256(seed).hexdigest() != record["commitment"]:
        return "commitment: SHA-256 of the revealed seed is not the commitment"
    shares = {d: hex32(h) or b"" for d, h in (record.get("seed_shares") or {}).items()}
    if (version == 2) != bool(shares):
        return f"algorithm_version: {version} with {len(shares)} seed shares"
    commitments = record.get("share_commitments") or {}
    for d in sorted(set(shares) | set(commitments), key=str.encode):
        if d not in shares or d not in commitments:
            return f"seed_shares[{d!r}]: a share without its commitment or a commitment without its share"
        if len(shares[d]) != 32 or hashlib.sha256(shares[d]).hexdigest() != commitments[d]:
            return f"seed_shares[{d!r}]: SHA-256 of the share is not its commitment"
    strata = record["strata"]
    difference = check_sizes(frozen, sizes)
    if difference:
        return difference
    quotas = {s: v["quota"] for s, v in strata.items()}
    digest, again = redraw(draw_seed(seed, shares), record.get("external_entropy", ""), pool, quotas,
                           bool(record.get("weighted")))
    if digest != record["pool_digest"] or digest != frozen.get("pool_digest"):
        return f"pool_digest: recorded {record['pool_digest']}, recomputed {digest}"
    for name in sorted(set(again) | set(strata), key=str.encode):
        rec = strata.get(name)
        if rec is None or name not in again:
            return f"strata[{name!r}]: in one of the record and the pool only"
        ids, took_all = again[name]
        if bool(rec.get("took_all")) != took_all:
            return f"strata[{name!r}].took_all: recorded {rec.get('took_all')}, recomputed {took_all}"
        if rec.get("selected") != ids:
            first = next((i for i, (a, b) in enumerate(zip(rec.get("selected", []), ids)) if a != b), None)
            return f"strata[{name!r}].selected[{first}]: differs" if first is not None else \
                f"strata[{name!r}].selected: recorded {len(rec.get('selected', []))} ids, recomputed {len(ids)}"
    whole = [i for name in sorted(again, key=str.encode) for i in again[name][0]]
    if record["selected"] != whole:
        return "selected: not the strata's lists in stratum name order"
    return None


def check_sizes(frozen: dict[str, Any], sizes: dict[str, int]) -> str | None:
    """The freeze's per-stratum pool sizes against the rebuilt pool's."""
    for name in sorted(set(sizes) | set(frozen.get("strata", {})), key=str.encode):
        recorded = frozen.get("strata", {}).get(name, {}).get("pool_size", 0)
        if recorded != sizes.get(name, 0):
            return f"strata[{name!r}].pool_size: frozen {recorded}, recomputed {sizes.get(name, 0)}"
    return None


def check_excluded(frozen: dict[str, Any], pool: Pool) -> str | None:
    """The freeze's exclusion counts against the rebuilt pool's."""
    recorded = frozen.get("excluded", {})
    for reason in sorted(set(recorded) | set(pool.excluded)):
        if recorded.get(reason) != pool.excluded.get(reason):
            return f"excluded[{reason!r}]: frozen {recorded.get(reason)}, recomputed {pool.excluded.get(reason)}"
    return None


_RATIO = re.compile(r"^(\d+(\.\d+)?|\d+/[1-9]\d*)$")


def follow_up_quota(ratio: str, n: int) -> int | None:
    """``min(n, ceil(ratio x n))`` exactly (section 17, "The quota"); None when ``ratio`` is not an exact ratio
    in (0, 1] as the round records it."""
    if not isinstance(ratio, str) or not _RATIO.match(ratio):
        return None
    r = Fraction(ratio)
    if not 0 < r <= 1:
        return None
    return min(n, -(-(r.numerator * n) // r.denominator))


def check_follow_up(plan: dict[str, Any], planned_at: int, record: dict[str, Any],
                    pool: list[str] | None) -> str | None:
    """A follow-up draw (回访, section 17): the pool recomputed from the log at the plan's position against the
    planned one, the quota against the ratio, the commitment made when it was planned; then the draw."""
    at = plan.get("position")
    if at is not None and type(at) is not int:
        return f"position: {at!r} is not an integer"
    if at is not None and at >= planned_at:
        return f"position: {at} is not below the Planned event's own position {planned_at}"
    if pool is None:
        return f"position: {at} is not a position of this log"
    planned = plan["pool"]
    if planned != pool:
        first = next((i for i, (a, b) in enumerate(zip(planned, pool)) if a != b), min(len(planned), len(pool)))
        shown = (repr(planned[first]) if first < len(planned) else "nothing",
                 repr(pool[first]) if first < len(pool) else "nothing")
        difference = f"pool: recorded {len(planned)} ids, recomputed {len(pool)}; first difference at [{first}]: " \
                     f"recorded {shown[0]}, recomputed {shown[1]}"
        if at is None:
            return Skipped(f"version 1 (no position): with the inspections just before it, {difference}")
        return difference
    quota = follow_up_quota(plan.get("ratio"), len(pool))
    if quota is None:
        return f"ratio: {plan.get('ratio')!r} is not an exact ratio in (0, 1]"
    if plan["quota"] != quota:
        return f"quota: planned {plan['quota']}, recomputed {quota}"
    if record.get("commitment") != plan["commitment"]:
        return "commitment: the draw's is not the one made when the round was planned"
    declared = plan.get("entropy_source")
    if declared is None:  # versions 1 and 2: their draws name no source
        if "entropy_source" in record:
            return f"entropy_source: the draw names {record['entropy_source']!r}, the round declared none " \
                   "(planned before sources were declared)"
    else:  # version 3: the source declared with the commitment
        if record.get("entropy_source") != declared:
            return f"entropy_source: the draw names {record.get('entropy_source')!r}, the commitment declared " \
                   f"{declared!r}"
        if not declared and record.get("external_entropy") != "":
            return "external_entropy: the commitment declared no entropy source, the draw used some"
    if record.get("strata", {}).get("all", {}).get("quota") != plan["quota"]:
        return f"strata['all'].quota: recorded {record.get('strata', {}).get('all', {}).get('quota')}, " \
               f"planned {plan['quota']}"
    rows = [(i, "all", 1) for i in pool]
    frozen = {"pool_digest": pool_digest(pool).hex(), "strata": {"all": {"pool_size": len(rows)}}}
    return check(record, frozen, rows, {"all": len(rows)})


class Skipped(str):
    """Why a record was not re-derived (not a difference): a team draw or redraw recorded before version 2."""


def check_team_draw(ev: dict[str, Any], task: dict[str, Any], inputs: dict[Any, dict[str, Any]], at: int) -> (
        str | None):
    """A department's recorded teams (``Task.InspectorsDrawn``) against their re-run at the recorded position."""
    data = ev["data"]
    got = inputs.get(("teams", ev["aggregate_id"], data["department"], at))
    if got is None:
        return f"position: {at} is not a position of this log"
    if data["round"] != task["round"] or task["seed"] is None:
        return f"round: {data['round']} is not the task's drawn round {task['round']}"
    if not period_start(task["period"]) <= data["visit_date"] <= period_end(task["period"]):
        return f"visit_date: {data['visit_date']} is not in {task['period']}"
    v1 = data.get("position") is None
    digest = (staff_digest_v1 if v1 else staff_digest)(got["staff"], got["experts"])
    if data["inspectors_digest"] != digest:
        if v1:
            return Skipped(f"version 1 (no position): the staff just before it has another digest ({digest}); "
                           "its inputs were read at no recorded position")
        return f"inspectors_digest: recorded {data['inspectors_digest']}, recomputed {digest}"
    key = team_key(task["seed"], ev["aggregate_id"], data["department"])
    again = match_teams(key, data["department"], task["selected"], got, data["visit_date"], task["options"])
    difference = check_teams(data["teams"], again)
    if v1 and difference:
        return Skipped(f"version 1 (no position): with the inputs just before it, {difference}")
    return difference


def version_note(ev: dict[str, Any]) -> str:
    return " (version 1)" if ev["data"].get("position") is None else ""


def read_position(ev: dict[str, Any], recused: dict[str, int]) -> int:
    """Where a team draw's or a redraw's inputs are read: its recorded ``position`` (version 2); for version 1,
    the position just before the command's first event (the team draw's own; a redraw's ``InspectorRecused``)."""
    if ev["data"].get("position") is not None:
        return int(ev["data"]["position"])
    return recused.get(ev["aggregate_id"], ev["position"]) - 1


def check_redraw(ev: dict[str, Any], a: dict[str, Any], task: dict[str, Any],
                 inputs: dict[Any, dict[str, Any]], at: int) -> str | None:
    """A recusal's replacement (``Assignment.MemberRedrawn``) against its re-run at the recorded position."""
    data, dept = ev["data"], ev["data"]["department"]
    got = inputs.get(("redraw", ev["aggregate_id"], dept, at))
    if got is None:
        return f"position: {at} is not a position of this log"
    team = a["teams"].get(dept)
    if team is None or data["removed"] not in team["members"]:
        return f"removed: {data['removed']} is not on {dept}'s team"
    if data["counter"] != a["redraws"].get(dept, 0) + 1:
        return f"counter: recorded {data['counter']}, expected {a['redraws'].get(dept, 0) + 1}"
    if a["visit_date"] is None or task["seed"] is None:
        return Skipped("the visit has no date or the task no drawn seed: the redraw day is not in the log")
    earlier = {i for d, i in a["recused"] if d == dept}  # the InspectorRecused just before counts (it is applied)
    earlier.discard(data["removed"])
    key = team_key(task["seed"], a["task_id"], dept)
    new = redraw_member(key, data["counter"], dept, a["target_id"], team, data["removed"], got, a["visit_date"],
                        task["options"], len(task["selected"] or []), earlier)
    if new != data["new"]:
        if data.get("position") is None:
            return Skipped(f"version 1 (no position): with the inputs just before it, new: recorded {data['new']}, "
                           f"recomputed {new}")
        return f"new: recorded {data['new']}, recomputed {new}"
    members = [m for m in team["members"] if m != data["removed"]] + [data["new"]]
    if data["leader"] != members[0]:
        return f"leader: recorded {data['leader']}, recomputed {members[0]}"
    return None


# -- the chain of a round (docs/verifying-a-draw.md section 13, "The chain") ---------------------------------
class Chain:
    """The events of one round of a task as far as the log has been read: ``(position, data)`` of its
    ``SeedCommitted``, ``PoolFrozen``, and per department ``ShareCommitted`` and ``ShareRevealed`` (lists:
    the log may hold a duplicate, which is itself a difference)."""

    def __init__(self) -> None:
        self.seed: list[tuple[int, dict[str, Any]]] = []
        self.frozen: list[tuple[int, dict[str, Any]]] = []
        self.shares: dict[str, list[tuple[int, str]]] = {}
        self.revealed: dict[str, list[tuple[int, str]]] = {}

    def apply(self, ev: dict[str, Any]) -> None:
        kind, data, at = ev["topic"][len(TASK):], ev["data"], ev["position"]
        if kind == "SeedCommitted":
            self.seed.append((at, data))
        elif kind == "PoolFrozen":
            self.frozen.append((at, data))
        elif kind == "ShareCommitted":
            self.shares.setdefault(data["department"], []).append((at, data["commitment"]))
        elif kind == "ShareRevealed":
            self.revealed.setdefault(data["department"], []).append((at, data["share"]))


CHAIN_EVENTS = {TASK + k for k in ("SeedCommitted", "PoolFrozen", "ShareCommitted", "ShareRevealed")}


def check_chain(record: dict[str, Any], chain: "Chain | None") -> str | None:
    """The draw record against the round's events before it: the seed committed (and every share committed)
    before the freeze, the record repeating those commitments and the declared entropy source, and every share
    revealed after the freeze, hashing to its commitment, and being the record's."""
    chain = chain or Chain()
    if len(chain.frozen) > 1:
        return f"freeze_position: the round was frozen {len(chain.frozen)} times before the draw (positions " \
               f"{', '.join(str(p) for p, _ in chain.frozen)})"
    if not chain.frozen or chain.frozen[0][1].get("position") != record.get("freeze_position"):
        return "freeze_position: no freeze of this round at the recorded position"
    frozen_at = chain.frozen[0][0]
    if not chain.seed:
        return "commitment: no Task.SeedCommitted of this round before the draw"
    if len(chain.seed) > 1:
        return f"commitment: the round was committed {len(chain.seed)} times (positions " \
               f"{', '.join(str(p) for p, _ in chain.seed)})"
    seed_at, committed = chain.seed[0]
    if seed_at >= frozen_at:
        return f"commitment: Task.SeedCommitted at position {seed_at} is not before the freeze (position {frozen_at})"
    if record.get("commitment") != committed.get("commitment"):
        return f"commitment: the draw record's {record.get('commitment')} is not the one committed before the " \
               f"freeze ({committed.get('commitment')} at position {seed_at})"
    if record.get("entropy_source", "") != committed.get("entropy_source", ""):
        return f"entropy_source: the draw record's {record.get('entropy_source', '')!r} is not the one declared " \
               f"with the commitment ({committed.get('entropy_source', '')!r} at position {seed_at})"
    recorded = record.get("share_commitments") or {}
    for d in sorted(set(chain.shares) | set(recorded), key=str.encode):
        made = chain.shares.get(d, [])
        if len(made) > 1:
            return f"share_commitments[{d!r}]: committed {len(made)} times (positions " \
                   f"{', '.join(str(p) for p, _ in made)})"
        if not made:
            return f"share_commitments[{d!r}]: in the draw record, but {d} committed no share before the freeze"
        at, value = made[0]
        if at >= frozen_at:
            return f"share_commitments[{d!r}]: Task.ShareCommitted at position {at} is not before the freeze " \
                   f"(position {frozen_at})"
        if recorded.get(d) != value:
            return f"share_commitments[{d!r}]: the draw record's {recorded.get(d)} is not the one committed before " \
                   f"the freeze ({value} at position {at})"
    shares = record.get("seed_shares") or {}
    for d in sorted(set(chain.revealed) | set(shares), key=str.encode):
        shown = chain.revealed.get(d, [])
        if len(shown) > 1:
            return f"seed_shares[{d!r}]: revealed {len(shown)} times (positions {', '.join(str(p) for p, _ in shown)})"
        if not shown:
            return f"seed_shares[{d!r}]: in the draw record, but {d} revealed no share before the draw"
        at, value = shown[0]
        if at <= frozen_at:
            return f"seed_shares[{d!r}]: Task.ShareRevealed at position {at} is not after the freeze " \
                   f"(position {frozen_at})"
        if d not in chain.shares:
            return f"seed_shares[{d!r}]: revealed at position {at}, but {d} committed no share before the freeze"
        raw = hex32(value)
        if raw is None or hashlib.sha256(raw).hexdigest() != chain.shares[d][0][1]:
            return f"seed_shares[{d!r}]: the share revealed at position {at} does not hash to {d}'s commitment " \
                   f"(position {chain.shares[d][0][0]})"
        if shares.get(d) != value:
            return f"seed_shares[{d!r}]: the draw record's share is not the one revealed at position {at}"
    return None


def verify(items: Iterable[dict[str, Any]] | Callable[[], Iterable[dict[str, Any]]],
           year: int | None = None) -> list[tuple[str, int, str | None]]:
    """``[(what, round, first difference or None)]`` for every drawn round of a task (``task <id>``) and every
    follow-up draw (``follow-up <id>``), in log order of the draws.

    ``items``: the export's items, or a function that returns a fresh iterator over them each time it is called
    (``main`` reads the file twice): the verifier then keeps no event, only the state the log has built so far
    (targets, staff, tasks, visits, inspections) and what the first pass found of the draws, so its memory
    follows the directory's size, not the log's length."""
    if callable(items):
        passes = items
    else:
        events = list(items)

        def passes() -> Iterable[dict[str, Any]]:
            return events
    frozen: dict[tuple[str, int], dict[str, Any]] = {}
    by_position: dict[int, list[tuple[str, int]]] = {}
    # Team draws and redraws read their inputs at a position: version 2 records it; for version 1 the state just
    # before the command's first event is tried (section 16, "Two versions of the record"). Snapshot them there.
    reads: dict[int, list[tuple[str, str, str]]] = {}  # position -> (kind, aggregate id, department)
    recused: dict[str, int] = {}  # assignment -> position of its last InspectorRecused (a redraw's first event)
    read_at: dict[int, int] = {}  # a team draw's or redraw's position -> where its inputs were read
    follow_reads: dict[int, list[tuple[str, str, str]]] = {}  # position -> (round, department, period)
    for ev in passes():  # the first pass: where the pools and inputs are to be read
        if ev["topic"] == TASK + "PoolFrozen":
            key = (ev["aggregate_id"], ev["data"]["round"])
            frozen[key] = ev["data"]
            by_position.setdefault(ev["data"]["position"], []).append(key)
        if ev["topic"] == ASSIGNMENT + "InspectorRecused":
            recused[ev["aggregate_id"]] = ev["position"]
        if ev["topic"] in (TASK + "InspectorsDrawn", ASSIGNMENT + "MemberRedrawn"):
            kind = "teams" if ev["topic"].startswith(TASK) else "redraw"
            read_at[ev["position"]] = position = read_position(ev, recused)
            reads.setdefault(position, []).append((kind, ev["aggregate_id"], ev["data"]["department"]))
        if ev["topic"] == FOLLOW_UP + "Planned":  # section 17: version 2 records where; version 1 just before it
            at = ev["data"].get("position")
            position = at if type(at) is int else ev["position"] - 1
            follow_reads.setdefault(position, []).append(
                (ev["aggregate_id"], ev["data"]["department"], ev["data"]["period"]))
    inputs: dict[tuple[str, str, str, int], dict[str, Any]] = {}
    pools: dict[tuple[str, int], Pool] = {}
    follow_pools: dict[str, list[str]] = {}
    log = Log()
    pending = sorted(set(by_position) | set(reads) | set(follow_reads))

    def snapshot(upto: int) -> None:
        while pending and pending[0] <= upto:
            position = pending.pop(0)
            for key in by_position.get(position, []):
                if key[0] in log.tasks:
                    pools[key] = log.pool(key[0], by_class=not legacy_weighted(frozen[key]))
            for oid, dept, period in follow_reads.get(position, []):
                follow_pools[oid] = log.follow_up_pool(dept, period)
            for kind, oid, dept in reads.get(position, []):
                if kind == "teams" and oid in log.tasks:
                    t = log.tasks[oid]
                    inputs[(kind, oid, dept, position)] = log.team_inputs(
                        dept, t["participants"], t["selected"] or [], t["period"])
                elif kind == "redraw" and oid in log.assignments:
                    a = log.assignments[oid]
                    inputs[(kind, oid, dept, position)] = log.team_inputs(
                        dept, {dept: a["items"].get(dept, [])}, [a["target_id"]], a["period"], a["task_id"])

    results: list[tuple[str, int, str | None]] = []
    planned: dict[str, tuple[int, dict[str, Any]]] = {}
    drawn: dict[str, list[int]] = {}  # follow-up round -> positions of its Drawn events
    follow_line: dict[str, int] = {}  # follow-up round -> index of its line in results
    chains: dict[tuple[str, int], Chain] = {}  # (task, round) -> its events so far
    for ev in passes():  # the second pass: the state, event by event, and every check where its draw is
        snapshot(ev["position"] - 1)  # a freeze at position p sees every event up to p, inclusive
        if ev["topic"] == ASSIGNMENT + "MemberRedrawn":  # re-run against the team as it was before the redraw
            a = log.assignments[ev["aggregate_id"]]
            task = log.tasks.get(a["task_id"])
            if task is not None and (year is None or task["year"] == year):
                what = f"redraw {ev['aggregate_id']} {ev['data']['department']}{version_note(ev)}"
                results.append((what, ev["data"]["counter"], check_redraw(ev, a, task, inputs, read_at[ev["position"]])))
        log.apply(ev)
        if ev["topic"] in CHAIN_EVENTS:
            chains.setdefault((ev["aggregate_id"], ev["data"]["round"]), Chain()).apply(ev)
        if ev["topic"] == FOLLOW_UP + "Planned":
            planned[ev["aggregate_id"]] = (ev["position"], ev["data"])
        elif ev["topic"] == FOLLOW_UP + "Drawn":
            oid = ev["aggregate_id"]
            drawn.setdefault(oid, []).append(ev["position"])
            if oid not in planned:
                results.append((f"follow-up {oid}", 1, "planned: no Planned event before the draw"))
                continue
            planned_at, plan = planned[oid]
            if year is not None and not str(plan["period"]).startswith(str(year)):
                continue
            what = f"follow-up {oid}{' (version 1)' if plan.get('position') is None else ''}"
            if len(drawn[oid]) > 1:  # one line per round: the first draw's check becomes this mismatch
                results[follow_line[oid]] = (what, 1, f"drawn: the round was drawn {len(drawn[oid])} times "
                                                      f"(positions {', '.join(str(p) for p in drawn[oid])})")
            else:
                follow_line[oid] = len(results)
                results.append((what, 1, check_follow_up(plan, planned_at, ev["data"]["record"],
                                                         follow_pools.get(oid))))
        elif ev["topic"] == TASK + "InspectorsDrawn":
            task = log.tasks[ev["aggregate_id"]]
            if year is None or task["year"] == year:
                what = f"teams {ev['aggregate_id']} {ev['data']['department']}{version_note(ev)}"
                results.append((what, ev["data"]["round"], check_team_draw(ev, task, inputs, read_at[ev["position"]])))
        elif ev["topic"] == TASK + "TargetsDrawn":
            key = (ev["aggregate_id"], ev["data"]["round"])
            if year is not None and log.tasks[key[0]]["year"] != year:
                continue
            record = ev["data"]["record"]
            broken = check_chain(record, chains.get(key))
            if broken:
                results.append((f"task {key[0]}", key[1], broken))
            else:
                pool = pools.get(key, Pool())
                difference = check_sizes(frozen[key], pool.sizes) or check_excluded(frozen[key], pool) or \
                    check_quotas(log.tasks[key[0]], frozen[key], pool, pool.by_class) or \
                    check(record, frozen[key], pool.rows, pool.sizes)
                results.append((f"task {key[0]}", key[1], difference))
    return results


def lines_of(f: Any) -> Iterator[dict[str, Any]]:
    """The export's items from an open text file, from its start (each pass reads it again)."""
    f.seek(0)
    return read_export(f)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Re-derive every pool, target draw and team of an audit export.")
    parser.add_argument("export", help="the NDJSON of GET /api/v1/audit/export ('-': standard input)")
    parser.add_argument("--year", type=int, default=None, help="only tasks of this year")
    args = parser.parse_args(argv)
    name = "standard input" if args.export == "-" else args.export
    try:
        if args.export == "-":  # read twice: standard input is kept in a temporary file, not in memory
            with tempfile.TemporaryFile("w+", encoding="utf-8") as spool:
                for line in sys.stdin:
                    spool.write(line)
                results = verify(lambda: lines_of(spool), args.year)
        else:
            with open(args.export, encoding="utf-8") as f:
                results = verify(lambda: lines_of(f), args.year)
    except OSError as exc:
        print(f"not an export: {name}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except NotAnExport as exc:
        print(f"not an export: {name}: {exc}", file=sys.stderr)
        return 2
    except UnicodeDecodeError:
        print(f"not an export: {name}: not UTF-8 text", file=sys.stderr)
        return 2
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:  # an item lacks what its topic has
        print(f"not an export: {name}: an event is not of the export's form ({type(exc).__name__}: {exc})",
              file=sys.stderr)
        return 2
    bad = skipped = 0
    for what, number, difference in results:
        label = f"{what} {'redraw' if what.startswith('redraw') else 'round'} {number}"
        if difference is None:
            print(f"OK        {label}")
        elif isinstance(difference, Skipped):
            skipped += 1
            print(f"SKIPPED   {label}: {difference}")
        else:
            bad += 1
            print(f"MISMATCH  {label}: {difference}")
    print(f"{len(results)} checks, {len(results) - bad - skipped} reproduce, {bad} do not"
          + (f", {skipped} skipped" if skipped else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
