"""The inspector draw (the second 随机 of 双随机): one team per drawn target, per department, from a key.

Each participating department draws its own team for each target from its own inspectors. The rules:

- **Eligible** for a target: an inspector of the department, active, with a certificate valid on the visit
  date (``certificate_expiry >= visit_date``; none means not certified), no declared conflict with the target,
  not in ``previous[target]`` when ``exclude_previous`` (who inspected it in the previous period), and, with
  ``match_region``, in the target's region. ``match_region`` is a *requirement*, not a preference: a need
  with an empty region accepts every region.
- **Team**: at least ``team_size`` (>= 2) eligible inspectors; for every specialty the need lists, at least
  one member has it (a team grows past ``team_size`` when that takes more members). The **leader** is the
  first member drawn (``members[0]``).
- **Workload**: no inspector on more than ``cap = ceil(team_size * len(needs) / E) + 1`` teams of one call,
  ``E`` the department's inspectors who are active and certified on the visit date. With ``match_region``
  the mean is taken per region, since a region's targets can only go to its inspectors:
  ``cap[r] = ceil(team_size * (needs in r + needs without a region) / E[r]) + 1``, ``E[r]`` those of ``E``
  in region ``r`` (a department-wide cap would make a region with fewer inspectors per target than the
  department's mean impossible to serve).
- **Experts**: for each field a need lists, one expert of the department's library in that field without a
  conflict with the target.
- Too few eligible inspectors (or no specialist, or no expert) for any target: one
  :class:`InsufficientInspectorsError` naming the department, every such target and why.

How the draw is made, so that it is deterministic from the key, balanced, and pairs people at random:

- ``r(label)`` is the first 8 bytes, big-endian, of HMAC-SHA256(key, UTF-8(label)).
- Targets are served in ascending order of (number of eligible inspectors, ``r(f"{department}\\n{target}")``,
  target id): the most constrained first, otherwise in keyed random order.
- Inspectors sit in load buckets: bucket ``L`` holds, in a definite order, those with ``L`` visits so far
  (bucket 0 starts in id order). With ``match_region`` there is one set of buckets per region, else one.
  The ``s``-th pick for a target (``s`` = 0, 1, ...) uses ``h = r(f"{department}\\n{target}\\n{s}")``: from
  the lowest load upwards (below the cap), the level-``L`` buckets that may serve the target (its region's;
  every region's, in sorted order, for a need without a region) are taken as one list of size ``m``; the
  pick looks at positions ``h mod m, h mod m + 1, ...`` (cyclically) and takes the first inspector who
  qualifies for this pick. The taken inspector leaves its bucket (the bucket's last one takes the place)
  and is appended to the next level's bucket. Picks go first to each required specialty not yet covered
  (in sorted order, among inspectors with that specialty), then to anyone eligible until ``team_size``.
- Experts likewise, one bucket set per field, with ``h = r(f"{department}\\n{target}\\nexpert\\n{field}")``.

Ranking every (target, inspector) pair by its own HMAC, as a redraw does, would take 20 million HMACs for
10,000 targets and 2,000 inspectors (~20 s); the bucket walk needs a handful per target, and still gives
each target's team a keyed-random draw among the least loaded.

A **redraw** (:func:`redraw_member`) replaces one member: among the inspectors eligible for the target, not
in the team, able to cover the specialties only the removed member covered, and under ``max_load`` when
given, the one with the lowest ``(load, r(label), id)``, ``label`` being
``f"{department}\\n{target}\\nredraw\\n{counter}\\n{inspector}"``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from domain.errors import DomainError, FieldProblem, InvalidInputError

MIN_TEAM_SIZE = 2
_MAX_LISTED = 10  # shortfalls spelled out in the error message; all are in ``shortfalls`` and ``problems``


# -- inputs and outputs -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InspectorInfo:
    """What the draw needs to know of one inspector (执法检查人员)."""

    id: str
    department: str
    certificate_expiry: date | None
    specialties: frozenset[str] = frozenset()
    region: str = ""
    active: bool = True
    conflicts: frozenset[str] = frozenset()  # target ids


@dataclass(frozen=True)
class ExpertInfo:
    """One entry of a department's expert library (专家库)."""

    id: str
    department: str
    field: str
    conflicts: frozenset[str] = frozenset()


