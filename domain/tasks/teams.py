"""The inputs of a department's team draw: the visit date, what each visit needs, the staff as the draw sees
them, the digest of that staff the event records, and the load cap of a recusal's redraw."""

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from domain.audit.canonical import canonicalize
from domain.draw.matching import ExpertInfo, InspectorInfo, VisitNeed
from domain.errors import FieldProblem, InvalidInputError
from domain.planning.rules import parse_period


def team_visit_date(period: str, today: dt.date, given: dt.date | None = None) -> dt.date:
    """The visit date of a team draw: the given one, else today when it lies in the task's period, else the
    period's first day; a date outside the period is refused (``visit_date``)."""
    p = parse_period(period)
    visit = given or (today if p.start <= today <= p.end else p.start)
    if not p.start <= visit <= p.end:
        raise InvalidInputError(
            [FieldProblem("visit_date", "period", f"must lie in {period} ({p.start}..{p.end})")]
        )
    return visit


def joint_visit_date(
    period: str, today: dt.date, department: str, drawn: Mapping[str, Mapping[str, Any]], given: dt.date | None = None
) -> dt.date:
    """A joint visit has one agreed date: the first department to draw its teams sets it (normally the lead,
    proposing); every other department's team draw takes it. ``drawn``: the round's team draws so far, department ->
    ``{visit_date, ...}``. Without a date, a later department gets the agreed one; a different date is refused
    (``visit_date`` / ``joint_visit_date``, naming the agreed date and who set it), so two departments never go on
    two dates. A department redrawing alone (no other department drew yet) may move its own date."""
    others = {d: str(v["visit_date"]) for d, v in drawn.items() if d != department and v.get("visit_date")}
    if not others:
        return team_visit_date(period, today, given)
    setter, agreed = min(others.items(), key=lambda kv: (kv[1], kv[0]))
    agreed_day = dt.date.fromisoformat(agreed)
    if given is not None and given != agreed_day:
        raise InvalidInputError([FieldProblem(
            "visit_date", "joint_visit_date",
            f"a joint visit has one date: {setter} drew its teams for {agreed}; draw for {agreed} (or leave "
            "visit_date out), or agree another date and redraw")])
    return agreed_day


def redraw_day(visit: str | None, today: dt.date) -> dt.date:
    """The day a recusal's replacement must be certified on: the visit's date, else today."""
    return dt.date.fromisoformat(visit) if visit else today


def specialties(items: Mapping[str, Mapping[str, Any]]) -> frozenset[str]:
    """The specialties the department's items on a visit ask for (none: anyone may go)."""
    wanted: set[Any] = {i.get("specialty") for i in items.values() if i.get("specialty")}
    return frozenset(wanted)


def expert_fields(items: Mapping[str, Mapping[str, Any]]) -> frozenset[str]:
    """The expert fields of the items that need an expert (its field, else its specialty, else its name)."""
    fields: set[Any] = {
        (i.get("expert_field") or i.get("specialty") or i.get("name"))
        for i in items.values()
        if i.get("needs_expert")
    }
    return frozenset(fields)


def visit_needs(
    selected: Sequence[str],
    targets: Mapping[str, Mapping[str, Any]],
    items: Mapping[str, Mapping[str, Any]],
    on_visit: Mapping[str, Sequence[str]] | None = None,
) -> list[VisitNeed]:
    """One need per drawn target: its county as the region, the items' specialties and expert fields.

    ``on_visit`` (target -> the department's item ids on that visit: those that apply to the target, 多项合一
    merges only what applies, ``domain.planning.applicability.visit_items``): each need asks only for what
    the target's items ask for, and a target without any of the department's items gets no need (the
    department does not go). Without it every item counts for every target."""
    needs = []
    for t in selected:
        mine = items if on_visit is None else {i: items.get(i, {}) for i in on_visit.get(t, ())}
        if on_visit is None or mine:
            needs.append(VisitNeed(t, region=targets.get(t, {}).get("county", ""), specialties=specialties(mine),
                                   needs_expert_fields=expert_fields(mine)))
    return needs


def inspector_info(entry_id: str, department: str, data: Mapping[str, Any]) -> InspectorInfo:
    """An inspector's directory entry as the draw reads it (active unless said otherwise)."""
    expiry = data.get("certificate_expiry")
    return InspectorInfo(
        id=entry_id,
        department=department,
        certificate_expiry=dt.date.fromisoformat(expiry) if expiry else None,
        specialties=frozenset(data.get("specialties") or []),
        region=data.get("region") or "",
        active=bool(data.get("active", True)),
        conflicts=frozenset(data.get("conflicts") or []),
    )


def expert_info(entry_id: str, department: str, data: Mapping[str, Any]) -> ExpertInfo:
    """An expert's directory entry as the draw reads it."""
    return ExpertInfo(
        id=entry_id,
        department=department,
        field=data.get("field", ""),
        conflicts=frozenset(data.get("conflicts") or []),
    )


def staff_digest(inspectors: Sequence[InspectorInfo], experts: Sequence[ExpertInfo]) -> str:
    """``inspectors_digest`` version 2 (``Task.InspectorsDrawn`` v2): SHA-256, lowercase hex, of the RFC 8785
    canonical JSON (``domain.audit.canonical``) of the array of every inspector and expert of the department as
    the draw read them, by id (docs/verifying-a-draw.md section 16)."""
    return hashlib.sha256(canonicalize(staff_values(inspectors, experts))).hexdigest()


def staff_digest_v1(inspectors: Sequence[InspectorInfo], experts: Sequence[ExpertInfo]) -> str:
    """``inspectors_digest`` version 1 (events recorded before version 2): the same array as Python's
    ``json.dumps(..., sort_keys=True, ensure_ascii=False, separators=(",", ":"))``, UTF-8."""
    data = json.dumps(staff_values(inspectors, experts), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(data.encode()).hexdigest()


def staff_values(inspectors: Sequence[InspectorInfo], experts: Sequence[ExpertInfo]) -> list[dict[str, Any]]:
    """The staff as JSON values, sorted by id: inspectors ``{id, department, certificate_expiry, specialties,
    region, active, conflicts}``, experts ``{id, department, field, conflicts}``."""
    values = [_info_dict(i) for i in inspectors] + [_info_dict(e) for e in experts]
    return sorted(values, key=lambda d: str(d["id"]))


def _info_dict(info: InspectorInfo | ExpertInfo) -> dict[str, Any]:
    """An inspector's or expert's draw inputs as JSON values (sets sorted, dates ISO)."""
    return {
        k: sorted(v) if isinstance(v, frozenset) else v.isoformat() if isinstance(v, dt.date) else v
        for k, v in dataclasses.asdict(info).items()
    }


def max_load(team_size: int, visits: int, eligible: int) -> int:
    """The most visits of one task a redraw may give one inspector: the even share, rounded up, plus one.

    ``visits`` and ``eligible`` (active inspectors) count at least one each."""
    return -(-team_size * max(visits, 1) // max(eligible, 1)) + 1
