"""The second process that ranks half of a large draw's pool (``services/infra/rank_helper.py``): helped or not, a
draw selects the same; a helper that fails, or is busy, leaves the draw to rank alone, with the same result; the
next draw starts a new helper."""

import os
import uuid
from collections.abc import Iterator, Sequence
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.draw import sampler
from domain.draw.sampler import Candidate, CandidateColumns, draw, verify
from services.infra.rank_helper import ProcessRankHelper
from tests.unit.test_sampler import entropies, pools, seeds


@pytest.fixture(scope="module")
def helper() -> Iterator[ProcessRankHelper]:
    h = ProcessRankHelper()
    yield h
    h.close()


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pool=pools(), seed=seeds, entropy=entropies, weighted=st.booleans())
def test_a_helped_draw_selects_what_a_draw_alone_selects(helper: ProcessRankHelper, monkeypatch: Any, pool: Any,
                                                         seed: bytes, entropy: str, weighted: bool) -> None:
    cands, quotas = pool
    alone = draw(seed, entropy, cands, quotas, weighted=weighted)
    with monkeypatch.context() as m:
        m.setattr(sampler, "HELPED_FROM", 1)  # help from the first candidate (the helper is the real process)
        before = helper.helped
        helped = draw(seed, entropy, cands, quotas, weighted=weighted, helper=helper)
        assert helper.helped == before + 1
    assert helped == alone


def _pool(n: int) -> tuple[Sequence[Candidate], dict[str, int]]:
    """A pool of ``n`` as the server reads one (columns, which ``draw`` takes as the equivalent rows)."""
    ids = sorted(str(uuid.UUID(int=i * 7919 + 1)) for i in range(n))
    strata = [("key/A", "normal/B", "special/C")[i % 3] for i in range(n)]
    return cast("Sequence[Candidate]", CandidateColumns(ids, strata)), {"key/A": 50, "normal/B": 50, "special/C": 50}


class _DyingHelper(ProcessRankHelper):
    """The real helper, whose process is killed once the request is on its way."""

    def submit(self, key: bytes, id_bytes: Any) -> Any:
        collect = super().submit(key, id_bytes)
        assert self._proc is not None
        self._proc.kill()
        return collect


def test_a_large_pool_is_helped_and_a_failed_helper_leaves_the_same_draw() -> None:
    """At ``HELPED_FROM`` candidates the helper ranks half. A helper that ended between draws is started again; one
    killed while it ranks leaves that draw to rank alone (the same selection); a busy one too; ``verify`` is
    helped; after ``close`` nothing is."""
    pool, quotas = _pool(sampler.HELPED_FROM)
    seed = os.urandom(32)
    alone = draw(seed, "e", pool, quotas)
    h, dying = ProcessRankHelper(), _DyingHelper()
    try:
        assert draw(seed, "e", pool, quotas, helper=h) == alone and h.helped == 1
        assert h._proc is not None
        h._proc.kill()
        h._proc.wait()
        assert draw(seed, "e", pool, quotas, helper=h) == alone and h.helped == 2  # started again
        assert draw(seed, "e", pool, quotas, helper=dying) == alone and dying.helped == 0  # ranked alone
        assert dying._proc is None and not dying._busy.locked()
        assert verify(alone, pool, h).match and h.helped == 3
        with h._busy:  # another draw is being helped: this one ranks alone
            assert draw(seed, "e", pool, quotas, helper=h) == alone and h.helped == 3
    finally:
        h.close()
        dying.close()
    assert h._proc is None
    assert draw(seed, "e", pool, quotas, helper=h) == alone and h.helped == 3