@dataclass(frozen=True)
class VisitNeed:
    """What one drawn target asks of this department: specialties (empty: any) and expert fields."""

    target_id: str
    region: str = ""
    specialties: frozenset[str] = frozenset()
    needs_expert_fields: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Team:
    """A department's team for one target: ``members[0]`` is the leader (组长)."""

    leader: str
    members: tuple[str, ...]
    experts: tuple[str, ...] = ()

    def replace(self, removed: str, new: str) -> Team:
        """The team with ``removed`` out and ``new`` in (last); the leader stays unless removed, then the
        next member in draw order leads."""
        if removed not in self.members:
            raise InvalidInputError([FieldProblem("removed_inspector_id", "not_a_member",
                                                  f"{removed} is not a member of this team")])
        members = (*(m for m in self.members if m != removed), new)
        return Team(leader=members[0], members=members, experts=self.experts)


@dataclass(frozen=True)
class Shortfall:
    """Why one target could not get its team from one department."""

    department: str
    target_id: str
    needed: int
    eligible: int
    assigned: int
    reasons: tuple[tuple[str, int], ...] = ()  # (why an inspector was not usable, how many)
    missing: tuple[str, ...] = ()  # specialties or expert fields nobody could cover
    what: str = "inspectors"
    target_name: str = ""  # 名称（统一社会信用代码）, set by the caller that knows the directory

    @property
    def short(self) -> int:
        return max(0, self.needed - self.assigned)

    def message(self) -> str:
        named = f"{self.target_name} [{self.target_id}]" if self.target_name else self.target_id
        text = f"{self.department}: target {named} needs {self.needed} {self.what}"
        text += f", {self.eligible} eligible"
        if self.assigned != min(self.eligible, self.needed):
            text += f", {self.assigned} assignable"
        if self.short:
            text += f" ({self.short} short)"
        if self.reasons:
            text += ": " + ", ".join(_count(n, reason) for reason, n in self.reasons)
        if self.missing:
            text += "; " + "; ".join(self.missing)
        return text


class InsufficientInspectorsError(DomainError):
    """A department has too few eligible inspectors (or specialists, or experts) for some targets."""

    title = "Too few eligible inspectors"

    def __init__(self, shortfalls: Sequence[Shortfall]) -> None:
        self.shortfalls = tuple(shortfalls)
        lines = [s.message() for s in self.shortfalls]
        message = "; ".join(lines[:_MAX_LISTED])
        if len(lines) > _MAX_LISTED:
            message += f"; and {len(lines) - _MAX_LISTED} more targets"
        super().__init__(
            message, [FieldProblem("inspectors", "insufficient_inspectors", line) for line in lines]
        )


