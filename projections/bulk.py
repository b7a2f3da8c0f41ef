"""Work over a million rows at once: the cyclic garbage collector paused while it is done."""

import contextlib
import gc
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[Callable[[], object]]:
    """The cyclic GC paused for the block (as it was afterwards); the block may collect the young objects itself
    every so often with the function it is given (a copy's build does, every few batches).

    A bulk read or build keeps hundreds of thousands of new tuples, rows and events alive and makes no reference
    cycles of its own, and the automatic collector scanned them again and again (every 700 allocations; a full
    collection when enough had survived): a third of a rebuild's decoding time, and 1.1-2.0 s of a province-wide
    pool's 2.4 s read (tests/bench/README.md). Reference counting frees everything as usual meanwhile."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield lambda: gc.collect(1)
    finally:
        if enabled:
            gc.enable()
