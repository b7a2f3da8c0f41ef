"""Inclusion and consistency proofs as the API serves them, in two queries each: the leaf, the tree size and
the checkpoint in one; the stored subtrees the proof and the root need in another."""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from domain.audit.merkle import ProofError, inclusion_ranges
from projections.audit.projection import leaves
from projections.audit.queries import consistency_proof, resolve_stored
from services.audit.checkpoints import checkpoints, from_row

__all__ = ["ProofError", "consistency", "inclusion", "read_connection"]


def read_connection(engine: Engine) -> Connection:
    """A connection for a few independent reads: on PostgreSQL in autocommit, which saves the BEGIN and
    ROLLBACK round trips (half the latency of a proof). The tree's rows never change once written."""
    conn = engine.connect()
    if engine.dialect.name == "postgresql":
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
    return conn


def _leaf_and_checkpoint(size: Any) -> sa.Select[Any]:
    last = sa.select(sa.func.max(leaves.c.idx)).scalar_subquery()
    return (
        sa.select(leaves.c.idx.label("leaf_index"), leaves.c.hash.label("leaf_hash"), last.label("last_index"),
                  *checkpoints.c)
        .select_from(leaves.outerjoin(checkpoints, checkpoints.c.tree_size == size))
        .where(leaves.c.position == sa.bindparam("position"))
    )


# Built once (cheap cache keys): the leaf, the tree size and the checkpoint in one round trip.
_AT_LATEST = _leaf_and_checkpoint(sa.select(sa.func.max(checkpoints.c.tree_size)).scalar_subquery())
_AT_SIZE = _leaf_and_checkpoint(sa.bindparam("size"))


def inclusion(conn: Connection, position: int, tree_size: int | None = None) -> dict[str, Any] | None:
    """The proof of the event at ``position`` in the tree of ``tree_size`` leaves (default: the latest
    checkpoint covering it, else the tree now), with the checkpoint of that size; None: no such leaf."""
    if tree_size is None:
        row = conn.execute(_AT_LATEST, {"position": position}).first()
    else:
        row = conn.execute(_AT_SIZE, {"position": position, "size": tree_size}).first()
    if row is None:
        return None
    index, current = int(row.leaf_index), int(row.last_index) + 1
    checkpoint = from_row(row) if row.tree_size is not None else None
    if tree_size is None:
        if checkpoint is None or checkpoint.tree_size <= index:
            checkpoint, tree_size = None, current
        else:
            tree_size = checkpoint.tree_size
    if tree_size > current:
        raise ProofError(f"the audit tree has {current} leaves, not {tree_size}")
    ranges = inclusion_ranges(index, tree_size)
    hashes = resolve_stored(conn, [*ranges, (0, tree_size)])
    return {
        "position": position, "leaf_index": index, "tree_size": tree_size, "leaf_hash": bytes(row.leaf_hash).hex(),
        "root_hash": hashes[-1].hex(), "proof": [h.hex() for h in hashes[:-1]],
        "checkpoint": checkpoint.view() if checkpoint else None,
    }


def consistency(conn: Connection, first: int, second: int | None = None) -> dict[str, Any]:
    """Proof that the tree of ``first`` leaves is a prefix of the tree of ``second`` (default: the latest
    checkpoint's size when it is at least ``first``, else the tree now)."""
    if second is None:
        latest = conn.execute(sa.select(sa.func.max(checkpoints.c.tree_size))).scalar()
        if latest is not None and latest >= first:
            second = int(latest)
        else:
            last = conn.execute(sa.select(sa.func.max(leaves.c.idx))).scalar()
            second = 0 if last is None else int(last) + 1
    proof = consistency_proof(conn, first, second)
    return {
        "first": proof.first, "second": proof.second, "first_root": proof.first_root.hex(),
        "second_root": proof.second_root.hex(), "proof": [p.hex() for p in proof.path],
    }
