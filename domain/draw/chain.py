"""The chain of a round (docs/verifying-a-draw.md section 13.1), checked from the task's own events with their log
positions: the seed's commitment and the declared entropy source recorded before the freeze, every seed share
committed before it and revealed after it, hashing to its commitment, and the draw record repeating all of them.

Pure: the caller gives the task's events as ``(log position, event)`` in log order. The server's verification
uses it; the standalone verifier (docs/verifier/verify_draws.py) is an independent implementation of the same
text, and both word a difference alike.
"""

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from domain.tasks.task import Task

__all__ = ["CHECKS", "ChainCheck", "chain_checks", "first_difference"]

CHECKS = ("freeze", "commitment", "entropy_source", "share_commitments", "seed_shares")
"""The checks of section 13.1, in the order a verifier runs them."""

Status = Literal["ok", "differs", "not_checked"]
_HEX32 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ChainCheck:
    """One check: ``ok``; ``differs`` with ``detail`` the first difference; ``not_checked`` with ``detail`` why
    (it needs the freeze, which is not there)."""

    name: str
    status: Status
    detail: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.name, "status": self.status, "detail": self.detail}


def first_difference(checks: Iterable[ChainCheck]) -> str | None:
    """The first check's difference in section 13.1's order, or None when the chain holds."""
    return next((c.detail for c in checks if c.status == "differs"), None)


def _positions(found: list[tuple[int, Any]]) -> str:
    return ", ".join(str(p) for p, _ in found)


def chain_checks(events: Iterable[tuple[int, Any]], round_: int, record: Mapping[str, Any]) -> list[ChainCheck]:
    """The five checks of section 13.1 for the round ``round_`` drawn with ``record``, over the task's events below
    the round's draw (``Task.TargetsDrawn``; every event of the round when it has none)."""
    seeds: list[tuple[int, Any]] = []
    freezes: list[tuple[int, Any]] = []
    committed: dict[str, list[tuple[int, Any]]] = {}
    revealed: dict[str, list[tuple[int, Any]]] = {}
    for position, ev in events:
        if getattr(ev, "round", None) != round_:
            continue
        if isinstance(ev, Task.TargetsDrawn):
            break
        if isinstance(ev, Task.SeedCommitted):
            seeds.append((position, ev))
        elif isinstance(ev, Task.PoolFrozen):
            freezes.append((position, ev))
        elif isinstance(ev, Task.ShareCommitted):
            committed.setdefault(ev.department, []).append((position, ev))
        elif isinstance(ev, Task.ShareRevealed):
            revealed.setdefault(ev.department, []).append((position, ev))
    out = [_freeze(freezes, record)]
    frozen_at = freezes[0][0] if out[0].status == "ok" else None
    out += _commitment(seeds, frozen_at, record)
    out.append(_share_commitments(committed, frozen_at, record))
    out.append(_seed_shares(committed, revealed, frozen_at, record))
    return out


def _freeze(freezes: list[tuple[int, Any]], record: Mapping[str, Any]) -> ChainCheck:
    if len(freezes) > 1:
        return ChainCheck("freeze", "differs", f"freeze_position: the round was frozen {len(freezes)} times before "
                                               f"the draw (positions {_positions(freezes)})")
    if not freezes or freezes[0][1].position != record.get("freeze_position"):
        return ChainCheck("freeze", "differs", "freeze_position: no freeze of this round at the recorded position")
    return ChainCheck("freeze", "ok")


_NO_FREEZE = "not checked: it is relative to the freeze, which differs"


