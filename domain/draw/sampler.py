"""The verifiable target draw (the first 随机 of 双随机): commit, freeze, reveal, rank, select.

The algorithm, byte for byte, is specified in ``docs/verifying-a-draw.md`` (with a test vector and a
reference verifier); this module is its implementation. In short:

- ``commitment = hex(SHA-256(seed))`` for a 32-byte secret seed, published before the pool is frozen;
- ``pool_digest = hex(SHA-256(UTF-8(join("\\n", sorted ids))))``, ids sorted by their UTF-8 bytes;
- ``key = SHA-256("dualrandom-draw-v1" 0x00 seed 0x00 UTF-8(external_entropy) 0x00 raw(pool_digest))``;
- ``rank(id) = first 8 bytes, big-endian, of HMAC-SHA256(key, UTF-8(id))``, ties broken by the id's bytes;
- uniform: per stratum the ``quota`` candidates with the lowest ``(rank, id)``;
- weighted (Efraimidis-Spirakis A-ES): per stratum the ``quota`` candidates with the lowest ``(E, rank, id)``,
  ``E = floor(NL(2^64 - rank) / weight)`` where ``NL`` is an integer-only fixed-point ``-log2`` (64 fractional
  bits, see :func:`neg_log2_fixed`); lower rank means a larger uniform variate, so a weighted draw with equal
  weights selects exactly what the uniform draw selects;
- the selected ids of a stratum are listed in ascending ``(rank, id)`` order (in both modes), strata in
  ascending order of their names' UTF-8 bytes.

Python's ``str`` ordering is code-point order, which for any string that encodes to UTF-8 (no lone
surrogates: those are refused) is exactly the byte order of the UTF-8 encodings, so ``sorted`` on the ids is
the specified order. Nothing here uses ``random``, floats, or anything that changes with the Python version.
"""

from __future__ import annotations

import hashlib
import hmac
import operator
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice, repeat
from typing import Any, Protocol

from domain.errors import DomainError, FieldProblem, InvalidInputError

ALGORITHM = "dualrandom-draw"
ALGORITHM_VERSION = 1

SEED_BYTES = 32
SHARE_BYTES = 32
KEY_LABEL = b"dualrandom-draw-v1"
SHARES_LABEL = b"dualrandom-shares-v1"
SHARES_ALGORITHM_VERSION = 2  # the version a draw record carries when its seed was combined with shares
MAX_WEIGHT = 1_000_000
RANK_BITS = 64
FRACTION_BITS = 64

_TWO_64 = 1 << 64
_MAX_NL = 64 << FRACTION_BITS  # NL(1): the largest value of the fixed-point -log2
_MAX_LISTED = 20  # problems listed per rule before "... and N more"
_Groups = list[tuple[int, list[int]]]  # (weight, composite keys) of one stratum


class EmptyPoolError(DomainError):
    """The frozen candidate pool holds no target: there is nothing to draw."""

    title = "Empty candidate pool"


@dataclass(frozen=True, slots=True)
class Candidate:
    """One target of the frozen pool: id, stratum (e.g. ``"key/A"``), weight (for weighted draws)."""

    id: str
    stratum: str
    weight: int = 1


@dataclass(frozen=True)
class CandidateColumns:
    """A pool as three parallel lists (ids, strata, weights): what a stored pool reads back as, without
    building a million :class:`Candidate` objects. :func:`draw` treats it exactly as the equivalent rows."""

    ids: list[str]
    strata: list[str]
    weights: list[int] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self) -> list[Candidate]:
        weights = self.weights if self.weights is not None else [1] * len(self.ids)
        if not len(self.ids) == len(self.strata) == len(weights):
            raise InvalidInputError([FieldProblem("candidates", "columns", "ids, strata and weights differ in length")])
        return [Candidate(i, s, w) for i, s, w in zip(self.ids, self.strata, weights)]


def _rows(pool: Any) -> Any:
    return pool.rows() if isinstance(pool, CandidateColumns) else pool


@dataclass(frozen=True)
class StratumOutcome:
    """What the draw did in one stratum. ``took_all``: the quota was at least the stratum's size."""

    pool_size: int
    quota: int
    selected: tuple[str, ...]
    took_all: bool


