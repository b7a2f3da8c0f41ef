"""``dualrandom projections``: run read-model workers, rebuild read models while serving, show their lag."""

import concurrent.futures
import multiprocessing
import multiprocessing.connection
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

import click

from services.cli.context import load_settings, open_runtime
from services.infra.logging import get_logger

log = get_logger("dualrandom.cli")




def _selected(runtime, names: tuple[str, ...]) -> list:
    known = {p.name: p for p in runtime.runner.projections}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)}: not a read model; one of {', '.join(known)}",
                                 param_hint="NAME")
    return [known[n] for n in names] if names else list(known.values())


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


_LOWER = 10  # niceness of the build processes but the first one's (see _build_in_processes)


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
    # That group's load is the longest path of a rebuild (its finish comes after it), so the other process runs at a
    # lower priority: when both want a core, the first one gets it, and the other one's work fills the finish.
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


@click.group()
def projections() -> None:
    """Read models: workers, rebuild, status."""


@projections.command("run")
@click.argument("names", nargs=-1, metavar="[NAME]...")
def projections_run(names: tuple[str, ...]) -> None:
    """Run the projections (all, or those named) as a worker process until SIGTERM/SIGINT.

    Several workers on one read model are safe (each event is applied once): use it with
    DUALRANDOM_PROJECTIONS_IN_PROCESS=false on the `serve` processes.
    """
    import signal
    import threading

    from projections.runner import ProjectionRunner

    stop = threading.Event()  # handlers first: a SIGTERM during start-up is a clean stop too
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    settings = load_settings()
    runtime = open_runtime(settings, with_nats=False)
    try:
        selected = _selected(runtime, names)
        runner = ProjectionRunner(runtime.app, runtime.engine, selected)
        log.info("projections_worker_started", projections=[p.name for p in selected])
        runner.run_forever(stop)
    finally:
        runtime.close()


@projections.command("rebuild")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--batch-size", type=click.IntRange(100, 1_000_000), default=None,
              help="events per transaction while the copy is built (default 10,000)")
@click.option("--processes", type=click.IntRange(1, 2), default=2, show_default=True,
              help="PostgreSQL: build the copies in this many worker processes")
def projections_rebuild(names: tuple[str, ...], batch_size: int | None, processes: int) -> None:
    """Rebuild read models (all, or those named) from position 0 while the server keeps serving.

    Each is built into new tables (<table>__rebuild) beside the live ones, reading the log once for all; then,
    in one transaction that holds the read model's position lock, brought to the head of the log and swapped
    in place of the live tables, which are dropped. Safe while `serve` and `projections run` workers run.
    """
    from tqdm import tqdm

    from projections.runner import RebuildInProgressError

    tqdm.monitor_interval = 0  # no monitor thread: the build processes may then be forked (_start_method)

    settings = load_settings()
    runtime = open_runtime(settings, with_nats=False)
    try:
        selected = [p.name for p in _selected(runtime, names)]
        head = runtime.runner.head()
        with tqdm(total=head, unit="event", desc=f"rebuild {', '.join(selected)}", file=sys.stderr) as bar:
            def progress(position: int) -> None:
                bar.total = max(bar.total, position)
                bar.update(position - bar.n)

            try:
                result = rebuild(runtime.runner, settings.effective_database_url, selected, batch_size=batch_size,
                                 processes=processes, progress=progress)
            except (RebuildInProgressError, RuntimeError) as exc:
                raise click.ClickException(str(exc)) from None
        for name, position in result.items():
            click.echo(f"{name}: rebuilt and swapped in at log position {position}")
    finally:
        runtime.close()


@projections.command("status")
def projections_status() -> None:
    """Each read model's position and lag behind the log head (and copies being rebuilt); a read model that cannot
    apply an event is shown with that event's position and the error, and the exit code is then 1."""
    settings = load_settings()
    runtime = open_runtime(settings, with_nats=False)
    try:
        head = runtime.runner.head()
        click.echo(f"log head: {head}")
        failed = {f.name: f for f in runtime.runner.failures()}
        for name, position in sorted(runtime.runner.positions().items()):
            line = f"{name}: position {position}, lag {max(head - position, 0)} events"
            if name in failed:
                f = failed[name]
                line += f"; FAILED at log position {f.position} since {f.since:%Y-%m-%d %H:%M:%S}: {f.error}"
            click.echo(line)
        if failed:
            raise SystemExit(1)
    finally:
        runtime.close()