# -- the draw ------------------------------------------------------------------------------------------------
def match_teams(
    key: bytes,
    department: str,
    needs: Sequence[VisitNeed],
    inspectors: Sequence[InspectorInfo],
    visit_date: date,
    *,
    experts: Sequence[ExpertInfo] = (),
    team_size: int = MIN_TEAM_SIZE,
    previous: Mapping[str, Collection[str]] | None = None,
    exclude_previous: bool = True,
    match_region: bool = False,
) -> dict[str, Team]:
    """Draw ``department``'s team for every need (see the module doc); ``{target_id: Team}`` in need order.

    Inspectors and experts of other departments are ignored, so a caller may pass a whole directory.
    """
    _check_common(key, department, team_size)
    _check_needs(needs)
    previous = previous or {}
    staff, static_reasons = _department_staff(department, inspectors, visit_date)
    pool = sorted(staff)
    conflicts_of = _conflict_index(staff.values())
    region_sizes: dict[str, int] = {}
    for info in staff.values():
        region_sizes[info.region] = region_sizes.get(info.region, 0) + 1
    rk = _Ranker(key)

    def excluded_for(need: VisitNeed) -> set[str]:
        out = set(conflicts_of.get(need.target_id, ()))
        if exclude_previous:
            out |= {i for i in previous.get(need.target_id, ()) if i in staff}
        return out

    def eligible_count(need: VisitNeed) -> int:
        by_region = match_region and bool(need.region)
        base = region_sizes.get(need.region, 0) if by_region else len(pool)
        return base - sum(1 for i in excluded_for(need) if not by_region or staff[i].region == need.region)

    order = sorted(
        needs, key=lambda nd: (eligible_count(nd), rk.rank(f"{department}\n{nd.target_id}"), nd.target_id)
    )
    partitions: dict[str, list[str]] = {}
    for i in pool:  # one partition per region when regions must match: a pick never walks the others
        partitions.setdefault(staff[i].region if match_region else "", []).append(i)
    if match_region:
        per_region = Counter(need.region for need in needs if need.region)
        anywhere = len(needs) - sum(per_region.values())
        caps = {r: _ceil(team_size * (per_region[r] + anywhere), len(ids)) + 1
                for r, ids in partitions.items()}
    else:
        caps = {"": _ceil(team_size * len(needs), len(pool)) + 1} if pool else {}
    buckets = _Buckets(partitions, caps)
    expert_buckets = _expert_buckets(department, experts)
    teams: dict[str, Team] = {}
    shortfalls: list[Shortfall] = []
    for need in order:
        target = need.target_id
        excluded = excluded_for(need)
        region = need.region if match_region and need.region else None
        parts = None if region is None else [region]
        chosen: list[str] = []

        def usable(
            i: str, _ex: set[str] = excluded, _region: str | None = region, _chosen: list[str] = chosen
        ) -> bool:
            return i not in _ex and i not in _chosen and (_region is None or staff[i].region == _region)

        missing: list[str] = []
        for specialty in sorted(need.specialties):
            if any(specialty in staff[m].specialties for m in chosen):
                continue
            pick = buckets.pick(
                rk.rank(f"{department}\n{target}\n{len(chosen)}"),
                lambda i, s=specialty: usable(i) and s in staff[i].specialties,  # type: ignore[misc]
                parts,
            )
            if pick is None:
                holders = [i for i in pool if usable(i) and specialty in staff[i].specialties]
                note = f" ({_at_cap(len(holders), {buckets.cap_of(i) for i in holders})})" if holders else ""
                missing.append(f"no eligible inspector with specialty {specialty!r}{note}")
            else:
                chosen.append(pick)
        while len(chosen) < team_size:
            pick = buckets.pick(rk.rank(f"{department}\n{target}\n{len(chosen)}"), usable, parts)
            if pick is None:
                break
            chosen.append(pick)
        picked_experts, expert_missing = _pick_experts(rk, department, need, expert_buckets)
        missing += expert_missing
        if len(chosen) < team_size or missing:
            shortfalls.append(_shortfall(department, need, team_size, chosen, missing, pool, staff,
                                         static_reasons, excluded, conflicts_of, region, buckets))
            continue
        teams[target] = Team(leader=chosen[0], members=tuple(chosen), experts=picked_experts)
    if shortfalls:
        position = {need.target_id: n for n, need in enumerate(needs)}
        raise InsufficientInspectorsError(sorted(shortfalls, key=lambda s: position[s.target_id]))
    return {need.target_id: teams[need.target_id] for need in needs}