@dataclass(frozen=True)
class DrawResult:
    """A draw, complete enough to be re-run: :meth:`as_record` is what :func:`verify` reads."""

    algorithm: str
    algorithm_version: int
    commitment: str
    pool_digest: str
    strata: dict[str, StratumOutcome]
    selected: tuple[str, ...]
    seed: bytes
    external_entropy: str
    weighted: bool
    seed_shares: Mapping[str, bytes] = field(default_factory=dict)

    def as_record(self) -> dict[str, Any]:
        """The draw as plain JSON values (seed and shares in lowercase hex), strata in name order.

        ``seed_shares`` (department -> share) and ``share_commitments`` (department -> SHA-256 of the share)
        are ``{}`` for a draw without shares (version 1)."""
        return {
            "algorithm": self.algorithm,
            "algorithm_version": self.algorithm_version,
            "seed": self.seed.hex(),
            "commitment": self.commitment,
            "seed_shares": {d: self.seed_shares[d].hex() for d in sorted(self.seed_shares)},
            "share_commitments": {d: hashlib.sha256(self.seed_shares[d]).hexdigest() for d in sorted(self.seed_shares)},
            "external_entropy": self.external_entropy,
            "pool_digest": self.pool_digest,
            "weighted": self.weighted,
            "strata": {
                name: {
                    "pool_size": s.pool_size,
                    "quota": s.quota,
                    "took_all": s.took_all,
                    "selected": list(s.selected),
                }
                for name, s in self.strata.items()
            },
            "selected": list(self.selected),
        }


@dataclass(frozen=True)
class VerifyOutcome:
    """``match`` when the recomputation equals the record; otherwise the first field that differs."""

    match: bool
    first_difference: str | None = None


# -- the published primitives ------------------------------------------------------------------------------
def commitment(seed: bytes) -> str:
    """Lowercase hex SHA-256 of the 32-byte seed: published before the pool is frozen."""
    _check_seed(seed)
    return hashlib.sha256(seed).hexdigest()


def share_commitment(share: bytes) -> str:
    """Lowercase hex SHA-256 of a department's 32-byte seed share: committed before the pool is frozen."""
    _check_share("share", share)
    return hashlib.sha256(share).hexdigest()


def draw_seed(seed: bytes, shares: Mapping[str, bytes]) -> bytes:
    """The seed the draw key uses: the server's ``seed`` itself when there is no share, otherwise

    ``SHA-256("dualrandom-shares-v1" 0x00 seed S1 S2 ...)`` with ``Si = 0x00 UTF-8(department code) 0x00
    share`` (32 raw bytes), the departments in ascending order of their codes' UTF-8 bytes. A code is a
    non-empty text without U+0000 (so the bytes are unambiguous); every share is 32 bytes.
    """
    _check_seed(seed)
    if not isinstance(shares, Mapping):
        raise InvalidInputError([FieldProblem("seed_shares", "type", "must map department codes to shares")])
    if not shares:
        return bytes(seed)
    problems: list[FieldProblem] = []
    encoded: list[tuple[bytes, bytes]] = []
    for code, share in shares.items():
        try:
            code_bytes = code.encode("utf-8") if isinstance(code, str) else b""
        except UnicodeEncodeError:
            code_bytes = b""
        if not code_bytes or b"\x00" in code_bytes:
            problems.append(FieldProblem("seed_shares", "department",
                                         f"department code {code!r} must be non-empty UTF-8 text without U+0000"))
            continue
        if not isinstance(share, bytes) or len(share) != SHARE_BYTES:
            got = f"{len(share)} bytes" if isinstance(share, bytes) else type(share).__name__
            problems.append(FieldProblem("seed_shares", "format",
                                         f"share of {code!r} must be {SHARE_BYTES} bytes, got {got}"))
            continue
        encoded.append((code_bytes, share))
    if problems:
        raise InvalidInputError(problems)
    h = hashlib.sha256(SHARES_LABEL + b"\x00" + seed)
    for code_bytes, share in sorted(encoded):
        h.update(b"\x00" + code_bytes + b"\x00" + share)
    return h.digest()


def pool_digest(candidate_ids: Iterable[str]) -> str:
    """Lowercase hex SHA-256 of the ids sorted by UTF-8 bytes, joined by 0x0A, UTF-8, no trailing newline.

    Every id must be a non-empty string without a line feed that encodes to UTF-8 (these make the byte
    format unambiguous). Duplicates are not refused here (:func:`draw` refuses them).
    """
    ids = list(candidate_ids)
    try:  # the usual case in C-speed passes: a pool read in id order is not sorted again
        sorted_ids = ids if all(map(operator.lt, ids, ids[1:])) else sorted(ids)
    except TypeError:  # not all strings: named below
        sorted_ids = []
    data = _fast_checked_bytes(sorted_ids, [], [], False, unique=True) if sorted_ids else None
    if data is not None:
        return hashlib.sha256(data).hexdigest()
    problems = _id_problems(ids, check_duplicates=False)
    if problems:
        raise InvalidInputError(problems)
    return _digest_of_sorted(sorted(ids))


