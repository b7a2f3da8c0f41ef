"""The verifiable target draw: the published test vector, an independent reference, properties, refusals."""

import hashlib
import hmac
import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.draw import sampler
from domain.draw.sampler import (
    ALGORITHM,
    ALGORITHM_VERSION,
    Candidate,
    EmptyPoolError,
    commitment,
    draw,
    draw_key,
    es_key,
    neg_log2_fixed,
    pool_digest,
    rank,
    verify,
)
from domain.errors import DomainError, InvalidInputError

# -- the test vector (also in docs/verifying-a-draw.md) ------------------------------------------------------
VECTOR_SEED = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
VECTOR_ENTROPY = "福彩3D 2024001: 3 7 2"
VECTOR_POOL = [  # (id, stratum, weight)
    ("e799a731-2908-4e5e-87f3-b5146e20bb38", "general/B", 1),
    ("2cb711a9-a1e4-4443-b40b-b2a347c378f4", "general/B", 2),
    ("0ad05a85-fa0e-414f-bfde-a842307302f1", "general/B", 3),
    ("4c2fa29c-bdc8-4efd-ab0e-f2f25742d2da", "general/B", 4),
    ("36b49626-0fca-4159-b8e1-9cb806283d59", "general/B", 5),
    ("9ef883bc-8252-4fb0-8028-91e6cc2ca64a", "general/B", 1),
    ("fad4a670-b987-4be7-94c9-ed8173455e26", "general/B", 2),
    ("d87e9601-13b8-48af-80ec-b571c150dab4", "general/B", 3),
    ("dd97932a-7e6d-445a-9ac7-911bae368092", "general/B", 4),
    ("5cd15ba1-1df4-45f7-b3aa-8db7910c975a", "general/B", 5),
    ("ed9453c9-9a3c-4395-921e-ca9286528c45", "key/C", 1),
    ("09882da0-193e-4427-aad7-4b3a6c04e95b", "key/C", 10),
    ("ae59e2a0-af69-4fbb-ac4b-2b2ac123f0e8", "key/C", 100),
    ("fdf0c69c-7ee8-49bd-a382-4f9567a62dc7", "key/C", 1000),
    ("8e18d693-96bd-4297-94fe-650fc972a8b9", "key/C", 10000),
    ("ec85365c-d4eb-4d5b-84db-cf39fcb835cf", "key/C", 100000),
    ("2ea7f81e-1f21-434f-ba90-450de38d49f2", "special/D", 1),
    ("a3081e83-199a-495b-8f88-27a1e32f1348", "special/D", 1),
    ("4bf0060b-cf75-4197-86aa-851525cf1b13", "special/D", 1),
    ("b3046116-4cfc-48f0-8a09-69b2ec77ff64", "special/D", 1),
]
VECTOR_QUOTAS = {"general/B": 3, "key/C": 2, "special/D": 5}
VECTOR_COMMITMENT = "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd"
VECTOR_POOL_DIGEST = "d10ead33251d35201c2f6405828b7abb2a3237587734a42a10d5853ccb68d15a"
VECTOR_KEY = "164fc9e26908ab1423e0836ee60fb0100eeb447cd9f854b0ec6fd9ba837e034d"
VECTOR_SPECIAL = (
    "2ea7f81e-1f21-434f-ba90-450de38d49f2",
    "4bf0060b-cf75-4197-86aa-851525cf1b13",
    "a3081e83-199a-495b-8f88-27a1e32f1348",
    "b3046116-4cfc-48f0-8a09-69b2ec77ff64",
)
VECTOR_UNIFORM = {
    "general/B": (
        "2cb711a9-a1e4-4443-b40b-b2a347c378f4",
        "0ad05a85-fa0e-414f-bfde-a842307302f1",
        "dd97932a-7e6d-445a-9ac7-911bae368092",
    ),
    "key/C": ("8e18d693-96bd-4297-94fe-650fc972a8b9", "ed9453c9-9a3c-4395-921e-ca9286528c45"),
    "special/D": VECTOR_SPECIAL,
}
VECTOR_WEIGHTED = {
    **VECTOR_UNIFORM,
    "key/C": ("8e18d693-96bd-4297-94fe-650fc972a8b9", "ec85365c-d4eb-4d5b-84db-cf39fcb835cf"),
}
VECTOR_RANKS = {  # rank as 16 hex digits, for an auditor debugging a reimplementation
    "2cb711a9-a1e4-4443-b40b-b2a347c378f4": "0b581aaaeae23b8d",
    "ec85365c-d4eb-4d5b-84db-cf39fcb835cf": "fce5320e466df53f",
    "8e18d693-96bd-4297-94fe-650fc972a8b9": "1723aa6bdfb2065f",
}
NEG_LOG2_EXAMPLES = {  # x -> NL(x)
    1: 1180591620717411303424,
    2: 1162144876643701751808,
    3: 1151354223100181444705,
    2**32: 590295810358705651712,
    2**63: 18446744073709551616,
    12345678901234567890: 10687306075141013903,
    2**64 - 1: 2,
    2**64: 0,
}


