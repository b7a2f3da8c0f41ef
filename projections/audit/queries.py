"""What the API and the checkpointer read from the audit tree: roots and proofs in O(log n) stored hashes."""

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain.audit.merkle import (
    EMPTY_ROOT,
    ProofError,
    consistency_ranges,
    inclusion_ranges,
    keys_for,
    resolve,
)
from projections.audit.projection import fetch_nodes, leaves, tree_size

__all__ = [
    "ConsistencyProof",
    "InclusionProof",
    "ProofError",
    "consistency_proof",
    "inclusion_proof",
    "leaf_at",
    "root_at",
    "tree_size",
]


@dataclass(frozen=True)
class Leaf:
    index: int
    position: int
    hash: bytes


@dataclass(frozen=True)
class InclusionProof:
    leaf: Leaf
    tree_size: int
    root: bytes
    path: list[bytes]


@dataclass(frozen=True)
class ConsistencyProof:
    first: int
    second: int
    first_root: bytes
    second_root: bytes
    path: list[bytes]


def leaf_at(conn: Connection, position: int) -> Leaf | None:
    """The leaf of the event at log ``position`` (None: no such event in the tree yet)."""
    row = conn.execute(sa.select(leaves.c.idx, leaves.c.hash).where(leaves.c.position == position)).first()
    return Leaf(int(row[0]), position, bytes(row[1])) if row else None


def resolve_stored(conn: Connection, ranges: list[tuple[int, int]]) -> list[bytes]:
    stored = fetch_nodes(conn, keys_for(ranges))
    try:
        return resolve(ranges, stored)
    except KeyError as exc:
        raise RuntimeError(f"audit tree: stored subtree {exc.args[0]} is missing") from None


def root_at(conn: Connection, size: int) -> bytes:
    """The root of the tree of the first ``size`` leaves."""
    if size == 0:
        return EMPTY_ROOT
    return resolve_stored(conn, [(0, size)])[0]


def _check_size(conn: Connection, size: int) -> None:
    current = tree_size(conn)
    if size > current:
        raise ProofError(f"the audit tree has {current} leaves, not {size}")


def inclusion_proof(conn: Connection, position: int, size: int) -> InclusionProof:
    """Audit path of the event at ``position`` in the tree of ``size`` leaves, with that tree's root."""
    leaf = leaf_at(conn, position)
    if leaf is None:
        raise LookupError(f"no event at position {position} in the audit tree")
    _check_size(conn, size)
    ranges = inclusion_ranges(leaf.index, size)
    hashes = resolve_stored(conn, [*ranges, (0, size)])
    return InclusionProof(leaf, size, hashes[-1], hashes[:-1])


def consistency_proof(conn: Connection, first: int, second: int) -> ConsistencyProof:
    """Proof that the tree of ``first`` leaves is a prefix of the tree of ``second`` leaves."""
    if not 0 <= first <= second:
        raise ProofError(f"no consistency proof from size {first} to size {second}")
    _check_size(conn, second)
    ranges = consistency_ranges(first, second)
    extra = [r for r in ((0, first), (0, second)) if r[1] > 0]
    hashes = resolve_stored(conn, [*ranges, *extra])
    roots = hashes[len(ranges):]
    first_root = roots[0] if first else EMPTY_ROOT
    second_root = roots[-1] if second else EMPTY_ROOT
    return ConsistencyProof(first, second, first_root, second_root, hashes[: len(ranges)])