def draw_key(seed: bytes, external_entropy: str, pool_digest: str) -> bytes:
    """The draw key: SHA-256(b"dualrandom-draw-v1" 0x00 seed 0x00 UTF-8(entropy) 0x00 digest bytes)."""
    _check_seed(seed)
    entropy = _entropy_bytes(external_entropy)
    try:
        digest = bytes.fromhex(pool_digest)
    except (TypeError, ValueError):
        digest = b""
    if len(digest) != 32 or pool_digest != digest.hex():
        raise InvalidInputError([FieldProblem("pool_digest", "format", "must be 64 lowercase hex digits")])
    return hashlib.sha256(KEY_LABEL + b"\x00" + seed + b"\x00" + entropy + b"\x00" + digest).digest()


def rank(key: bytes, candidate_id: str) -> int:
    """The candidate's rank: the first 8 bytes of HMAC-SHA256(key, UTF-8(id)) as a big-endian unsigned int."""
    return int.from_bytes(hmac.new(key, candidate_id.encode("utf-8"), hashlib.sha256).digest()[:8], "big")


def ranks(key: bytes, id_bytes: Sequence[bytes]) -> list[int]:
    """:func:`rank` of each candidate id given as its UTF-8 bytes, in order (what a :class:`RankHelper` computes)."""
    inner, outer = _hmac_states(key)
    icopy, ocopy, from_bytes = inner.copy, outer.copy, int.from_bytes
    out: list[int] = []
    append = out.append
    for b in id_bytes:
        h = icopy()
        h.update(b)
        o = ocopy()
        o.update(h.digest())
        append(from_bytes(o.digest()[:8], "big"))
    return out


HELPED_FROM = 200_000
"""From this many candidates on, a draw given a :class:`RankHelper` shares the ranking with it."""


class RankHelper(Protocol):
    """Ranks part of a pool elsewhere (another process) while the draw ranks the rest.

    ``submit(key, id_bytes)`` starts ranking and returns ``collect``, or None when it cannot help now (busy,
    not available): then the draw ranks everything itself. ``collect()`` returns :func:`ranks` ``(key,
    id_bytes)``, or None when the helping failed (then the draw ranks that part itself)."""

    def submit(self, key: bytes, id_bytes: Sequence[bytes]) -> Callable[[], Sequence[int] | None] | None: ...


def neg_log2_fixed(x: int) -> int:
    """``-log2(x / 2^64)`` in fixed point, 64 fractional bits, for integers ``1 <= x <= 2^64``; integers only.

    ``n = bitlength(x) - 1``; ``m = x`` shifted so its highest set bit is bit 63 (``m`` in ``[2^63, 2^64)``),
    then 64 times: ``m = (m * m) >> 63``; the next fraction bit is 1 when ``m >= 2^64``, and then ``m >>= 1``.
    The bits, most significant first, form ``F`` (the truncated binary logarithm of the mantissa), and the
    result is ``(64 - n) * 2^64 - F``. Every intermediate value fits in an unsigned 128-bit integer. The
    result is non-increasing in ``x`` (see the spec), which the selection below relies on.
    """
    if not 1 <= x <= _TWO_64:
        raise ValueError("x must be in [1, 2^64]")
    n = x.bit_length() - 1
    m = x << (63 - n) if n <= 63 else x >> 1
    f = 0
    for _ in range(FRACTION_BITS):
        m = (m * m) >> 63
        f <<= 1
        if m >> 64:
            m >>= 1
            f |= 1
    return ((64 - n) << FRACTION_BITS) - f


def es_key(rank_value: int, weight: int) -> int:
    """The weighted draw's key ``E = floor(NL(2^64 - rank) / weight)``: the lowest ``(E, rank, id)`` win."""
    return neg_log2_fixed(_TWO_64 - rank_value) // weight