# -- an independent reference, written from the spec text in another style ------------------------------------
def ref_neg_log2(x: int) -> int:
    """NL(x): the fixed-point -log2(x / 2^64) of the spec, with plain arithmetic and a list of bits."""
    n = 0
    while (x >> (n + 1)) != 0:
        n += 1
    m = 2**63 if n == 64 else x * 2 ** (63 - n)
    bits = []
    for _ in range(64):
        m = (m * m) // 2**63
        if m >= 2**64:
            bits.append(1)
            m //= 2
        else:
            bits.append(0)
    f = 0
    for b in bits:
        f = f * 2 + b
    return (64 - n) * 2**64 - f


def ref_draw(seed_hex: str, entropy: str, pool: list, quotas: dict, weighted: bool = False):
    """``pool``: (id, stratum, weight). Returns (pool digest hex, key hex, {stratum: [ids]}, selected ids)."""
    seed = bytes.fromhex(seed_hex)
    id_bytes = sorted(cid.encode("utf-8") for cid, _, _ in pool)
    digest = hashlib.sha256(b"\n".join(id_bytes)).digest()
    key = hashlib.sha256(
        b"dualrandom-draw-v1" + b"\x00" + seed + b"\x00" + entropy.encode("utf-8") + b"\x00" + digest
    ).digest()
    out: dict = {}
    selected: list = []
    for stratum in sorted({s for _, s, _ in pool}, key=lambda s: s.encode("utf-8")):
        rows = []
        for cid, s, w in pool:
            if s == stratum:
                r = int.from_bytes(hmac.new(key, cid.encode("utf-8"), hashlib.sha256).digest()[:8], "big")
                e = ref_neg_log2(2**64 - r) // w if weighted else 0
                rows.append((e, r, cid.encode("utf-8"), cid))
        rows.sort()
        winners = sorted(rows[: quotas[stratum]], key=lambda row: (row[1], row[2]))
        out[stratum] = [row[3] for row in winners]
        selected += out[stratum]
    return digest.hex(), key.hex(), out, selected


def vector_candidates() -> list[Candidate]:
    return [Candidate(cid, s, w) for cid, s, w in VECTOR_POOL]


# -- the vector --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("weighted", [False, True])
def test_the_published_vector(weighted: bool) -> None:
    seed = bytes.fromhex(VECTOR_SEED)
    result = draw(seed, VECTOR_ENTROPY, vector_candidates(), VECTOR_QUOTAS, weighted=weighted)
    expected = VECTOR_WEIGHTED if weighted else VECTOR_UNIFORM
    assert (result.algorithm, result.algorithm_version) == (ALGORITHM, ALGORITHM_VERSION) == ("dualrandom-draw", 1)
    assert result.commitment == commitment(seed) == VECTOR_COMMITMENT
    assert result.pool_digest == VECTOR_POOL_DIGEST
    assert draw_key(seed, VECTOR_ENTROPY, VECTOR_POOL_DIGEST).hex() == VECTOR_KEY
    assert {s: o.selected for s, o in result.strata.items()} == expected
    assert result.selected == expected["general/B"] + expected["key/C"] + expected["special/D"]
    assert {s: (o.pool_size, o.quota, o.took_all) for s, o in result.strata.items()} == {
        "general/B": (10, 3, False), "key/C": (6, 2, False), "special/D": (4, 5, True),
    }


