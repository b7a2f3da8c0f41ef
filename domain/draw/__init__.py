"""The two draws of 双随机: targets (:mod:`domain.draw.sampler`), inspector teams (:mod:`domain.draw.matching`).

Pure functions of their inputs and a key: no ``random`` module state, no clock, no I/O. The target draw is
specified byte for byte in ``docs/verifying-a-draw.md``.
"""

from domain.draw.sampler import (
    ALGORITHM,
    ALGORITHM_VERSION,
    Candidate,
    CandidateColumns,
    DrawResult,
    EmptyPoolError,
    StratumOutcome,
    VerifyOutcome,
    commitment,
    draw,
    draw_key,
    draw_seed,
    es_key,
    neg_log2_fixed,
    pool_digest,
    rank,
    share_commitment,
    verify,
)

__all__ = [
    "ALGORITHM",
    "ALGORITHM_VERSION",
    "Candidate",
    "CandidateColumns",
    "DrawResult",
    "EmptyPoolError",
    "StratumOutcome",
    "VerifyOutcome",
    "commitment",
    "draw",
    "draw_key",
    "draw_seed",
    "es_key",
    "neg_log2_fixed",
    "pool_digest",
    "rank",
    "share_commitment",
    "verify",
]
