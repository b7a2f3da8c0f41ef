"""Rebuilding read models in worker processes (``dualrandom projections rebuild``, and a cold catch-up far behind
the log: ``Runtime`` gives ``rebuild`` to its ``ProjectionRunner`` as ``bulk``)."""

import concurrent.futures
import multiprocessing
import multiprocessing.connection
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

from services.infra.logging import get_logger

log = get_logger("dualrandom.rebuild")


def _build_worker(url: str, names: list[str], batch_size: int | None, errors: Any, finish: bool = True,
                  lower: int = 0) -> None:
    """In a child process: build the copies of ``names`` (the parent swaps them in; ``finish``: see
    ``ProjectionRunner.finish_copies``), at a priority ``lower`` than the parent's (``os.nice``)."""
    from projections.runner import ProjectionRunner
    from services.application import DualRandom
    from services.infra.store import create_engine
    from services.runtime import all_projections

    if lower:
        os.nice(lower)
    app = DualRandom(url)
    engine = create_engine(url, pool_size=2)
    try:
        runner = ProjectionRunner(app, engine, [p for p in all_projections() if p.name in names])
        runner.build_copies(names, batch_size=batch_size, finish=finish)
    except BaseException as exc:
        errors.put(f"{', '.join(names)}: {type(exc).__name__}: {exc}")
        raise
    finally:
        engine.dispose()
        app.close()


def rebuild(
    runner: Any, url: str, names: Sequence[str] | None = None, *, batch_size: int | None = None,
    processes: int = 2, progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Rebuild read models (default: all) while the live ones serve; returns each one's position after its swap.

    On PostgreSQL with ``processes`` > 1 the copies are built in two child processes (``_groups``: the largest
    read model alone, the others together; forked or spawned, see ``_start_method``), so a rebuild uses both
    cores; the swaps are then made here, one by one. On SQLite (one writer at a time) or with ``processes=1``:
    ``runner.rebuild`` in this process.
    """
    from projections.runner import REBUILD_SUFFIX, copy_of

    selected = [runner.projection(n) for n in names] if names else list(runner.projections)
    groups = [g for g in _groups(selected) if g]
    if processes <= 1 or len(groups) < 2 or runner.engine.dialect.name != "postgresql":
        return runner.rebuild([p.name for p in selected], batch_size=batch_size, progress=progress)
    with runner.rebuild_lock([p.name for p in selected]):
        try:
            _build_in_processes(runner, url, groups, batch_size, progress)
        except BaseException:
            runner.drop_copies([p.name for p in selected])
            raise
        return {p.name: runner.swap(copy_of(p, REBUILD_SUFFIX), batch_size=batch_size) for p in selected}


def _groups(selected: Sequence[Any]) -> tuple[list[str], list[str]]:
    """The read models of each build process. A read model that says it is the largest (``rebuild_apart``) is
    built alone and every other one in the second process (those that decode events take only their own topics,
    see ``topics``); without one, those that need decoded events in one (they share the decoding) and those
    that read stored events (the audit tree) in the other."""
    apart = [p.name for p in selected if getattr(p, "rebuild_apart", False) and not getattr(p, "stored_events", False)]
    if apart and len(apart) < len(selected):
        return apart, [p.name for p in selected if p.name not in apart]
    return ([p.name for p in selected if not getattr(p, "stored_events", False)],
            [p.name for p in selected if getattr(p, "stored_events", False)])


_LOWER = 0  # niceness of the build processes but the first one's (see _build_in_processes)


def _start_method() -> str:
    """How the build processes start: ``fork`` when this process runs no other thread, ``spawn`` otherwise.

    A forked builder has every module this process imported: it starts at once, where a spawned one imports the
    application again (~1.2 s of both cores, a twentieth of a rebuild of 1,000,000 events). It opens its own
    connections (``_build_worker``) and never touches the inherited ones (psycopg does not close a connection of
    another process when the copy is freed, and the builder ends with ``os._exit``). Forking copies locks as they
    are; with another thread running, one could be held for ever in the child, so then it is ``spawn``."""
    if "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1:
        return "fork"
    return "spawn"


def _build_in_processes(
    runner: Any, url: str, groups: list[list[str]], batch_size: int | None, progress: Callable[[int], None] | None
) -> None:
    from projections.runner import REBUILD_SUFFIX, copy_of

    method = _start_method()
    log.info("rebuild_processes_started", processes=len(groups), start_method=method)
    ctx: Any = multiprocessing.get_context(method)  # its Process and Queue, of whichever start method
    errors = ctx.Queue()
    # The first group (the largest read model) is finished here (indexes, constraints, statistics) as soon as its
    # process has loaded it, while the other process may still be at work: the two cores stay busy to the end.
    # The other process ran at a lower priority while the directory's load was the longest path; since the directory
    # is loaded by aggregate (an entry's events folded into one row) the other group takes as long (the audit
    # tree hashes every event), so both run at the same priority (``_LOWER`` 0).
    children = [ctx.Process(target=_build_worker, args=(url, g, batch_size, errors, i != 0, 0 if i == 0 else _LOWER),
                            name=f"rebuild-{g[0]}")
                for i, g in enumerate(groups)]
    for c in children:
        c.start()
    rows = [n + REBUILD_SUFFIX for g in groups for n in g]
    first = [copy_of(runner.projection(n), REBUILD_SUFFIX) for n in groups[0]]
    finishing: concurrent.futures.Future[None] | None = None
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rebuild-finish")
    try:
        while any(c.is_alive() for c in children):
            # Wakes as soon as a child ends (the first one's copy is then finished at once), else every 0.5 s.
            multiprocessing.connection.wait([c.sentinel for c in children if c.is_alive()], timeout=0.5)
            if finishing is None and children[0].exitcode == 0:
                finishing = pool.submit(runner.finish_copies, first)
            if progress is not None:
                stored = runner.positions()
                progress(min(stored.get(r, 0) for r in rows))
    finally:
        for c in children:
            if c.is_alive():
                c.terminate()
            c.join()
        pool.shutdown(wait=True)
    failed = [c for c in children if c.exitcode != 0]
    if failed:
        reasons = []
        while not errors.empty():
            reasons.append(errors.get())
        raise RuntimeError("rebuild failed: " + ("; ".join(reasons) or f"exit codes {[c.exitcode for c in failed]}"))
    if finishing is None:
        runner.finish_copies(first)
    else:
        finishing.result()