@pytest.mark.parametrize("weighted", [False, True])
def test_the_vector_agrees_with_the_independent_reference(weighted: bool) -> None:
    digest, key, per_stratum, selected = ref_draw(VECTOR_SEED, VECTOR_ENTROPY, VECTOR_POOL, VECTOR_QUOTAS, weighted)
    assert (digest, key) == (VECTOR_POOL_DIGEST, VECTOR_KEY)
    assert {s: tuple(ids) for s, ids in per_stratum.items()} == (VECTOR_WEIGHTED if weighted else VECTOR_UNIFORM)
    assert tuple(selected) == draw(bytes.fromhex(VECTOR_SEED), VECTOR_ENTROPY, vector_candidates(), VECTOR_QUOTAS,
                                   weighted=weighted).selected


def test_the_vector_ranks_and_the_integer_logarithm() -> None:
    key = bytes.fromhex(VECTOR_KEY)
    for cid, hex_rank in VECTOR_RANKS.items():
        assert f"{rank(key, cid):016x}" == hex_rank
    for x, value in NEG_LOG2_EXAMPLES.items():
        assert neg_log2_fixed(x) == ref_neg_log2(x) == value


def difference(outcome: sampler.VerifyOutcome) -> str:
    """The first difference verify() names; a verification that found none fails the test."""
    assert outcome.first_difference is not None, outcome
    return outcome.first_difference


def test_the_vector_verifies_and_a_changed_record_does_not() -> None:
    result = draw(bytes.fromhex(VECTOR_SEED), VECTOR_ENTROPY, vector_candidates(), VECTOR_QUOTAS)
    record = result.as_record()
    assert verify(record, vector_candidates()) == sampler.VerifyOutcome(True, None)
    assert verify(result, vector_candidates()).match

    swapped = {**record, "selected": [*record["selected"][:-1], VECTOR_POOL[0][0]]}
    outcome = verify(swapped, vector_candidates())
    assert not outcome.match and difference(outcome).startswith("selected[8]")

    stratum = {**record["strata"]["key/C"], "selected": ["ed9453c9-9a3c-4395-921e-ca9286528c45"] * 2}
    outcome = verify({**record, "strata": {**record["strata"], "key/C": stratum}}, vector_candidates())
    assert difference(outcome).startswith("strata['key/C'].selected[0]")

    outcome = verify(record, vector_candidates()[1:])
    assert difference(outcome).startswith("pool_digest: recorded d10ead33")
    assert difference(verify(record, [])).startswith("pool_digest: recorded d10ead33")
    extra = [*vector_candidates(), Candidate("00000000-0000-4000-8000-000000000000", "other/A")]
    assert difference(verify(record, extra)).startswith("pool_digest:")

    outcome = verify({**record, "seed": "00" * 32}, vector_candidates())
    assert difference(outcome).startswith("commitment:")

    outcome = verify({**record, "external_entropy": "another lottery"}, vector_candidates())
    assert difference(outcome).startswith("strata[") and ".selected[" in difference(outcome)

    moved = [Candidate(c.id, "key/C" if c.stratum == "general/B" and c.weight == 5 else c.stratum, c.weight)
             for c in vector_candidates()]
    outcome = verify(record, moved)
    assert outcome.first_difference == "strata['general/B'].pool_size: recorded 10, recomputed 8"

    outcome = verify({**record, "algorithm_version": 3}, vector_candidates())
    assert difference(outcome).startswith("algorithm: the record says dualrandom-draw v3")
    outcome = verify({k: v for k, v in record.items() if k != "seed"}, vector_candidates())
    assert difference(outcome).startswith("record: cannot be read")


# -- primitives --------------------------------------------------------------------------------------------
def test_commitment_and_pool_digest_byte_formats() -> None:
    seed = bytes(range(32))
    assert commitment(seed) == hashlib.sha256(seed).hexdigest()
    ids = ["b", "a", "é", "z", "ab"]  # "é" is 0xC3 0xA9 in UTF-8: after "z"
    assert pool_digest(ids) == hashlib.sha256(b"a\nab\nb\nz\n\xc3\xa9").hexdigest()
    assert pool_digest(reversed(ids)) == pool_digest(ids)
    assert pool_digest([]) == hashlib.sha256(b"").hexdigest()
    with pytest.raises(InvalidInputError) as err:
        pool_digest(["a", "b\nc", ""])
    assert {(p.field, p.rule) for p in err.value.problems} == {("candidates", "format"), ("candidates", "required")}


