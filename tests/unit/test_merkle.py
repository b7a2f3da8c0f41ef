"""RFC 6962 Merkle tree: the certificate-transparency reference vectors, and proofs checked against the RFC's
recursive definitions for every small tree."""

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.audit.merkle import (
    EMPTY_ROOT,
    CompactTree,
    ProofError,
    consistency_ranges,
    fold,
    inclusion_ranges,
    keys_for,
    leaf_hash,
    node_hash,
    perfect_nodes,
    perfect_root,
    reference_root,
    resolve,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

# The reference test vectors of google/certificate-transparency (as kept in transparency-dev/merkle:
# testonly/constants.go and proof/verify_test.go).
LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f",
)]
ROOTS = [bytes.fromhex(h) for h in (
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",  # size 0
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",  # size 8
)]
NODES = [  # NODES[level][index]: every perfect subtree of the 8-leaf tree
    ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
     "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
     "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
     "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
     "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
     "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
     "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
     "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"],
    ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
     "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
     "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
     "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"],
    ["d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
     "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    ["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
]
# (leaf index, tree size, audit path): leaf indices are 0-based here (the Go source counts from 1).
INCLUSION = [
    (0, 1, []),
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]


def stored_nodes(leaves: list[bytes]) -> dict[tuple[int, int], bytes]:
    """Every perfect subtree of the tree over ``leaves`` (data), as the audit projection stores them."""
    nodes: dict[tuple[int, int], bytes] = {}
    tree = CompactTree(on_node=lambda level, index, h: nodes.__setitem__((level, index), h))
    for i, data in enumerate(leaves):
        nodes[(0, i)] = leaf_hash(data)
        tree.append(nodes[(0, i)])
    return nodes


def inclusion_proof(nodes: dict[tuple[int, int], bytes], index: int, size: int) -> list[bytes]:
    return resolve(inclusion_ranges(index, size), nodes)


def consistency_proof(nodes: dict[tuple[int, int], bytes], first: int, second: int) -> list[bytes]:
    return resolve(consistency_ranges(first, second), nodes)


def test_the_reference_leaves_give_the_reference_root_at_every_size() -> None:
    tree = CompactTree()
    assert tree.root() == EMPTY_ROOT == ROOTS[0]
    for size in range(1, 9):
        tree.append(leaf_hash(LEAVES[size - 1]))
        assert tree.root() == ROOTS[size] == reference_root(LEAVES[:size]), size


def test_every_stored_subtree_matches_the_reference_node_hashes() -> None:
    nodes = stored_nodes(LEAVES)
    expected = {(level, i): bytes.fromhex(h) for level, row in enumerate(NODES) for i, h in enumerate(row)}
    assert nodes == expected
    for size in range(1, 9):
        assert fold([nodes[k] for k in perfect_nodes(0, size)]) == ROOTS[size]


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_inclusion_proofs_are_the_reference_ones_and_verify(index: int, size: int, path: list[str]) -> None:
    nodes = stored_nodes(LEAVES)
    proof = inclusion_proof(nodes, index, size)
    assert [p.hex() for p in proof] == path
    leaf = leaf_hash(LEAVES[index])
    assert verify_inclusion(index, size, leaf, proof, ROOTS[size])
    # Corruptions of the reference Go tests: all must fail.
    some = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
    bad = [
        (index - 1, size, leaf, proof, ROOTS[size]), (index + 1, size, leaf, proof, ROOTS[size]),
        (index ^ 2, size, leaf, proof, ROOTS[size]), (index, size * 2, leaf, proof, ROOTS[size]),
        (index, size // 2, leaf, proof, ROOTS[size]), (index, size, b"WrongLeaf", proof, ROOTS[size]),
        (index, size, leaf, proof, EMPTY_ROOT), (index, size, leaf, proof, some),
        (index, size, leaf, [*proof, b""], ROOTS[size]), (index, size, leaf, [*proof, ROOTS[size]], ROOTS[size]),
        (index, size, leaf, [b"", *proof], ROOTS[size]), (index, size, leaf, [ROOTS[size], *proof], ROOTS[size]),
    ]
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 8]) + flipped[i][1:]
        bad.append((index, size, leaf, flipped, ROOTS[size]))
    if proof:
        bad.append((index, size, leaf, proof[:-1], ROOTS[size]))
    if len(proof) > 1:
        bad.append((index, size, leaf, [proof[0], some, *proof[1:]], ROOTS[size]))
    for args in bad:
        if args[1] == size and args[0] == index and args[2] == leaf and args[3] == proof and args[4] == ROOTS[size]:
            continue  # index ^ 2 == index + 1 etc. may coincide with the good proof for tiny trees
        assert not verify_inclusion(*args), args[:2]


