"""``dualrandom projections``: run read-model workers, rebuild read models while serving, show their lag."""

import sys

import click

from services.cli import _open, _settings, log


def _selected(runtime, names: tuple[str, ...]) -> list:  # type: ignore[no-untyped-def, type-arg]
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

    settings = _settings()
    runtime = _open(settings, with_nats=False)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
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
def projections_rebuild(names: tuple[str, ...], batch_size: int | None) -> None:
    """Rebuild read models (all, or those named) from position 0 while the server keeps serving.

    Each is built into new tables (<table>__rebuild) beside the live ones, reading the log once for all; then,
    in one transaction that holds the read model's position lock, brought to the head of the log and swapped
    in place of the live tables, which are dropped. Safe while `serve` and `projections run` workers run.
    """
    from tqdm import tqdm

    settings = _settings()
    runtime = _open(settings, with_nats=False)
    try:
        selected = [p.name for p in _selected(runtime, names)]
        head = runtime.runner.head()
        with tqdm(total=head, unit="event", desc=f"rebuild {', '.join(selected)}", file=sys.stderr) as bar:
            def progress(position: int) -> None:
                bar.total = max(bar.total, position)
                bar.update(position - bar.n)

            result = runtime.runner.rebuild(selected, batch_size=batch_size, progress=progress)
        for name, position in result.items():
            click.echo(f"{name}: rebuilt and swapped in at log position {position}")
    finally:
        runtime.close()


@projections.command("status")
def projections_status() -> None:
    """Each read model's position and lag behind the log head (and copies being rebuilt)."""
    settings = _settings()
    runtime = _open(settings, with_nats=False)
    try:
        head = runtime.runner.head()
        click.echo(f"log head: {head}")
        for name, position in sorted(runtime.runner.positions().items()):
            click.echo(f"{name}: position {position}, lag {max(head - position, 0)} events")
    finally:
        runtime.close()
