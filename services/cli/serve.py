"""``dualrandom serve``: the HTTP API with projections, relay and checkpoint signer in one process (``--role
all``, the default), or one role of a system of many processes (docs/operations.md, "Many processes"):

- ``api``: the HTTP API alone (read models from workers, ``min_position`` read from the stored positions);
- ``worker``: the projection loop alone (as ``dualrandom projections run``); several may run;
- ``relay``: the NATS relay and the checkpoint signer, each while it holds its lease (a standby otherwise).
"""

import click

from services.cli.context import load_settings, log, open_runtime

ROLES = ("all", "api", "worker", "relay")
# SIGTERM/SIGINT: stop accepting, let requests in flight finish for at most this long, then close them; the
# relay and signer get as long again to finish their batch, the projection thread as long again (at most ~30 s
# in all; docs/operations.md, "Stopping").
DRAIN_SECONDS = 10


@click.command()
@click.option("--host", default=None, help="address to listen on (default DUALRANDOM_HOST or 127.0.0.1)")
@click.option("--port", type=int, default=None, help="port (default DUALRANDOM_PORT or 8000)")
@click.option("--role", type=click.Choice(ROLES), default="all", show_default=True,
              help="all: API, projections, relay and signer; api: the HTTP API alone; worker: the projections; "
              "relay: the relay and the checkpoint signer (each behind a lease)")
def serve(host: str | None, port: int | None, role: str) -> None:
    """Start the HTTP API with projections and the NATS relay (embedded SQLite + nats-server by default)."""
    import faulthandler
    import signal

    import uvicorn

    from services.api.app import create_app

    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 PID`: every thread's stack on stderr

    if role in {"worker", "relay"}:
        from services.cli.nats import relay_run
        from services.cli.projections import projections_run

        (projections_run if role == "worker" else relay_run).main(args=[], standalone_mode=False)
        return
    settings = load_settings()
    if role == "api":
        from dataclasses import replace

        settings = replace(settings, projections_in_process=False)
    runtime = open_runtime(settings, with_nats=role == "all")
    _GracefulServer = _graceful_server_class()
    try:
        app = create_app(runtime, background=role == "all")
        tune_gc()
        host = host or settings.host
        port = port or settings.port
        log.info("serving", host=host, port=port, database=_safe(settings.effective_database_url),
                 nats=_safe(runtime.nats_url) if runtime.nats_url else "off")
        server = _GracefulServer(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                                timeout_graceful_shutdown=DRAIN_SECONDS))
        server.run()
    finally:
        runtime.close()
    log.info("stopped")


GC_THRESHOLD = (50_000, 50, 100)  # generation 0 collects after this many allocations net (CPython: 700)


def tune_gc() -> None:
    """What was built at start-up (modules, routes, templates, settings) is moved out of the collector's sight
    (``gc.freeze``) and the young generation is collected less often: under 200 readers of the public results
    this doubled one API process's requests/s and cut its p99 by two thirds (tests/bench/README.md, session 11)."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


def _graceful_server_class():
    import contextlib
    import signal

    import uvicorn

    class GracefulServer(uvicorn.Server):
        """Stops on SIGTERM/SIGINT and returns, so the embedded NATS and the pools close (uvicorn would
        re-raise the signal and kill the process before that)."""

        @contextlib.contextmanager
        def capture_signals(self):
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, self.handle_exit)
            yield

    return GracefulServer


def _safe(url: str) -> str:
    from services.infra.store import safe_url

    return safe_url(url)