# -- the draw ------------------------------------------------------------------------------------------
def draw(
    seed: bytes,
    external_entropy: str,
    candidates: Sequence[Candidate],
    quotas: Mapping[str, int],
    weighted: bool = False,
    shares: Mapping[str, bytes] | None = None,
    helper: RankHelper | None = None,
) -> DrawResult:
    """Draw ``quotas[stratum]`` targets from each stratum of the frozen pool (see the module doc).

    ``helper`` (a pool of at least ``HELPED_FROM`` candidates): another process ranks the second half of the
    candidates while this one ranks the first (:class:`RankHelper`); the result is the same, helped or not.

    ``shares`` (department code -> 32-byte seed share, joint tasks) make the key's seed
    :func:`draw_seed` ``(seed, shares)`` and the draw version 2; without them it is version 1.

    Every stratum of the pool needs a quota (0 draws none); a quota for a stratum with no candidate, a
    negative quota, a duplicate id or (weighted) a weight outside 1..1,000,000 is refused with every problem
    named; an empty pool raises :class:`EmptyPoolError`. Weights are ignored unless ``weighted``.

    ``candidates`` may be any objects with ``id``, ``stratum`` (and, weighted, ``weight``) attributes, such
    as database rows: constructing a million :class:`Candidate` objects costs about a second. A pool read
    in id order (``ORDER BY id``) skips the sort the pool digest needs, which is the costliest step after
    the hashing.
    """
    _check_seed(seed)
    _entropy_bytes(external_entropy)
    key_seed = draw_seed(seed, shares or {})
    pool: Any = candidates if isinstance(candidates, (CandidateColumns, list)) else list(candidates)
    n = len(pool)
    if n == 0:
        raise EmptyPoolError(
            "the candidate pool is empty: no target matches the task's scope after the exclusions, "
            "so there is nothing to draw"
        )
    try:
        if isinstance(pool, CandidateColumns):
            ids, names = pool.ids, pool.strata
        else:
            ids = [c.id for c in pool]
            names = [c.stratum for c in pool]
        # A pool read in id order (ORDER BY id) needs no sort; strictly increasing also means no duplicate.
        presorted = all(map(operator.lt, ids, ids[1:]))
        sorted_ids = ids if presorted else sorted(ids)
    except (AttributeError, TypeError):
        raise InvalidInputError(_slow_candidate_problems(_rows(pool), weighted)) from None
    if isinstance(pool, CandidateColumns):
        weights = list(pool.weights) if weighted and pool.weights is not None else ([1] * n if weighted else [])
        pool = pool.rows() if len(names) != n or len(weights) not in (0, n) else pool
    else:
        weights = [c.weight for c in pool] if weighted else []
    sorted_bytes = _fast_checked_bytes(sorted_ids, names, weights, weighted, unique=presorted)
    del sorted_ids
    if sorted_bytes is None:  # something is wrong: name every problem
        problems = _slow_candidate_problems(_rows(pool), weighted)
        try:
            sizes = dict(Counter(names))
        except TypeError:  # an unhashable stratum, already named above
            raise InvalidInputError(problems) from None
        raise InvalidInputError(problems + _quota_problems(quotas, sizes))
    sizes = dict(Counter(names))
    problems = _quota_problems(quotas, sizes)
    if problems:
        raise InvalidInputError(problems)
    digest = hashlib.sha256(sorted_bytes).hexdigest()
    key = draw_key(key_seed, external_entropy, digest)

    # Composite sort keys (rank << shift) | i, i the position in the input: integer order on them is rank
    # order; equal ranks (about 3e-8 per million-candidate draw) are detected and re-ordered by id below.
    shift = max(1, (n - 1).bit_length())
    # one list per stratum (uniform), or per (stratum, weight) coded as one int (weighted)
    stratum_list = sorted(sizes)
    if weighted:
        base = {s: number * (MAX_WEIGHT + 1) for number, s in enumerate(stratum_list)}
        labels: list[Any] = list(map(operator.add, map(base.__getitem__, names), weights))
    else:
        labels = names
    keys: dict[Any, list[int]] = {label: [] for label in set(labels)}
    appenders = {label: lst.append for label, lst in keys.items()}
    inner, outer = _hmac_states(key)
    icopy, ocopy, from_bytes = inner.copy, outer.copy, int.from_bytes
    id_bytes = (sorted_bytes if presorted else "\n".join(ids).encode("utf-8")).split(b"\n")
    del sorted_bytes
    split = n // 2 if n >= HELPED_FROM else n
    collect = helper.submit(key, id_bytes[split:]) if helper is not None and split < n else None
    if collect is None:
        split = n
    for i, (b, label) in enumerate(zip(islice(id_bytes, split), labels)):
        h = icopy()
        h.update(b)
        o = ocopy()
        o.update(h.digest())
        appenders[label]((from_bytes(o.digest()[:8], "big") << shift) | i)
    if collect is not None:
        helped = collect()
        if helped is None or len(helped) != n - split:  # the helper failed: rank its half here
            helped = ranks(key, id_bytes[split:])
        for i, rank_value, label in zip(range(split, n), helped, islice(labels, split, None)):
            appenders[label]((rank_value << shift) | i)
    del id_bytes, labels, appenders

    groups_of: dict[str, list[tuple[int, list[int]]]] = {s: [] for s in sizes}
    for label, lst in keys.items():
        if weighted:
            number, weight = divmod(label, MAX_WEIGHT + 1)
            groups_of[stratum_list[number]].append((weight, lst))
        else:
            groups_of[label].append((1, lst))
    del keys
    mask = (1 << shift) - 1
    strata: dict[str, StratumOutcome] = {}
    selected: list[str] = []
    for s in stratum_list:
        quota, size = quotas[s], sizes[s]
        chosen = _select_stratum(sorted(groups_of.pop(s)), quota, shift, ids, weights)
        picked = tuple([ids[k & mask] for k in chosen])
        strata[s] = StratumOutcome(pool_size=size, quota=quota, selected=picked, took_all=quota >= size)
        selected.extend(picked)
    return DrawResult(
        algorithm=ALGORITHM,
        algorithm_version=SHARES_ALGORITHM_VERSION if shares else ALGORITHM_VERSION,
        commitment=hashlib.sha256(seed).hexdigest(),
        pool_digest=digest,
        strata=strata,
        selected=tuple(selected),
        seed=bytes(seed),
        external_entropy=external_entropy,
        weighted=bool(weighted),
        seed_shares={d: bytes(v) for d, v in sorted((shares or {}).items())},
    )