def test_the_fast_hmac_is_hmac() -> None:
    key = hashlib.sha256(b"k").digest()
    inner, outer = sampler._hmac_states(key)
    for cid in ("x", "3f1c2d9e-0000-4000-8000-000000000000", "获嘉县" * 30):
        h = inner.copy()
        h.update(cid.encode())
        o = outer.copy()
        o.update(h.digest())
        assert o.digest() == hmac.new(key, cid.encode(), hashlib.sha256).digest()


@given(st.integers(1, 2**64))
def test_the_integer_logarithm_is_close_to_the_real_one(x: int) -> None:
    value = neg_log2_fixed(x)
    assert value == ref_neg_log2(x)
    assert abs(value / 2**64 - (64 - math.log2(x))) < 1e-9


@given(st.integers(1, 2**64), st.integers(1, 2**64))
def test_the_integer_logarithm_never_increases(a: int, b: int) -> None:
    lo, hi = min(a, b), max(a, b)
    assert neg_log2_fixed(lo) >= neg_log2_fixed(hi)


def test_the_integer_logarithm_never_increases_across_powers_of_two() -> None:
    for n in range(1, 65):
        assert neg_log2_fixed(2**n - 1) > neg_log2_fixed(2**n)
        assert neg_log2_fixed(2**n - 1) - neg_log2_fixed(2**n) <= 2 ** 64 // 2**n * 2 + 2
    with pytest.raises(ValueError):
        neg_log2_fixed(0)
    with pytest.raises(ValueError):
        neg_log2_fixed(2**64 + 1)


# -- properties --------------------------------------------------------------------------------------------
text_ids = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\n"), min_size=1, max_size=8)
STRATA = ["general/A", "general/B", "key/A", "special/D", "一般/甲"]


@st.composite
def pools(draw_, min_size: int = 1, max_size: int = 40, id_strategy=text_ids):
    ids = draw_(st.lists(id_strategy, min_size=min_size, max_size=max_size, unique=True))
    cands = [Candidate(cid, draw_(st.sampled_from(STRATA)), draw_(st.integers(1, 1_000_000))) for cid in ids]
    sizes: dict[str, int] = {}
    for c in cands:
        sizes[c.stratum] = sizes.get(c.stratum, 0) + 1
    quotas = {s: draw_(st.integers(0, n + 3)) for s, n in sizes.items()}
    return cands, quotas


seeds = st.binary(min_size=32, max_size=32)
entropies = st.text(st.characters(blacklist_categories=["Cs"]), max_size=12)


@settings(max_examples=150)
@given(pools(), seeds, entropies, st.booleans())
def test_the_draw_equals_the_reference(pool, seed: bytes, entropy: str, weighted: bool) -> None:
    cands, quotas = pool
    result = draw(seed, entropy, cands, quotas, weighted=weighted)
    digest, _, per_stratum, selected = ref_draw(seed.hex(), entropy, [(c.id, c.stratum, c.weight) for c in cands],
                                                quotas, weighted)
    assert result.pool_digest == digest
    assert {s: list(o.selected) for s, o in result.strata.items()} == per_stratum
    assert list(result.selected) == selected


@settings(max_examples=150)
@given(pools(), seeds, st.booleans(), st.randoms(use_true_random=False))
def test_quotas_are_met_or_all_taken_once_and_order_does_not_matter(pool, seed, weighted, rnd) -> None:
    cands, quotas = pool
    result = draw(seed, "", cands, quotas, weighted=weighted)
    by_stratum: dict[str, set[str]] = {}
    for c in cands:
        by_stratum.setdefault(c.stratum, set()).add(c.id)
    assert list(result.strata) == sorted(by_stratum)
    for s, outcome in result.strata.items():
        assert outcome.pool_size == len(by_stratum[s])
        assert len(outcome.selected) == min(outcome.quota, outcome.pool_size)
        assert outcome.took_all == (outcome.quota >= outcome.pool_size)
        assert set(outcome.selected) <= by_stratum[s]
    assert len(set(result.selected)) == len(result.selected)
    assert result.selected == tuple(i for s in sorted(result.strata) for i in result.strata[s].selected)

    shuffled = list(cands)
    rnd.shuffle(shuffled)
    assert draw(seed, "", shuffled, dict(reversed(list(quotas.items()))), weighted=weighted) == result
    assert draw(seed, "", sorted(cands, key=lambda c: c.id), quotas, weighted=weighted) == result
    assert draw(seed, "", tuple(cands), quotas, weighted=weighted) == result
    assert verify(result.as_record(), shuffled).match


