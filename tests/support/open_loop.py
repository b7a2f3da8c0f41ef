"""An open-loop request generator: a request is due every 1/rate seconds whether the earlier ones were answered
or not, so a stalled server shows as latency (counted from when each was due) instead of a slower client.

Used by the soak (tests/soak/run.py) and the province's mixed-load benchmark (tests/bench/bench_mixed_load.py)."""

import asyncio
from collections.abc import Awaitable, Callable


async def open_loop(
    rate: float, seconds: float, targets: int, in_flight: int, send: Callable[[int, float], Awaitable[None]],
    not_sent: Callable[[float], None], now: Callable[[], float],
) -> None:
    """``send(target, due)`` for a request due every ``1/rate`` seconds for ``seconds``, round-robin over
    ``targets`` (API processes); while ``in_flight`` requests of a target are unanswered, a request due for it is
    not sent but counted (``not_sent(due)``): the generator never queues without bound. ``now`` is the clock the
    due times are on. Returns once every request sent was answered."""
    outstanding = [0] * targets

    async def one(target: int, due: float) -> None:
        try:
            await send(target, due)
        finally:
            outstanding[target] -= 1

    interval = 1.0 / rate
    start = due = now()
    tasks: set[asyncio.Task[None]] = set()
    n = 0
    while due < start + seconds:
        delay = due - now()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing: the next request is due then
        target = n % targets
        if outstanding[target] >= in_flight:
            not_sent(due)
        else:
            outstanding[target] += 1
            task = asyncio.create_task(one(target, due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        n += 1
        due += interval
    if tasks:
        await asyncio.gather(*tasks)