def redraw_member(
    key: bytes,
    counter: int,
    department: str,
    need: VisitNeed,
    team: Team,
    removed_inspector_id: str,
    inspectors: Sequence[InspectorInfo],
    visit_date: date,
    *,
    previous: Mapping[str, Collection[str]] | None = None,
    exclude_previous: bool = True,
    match_region: bool = False,
    loads: Mapping[str, int] | None = None,
    max_load: int | None = None,
    excluded: Collection[str] = (),
) -> str:
    """The deterministic replacement for ``removed_inspector_id`` (recusal, unavailability): redraw number
    ``counter`` (1, 2, ...) of this task. The rest of the team stays; use ``team.replace(removed, new)``.

    ``loads`` (visits per inspector in the task) makes the least loaded win and, with ``max_load``, keeps
    the workload cap; ``excluded`` adds ids that may not come back (e.g. earlier recusals).
    """
    _check_common(key, department, MIN_TEAM_SIZE)
    if type(counter) is not int or counter < 1:
        raise InvalidInputError([FieldProblem("counter", "min", "the redraw counter starts at 1")])
    if removed_inspector_id not in team.members:
        raise InvalidInputError([FieldProblem("removed_inspector_id", "not_a_member",
                                              f"{removed_inspector_id} is not a member of this team")])
    previous = previous or {}
    loads = loads or {}
    staff, static_reasons = _department_staff(department, inspectors, visit_date)
    remaining = [m for m in team.members if m != removed_inspector_id]
    uncovered = {
        s for s in need.specialties if not any(m in staff and s in staff[m].specialties for m in remaining)
    }
    target = need.target_id
    out = set(team.members) | set(excluded) | {removed_inspector_id}
    reasons: dict[str, int] = dict(static_reasons)
    candidates: list[str] = []
    for i in sorted(staff):
        info = staff[i]
        if i in out:
            continue
        if match_region and need.region and info.region != need.region:
            _bump(reasons, "in another region")
        elif target in info.conflicts:
            _bump(reasons, "conflict")
        elif exclude_previous and i in previous.get(target, ()):
            _bump(reasons, "inspected it last period")
        elif max_load is not None and loads.get(i, 0) >= max_load:
            _bump(reasons, f"at the workload cap of {max_load}")
        elif not uncovered <= info.specialties:
            _bump(reasons, "without the removed member's specialty")
        else:
            candidates.append(i)
    if not candidates:
        raise InsufficientInspectorsError([
            Shortfall(department=department, target_id=target, needed=1, eligible=0, assigned=0,
                      reasons=_ordered(reasons), what="replacement inspector")
        ])
    rk = _Ranker(key)
    return min(
        candidates,
        key=lambda i: (loads.get(i, 0), rk.rank(f"{department}\n{target}\nredraw\n{counter}\n{i}"), i),
    )


