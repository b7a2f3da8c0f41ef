"""``dualrandom audit verify``: recompute the Merkle tree from the store and check it against the audit
projection's stored tree and every signed checkpoint; name the first bad position.

Three layers of evidence, strongest last: (1) each stored event's leaf against the leaf the projection
recorded when the event was new (pinpoints an edited, deleted, inserted or moved event); (2) every stored
subtree against the recomputed one (a corrupted tree); (3) the recomputed root at each checkpoint's size
against the signed root (catches a log rewritten together with its audit tree; partners hold copies of
these checkpoints). Reads in pages: memory stays constant however long the log.
"""

import functools
import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from domain.audit.canonical import CanonicalFormError
from domain.audit.leaf import record_leaf
from domain.audit.merkle import CompactTree, leaf_hash
from projections.audit.projection import LOWEST_STORED_LEVEL, leaves, nodes, tree_size
from services.audit.checkpoints import Checkpoint, checkpoints, listing
from services.audit.keys import PublicKey
from services.audit.log import iter_records

LEAF_KINDS = ("altered", "missing", "inserted", "undecodable")


@dataclass(frozen=True)
class Finding:
    kind: str  # altered | missing | inserted | undecodable | tree_node | checkpoint_mismatch | checkpoint_beyond_log
    #          | signature | external_mismatch | external_beyond_log | external_signature | fork | witnesses
    message: str
    position: int | None = None
    leaf_index: int | None = None


@dataclass
class Report:
    events: int = 0
    tree_size: int = 0
    checkpoints: int = 0
    latest_checkpoint: int | None = None
    findings: list[Finding] = field(default_factory=list)
    leaf_mismatches: int = 0
    first_bad_position: int | None = None
    suspect_positions: tuple[int, int] | None = None  # when only checkpoints show it: the first bad one is here
    seconds: float = 0.0
    external_checkpoints: int | None = None  # None: none were given
    external_latest: int | None = None
    uncovered_events: int | None = None  # events after the newest checkpoint held outside the database
    witnessed_latest: int | None = None  # size of the newest checkpoint with the required cosignatures

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "events": self.events, "tree_size": self.tree_size, "checkpoints": self.checkpoints,
            "latest_checkpoint": self.latest_checkpoint, "first_bad_position": self.first_bad_position,
            "suspect_positions": list(self.suspect_positions) if self.suspect_positions else None,
            "leaf_mismatches": self.leaf_mismatches, "seconds": round(self.seconds, 3),
            "external_checkpoints": self.external_checkpoints, "external_latest": self.external_latest,
            "uncovered_events": self.uncovered_events, "witnessed_latest": self.witnessed_latest,
            "findings": [f.__dict__ for f in self.findings],
        }

    def lines(self) -> list[str]:
        out = [
            f"events in the store: {self.events:,}; leaves in the audit tree: {self.tree_size:,}; "
            f"checkpoints: {self.checkpoints:,}"
            + (f" (latest at size {self.latest_checkpoint:,})" if self.latest_checkpoint else "")
            + f"; {self.seconds:.1f} s"
        ]
        if self.events > self.tree_size and self.ok:
            out.append(f"{self.events - self.tree_size:,} newest events are not in the audit tree yet (checked by recomputation only)")
        if self.external_checkpoints is not None:
            out.append(f"checkpoints held outside the database: {self.external_checkpoints:,}"
                       + (f" (newest at size {self.external_latest:,})" if self.external_latest else ""))
            if self.witnessed_latest:
                out.append(f"newest checkpoint with the required witnesses: size {self.witnessed_latest:,} "
                           f"({max(self.events - self.witnessed_latest, 0):,} events since)")
            if self.uncovered_events:
                out.append(f"no checkpoint held outside the database covers the last {self.uncovered_events:,} "
                           "events: they could have been changed without trace")
        if self.ok:
            out.append("OK: every event matches its leaf, every subtree and every signed checkpoint matches, "
                       "every signature is valid")
            return out
        if self.first_bad_position is not None:
            out.append(f"BAD: first bad position {self.first_bad_position}")
        elif self.suspect_positions is not None:
            a, b = self.suspect_positions
            out.append(f"BAD: first bad position between {a} and {b} (only the signed checkpoints show it)")
        else:
            out.append("BAD")
        if self.leaf_mismatches > 1:
            out.append(f"{self.leaf_mismatches:,} leaves differ from the audit tree from there on")
        out += [f"  {f.kind}: {f.message}" for f in self.findings]
        return out


