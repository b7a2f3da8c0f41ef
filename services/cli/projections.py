"""``dualrandom projections``: run read-model workers, rebuild read models while serving, show their lag."""

import sys

import click

from services.cli.context import load_settings, open_runtime
from services.infra.logging import get_logger
from services.rebuild import _groups, _start_method, rebuild  # noqa: F401 - the command's, and the tests' names

log = get_logger("dualrandom.cli")




def _selected(runtime, names: tuple[str, ...]) -> list:
    known = {p.name: p for p in runtime.runner.projections}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)}: not a read model; one of {', '.join(known)}",
                                 param_hint="NAME")
    return [known[n] for n in names] if names else list(known.values())


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
