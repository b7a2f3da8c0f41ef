"""Seed shares of joint tasks: ``draw_seed`` combines the server's seed with every department's share."""

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.draw.sampler import Candidate, draw, draw_seed, share_commitment, verify
from domain.errors import InvalidInputError

# -- the test vector (also in docs/plans-tasks-and-draws.md) -------------------------------------------------
VECTOR_SEED = bytes(range(32))
VECTOR_SHARES = {"市场监管": bytes([0x22]) * 32, "工信": bytes([0x11]) * 32}
VECTOR_SHARES_SEED = "0a7173544412b9a2bb03e038997be8ba71cf79396b3a93616f09360b7eab4a75"
VECTOR_COMMITMENT_11 = "02d449a31fbb267c8f352e9968a79e3e5fc95c1bbeaa502fd6454ebde5a4bedc"


def reference(seed: bytes, shares: dict[str, bytes]) -> bytes:
    """The rule as written in the brief, independently of the implementation."""
    data = b"dualrandom-shares-v1" + b"\x00" + seed
    for code in sorted(shares, key=lambda c: c.encode("utf-8")):
        data += b"\x00" + code.encode("utf-8") + b"\x00" + shares[code]
    return hashlib.sha256(data).digest()


def test_vector() -> None:
    assert draw_seed(VECTOR_SEED, VECTOR_SHARES).hex() == VECTOR_SHARES_SEED
    assert share_commitment(bytes([0x11]) * 32) == VECTOR_COMMITMENT_11
    # 工 (U+5DE5) sorts before 市 (U+5E02): the order of the mapping does not matter
    assert draw_seed(VECTOR_SEED, dict(reversed(list(VECTOR_SHARES.items())))).hex() == VECTOR_SHARES_SEED


def test_no_share_leaves_the_seed_unchanged() -> None:
    assert draw_seed(VECTOR_SEED, {}) == VECTOR_SEED


codes = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=6)
shares_st = st.dictionaries(codes, st.binary(min_size=32, max_size=32), min_size=1, max_size=4)


@given(seed=st.binary(min_size=32, max_size=32), shares=shares_st)
def test_matches_the_written_rule(seed: bytes, shares: dict[str, bytes]) -> None:
    assert draw_seed(seed, shares) == reference(seed, shares)


@given(seed=st.binary(min_size=32, max_size=32), shares=shares_st, flip=st.integers(0, 255))
def test_every_share_changes_the_seed(seed: bytes, shares: dict[str, bytes], flip: int) -> None:
    code = sorted(shares)[0]
    changed = dict(shares)
    share = bytearray(shares[code])
    share[flip % 32] ^= 0x01
    changed[code] = bytes(share)
    assert draw_seed(seed, changed) != draw_seed(seed, shares)
    assert draw_seed(seed, shares) != seed


@pytest.mark.parametrize(
    ("shares", "rule"),
    [
        ({"工信": b"\x00" * 31}, "format"),
        ({"": b"\x00" * 32}, "department"),
        ({"a\x00b": b"\x00" * 32}, "department"),
        ({"工信": "00" * 32}, "format"),
    ],
)
def test_refusals(shares: dict[str, bytes], rule: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        draw_seed(VECTOR_SEED, shares)
    assert [p.rule for p in caught.value.problems] == [rule]


def test_seed_must_be_32_bytes() -> None:
    with pytest.raises(InvalidInputError):
        draw_seed(b"\x00" * 31, {"工信": b"\x00" * 32})


# -- a draw with shares: version 2, its key from draw_seed, verified with the shares -----------------------
def _pool() -> list[Candidate]:
    return [Candidate(f"t{i:02d}", "key/A" if i % 2 else "general/B") for i in range(20)]


def test_a_draw_with_shares_is_version_2_and_verifies() -> None:
    quotas = {"key/A": 3, "general/B": 4}
    plain = draw(VECTOR_SEED, "581", _pool(), quotas)
    shared = draw(VECTOR_SEED, "581", _pool(), quotas, shares=VECTOR_SHARES)
    record = shared.as_record()
    assert plain.algorithm_version == 1 and plain.as_record()["seed_shares"] == {}
    assert record["algorithm_version"] == 2
    assert record["seed_shares"] == {d: s.hex() for d, s in VECTOR_SHARES.items()}
    assert record["share_commitments"]["工信"] == VECTOR_COMMITMENT_11
    # the shares seed stands where the seed stood in version 1: same selection as a v1 draw with that seed
    combined = draw(draw_seed(VECTOR_SEED, VECTOR_SHARES), "581", _pool(), quotas)
    assert shared.selected == combined.selected
    assert verify(record, _pool()).match
    assert verify(plain.as_record(), _pool()).match


def test_a_changed_share_or_commitment_is_the_first_difference() -> None:
    record = draw(VECTOR_SEED, "581", _pool(), {"key/A": 3, "general/B": 4}, shares=VECTOR_SHARES).as_record()
    other = {**record, "seed_shares": {**record["seed_shares"], "工信": "33" * 32}}
    assert (verify(other, _pool()).first_difference or "").startswith("share_commitments['工信']")
    both = {**other, "share_commitments": {**record["share_commitments"], "工信": hashlib.sha256(b"\x33" * 32).hexdigest()}}
    outcome = verify(both, _pool())
    assert not outcome.match and (outcome.first_difference or "").startswith(("strata[", "selected"))
    assert (verify({**record, "algorithm_version": 1}, _pool()).first_difference or "").startswith("algorithm_version")
    assert (verify({**record, "seed_shares": {}, "share_commitments": {}}, _pool()).first_difference
            or "").startswith("algorithm_version")
