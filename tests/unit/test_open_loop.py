"""The open-loop generator of the soak and the mixed-load benchmark: every request due is either sent or counted
as not sent, round-robin over the targets, and never more than ``in_flight`` unanswered per target."""

import asyncio
import itertools
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.open_loop import open_loop


def _clock(step: float) -> Callable[[], float]:
    """A clock that moves ``step`` on every reading: the generator is never early, so it never sleeps."""
    ticks = itertools.count()
    return lambda: next(ticks) * step


@settings(max_examples=50, deadline=None)
@given(rate=st.sampled_from([1.0, 2.0, 4.0, 8.0]), seconds=st.integers(1, 20), targets=st.integers(1, 4),
       in_flight=st.integers(1, 30))
def test_every_request_due_is_sent_or_counted_and_no_target_has_more_than_in_flight(
    rate: float, seconds: int, targets: int, in_flight: int
) -> None:
    due_count = int(rate * seconds)  # rates whose interval is exact in binary: no rounding in the due times
    sent: list[tuple[int, float]] = []
    unsent: list[float] = []
    release = asyncio.Event()
    peak = [0] * targets
    waiting = [0] * targets

    async def send(target: int, due: float) -> None:
        waiting[target] += 1
        peak[target] = max(peak[target], waiting[target])
        sent.append((target, due))
        await release.wait()  # unanswered until every request due was handled
        waiting[target] -= 1

    async def run() -> None:
        # The clock moves a whole interval at each reading: the loop never waits, so nothing is answered before
        # all requests were due; then ``release`` answers them.
        loop = asyncio.create_task(open_loop(rate, seconds, targets, in_flight, send, unsent.append,
                                             _clock(1.0 / rate)))
        while not loop.done():
            await asyncio.sleep(0)
            if len(sent) + len(unsent) == due_count:
                release.set()
        await loop

    asyncio.run(run())
    assert len(sent) + len(unsent) == due_count
    per_target = [sum(1 for t, _ in sent if t == k) for k in range(targets)]
    due_per_target = [len(range(k, due_count, targets)) for k in range(targets)]
    assert per_target == [min(in_flight, d) for d in due_per_target]
    assert max(peak) <= in_flight


def test_answered_requests_free_their_place() -> None:
    sent: list[int] = []
    readings = itertools.count()

    def now() -> float:
        # The start, then each due time a nanosecond early: the generator sleeps that nanosecond, so the request
        # made just before runs (and is answered) before the next one is due.
        k = next(readings)
        return 0.0 if k == 0 else (k - 1) * 0.25 - 1e-9

    async def send(target: int, due: float) -> None:
        sent.append(target)

    asyncio.run(open_loop(4.0, 10, 2, 1, send, lambda due: None, now))
    assert sorted(sent) == [0] * 20 + [1] * 20