@given(pools(min_size=2), seeds)
def test_excluded_targets_never_appear(pool, seed) -> None:
    cands, quotas = pool
    excluded = {c.id for c in cands[::2]}
    kept = [c for c in cands if c.id not in excluded]
    if not kept:
        return
    kept_quotas = {s: q for s, q in quotas.items() if any(c.stratum == s for c in kept)}
    result = draw(seed, "", kept, kept_quotas)
    assert not excluded & set(result.selected)


@given(pools(), seeds)
def test_equal_weights_select_exactly_what_the_uniform_draw_selects(pool, seed) -> None:
    cands, quotas = pool
    for w in (1, 7):
        same = [Candidate(c.id, c.stratum, w) for c in cands]
        assert draw(seed, "x", same, quotas, weighted=True).strata == draw(seed, "x", cands, quotas).strata


def test_a_different_seed_or_entropy_gives_a_different_selection() -> None:
    cands = [Candidate(f"t{n:05d}", "general/B") for n in range(10_000)]
    results = [set(draw(hashlib.sha256(bytes([i])).digest(), "", cands, {"general/B": 100}).selected) for i in range(12)]
    results.append(set(draw(hashlib.sha256(bytes([0])).digest(), "beacon 42", cands, {"general/B": 100}).selected))
    for i, a in enumerate(results):
        for b in results[i + 1 :]:
            assert len(a & b) < 10  # 1 expected (100 of 10,000 twice)


def test_weighted_draws_prefer_higher_weights() -> None:
    heavy = {f"h{n:04d}" for n in range(1000)}
    cands = [Candidate(f"h{n:04d}", "s", 4) for n in range(1000)] + [Candidate(f"l{n:04d}", "s", 1) for n in range(1000)]
    heavy_share, uniform_share = [], []
    for i in range(40):
        seed = hashlib.sha256(b"weighted %d" % i).digest()
        heavy_share.append(len(heavy & set(draw(seed, "", cands, {"s": 100}, weighted=True).selected)) / 100)
        uniform_share.append(len(heavy & set(draw(seed, "", cands, {"s": 100}).selected)) / 100)
    # Efraimidis-Spirakis with weights 4:1 and a small sample: each pick is heavy with probability ~4/5.
    assert 0.76 < sum(heavy_share) / 40 < 0.84
    assert 0.45 < sum(uniform_share) / 40 < 0.55


def test_the_selection_follows_the_ranks() -> None:
    cands = [Candidate(f"t{n}", "s") for n in range(50)]
    seed = bytes(32)
    result = draw(seed, "", cands, {"s": 7})
    key = draw_key(seed, "", result.pool_digest)
    expected = sorted(cands, key=lambda c: (rank(key, c.id), c.id))[:7]
    assert result.selected == tuple(c.id for c in expected)


def test_es_key_orders_like_the_spec() -> None:
    assert es_key(0, 1) == 0
    assert es_key(2**64 - 1, 1) == 64 << 64
    assert es_key(2**63, 2) == (1 << 64) // 2


# -- equal ranks (impossible to provoke through HMAC, so the selection is driven with crafted keys) ------------
@settings(max_examples=200)
@given(
    st.lists(st.tuples(st.integers(0, 40), st.sampled_from([1, 2, 3, 1_000_000])), min_size=1, max_size=30),
    st.integers(0, 35),
    st.booleans(),
    st.randoms(use_true_random=False),
)
def test_equal_ranks_are_broken_by_id(rows, quota, weighted, rnd) -> None:
    ids = [f"id{n:03d}" for n in range(len(rows))]
    rnd.shuffle(ids)  # input order differs from id order
    weights = [w for _, w in rows] if weighted else []
    shift = max(1, (len(rows) - 1).bit_length())
    groups: dict[int, list[int]] = {}
    for i, (r, w) in enumerate(rows):
        groups.setdefault(w if weighted else 1, []).append((r << shift) | i)
    chosen = sampler._select_stratum(sorted(groups.items()), quota, shift, ids, weights)
    got = [ids[k & ((1 << shift) - 1)] for k in chosen]

    def e(i: int) -> int:
        return es_key(rows[i][0], rows[i][1]) if weighted else 0

    order = sorted(range(len(rows)), key=lambda i: (e(i), rows[i][0], ids[i]))[:quota]
    assert got == [ids[i] for i in sorted(order, key=lambda i: (rows[i][0], ids[i]))]


