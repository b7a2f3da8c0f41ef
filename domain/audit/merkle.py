"""RFC 6962 Merkle tree hashing and proofs (RFC 9162 verification), independent of any storage.

Leaves are numbered from 0. A tree of size n is the RFC 6962 tree over leaves [0, n): it splits at k, the
largest power of two below n. Every subtree that appears in it, or in a proof about it, is made of *perfect*
subtrees (2^level leaves starting at index * 2^level), which is what the audit projection stores; a root or a
proof therefore needs O(log n) stored hashes, never a walk over the leaves.
"""

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
NodeKey = tuple[int, int]  # (level, index): the perfect subtree over leaves [index << level, (index + 1) << level)


class ProofError(ValueError):
    """A proof request that makes no sense (index or sizes out of range)."""


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


# -- the subtrees a root or proof is made of ---------------------------------------------------------
def perfect_nodes(start: int, end: int) -> list[NodeKey]:
    """The perfect subtrees, left to right, whose right-fold is the RFC 6962 hash of leaves [start, end).

    ``start`` must be aligned as in the RFC's recursion (every range a root or proof asks for is).
    """
    keys: list[NodeKey] = []
    while start < end:
        size = end - start
        part = size if size & (size - 1) == 0 else _split(size)
        level = part.bit_length() - 1
        keys.append((level, start >> level))
        start += part
    return keys


def perfect_root(leaves: Sequence[bytes]) -> bytes:
    """The hash of the perfect subtree over ``leaves`` (leaf hashes; their number a power of two)."""
    level = list(leaves)
    if not level or len(level) & (len(level) - 1):
        raise ValueError(f"a perfect subtree has a power of two leaves, not {len(level)}")
    while len(level) > 1:
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def fold(hashes: Sequence[bytes]) -> bytes:
    """The hash of consecutive perfect subtrees (as ``perfect_nodes`` lists them): right to left."""
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges of the RFC 6962 audit path PATH(index, D[size]), bottom-up (the proof's order)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    out: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            start += k
    out.reverse()
    return out


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """Leaf ranges of the RFC 6962 consistency proof PROOF(first, D[second]), in the proof's order."""
    if not 0 <= first <= second:
        raise ProofError(f"no consistency proof from size {first} to size {second}")
    if first == 0 or first == second:
        return []
    out: list[tuple[int, int]] = []
    start, end, m, whole = 0, second, first, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            start += k
            m -= k
            whole = False
    if not whole:
        out.append((start, end))
    out.reverse()
    return out


def resolve(ranges: Iterable[tuple[int, int]], nodes: Mapping[NodeKey, bytes]) -> list[bytes]:
    """The hash of each range, from the stored perfect subtrees (KeyError names a missing node)."""
    return [fold([nodes[key] for key in perfect_nodes(a, b)]) for a, b in ranges]


def keys_for(ranges: Iterable[tuple[int, int]]) -> set[NodeKey]:
    return {key for a, b in ranges for key in perfect_nodes(a, b)}


# -- verification (RFC 9162 §2.1.3.2 and §2.1.4.2) ----------------------------------------------------
def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` leads to from leaf hash ``leaf`` at ``index`` in a tree of ``size``."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    if len(leaf) != HASH_SIZE or any(len(p) != HASH_SIZE for p in proof):
        raise ProofError("hashes must be 32 bytes")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("the proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the proof is too short")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    try:
        return root_from_inclusion_proof(index, size, leaf, proof) == root
    except ProofError:
        return False


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]) -> bool:
    """Does ``proof`` show that the tree of size ``first`` (root ``first_root``) is a prefix of the tree of
    size ``second`` (root ``second_root``)?"""
    if first > second or first < 0:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof
    if not proof or any(len(p) != HASH_SIZE for p in proof):
        return False
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0


# -- building -----------------------------------------------------------------------------------------
class CompactTree:
    """The right edge of an append-only tree: the perfect subtrees covering [0, size), largest first.

    ``on_node(level, index, hash)`` sees every perfect subtree of level >= ``min_level`` (at least 1) as it
    completes.
    """

    def __init__(self, size: int = 0, edge: Sequence[bytes] = (), on_node: Callable[[int, int, bytes], None] | None = None,
                 min_level: int = 1):
        if len(edge) != bin(size).count("1"):
            raise ValueError(f"a tree of size {size} has {bin(size).count('1')} edge subtrees, not {len(edge)}")
        self.size = size
        self.edge = list(edge)
        self.on_node = on_node
        self.min_level = max(1, min_level)

    def append(self, leaf: bytes) -> None:
        """Add a leaf hash."""
        index = self.size
        h = leaf
        level = 0
        while (index >> level) & 1:
            h = node_hash(self.edge.pop(), h)
            level += 1
            if self.on_node is not None and level >= self.min_level:
                self.on_node(level, index >> level, h)
        self.edge.append(h)
        self.size += 1

    def root(self) -> bytes:
        return fold(self.edge)


def reference_root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) straight from RFC 6962 §2.1, recursive, over leaf *data* (for tests)."""
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hash(leaves[0])
    k = _split(n)
    return node_hash(reference_root(leaves[:k]), reference_root(leaves[k:]))
