"""Audit projection: appends each event's leaf hash and every perfect subtree it completes.

``audit_leaves`` maps leaf index <-> log position with the leaf hash; ``audit_nodes`` holds the hash of each
perfect subtree of level >= ``LOWEST_STORED_LEVEL`` (2^level leaves from index * 2^level); a smaller one is hashed
from its leaves when asked (at most 2^LOWEST_STORED_LEVEL - 2 of them per root or proof, all in one block). Together
they give any root or proof in O(log n) reads (``projections.audit.queries``). The projection reads the stored form of events (the leaf is a
function of the stored bytes, see ``domain.audit.leaf``), so it asks the runner for undecoded notifications.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain.audit.leaf import record_leaf
from domain.audit.merkle import CompactTree, perfect_nodes, perfect_root
from projections.runner import insert_int_int_bytes


def _tables(md: sa.MetaData, suffix: str) -> tuple[sa.Table, sa.Table]:
    # Primary-key and unique-constraint index names derive from the table names: a copy's differ.
    leaves_t = sa.Table(
        f"audit_leaves{suffix}",
        md,
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("position", sa.BigInteger, nullable=False, unique=True),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
    )
    nodes_t = sa.Table(
        f"audit_nodes{suffix}",
        md,
        sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
    )
    return leaves_t, nodes_t


class _Tree:
    """Statements over one pair of tables (the live ones, or a copy's), built once: their cache keys are cheap
    whatever the number of keys (expanding parameters)."""

    def __init__(self, leaves_t: sa.Table, nodes_t: sa.Table) -> None:
        self.leaves, self.nodes = leaves_t, nodes_t
        self.leaf_nodes = sa.select(sa.literal(0, sa.SmallInteger).label("level"), leaves_t.c.idx, leaves_t.c.hash).where(
            leaves_t.c.idx.in_(sa.bindparam("leaf_keys", expanding=True))
        )
        self.upper_nodes = sa.select(nodes_t.c.level, nodes_t.c.idx, nodes_t.c.hash).where(
            sa.tuple_(nodes_t.c.level, nodes_t.c.idx).in_(sa.bindparam("node_keys", expanding=True))
        )
        self.all_nodes = sa.union_all(self.leaf_nodes, self.upper_nodes)


# Subtrees of 16 leaves and more are stored: a sixteenth of the rows of storing them all (one per leaf), for a
# few more leaves read per proof. A change needs a rebuild of the audit read model (verify skips lower levels).
LOWEST_STORED_LEVEL = 4

metadata = sa.MetaData()
leaves, nodes = _tables(metadata, "")  # the live tables: what queries.py, verify and checkpoints read
_LIVE = _Tree(leaves, nodes)


def tree_size(conn: Connection, tree: _Tree = _LIVE) -> int:
    last = conn.execute(sa.select(sa.func.max(tree.leaves.c.idx))).scalar()
    return 0 if last is None else int(last) + 1


def fetch_nodes(
    conn: Connection, keys: set[tuple[int, int]] | list[tuple[int, int]], tree: _Tree = _LIVE
) -> dict[tuple[int, int], bytes]:
    """Hashes of perfect subtrees by (level, index), level 0 being the leaves: stored ones, and those below
    ``LOWEST_STORED_LEVEL`` hashed from their stored leaves. One query. A key it cannot give is left out."""
    keys = set(keys)
    low = {(lv, i) for lv, i in keys if 0 < lv < LOWEST_STORED_LEVEL}
    level0 = {i for lv, i in keys if lv == 0} | {j for lv, i in low for j in range(i << lv, (i + 1) << lv)}
    upper = [(lv, i) for lv, i in keys if lv >= LOWEST_STORED_LEVEL]
    if level0 and upper:
        result = conn.execute(tree.all_nodes, {"leaf_keys": sorted(level0), "node_keys": upper})
    elif level0:
        result = conn.execute(tree.leaf_nodes, {"leaf_keys": sorted(level0)})
    elif upper:
        result = conn.execute(tree.upper_nodes, {"node_keys": upper})
    else:
        return {}
    found = {(int(level), int(idx)): bytes(h) for level, idx, h in result}
    for lv, i in low:
        block = [found.get((0, j)) for j in range((i << lv), (i + 1) << lv)]
        if all(h is not None for h in block):
            found[(lv, i)] = perfect_root(block)  # type: ignore[arg-type]
    return {k: h for k, h in found.items() if k in keys}


def load_edge(conn: Connection, size: int, tree: _Tree = _LIVE) -> CompactTree:
    """The right edge of the stored tree of ``size`` leaves, ready to append to."""
    keys = perfect_nodes(0, size)
    stored = fetch_nodes(conn, keys, tree)
    missing = [k for k in keys if k not in stored]
    if missing:
        raise RuntimeError(f"audit tree: stored subtrees {missing} of the tree of size {size} are missing")
    return CompactTree(size, [stored[k] for k in keys])


class AuditProjection:
    """Keeps the Merkle tree of the whole log (``audit_leaves``, ``audit_nodes``)."""

    name = "audit"
    metadata = metadata  # the live tables' (an instance with a suffix has its own)
    stored_events = True  # the runner passes (position, stored notification), not decoded domain events

    def __init__(self, suffix: str = "") -> None:
        self.suffix = suffix
        if suffix:
            self.metadata = sa.MetaData()
            self._tree = _Tree(*_tables(self.metadata, suffix))
        else:
            self.metadata, self._tree = metadata, _LIVE

    def apply_batch(self, conn: Connection, events: Sequence[tuple[int, Any]]) -> None:
        if not events:
            return
        t = self._tree
        size = tree_size(conn, t)
        tree = load_edge(conn, size, t)
        new_nodes: list[tuple[int, int, bytes]] = []
        tree.on_node = lambda level, idx, h: new_nodes.append((level, idx, h))
        tree.min_level = LOWEST_STORED_LEVEL
        new_leaves: list[tuple[int, int, bytes]] = []
        leaf, add, append = record_leaf, tree.append, new_leaves.append
        for idx, (position, n) in enumerate(events, size):
            h = leaf(position, n.originator_id, n.originator_version, n.topic, n.state)
            append((idx, position, h))
            add(h)
        insert_int_int_bytes(conn, t.leaves, ("idx", "position", "hash"), new_leaves)
        insert_int_int_bytes(conn, t.nodes, ("level", "idx", "hash"), new_nodes)