def _paged(engine: Engine, query_for: Callable[[int], Any], page: int) -> Iterator[Any]:
    """Rows of ``query_for(after)`` page by page, keyed on the first column (ascending)."""
    after = -1
    while True:
        with engine.connect() as conn:
            rows = conn.execute(query_for(after).limit(page)).all()
        yield from rows
        if len(rows) < page:
            return
        after = int(rows[-1][0])


def verify_log(
    engine: Engine, events: sa.Table, key: PublicKey, *, page: int = 10_000, check_nodes: bool = True,
    progress: Callable[[int], None] | None = None, external: Sequence[Checkpoint] | None = None,
    witnessed: Sequence[Checkpoint] | None = None, witnesses_required: int = 0,
    previous_keys: Sequence[PublicKey] = (),
) -> Report:
    """Check the whole log; see the module docstring. ``external``: checkpoints held outside the database
    (a partner's file, JetStream): each must be signed by ``key`` and reproduced by the store, none may be
    beyond the log, and no two of one size (with the stored ones) may have different roots. ``witnessed``: the
    checkpoints ``witnesses_required`` partner witnesses cosigned (checked like external ones, their cosignatures
    standing for the log's signature); none at all is a finding. ``previous_keys``: keys the deployment signed
    with before a rotation (a checkpoint is checked with the key its key id names)."""
    started = time.perf_counter()
    report = Report()
    with engine.connect() as conn:
        stored_size = tree_size(conn)
        cps: list[Checkpoint] = listing(conn, 0, limit=10**9)
        stored_count = conn.execute(sa.select(sa.func.count()).select_from(checkpoints)).scalar_one()
    report.tree_size, report.checkpoints = stored_size, int(stored_count)
    report.latest_checkpoint = cps[-1].tree_size if cps else None
    findings = report.findings
    keys = {k.key_id.hex(): k for k in (*previous_keys, key)}
    for cp in cps:
        problem = cp.verify(keys.get(cp.key_id, key))
        if problem:
            findings.append(Finding("signature", f"checkpoint of size {cp.tree_size} ({cp.time}): {problem}"))
    by_size = {cp.tree_size: cp for cp in cps}
    ext_by_size: dict[int, Checkpoint] = {}
    if witnessed is not None and external is None:
        external = []
    if witnessed is not None:
        report.witnessed_latest = witnessed[-1].tree_size if witnessed else None
        if not witnessed:
            findings.append(Finding("witnesses", f"no checkpoint has cosignatures of {witnesses_required} of the "
                                    "configured witnesses"))
    if external is not None:
        from services.audit.external import check_signature

        report.external_checkpoints = len(external) + len(witnessed or ())
        roots: dict[int, tuple[bytes, Checkpoint]] = {cp.tree_size: (cp.root_hash, cp) for cp in cps}
        vouched = {id(c) for c in witnessed or ()}
        for cp in [*external, *(witnessed or ())]:
            signer_key = keys.get(cp.key_id, key)
            problem = None if id(cp) in vouched else (
                check_signature(cp, signer_key) or (None if cp.origin == key.name else f"origin {cp.origin!r}"))
            if problem:
                findings.append(Finding("external_signature", f"external checkpoint of size {cp.tree_size} "
                                        f"({cp.time}): {problem}; ignored"))
                continue
            seen = roots.get(cp.tree_size)
            if seen is not None and seen[0] != cp.root_hash:
                findings.append(Finding(
                    "fork", f"two checkpoints of size {cp.tree_size} signed with different roots ({seen[1].time} "
                    f"and {cp.time}): the log was rewritten and signed twice", leaf_index=cp.tree_size - 1))
                continue
            roots[cp.tree_size] = (cp.root_hash, cp)
            ext_by_size.setdefault(cp.tree_size, cp)
        report.external_latest = max(ext_by_size) if ext_by_size else None
    ext_results: list[tuple[Checkpoint, bool]] = []
    wanted_index = {0} | set(by_size) | {s - 1 for s in by_size} | set(ext_by_size) | {s - 1 for s in ext_by_size}
    position_at: dict[int, int] = {}
    cp_results: list[tuple[Checkpoint, bool]] = []

    stored_leaves = _paged(
        engine,
        lambda after: sa.select(leaves.c.idx, leaves.c.position, leaves.c.hash)
        .where(leaves.c.idx > after, leaves.c.idx < stored_size).order_by(leaves.c.idx),
        page,
    )
    # Every recomputed subtree inside the stored tree goes into a digest per level; the stored levels are
    # digested alike (by PostgreSQL itself where it can) and only a level that differs is walked node by node.
    level_digests: dict[int, Any] = {}

    def on_node(level: int, idx: int, h: bytes) -> None:
        if idx < stored_size >> level:
            digest = level_digests.get(level)
            if digest is None:
                digest = level_digests[level] = hashlib.sha256()
            digest.update(h)

    tree = CompactTree(on_node=on_node if check_nodes else None, min_level=LOWEST_STORED_LEVEL)
    first_leaf: Finding | None = None
    # An "altered" first mismatch is looked at again with the next event: the events may have been renumbered
    # around an inserted or deleted one (then the content matches one position further on or back).
    pending: tuple[int, int, bytes, tuple[Any, ...]] | None = None
    for record in iter_records(engine, events, page=page):
        position, oid, version, topic, state = record
        i = tree.size
        try:
            h = record_leaf(position, oid, version, topic, state)
        except CanonicalFormError as exc:
            h = leaf_hash(b"undecodable " + state)
            if first_leaf is None:
                first_leaf = Finding("undecodable", f"position {position}: {exc}", position, i)
        if i < stored_size:
            row = next(stored_leaves)
            sp, sh = int(row[1]), bytes(row[2])
            if pending is not None:
                first_leaf = _renumbered(pending, record, sp, sh)
                pending = None
            if sp != position or sh != h:
                report.leaf_mismatches += 1
                if first_leaf is None:
                    first_leaf = _classify(i, position, h, sp)
                    if first_leaf.kind == "altered":
                        pending = (i, sp, sh, record)
        if i in wanted_index:
            position_at[i] = position
        tree.append(h)
        at_size = by_size.get(tree.size)
        at_ext = ext_by_size.get(tree.size)
        if at_size is not None or at_ext is not None:
            root = tree.root()
            if at_size is not None:
                cp_results.append((at_size, root == at_size.root_hash))
            if at_ext is not None:
                ext_results.append((at_ext, root == at_ext.root_hash))
        if progress is not None and tree.size % 10_000 == 0:
            progress(10_000)
    report.events = tree.size
    if report.events < stored_size:
        report.leaf_mismatches += stored_size - report.events
        if first_leaf is None:
            row = next(stored_leaves)
            first_leaf = Finding(
                "missing", f"position {int(row[1])} (leaf {report.events}) and every later leaf of the audit tree "
                f"are gone from the store: the log ends {stored_size - report.events} events early",
                int(row[1]), report.events,
            )
    if first_leaf is not None:
        findings.append(first_leaf)
    elif check_nodes:
        stored = _stored_level_digests(engine, stored_size)
        for level in sorted(set(stored) | set(level_digests)):
            mine = level_digests[level].digest() if level in level_digests else hashlib.sha256().digest()
            if stored.get(level, hashlib.sha256().digest()) != mine:
                findings.append(_first_bad_node(engine, level, stored_size, page))
                break
    good_below = 0
    first_bad_cp: Checkpoint | None = None
    for cp, matches in cp_results:
        if matches and first_bad_cp is None:
            good_below = cp.tree_size
        elif not matches:
            findings.append(Finding(
                "checkpoint_mismatch",
                f"the log does not give the root signed at size {cp.tree_size} ({cp.time}): it was changed "
                "after that checkpoint was signed",
                leaf_index=cp.tree_size - 1,
            ))
            first_bad_cp = first_bad_cp or cp
    for cp in cps:
        if cp.tree_size > report.events:
            findings.append(Finding(
                "checkpoint_beyond_log",
                f"a checkpoint was signed at size {cp.tree_size} ({cp.time}) but the store holds {report.events} "
                "events: events were deleted",
                leaf_index=report.events,
            ))
    for cp, matches in ext_results:
        if not matches:
            findings.append(Finding(
                "external_mismatch", f"the log does not give the root of the checkpoint of size {cp.tree_size} "
                f"({cp.time}) held outside the database: it was changed after that checkpoint was signed",
                leaf_index=cp.tree_size - 1))
            if first_bad_cp is None or cp.tree_size < first_bad_cp.tree_size:
                first_bad_cp = cp
    good_ext = [cp.tree_size for cp, matches in ext_results if matches]
    if first_bad_cp is not None:
        good = [c.tree_size for c, m in cp_results if m] + good_ext
        good_below = max([0, *[s for s in good if s < first_bad_cp.tree_size]])
    for cp in ext_by_size.values():
        if cp.tree_size > report.events:
            findings.append(Finding(
                "external_beyond_log", f"a checkpoint of size {cp.tree_size} ({cp.time}) is held outside the "
                f"database but the store holds {report.events} events: events were deleted",
                leaf_index=report.events))
    if external is not None:
        report.uncovered_events = max(report.events - (report.external_latest or 0), 0)
    leaf_findings = [f.position for f in findings if f.kind in LEAF_KINDS and f.position is not None]
    if leaf_findings:
        report.first_bad_position = min(leaf_findings)
    elif first_bad_cp is not None and good_below in position_at and first_bad_cp.tree_size - 1 in position_at:
        report.suspect_positions = (position_at[good_below], position_at[first_bad_cp.tree_size - 1])
    report.seconds = time.perf_counter() - started
    return report


