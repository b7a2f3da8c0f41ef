"""The witness's rule for all trees: it cosigns a checkpoint exactly when the new tree extends the one it
accepted (proofs computed from the leaves, as the API computes them from the stored tree)."""

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.audit.merkle import ProofError, consistency_ranges, reference_root
from services.audit.checkpoints import Checkpoint, body_text
from services.audit.keys import Signer
from services.audit.witness import ProofUnavailable, Witness, WitnessKey

LOG = Signer.from_seed("dualrandom/test", bytes(32))
WITNESS = WitnessKey.from_seed("test/witness", bytes(range(32)))


def checkpoint(leaves: list[bytes]) -> Checkpoint:
    root = reference_root(leaves)
    body = body_text(LOG.name, len(leaves), root, "2025-03-01T00:00:00Z")
    return Checkpoint(LOG.name, len(leaves), root, "2025-03-01T00:00:00Z", -1, body, LOG.sign(body.encode()),
                      LOG.public.key_id.hex())


def proofs_of(leaves: list[bytes]) -> Any:
    """Consistency proofs of the log whose leaves are ``leaves`` (what its API answers)."""
    def fetch(first: int, second: int) -> dict[str, Any]:
        if second > len(leaves):
            raise ProofUnavailable(f"the tree has {len(leaves)} leaves")
        try:
            ranges = consistency_ranges(first, second)
        except ProofError as exc:
            raise ProofUnavailable(str(exc)) from None
        return {"proof": [reference_root(leaves[a:b]).hex() for a, b in ranges]}
    return fetch


logs = st.lists(st.binary(max_size=6), min_size=2, max_size=40)


@settings(max_examples=60, deadline=None)
@given(leaves=logs, data=st.data())
def test_a_grown_log_is_cosigned_a_rewritten_one_refused(leaves: list[bytes], data: st.DataObject) -> None:
    m = data.draw(st.integers(1, len(leaves) - 1))
    with tempfile.TemporaryDirectory() as tmp:
        honest = Witness(WITNESS, LOG.public, Path(tmp) / "state.json", proofs_of(leaves))
        assert honest.judge(checkpoint(leaves[:m])).kind == "cosigned"
        assert honest.judge(checkpoint(leaves)).kind == "cosigned"
        assert honest.judge(checkpoint(leaves)).kind == "seen"
        assert honest.judge(checkpoint(leaves[:m])).kind == "stale"
    i = data.draw(st.integers(0, m - 1))
    forged = [*leaves]
    forged[i] = leaves[i] + b"!"
    with tempfile.TemporaryDirectory() as tmp:
        witness = Witness(WITNESS, LOG.public, Path(tmp) / "state.json", proofs_of(forged))
        assert witness.judge(checkpoint(leaves[:m])).kind == "cosigned"
        verdict = witness.judge(checkpoint(forged))
        assert verdict.kind == "fork" and verdict.refused
        assert witness.judge(checkpoint(forged[:m])).kind == "fork"  # same size, another root
        # A rollback: the log now holds fewer leaves than the accepted checkpoint.
        witness.proofs = proofs_of(leaves[: m - 1] or leaves[:0])
        if m > 1:
            assert witness.judge(checkpoint(leaves[: m - 1])).kind == "rollback"
        # Not signed by the log's key: refused whatever it says.
        other = Signer.from_seed("dualrandom/test", bytes(range(1, 33)))
        cp = checkpoint(leaves)
        bad = Checkpoint(cp.origin, cp.tree_size, cp.root_hash, cp.time, -1, cp.body, other.sign(cp.body.encode()),
                         other.public.key_id.hex())
        assert witness.judge(bad).kind == "bad_signature"