@settings(max_examples=200)
@given(st.lists(st.tuples(st.integers(0, 2**64 - 1), st.integers(1, 1_000_000)), min_size=2, max_size=60, unique_by=lambda r: r[0]),
       st.integers(1, 59))
def test_the_weighted_bisection_equals_sorting_every_key(rows, quota) -> None:
    quota = min(quota, len(rows) - 1)
    shift = 6
    groups: dict[int, list[int]] = {}
    for i, (r, w) in enumerate(rows):
        groups.setdefault(w, []).append((r << shift) | i)
    chosen, _ = sampler._smallest_of_groups(sorted(groups.items()), quota, shift)
    expected = sorted(range(len(rows)), key=lambda i: (es_key(rows[i][0], rows[i][1]), rows[i][0]))[:quota]
    assert [k & 63 for k in chosen] == sorted(expected, key=lambda i: rows[i][0])


def test_the_bounded_selection_falls_back_when_keys_are_not_uniform() -> None:
    keys = list(range(1000, 0, -1))  # all far below the bound a uniform sample would give
    assert sampler._smallest(list(keys), 10, 84) == list(range(1, 11))
    skewed = [2**83 + k for k in keys]  # all above it: fall back to sorting
    assert sampler._smallest(list(skewed), 10, 84) == sorted(skewed)[:10]


# -- refusals ----------------------------------------------------------------------------------------------
def rules(err: pytest.ExceptionInfo) -> set[tuple[str, str]]:
    return {(p.field, p.rule) for p in err.value.problems}


def test_an_empty_pool_is_a_clear_error() -> None:
    with pytest.raises(EmptyPoolError, match="pool is empty") as err:
        draw(bytes(32), "", [], {})
    assert isinstance(err.value, DomainError)


def test_every_problem_of_the_input_is_named_at_once() -> None:
    cands = [Candidate("a", "key/A"), Candidate("a", "key/A"), Candidate("b\nc", "key/A"), Candidate("d", "general/B")]
    with pytest.raises(InvalidInputError) as err:
        draw(bytes(32), "", cands, {"key/A": -1, "key/Z": 2})
    assert rules(err) == {
        ("candidates", "duplicate"), ("candidates", "format"),
        ("quotas", "min"), ("quotas", "unknown_stratum"), ("quotas", "missing_quota"),
    }
    messages = " | ".join(p.message for p in err.value.problems)
    assert "'a' appears more than once" in messages and "'general/B'" in messages and "'key/Z'" in messages


def test_weights_are_checked_only_for_weighted_draws() -> None:
    cands = [Candidate("a", "s", 0), Candidate("b", "s", 2_000_000), Candidate("c", "s", True)]
    assert len(draw(bytes(32), "", cands, {"s": 1}).selected) == 1
    with pytest.raises(InvalidInputError) as err:
        draw(bytes(32), "", cands, {"s": 1}, weighted=True)
    assert rules(err) == {("candidates", "weight_range")} and len(err.value.problems) == 3


@pytest.mark.parametrize("seed", [b"", bytes(31), bytes(33), "00" * 32])
def test_the_seed_is_32_bytes(seed) -> None:
    with pytest.raises(InvalidInputError) as err:
        draw(seed, "", [Candidate("a", "s")], {"s": 1})
    assert rules(err) == {("seed", "format")}


def test_odd_ids_strata_and_quotas_are_refused() -> None:
    with pytest.raises(InvalidInputError) as err:
        draw(bytes(32), "", [Candidate("", "s"), Candidate("\ud800", "s"), Candidate("x", "")],
             {"s": 1.5})  # type: ignore[dict-item]  # a float quota, on purpose: it is refused
    assert rules(err) >= {("candidates", "required"), ("candidates", "encoding"), ("candidates", "stratum"),
                          ("quotas", "type")}
    with pytest.raises(InvalidInputError) as err:
        draw(bytes(32), "\ud800", [Candidate("a", "s")], {"s": 1})
    assert rules(err) == {("external_entropy", "encoding")}
    with pytest.raises(InvalidInputError):
        draw(bytes(32), "", [Candidate(3, "s"), Candidate("a", "s")], {"s": 1})  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError) as err:
        draw_key(bytes(32), "", "ABCD")
    assert rules(err) == {("pool_digest", "format")}