# -- internals -----------------------------------------------------------------------------------------------
class _Ranker:
    """``rank(label)``: the first 8 bytes, big-endian, of HMAC-SHA256(key, UTF-8(label))."""

    def __init__(self, key: bytes) -> None:
        block = hashlib.sha256(key).digest() if len(key) > 64 else key
        block = block.ljust(64, b"\x00")  # RFC 2104: the SHA-256 states after the inner and outer pads
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def rank(self, label: str) -> int:
        inner = self._inner.copy()
        inner.update(label.encode("utf-8"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return int.from_bytes(outer.digest()[:8], "big")


class _Buckets:
    """People by load, in partitions (one per region when regions must match, else one); ``pick`` walks
    the lowest loads first, from a keyed position in the level's buckets taken as one list."""

    def __init__(self, partitions: Mapping[str, list[str]], caps: Mapping[str, int] | None) -> None:
        self.names = sorted(partitions)
        self.levels: dict[str, list[list[str]]] = {p: [list(ids)] for p, ids in partitions.items()}
        self.where: dict[str, int] = {i: n for ids in partitions.values() for n, i in enumerate(ids)}
        self.partition: dict[str, str] = {i: p for p, ids in partitions.items() for i in ids}
        self.load: dict[str, int] = {i: 0 for ids in partitions.values() for i in ids}
        self.low: dict[str, int] = dict.fromkeys(partitions, 0)  # levels below are empty
        self.caps = caps  # per partition; None: no cap

    def pick(self, h: int, ok: Callable[[str], bool], partitions: Sequence[str] | None = None) -> str | None:
        names = self.names if partitions is None else [p for p in partitions if p in self.levels]
        for p in names:  # skip the levels that have emptied (people only move up)
            levels, low = self.levels[p], self.low[p]
            while low < len(levels) - 1 and not levels[low]:
                low += 1
            self.low[p] = low
        tops = {p: len(self.levels[p]) if self.caps is None else min(len(self.levels[p]), self.caps[p])
                for p in names}
        for level in range(min((self.low[p] for p in names), default=0), max(tops.values(), default=0)):
            buckets = [self.levels[p][level] for p in names if level < tops[p]]
            if len(buckets) == 1:  # the common case, without the generator
                bucket = buckets[0]
                size = len(bucket)
                start = h % size if size else 0
                for step in range(size):
                    candidate = bucket[(start + step) % size]
                    if ok(candidate):
                        self._promote(candidate, level)
                        return candidate
                continue
            size = sum(len(b) for b in buckets)
            if size:
                for candidate in _cyclic(buckets, h % size):
                    if ok(candidate):
                        self._promote(candidate, level)
                        return candidate
        return None

    def cap_of(self, person: str) -> int | None:
        return None if self.caps is None else self.caps[self.partition[person]]

    def _promote(self, person: str, level: int) -> None:
        levels = self.levels[self.partition[person]]
        bucket = levels[level]
        position = self.where[person]
        last = bucket.pop()
        if last != person:
            bucket[position] = last
            self.where[last] = position
        if level + 1 == len(levels):
            levels.append([])
        upper = levels[level + 1]
        self.where[person] = len(upper)
        upper.append(person)
        self.load[person] = level + 1


def _cyclic(buckets: list[list[str]], start: int) -> Iterator[str]:
    """The concatenation of ``buckets`` as one cyclic list, from position ``start`` once round."""
    first = 0
    while start >= len(buckets[first]):
        start -= len(buckets[first])
        first += 1
    count = len(buckets)
    for k in range(count + 1):
        bucket = buckets[(first + k) % count]
        for position in range(start if k == 0 else 0, len(bucket) if k < count else start):
            yield bucket[position]


def _department_staff(
    department: str, inspectors: Sequence[InspectorInfo], visit_date: date
) -> tuple[dict[str, InspectorInfo], dict[str, int]]:
    """The department's inspectors active and certified on the visit date, and why the others are not."""
    staff: dict[str, InspectorInfo] = {}
    reasons: dict[str, int] = {}
    duplicates = []
    seen: set[str] = set()
    for info in inspectors:
        if info.department != department:
            continue
        if info.id in seen:
            duplicates.append(info.id)
            continue
        seen.add(info.id)
        if not info.active:
            _bump(reasons, "inactive")
        elif info.certificate_expiry is None:
            _bump(reasons, "without a certificate")
        elif info.certificate_expiry < visit_date:
            _bump(reasons, "expired certificate")
        else:
            staff[info.id] = info
    if duplicates:
        raise InvalidInputError([FieldProblem("inspectors", "duplicate", f"inspector {i} is listed twice")
                                 for i in sorted(set(duplicates))])
    return staff, reasons


def _conflict_index(staff: Collection[InspectorInfo]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for info in staff:
        for target in info.conflicts:
            out.setdefault(target, set()).add(info.id)
    return out


_ExpertPools = dict[str, tuple[_Buckets, dict[str, ExpertInfo]]]  # field -> (buckets, experts by id)


def _expert_buckets(department: str, experts: Sequence[ExpertInfo]) -> _ExpertPools:
    by_field: dict[str, dict[str, ExpertInfo]] = {}
    for e in experts:
        if e.department == department:
            by_field.setdefault(e.field, {})[e.id] = e
    return {f: (_Buckets({"": sorted(members)}, None), members) for f, members in by_field.items()}


def _pick_experts(
    rk: _Ranker, department: str, need: VisitNeed, expert_buckets: _ExpertPools
) -> tuple[tuple[str, ...], list[str]]:
    picked: list[str] = []
    missing: list[str] = []
    target = need.target_id
    for field in sorted(need.needs_expert_fields):
        entry = expert_buckets.get(field)
        if entry is None:
            missing.append(f"no expert in {field!r} in the department's library")
            continue
        buckets, members = entry
        pick = buckets.pick(
            rk.rank(f"{department}\n{target}\nexpert\n{field}"),
            lambda e: target not in members[e].conflicts and e not in picked,  # noqa: B023 - pick() calls it now, in this iteration
        )
        if pick is None:
            conflicted = sum(1 for e in members.values() if target in e.conflicts)
            missing.append(f"no expert in {field!r} without a conflict ({_count(conflicted, 'conflict')})")
        else:
            picked.append(pick)
    return tuple(picked), missing


def _shortfall(
    department: str, need: VisitNeed, team_size: int, chosen: list[str], missing: list[str], pool: list[str],
    staff: Mapping[str, InspectorInfo], static_reasons: Mapping[str, int], excluded: set[str],
    conflicts_of: Mapping[str, set[str]], region: str | None, buckets: _Buckets,
) -> Shortfall:
    reasons = dict(static_reasons)
    eligible = 0
    conflicted = conflicts_of.get(need.target_id, set())
    for i in pool:
        if region is not None and staff[i].region != region:
            _bump(reasons, "in another region")
        elif i in conflicted:
            _bump(reasons, "conflict")
        elif i in excluded:
            _bump(reasons, "inspected it last period")
        else:
            eligible += 1
            cap = buckets.cap_of(i)  # an inspector's bucket always has caps (only experts' have none)
            if i not in chosen and cap is not None and buckets.load[i] >= cap:
                _bump(reasons, f"at the workload cap of {cap}")
    return Shortfall(department=department, target_id=need.target_id, needed=team_size, eligible=eligible,
                     assigned=len(chosen), reasons=_ordered(reasons), missing=tuple(missing))


_REASON_ORDER = ("inactive", "without a certificate", "expired certificate", "in another region", "conflict",
                 "inspected it last period")


def _ordered(reasons: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    known = [(r, reasons[r]) for r in _REASON_ORDER if reasons.get(r)]
    return tuple(known + sorted((r, n) for r, n in reasons.items() if r not in _REASON_ORDER and n))


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _at_cap(n: int, caps: set[int | None]) -> str:
    return f"{n} at the workload cap of {caps.pop()}" if len(caps) == 1 else f"{n} at their workload caps"


def _bump(counter: dict[str, int], reason: str) -> None:
    counter[reason] = counter.get(reason, 0) + 1


_PLURALS = {"expired certificate": "expired certificates", "conflict": "conflicts"}


def _count(n: int, reason: str) -> str:
    return f"{n} {_PLURALS.get(reason, reason) if n != 1 else reason}"


def _check_common(key: bytes, department: str, team_size: int) -> None:
    problems = []
    if not isinstance(key, bytes) or not key:
        problems.append(FieldProblem("key", "required", "the draw key must be non-empty bytes"))
    if not isinstance(department, str) or not department:
        problems.append(FieldProblem("department", "required", "a department code is required"))
    if type(team_size) is not int or team_size < MIN_TEAM_SIZE:
        problems.append(FieldProblem("team_size", "min", f"a team has at least {MIN_TEAM_SIZE} inspectors"))
    if problems:
        raise InvalidInputError(problems)


def _check_needs(needs: Sequence[VisitNeed]) -> None:
    seen: set[str] = set()
    duplicates: set[str] = set()
    for need in needs:
        (duplicates if need.target_id in seen else seen).add(need.target_id)
    if duplicates:
        raise InvalidInputError([FieldProblem("needs", "duplicate", f"target {t} is listed twice")
                                 for t in sorted(duplicates)])
