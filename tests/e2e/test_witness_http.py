"""The witness's proof source over real HTTP: ``dualrandom witness run`` fetches consistency proofs from a served
API with a partner's token (``services.cli.witness.api_proofs``), and a proof the log cannot give (a first size
beyond its tree) is ``ProofUnavailable``, which the witness treats as a rollback, not as a crash."""

import pytest

from domain.audit.merkle import verify_consistency
from services.audit.witness import ProofUnavailable
from services.cli.witness import api_proofs
from tests.e2e.test_http_audit import settle, some_history
from tests.e2e.test_position_waits import _app
from tests.support.builders import a_target
from tests.support.serve import served


def test_the_witness_fetches_consistency_proofs_from_a_served_api(client, runtime, auth) -> None:
    some_history(client, auth)
    settle(runtime)
    first = runtime.checkpointer.checkpoint()
    client.post("/api/v1/targets", json=a_target(), headers=auth("hj-amr", "planner"))
    settle(runtime)
    second = runtime.checkpointer.checkpoint()
    assert first is not None and second is not None and first.tree_size < second.tree_size
    token = auth("hj-amr", "partner")["Authorization"].removeprefix("Bearer ")
    with served(_app(runtime)) as base:
        fetch = api_proofs(base, token)
        proof = fetch(first.tree_size, second.tree_size)
        assert (proof["first"], proof["second"]) == (first.tree_size, second.tree_size)
        assert verify_consistency(first.tree_size, second.tree_size, first.root_hash, second.root_hash,
                                  [bytes.fromhex(p) for p in proof["proof"]])
        with pytest.raises(ProofUnavailable):
            fetch(second.tree_size + 5, second.tree_size + 9)
        with pytest.raises(Exception, match="401"):  # a token the server does not know is not a proof
            api_proofs(base, "not-a-token")(first.tree_size, second.tree_size)