def test_quota_zero_selects_none_and_a_large_quota_takes_all() -> None:
    cands = [Candidate(f"t{n}", "a") for n in range(5)] + [Candidate(f"u{n}", "b") for n in range(5)]
    result = draw(bytes(32), "", cands, {"a": 0, "b": 99})
    assert result.strata["a"].selected == () and not result.strata["a"].took_all
    assert len(result.strata["b"].selected) == 5 and result.strata["b"].took_all
    assert result.as_record()["strata"]["b"] == {
        "pool_size": 5, "quota": 99, "took_all": True, "selected": list(result.strata["b"].selected),
    }


def test_a_large_pool_with_random_ids_draws_exactly_the_quotas() -> None:
    rng = random.Random(7)
    cands = [Candidate(f"{rng.getrandbits(128):032x}", f"s{rng.randrange(12)}") for _ in range(30_000)]
    quotas = {f"s{n}": 50 * n for n in range(12)}
    result = draw(bytes(32), "", cands, quotas, weighted=False)
    assert [len(o.selected) for o in result.strata.values()] == [min(o.quota, o.pool_size) for o in result.strata.values()]
    weighted = draw(bytes(32), "", [Candidate(c.id, c.stratum, 1 + rng.randrange(4)) for c in cands], quotas,
                    weighted=True)
    assert [len(o.selected) for o in weighted.strata.values()] == [len(o.selected) for o in result.strata.values()]


# -- the spec document -------------------------------------------------------------------------------------
SPEC = Path(__file__).resolve().parents[2] / "docs" / "verifying-a-draw.md"


def test_the_spec_publishes_the_vector_and_its_reference_verifier_reproduces_it() -> None:
    text = SPEC.read_text(encoding="utf-8")
    for published in (VECTOR_SEED, VECTOR_ENTROPY, VECTOR_COMMITMENT, VECTOR_POOL_DIGEST, VECTOR_KEY,
                      *VECTOR_RANKS.values(), *(str(v) for v in NEG_LOG2_EXAMPLES.values())):
        assert published in text
    for cid, stratum, weight in VECTOR_POOL:
        assert f"| `{cid}` | {stratum} | {weight} |" in text
    for ids in (*VECTOR_UNIFORM.values(), *VECTOR_WEIGHTED.values()):
        assert all(cid in text for cid in ids)

    code = text.split("## 11. Reference verifier", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert len(code.strip().splitlines()) <= 20
    namespace: dict = {}
    exec(compile(code, str(SPEC), "exec"), namespace)
    for weighted, expected in ((False, VECTOR_UNIFORM), (True, VECTOR_WEIGHTED)):
        digest, strata = namespace["redraw"](VECTOR_SEED, VECTOR_ENTROPY, VECTOR_POOL, VECTOR_QUOTAS, weighted)
        assert digest == VECTOR_POOL_DIGEST
        assert {s: tuple(ids) for s, ids in strata.items()} == expected
    for x, value in NEG_LOG2_EXAMPLES.items():
        assert namespace["nl"](x) == value


@given(st.lists(st.tuples(st.uuids().map(str), st.sampled_from(["key/A", "general/B"]), st.integers(1, 9)),
                min_size=1, max_size=30, unique_by=lambda t: t[0]),
       st.booleans())
def test_a_pool_given_as_columns_draws_exactly_what_the_same_rows_draw(rows, weighted) -> None:
    from domain.draw.sampler import CandidateColumns

    rows = sorted(rows)
    cands = [Candidate(i, s, w) for i, s, w in rows]
    quotas = dict.fromkeys({r[1] for r in rows}, 2)
    seed = bytes(range(32))
    columns = CandidateColumns([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows] if weighted else None)
    expected = draw(seed, "e", [Candidate(i, s, w if weighted else 1) for i, s, w in rows], quotas, weighted)
    # draw() takes the columns as the equivalent rows (see its doc), though it declares Sequence[Candidate].
    assert draw(seed, "e", cast("Sequence[Candidate]", columns), quotas, weighted) == expected
    if not weighted:
        assert draw(seed, "e", cands, quotas) == expected