def verify(result_record: Mapping[str, Any] | DrawResult, candidates: Sequence[Candidate],
           helper: RankHelper | None = None) -> VerifyOutcome:
    """Re-run the recorded draw over ``candidates`` (the pool as frozen) and compare, field by field.

    Checked in this order, the first difference is reported: algorithm and version, the seed against the
    commitment, the pool digest, the strata and their pool sizes, then per stratum (in name order) the
    quota, ``took_all`` and the selected ids, and the overall selected list. Never raises for a bad record or
    pool: a record that cannot be re-run is itself the difference.
    """
    record = result_record.as_record() if isinstance(result_record, DrawResult) else result_record
    try:
        algorithm, version = record["algorithm"], record["algorithm_version"]
        if algorithm != ALGORITHM or version not in (ALGORITHM_VERSION, SHARES_ALGORITHM_VERSION):
            return VerifyOutcome(False, f"algorithm: the record says {algorithm} v{version}, "
                                        f"this verifier implements {ALGORITHM} v{ALGORITHM_VERSION} and "
                                        f"v{SHARES_ALGORITHM_VERSION}")
        shares = {str(d): bytes.fromhex(h) for d, h in (record.get("seed_shares") or {}).items()}
        share_commitments = dict(record.get("share_commitments") or {})
        seed = bytes.fromhex(record["seed"])
        entropy = record.get("external_entropy", "")
        weighted = bool(record.get("weighted", False))
        recorded_strata = record["strata"]
        quotas = {name: s["quota"] for name, s in recorded_strata.items()}
        recorded_commitment, recorded_digest = record["commitment"], record["pool_digest"]
        recorded_selected = list(record["selected"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return VerifyOutcome(False, f"record: cannot be read ({type(exc).__name__}: {exc})")

    if len(seed) != SEED_BYTES:
        return VerifyOutcome(False, f"seed: the record's seed has {len(seed)} bytes, not {SEED_BYTES}")
    if hashlib.sha256(seed).hexdigest() != recorded_commitment:
        revealed = hashlib.sha256(seed).hexdigest()
        return VerifyOutcome(False, f"commitment: SHA-256 of the revealed seed is {revealed}, "
                                    f"the record commits to {recorded_commitment}")
    if bool(shares) != (version == SHARES_ALGORITHM_VERSION):
        return VerifyOutcome(False, f"algorithm_version: v{version} with {len(shares)} seed shares "
                                    f"(v{SHARES_ALGORITHM_VERSION} exactly when there are shares)")
    for department in sorted(set(shares) | set(share_commitments)):
        share = shares.get(department)
        share_hash = hashlib.sha256(share).hexdigest() if share is not None else None
        if share_hash != share_commitments.get(department):
            return VerifyOutcome(False, f"share_commitments[{department!r}]: recorded "
                                        f"{share_commitments.get(department)}, SHA-256 of the revealed share "
                                        f"is {share_hash}")
    again: DrawResult | None = None
    try:  # the re-run computes the pool digest and sizes too; without it they are computed on their own
        again = draw(seed, entropy, candidates, quotas, weighted=weighted, shares=shares, helper=helper)
    except DomainError as exc:
        failure = exc
    if again is not None:
        digest = again.pool_digest
        sizes: Mapping[str, int] = {name: o.pool_size for name, o in again.strata.items()}
    else:
        try:
            columns = candidates if isinstance(candidates, CandidateColumns) else None
            digest = pool_digest(columns.ids if columns is not None else (c.id for c in candidates))
        except DomainError as exc:
            return VerifyOutcome(False, f"candidates: {exc.message}")
        sizes = Counter(columns.strata if columns is not None else (c.stratum for c in candidates))
    if digest != recorded_digest:
        return VerifyOutcome(False, f"pool_digest: recorded {recorded_digest}, recomputed {digest} "
                                    f"from {len(candidates)} candidates")
    for name in sorted(set(sizes) | set(recorded_strata)):
        if name not in recorded_strata:
            return VerifyOutcome(False, f"strata: stratum {name!r} has {sizes[name]} candidates "
                                        "but is not in the record")
        recorded_size = recorded_strata[name].get("pool_size")
        if recorded_size != sizes.get(name, 0):
            return VerifyOutcome(False, f"strata[{name!r}].pool_size: recorded {recorded_size}, "
                                        f"recomputed {sizes.get(name, 0)}")
    if again is None:
        return VerifyOutcome(False, f"draw: cannot be re-run: {failure.message}")
    for name, outcome in again.strata.items():
        rec = recorded_strata[name]
        if bool(rec.get("took_all")) != outcome.took_all:
            return VerifyOutcome(False, f"strata[{name!r}].took_all: recorded {rec.get('took_all')}, "
                                        f"recomputed {outcome.took_all}")
        difference = _first_list_difference(f"strata[{name!r}].selected", list(rec.get("selected", ())),
                                             list(outcome.selected))
        if difference:
            return VerifyOutcome(False, difference)
    difference = _first_list_difference("selected", recorded_selected, list(again.selected))
    if difference:
        return VerifyOutcome(False, difference)
    return VerifyOutcome(True, None)


# -- selection -----------------------------------------------------------------------------------------
# Candidates are handled as composite keys ``(rank << shift) | i``, ``i`` an index into ``ids``/``weights``,
# so that integer order is rank order. Where two candidates that matter share a rank (about 3e-8 per draw
# of a million), integer order would break the tie by ``i`` instead of by id: that is detected, and the
# stratum is re-encoded with ``i`` replaced by the candidate's position in id order, then selected again.
def _select_stratum(
    groups: _Groups, quota: int, shift: int, ids: list[str], weights: list[int]
) -> list[int]:
    """The winning composite keys of one stratum in ascending (rank, id) order.

    ``groups``: (weight, composite keys) by ascending weight; a uniform draw passes one group of weight 1.
    """
    if quota == 0:
        return []
    size = sum(len(g) for _, g in groups)
    if quota >= size:
        chosen = sorted([k for _, g in groups for k in g])
        tie = _has_rank_tie(chosen, shift)
    else:
        chosen, tie = _smallest_of_groups(groups, quota, shift)
    if not tie:
        return chosen
    mask = (1 << shift) - 1
    by_id = sorted([k for _, g in groups for k in g], key=lambda k: ids[k & mask])
    shift2 = max(1, (len(by_id) - 1).bit_length())
    regrouped: dict[int, list[int]] = {}
    for j, k in enumerate(by_id):  # by_id[j]: the stratum's j-th candidate in id order
        regrouped.setdefault(weights[k & mask] if weights else 1, []).append(((k >> shift) << shift2) | j)
    if quota >= size:
        again = sorted([k for g in regrouped.values() for k in g])
    else:
        again = _smallest_of_groups(sorted(regrouped.items()), quota, shift2)[0]
    mask2 = (1 << shift2) - 1
    return [by_id[k & mask2] for k in again]


def _smallest_of_groups(groups: _Groups, quota: int, shift: int) -> tuple[list[int], bool]:
    """The ``quota`` lowest ``(E, rank, i)`` of the groups (quota < their total size), ascending by key.

    Returns also whether a rank tie was seen where it could change the answer. With one group this is
    the ``quota`` lowest ranks: within one weight, E is non-decreasing in rank (``neg_log2_fixed`` is
    non-increasing in its argument), which is also why each group's winners are a prefix of it in rank
    order, found below computing E for some hundreds of candidates, not all.
    """
    bits = RANK_BITS + shift
    heads = [(w, _smallest(g, quota + 1, bits)) for w, g in groups]  # one more, to see a tie at the boundary
    tie = any(_has_rank_tie(h, shift) for _, h in heads)
    if len(heads) == 1:
        return heads[0][1][:quota], tie
    chosen, tie_inside = _pick_weighted_groups([(w, h[:quota]) for w, h in heads], quota, shift)
    return chosen, tie or tie_inside


def _pick_weighted_groups(groups: _Groups, quota: int, shift: int) -> tuple[list[int], bool]:
    """``groups``: (weight, composite keys ascending), at least ``quota`` keys in all.

    Bisects on a threshold ``t`` while keeping ``count(t_lo) < quota <= count(t_hi)``, where ``count(t)``,
    the number of candidates with ``E <= t``, is a sum of per-group prefix lengths, each found by binary
    search (E memoised). Candidates with ``E <= t_lo`` all win, those with ``E > t_hi`` all lose; once few
    are left in between, their E are computed and the lowest (E, rank) fill the quota.
    """
    memo: list[dict[int, int]] = [{} for _ in groups]

    def e(g: int, p: int) -> int:
        value = memo[g].get(p)
        if value is None:
            w, ks = groups[g]
            value = memo[g][p] = neg_log2_fixed(_TWO_64 - (ks[p] >> shift)) // w
        return value

    def count(g: int, t: int, lo: int, hi: int) -> int:  # positions with E <= t, known to be in [lo, hi]
        while lo < hi:
            mid = (lo + hi) // 2
            if e(g, mid) <= t:
                lo = mid + 1
            else:
                hi = mid
        return lo

    span = range(len(groups))
    lo_counts = [0 for _ in groups]
    hi_counts = [len(ks) for _, ks in groups]
    t_lo, t_hi = -1, max(e(g, hi_counts[g] - 1) for g in span)
    while t_hi - t_lo > 1 and sum(hi_counts) - sum(lo_counts) > 32:
        t = (t_lo + t_hi) // 2
        mid_counts = [count(g, t, lo_counts[g], hi_counts[g]) for g in span]
        if sum(mid_counts) >= quota:
            t_hi, hi_counts = t, mid_counts
        else:
            t_lo, lo_counts = t, mid_counts
    chosen = [k for g in span for k in groups[g][1][: lo_counts[g]]]
    between = sorted((e(g, p), groups[g][1][p]) for g in span for p in range(lo_counts[g], hi_counts[g]))
    chosen.extend(k for _, k in between[: quota - len(chosen)])
    chosen.sort()
    return chosen, _has_rank_tie(sorted(k for _, k in between), shift) or _has_rank_tie(chosen, shift)


def _has_rank_tie(ascending: list[int], shift: int) -> bool:
    ranks = list(map(operator.rshift, ascending, repeat(shift)))
    return any(map(operator.eq, ranks, islice(ranks, 1, None)))


def _smallest(keys: list[int], quota: int, bits: int) -> list[int]:
    """The ``quota`` smallest of the composite keys (each below ``2^bits``), ascending; may reorder ``keys``.

    Ranks are uniform, so the quota-th smallest key is close to ``quota / len * 2^bits``: keep the keys
    below a bound a few standard deviations above that, and sort only those. If fewer than ``quota`` are
    kept (never in practice, but the keys may be anything), sort them all. Same answer either way.
    """
    n = len(keys)
    expected = quota + (quota >> 3) + 64  # at least ~6 standard deviations above the mean
    if expected * 10 < n * 9:
        bound = (expected << bits) // n
        kept = list(filter(bound.__gt__, keys))
        if len(kept) >= quota:
            kept.sort()
            return kept[:quota]
    keys.sort()
    return keys[:quota]


# -- helpers -------------------------------------------------------------------------------------------
def _hmac_states(key: bytes) -> tuple[Any, Any]:
    """SHA-256 states after the HMAC inner and outer pads (RFC 2104; the key is shorter than a block)."""
    block = key.ljust(64, b"\x00")
    return (hashlib.sha256(bytes(b ^ 0x36 for b in block)), hashlib.sha256(bytes(b ^ 0x5C for b in block)))


def _digest_of_sorted(sorted_ids: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted_ids).encode("utf-8")).hexdigest()


def _check_seed(seed: bytes) -> None:
    if not isinstance(seed, bytes) or len(seed) != SEED_BYTES:
        got = f"{len(seed)} bytes" if isinstance(seed, bytes) else type(seed).__name__
        raise InvalidInputError([FieldProblem("seed", "format", f"must be {SEED_BYTES} bytes, got {got}")])


def _check_share(field: str, share: bytes) -> None:
    if not isinstance(share, bytes) or len(share) != SHARE_BYTES:
        got = f"{len(share)} bytes" if isinstance(share, bytes) else type(share).__name__
        raise InvalidInputError([FieldProblem(field, "format", f"must be {SHARE_BYTES} bytes, got {got}")])


def _entropy_bytes(external_entropy: str) -> bytes:
    if not isinstance(external_entropy, str):
        raise InvalidInputError([FieldProblem("external_entropy", "type", "must be a string ('' for none)")])
    try:
        return external_entropy.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInputError(
            [FieldProblem("external_entropy", "encoding", "must be valid Unicode text (hashed as UTF-8)")]
        ) from None


def _fast_checked_bytes(
    sorted_ids: list[str], names: list[str], weights: list[Any], weighted: bool, unique: bool
) -> bytes | None:
    """The pool digest's input (sorted ids, 0x0A-joined, UTF-8) when every candidate passes the checks,
    done in C-speed passes over the lists; ``None`` when something is wrong (the slow pass then names it).
    """
    try:
        joined = "\n".join(sorted_ids)
        if sorted_ids[0] == "" or joined.count("\n") != len(sorted_ids) - 1:
            return None
        data = joined.encode("utf-8")
        del joined
        if not unique:  # duplicates are neighbours; the bytes are compact in memory, the strings scattered
            parts = data.split(b"\n")
            if any(map(operator.eq, parts, parts[1:])):
                return None
            del parts
        if not all(isinstance(s, str) and s for s in set(names)):
            return None
        if weighted and not (
            set(map(type, weights)) == {int} and min(weights) >= 1 and max(weights) <= MAX_WEIGHT
        ):
            return None
    except (TypeError, UnicodeEncodeError):
        return None
    return data


def _slow_candidate_problems(candidates: list[Any], weighted: bool) -> list[FieldProblem]:
    ids = [getattr(c, "id", None) for c in candidates]
    problems = _id_problems(ids, check_duplicates=True)
    bad_strata = [i for i, c in enumerate(candidates)
                  if not (isinstance(getattr(c, "stratum", None), str) and c.stratum)]
    problems += _listed("stratum", [f"candidate {_show(ids[i])} has no stratum (a non-empty string)"
                                    for i in bad_strata])
    if weighted:
        bad = [
            f"candidate {_show(ids[i])} has weight {getattr(c, 'weight', None)!r}"
            for i, c in enumerate(candidates)
            if not (type(getattr(c, "weight", None)) is int and 1 <= c.weight <= MAX_WEIGHT)
        ]
        problems += _listed("weight_range", bad, suffix=f"; weights are integers 1..{MAX_WEIGHT:,}")
    return problems


def _id_problems(ids: list[Any], check_duplicates: bool) -> list[FieldProblem]:
    missing, newline, encoding, duplicate = [], [], [], []
    seen: set[str] = set()
    for n, cid in enumerate(ids):
        if not isinstance(cid, str) or not cid:
            missing.append(f"candidate #{n} has no id (a non-empty string)")
        elif "\n" in cid:
            newline.append(f"id {cid!r} contains a line feed")
        else:
            try:
                cid.encode("utf-8")
            except UnicodeEncodeError:
                encoding.append(f"id {cid!r} is not valid Unicode text")
                continue
            if check_duplicates:
                if cid in seen:
                    duplicate.append(f"id {cid!r} appears more than once")
                seen.add(cid)
    return (
        _listed("required", missing)
        + _listed("format", newline, suffix="; ids are joined by line feeds in the pool digest")
        + _listed("encoding", encoding)
        + _listed("duplicate", duplicate, suffix="; each target is in the pool once")
    )


def _quota_problems(quotas: Mapping[str, int], sizes: Mapping[str, int]) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    if not isinstance(quotas, Mapping):
        return [FieldProblem("quotas", "type", "quotas must map each stratum to a number of targets")]
    for name, quota in sorted(quotas.items(), key=lambda kv: str(kv[0])):
        if type(quota) is not int:
            problems.append(FieldProblem("quotas", "type", f"quota of {name!r} is {quota!r}, not a count"))
        elif quota < 0:
            problems.append(FieldProblem("quotas", "min", f"quota of {name!r} is {quota}, below 0"))
        if name not in sizes:
            problems.append(
                FieldProblem("quotas", "unknown_stratum",
                             f"quota for {name!r}, but no candidate is in that stratum "
                             f"(strata in the pool: {', '.join(sorted(map(str, sizes))) or 'none'})")
            )
    missing = [s for s in sorted(sizes) if s not in quotas]
    if missing:
        problems.append(
            FieldProblem("quotas", "missing_quota",
                         f"no quota for {', '.join(map(repr, missing))}: every stratum of the pool needs one "
                         "(0 to draw none)")
        )
    return problems


def _listed(rule: str, messages: list[str], suffix: str = "") -> list[FieldProblem]:
    out = [FieldProblem("candidates", rule, m + suffix) for m in messages[:_MAX_LISTED]]
    if len(messages) > _MAX_LISTED:
        out.append(FieldProblem("candidates", rule, f"... and {len(messages) - _MAX_LISTED} more"))
    return out


def _show(cid: Any) -> str:
    return repr(cid) if isinstance(cid, str) and cid else "(no id)"


def _first_list_difference(label: str, recorded: list[str], recomputed: list[str]) -> str | None:
    for i, (a, b) in enumerate(zip(recorded, recomputed)):
        if a != b:
            return f"{label}[{i}]: recorded {a!r}, recomputed {b!r}"
    if len(recorded) != len(recomputed):
        return f"{label}: recorded {len(recorded)} ids, recomputed {len(recomputed)}"
    return None