def _level_page(after: int, *, level: int, size: int) -> sa.Select[Any]:
    """The stored subtree hashes of one level after index ``after``, within the tree of ``size``."""
    return sa.select(nodes.c.idx, nodes.c.hash).where(
        nodes.c.level == level, nodes.c.idx > after, nodes.c.idx < size >> level).order_by(nodes.c.idx)


def _stored_level_digests(engine: Engine, size: int) -> dict[int, bytes]:
    """SHA-256 over the stored subtree hashes of each level (index order), within the tree of ``size``."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT level, sha256(string_agg(hash, ''::bytea ORDER BY idx)) FROM audit_nodes "
                "WHERE idx < (CAST(:size AS bigint) >> level) AND level >= :low GROUP BY level"
            ), {"size": size, "low": LOWEST_STORED_LEVEL}).all()
        return {int(level): bytes(d) for level, d in rows}
    out: dict[int, bytes] = {}
    level = LOWEST_STORED_LEVEL
    while size >> level:
        digest = hashlib.sha256()
        for _, h in _paged(engine, functools.partial(_level_page, level=level, size=size), 10_000):
            digest.update(bytes(h))
        out[level] = digest.digest()
        level += 1
    return out


def _first_bad_node(engine: Engine, level: int, size: int, page: int) -> Finding:
    """Walk one level whose digest differs, rebuilding it from the stored leaves (they matched the store)."""
    stored = _paged(engine, lambda after: sa.select(nodes.c.idx, nodes.c.hash).where(
        nodes.c.level == level, nodes.c.idx > after, nodes.c.idx < size >> level).order_by(nodes.c.idx), page)
    found: list[int] = []

    def compare(lv: int, idx: int, h: bytes) -> None:
        if lv == level and not found and idx < size >> level:
            row = next(stored, None)
            if row is None or int(row[0]) != idx or bytes(row[1]) != h:
                found.append(idx if row is None else min(idx, int(row[0])))

    tree = CompactTree(on_node=compare)
    for row in _paged(engine, lambda after: sa.select(leaves.c.idx, leaves.c.hash)
                      .where(leaves.c.idx > after, leaves.c.idx < size).order_by(leaves.c.idx), page):
        tree.append(bytes(row[1]))
    bad = found[0] if found else next((int(r[0]) for r in stored), 0)
    return Finding(
        "tree_node", f"the stored subtree (level {level}, index {bad}) differs from the recomputed one: "
        "the audit tree is corrupt (rebuild the audit projection after finding out why)",
        leaf_index=bad << level,
    )


def _same_content(position: int, record: tuple[Any, ...], expected: bytes) -> bool:
    try:
        return record_leaf(position, *record[1:]) == expected
    except CanonicalFormError:
        return False


def _renumbered(
    pending: tuple[int, int, bytes, tuple[Any, ...]], record: tuple[Any, ...], next_sp: int, next_sh: bytes
) -> Finding:
    """Refine the first "altered" leaf (index i, stored position p) with the next event and leaf."""
    i, p, sh, altered = pending
    if _same_content(p, record, sh):
        return Finding("inserted", f"position {p}: an event was inserted here and the events from position {p} on "
                       "were moved up by one (the next event holds what the audit tree recorded at "
                       f"{p}; leaf {i})", p, i)
    if _same_content(next_sp, altered, next_sh):
        return Finding("missing", f"position {p} (leaf {i}) is gone from the store and the later events were moved "
                       "down by one to hide the gap", p, i)
    return Finding("altered", f"position {p}: the stored event is not the one the audit tree recorded (leaf {i})", p, i)


def _classify(index: int, position: int, h: bytes, stored_position: int) -> Finding:
    if position == stored_position:
        return Finding("altered", f"position {position}: the stored event is not the one the audit tree recorded "
                       f"(leaf {index})", position, index)
    if position > stored_position:
        return Finding("missing", f"position {stored_position} (leaf {index}) is gone from the store, which "
                       f"continues at position {position}", stored_position, index)
    return Finding("inserted", f"position {position} is not in the audit tree: it was inserted before position "
                   f"{stored_position} (leaf {index})", position, index)