def _commitment(seeds: list[tuple[int, Any]], frozen_at: int | None,
                record: Mapping[str, Any]) -> list[ChainCheck]:
    """The ``commitment`` and ``entropy_source`` checks (section 13.1, step 2)."""
    source = ChainCheck("entropy_source", "not_checked", "not checked: no single commitment before the freeze")
    if not seeds:
        return [ChainCheck("commitment", "differs", "commitment: no Task.SeedCommitted of this round before the draw"),
                source]
    if len(seeds) > 1:
        return [ChainCheck("commitment", "differs", f"commitment: the round was committed {len(seeds)} times "
                                                    f"(positions {_positions(seeds)})"), source]
    at, ev = seeds[0]
    if frozen_at is None:
        return [ChainCheck("commitment", "not_checked", _NO_FREEZE), ChainCheck("entropy_source", "not_checked",
                                                                                _NO_FREEZE)]
    if at >= frozen_at:
        return [ChainCheck("commitment", "differs", f"commitment: Task.SeedCommitted at position {at} is not before "
                                                    f"the freeze (position {frozen_at})"), source]
    first = ChainCheck("commitment", "ok")
    if record.get("commitment") != ev.commitment:
        first = ChainCheck("commitment", "differs", f"commitment: the draw record's {record.get('commitment')} is "
                                                    f"not the one committed before the freeze ({ev.commitment} at "
                                                    f"position {at})")
    declared = getattr(ev, "entropy_source", "") or ""
    if record.get("entropy_source", "") != declared:
        return [first, ChainCheck("entropy_source", "differs", f"entropy_source: the draw record's "
                                                               f"{record.get('entropy_source', '')!r} is not the one "
                                                               f"declared with the commitment ({declared!r} at "
                                                               f"position {at})")]
    return [first, ChainCheck("entropy_source", "ok")]


def _share_commitments(committed: dict[str, list[tuple[int, Any]]], frozen_at: int | None,
                       record: Mapping[str, Any]) -> ChainCheck:
    recorded = record.get("share_commitments") or {}
    if frozen_at is None:
        return ChainCheck("share_commitments", "not_checked", _NO_FREEZE)
    for d in sorted(set(committed) | set(recorded), key=str.encode):
        made = committed.get(d, [])
        name = f"share_commitments[{d!r}]"
        if len(made) > 1:
            return ChainCheck("share_commitments", "differs", f"{name}: committed {len(made)} times (positions "
                                                              f"{_positions(made)})")
        if not made:
            return ChainCheck("share_commitments", "differs", f"{name}: in the draw record, but {d} committed no "
                                                              "share before the freeze")
        at, ev = made[0]
        if at >= frozen_at:
            return ChainCheck("share_commitments", "differs", f"{name}: Task.ShareCommitted at position {at} is not "
                                                              f"before the freeze (position {frozen_at})")
        if recorded.get(d) != ev.commitment:
            return ChainCheck("share_commitments", "differs", f"{name}: the draw record's {recorded.get(d)} is not "
                                                              f"the one committed before the freeze ({ev.commitment} "
                                                              f"at position {at})")
    return ChainCheck("share_commitments", "ok")


def _seed_shares(committed: dict[str, list[tuple[int, Any]]], revealed: dict[str, list[tuple[int, Any]]],
                 frozen_at: int | None, record: Mapping[str, Any]) -> ChainCheck:
    shares = record.get("seed_shares") or {}
    if frozen_at is None:
        return ChainCheck("seed_shares", "not_checked", _NO_FREEZE)
    for d in sorted(set(revealed) | set(shares), key=str.encode):
        shown = revealed.get(d, [])
        name = f"seed_shares[{d!r}]"
        if len(shown) > 1:
            return ChainCheck("seed_shares", "differs", f"{name}: revealed {len(shown)} times (positions "
                                                        f"{_positions(shown)})")
        if not shown:
            return ChainCheck("seed_shares", "differs", f"{name}: in the draw record, but {d} revealed no share "
                                                        "before the draw")
        at, ev = shown[0]
        if at <= frozen_at:
            return ChainCheck("seed_shares", "differs", f"{name}: Task.ShareRevealed at position {at} is not after "
                                                        f"the freeze (position {frozen_at})")
        if d not in committed:
            return ChainCheck("seed_shares", "differs", f"{name}: revealed at position {at}, but {d} committed no "
                                                        "share before the freeze")
        made_at, made = committed[d][0]
        value = ev.share
        if not isinstance(value, str) or not _HEX32.match(value) or \
                hashlib.sha256(bytes.fromhex(value)).hexdigest() != made.commitment:
            return ChainCheck("seed_shares", "differs", f"{name}: the share revealed at position {at} does not hash "
                                                        f"to {d}'s commitment (position {made_at})")
        if shares.get(d) != value:
            return ChainCheck("seed_shares", "differs", f"{name}: the draw record's share is not the one revealed at "
                                                        f"position {at}")
    return ChainCheck("seed_shares", "ok")