@pytest.mark.parametrize(("first", "second", "path"), CONSISTENCY)
def test_consistency_proofs_are_the_reference_ones_and_verify(first: int, second: int, path: list[str]) -> None:
    nodes = stored_nodes(LEAVES)
    proof = consistency_proof(nodes, first, second)
    assert [p.hex() for p in proof] == path
    r1, r2 = ROOTS[first], ROOTS[second]
    assert verify_consistency(first, second, r1, r2, proof)
    if not proof:
        return
    bad = [
        (first - 1, second, r1, r2, proof), (first + 1, second, r1, r2, proof), (first ^ 2, second, r1, r2, proof),
        (first, second * 2, r1, r2, proof), (first, second // 2, r1, r2, proof),
        (first, second, b"WrongRoot", r2, proof), (first, second, r1, b"WrongRoot", proof), (first, second, r2, r1, proof),
        (first, second, r1, r2, []), (first, second, r1, r2, [*proof, b""]), (first, second, r1, r2, [*proof, r1]),
        (first, second, r1, r2, [*proof, r2]), (first, second, r1, r2, [b"", *proof]), (first, second, r1, r2, [r1, *proof]),
        (first, second, r1, r2, [r2, *proof]), (first, second, r1, r2, [proof[0], *proof]),
        (first, second, r1, r2, proof[:-1]),
    ]
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 16]) + flipped[i][1:]
        bad.append((first, second, r1, r2, flipped))
    for args in bad:
        assert not verify_consistency(*args), args[:2]


def test_edge_cases_of_consistency_follow_rfc_9162() -> None:
    r1, r2 = b"don't care 1", b"don't care 2"
    assert verify_consistency(0, 0, r1, r1, [])
    assert verify_consistency(0, 1, r1, r2, [])
    assert verify_consistency(1, 1, r2, r2, [])
    assert not verify_consistency(1, 1, r1, r2, [])
    assert not verify_consistency(1, 0, r1, r2, [])
    assert not verify_consistency(2, 1, r1, r2, [])
    assert not verify_consistency(1, 2, r1, r2, [])
    assert not verify_consistency(1, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT])
    assert not verify_consistency(0, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT])


def test_a_single_leaf_tree_has_its_leaf_as_root_and_an_empty_proof() -> None:
    h = leaf_hash(b"data")
    assert verify_inclusion(0, 1, h, [], h)
    assert not verify_inclusion(0, 1, b"", [], h)
    assert not verify_inclusion(0, 1, h, [], b"")
    for index, size in ((0, 0), (1, 0), (2, 1)):
        with pytest.raises(ProofError):
            root_from_inclusion_proof(index, size, h, [])


def test_hashing_has_distinct_leaf_and_node_prefixes() -> None:
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()


def _reference_path(m: int, leaves: list[bytes]) -> list[bytes]:
    n = len(leaves)
    if n <= 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return [*_reference_path(m, leaves[:k]), reference_root(leaves[k:])]
    return [*_reference_path(m - k, leaves[k:]), reference_root(leaves[:k])]


def _reference_subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [reference_root(leaves)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*_reference_subproof(m, leaves[:k], whole), reference_root(leaves[k:])]
    return [*_reference_subproof(m - k, leaves[k:], False), reference_root(leaves[:k])]


def test_proofs_from_stored_subtrees_equal_the_rfc_recursions_for_every_tree_up_to_40_leaves() -> None:
    data = [str(i).encode() for i in range(40)]
    nodes = stored_nodes(data)
    for size in range(1, 41):
        root = reference_root(data[:size])
        for index in range(size):
            proof = inclusion_proof(nodes, index, size)
            assert proof == _reference_path(index, data[:size]), (index, size)
            assert verify_inclusion(index, size, nodes[(0, index)], proof, root)
        for first in range(1, size + 1):
            proof = consistency_proof(nodes, first, size)
            assert proof == _reference_subproof(first, data[:size], True), (first, size)
            assert verify_consistency(first, size, reference_root(data[:first]), root, proof)


@given(st.integers(1, 1 << 40), st.data())
def test_a_proof_needs_only_logarithmically_many_stored_subtrees(size: int, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, size - 1))
    first = data.draw(st.integers(1, size))
    depth = size.bit_length()
    assert len(keys_for(inclusion_ranges(index, size))) <= 2 * depth
    assert len(keys_for(consistency_ranges(first, size))) <= 2 * depth
    assert len(perfect_nodes(0, size)) == bin(size).count("1")


def test_a_perfect_subtree_hashed_from_its_leaves_is_the_one_the_tree_completes() -> None:
    nodes = stored_nodes(LEAVES)
    for level in (1, 2, 3):
        for i in range(len(LEAVES) >> level):
            block = [nodes[(0, j)] for j in range(i << level, (i + 1) << level)]
            assert perfect_root(block) == nodes[(level, i)]
    with pytest.raises(ValueError):
        perfect_root(LEAVES[:3])


def test_only_subtrees_from_min_level_up_are_reported() -> None:
    seen: list[tuple[int, int]] = []
    tree = CompactTree(on_node=lambda level, index, h: seen.append((level, index)), min_level=2)
    for data in LEAVES:
        tree.append(leaf_hash(data))
    assert sorted(seen) == [(2, 0), (2, 1), (3, 0)]
    assert tree.root() == ROOTS[8]
