"""Work over a million rows at once: rows read as plain tuples, the cyclic garbage collector paused."""

import contextlib
import gc
from collections.abc import Callable, Iterator, Sequence
from itertools import islice
from typing import Any

from sqlalchemy.engine import Connection


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


def plain_batches(conn: Connection, query: Any, batch: int) -> Iterator[Sequence[Sequence[Any]]]:
    """The rows of ``query`` as lists of plain tuples, ``batch`` at a time, in ``conn``'s transaction. On
    PostgreSQL streamed by the driver itself (libpq's chunked rows: the server produces the next rows while
    these are handled, and a province's million rows skip SQLAlchemy's per-row objects). Elsewhere through
    SQLAlchemy's own streaming."""
    if conn.dialect.name != "postgresql":
        result = conn.execution_options(yield_per=batch).execute(query)
        yield from result.partitions()
        return
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    driver: Any = conn.connection.dbapi_connection
    with driver.cursor() as cursor:
        stream = cursor.stream(compiled.string, compiled.params, size=batch)
        while rows := list(islice(stream, batch)):
            yield rows
