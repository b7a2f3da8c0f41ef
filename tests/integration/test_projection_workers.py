"""Read models in separate worker processes (`dualrandom projections run`), as deployed with
DUALRANDOM_PROJECTIONS_IN_PROCESS=false, and `dualrandom projections rebuild` while they run."""

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from litestar.testing import TestClient

from domain.access import Actor
from projections.directory.queries import list_entries
from services.api.app import create_app
from services.application import CommandContext
from services.runtime import Runtime, all_projections
from tests.support.accounts import account_token
from tests.support.builders import a_target
from tests.support.projections import assert_rebuild_equals_live, schema_wide_names

PLANNER = CommandContext(Actor("staff-7", "hj-eeb", ("planner",)))
NAMES = [p.name for p in all_projections()]
DUALRANDOM = str(Path(sys.executable).parent / "dualrandom")


def _env(runtime: Runtime) -> dict[str, str]:
    s = runtime.settings
    return {**os.environ, "DUALRANDOM_DATABASE_URL": s.effective_database_url, "DUALRANDOM_VAR_DIR": str(s.var_dir),
            "DUALRANDOM_SECRET_KEY": s.secret_key, "DUALRANDOM_RELAY_ENABLED": "false",
            "DUALRANDOM_LOG_FORMAT": "json", "DUALRANDOM_LOG_LEVEL": "INFO"}


@pytest.fixture
def workers(runtime: Runtime, tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Two `dualrandom projections run` processes on every read model of the runtime's database, started."""
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    procs = []
    for log in logs:
        with open(log, "wb") as out:
            procs.append(subprocess.Popen([DUALRANDOM, "projections", "run"], env=_env(runtime), stdout=out,
                                          stderr=subprocess.STDOUT))
    deadline = time.monotonic() + 60
    while not all(b"projections_worker_started" in log.read_bytes() for log in logs):
        assert all(p.poll() is None for p in procs), "a worker exited: " + " | ".join(log.read_text() for log in logs)
        assert time.monotonic() < deadline, "the workers did not start"
        threading.Event().wait(0.05)
    yield procs
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)


def _wait_until_applied(runtime: Runtime, position: int, procs: list[subprocess.Popen[bytes]], timeout: float = 60) -> None:
    """Wait for the stored positions (the workers are other processes), failing early if one of them died."""
    deadline = time.monotonic() + timeout
    while not all(runtime.runner.position(n) >= position for n in NAMES):
        dead = [p for p in procs if p.poll() is not None]
        assert not dead, f"a worker exited with {dead[0].returncode}"
        assert time.monotonic() < deadline, f"positions {runtime.runner.positions()} never reached {position}"
        threading.Event().wait(0.02)


def test_two_worker_processes_keep_every_read_model_exactly_as_a_rebuild_gives_it(
    runtime: Runtime, workers: list[subprocess.Popen[bytes]]
) -> None:
    last = 0
    for i in range(80):
        last = runtime.app.register("target", a_target(name=f"工人{i}"), PLANNER).position or last
    _wait_until_applied(runtime, last, workers)
    assert list_entries(runtime.engine, "target", {"name": "工人"}).total == 80
    for name in NAMES:
        assert assert_rebuild_equals_live(runtime, name) == last  # nothing applied twice, nothing missed
    for p in workers:
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=30) == 0  # a clean stop on SIGTERM


def test_a_rebuild_from_the_command_line_while_workers_apply_and_writers_write(
    runtime: Runtime, workers: list[subprocess.Popen[bytes]]
) -> None:
    for _ in range(50):
        runtime.app.register("target", a_target(), PLANNER)
    indexes_before = schema_wide_names(runtime.engine)
    stop, errors, written = threading.Event(), [], []

    def write() -> None:
        try:
            while not stop.is_set():
                written.append(runtime.app.register("target", a_target(), PLANNER).position)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        done = subprocess.run([DUALRANDOM, "projections", "rebuild", "--batch-size", "100"], env=_env(runtime),
                              capture_output=True, timeout=240)
    finally:
        stop.set()
        writer.join(timeout=30)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert [line.split(":")[0] for line in done.stdout.decode().splitlines()] == NAMES
    if runtime.engine.dialect.name == "postgresql":  # built in two processes, forked: the command runs no thread
        assert '"start_method":"fork"' in done.stderr.decode(), done.stderr.decode()[-2000:]
    assert errors == []
    head = runtime.runner.head()
    _wait_until_applied(runtime, head, workers)
    assert list_entries(runtime.engine, "target", {}, exact_total=True).total == 50 + len(written)
    for name in NAMES:
        assert assert_rebuild_equals_live(runtime, name) == head
    # Every index and unique constraint is back under its live name (those of the first process's copies are
    # made by the parent while the other process works).
    assert schema_wide_names(runtime.engine) == indexes_before



def test_read_your_writes_with_the_projections_in_worker_processes(
    runtime: Runtime, workers: list[subprocess.Popen[bytes]]
) -> None:
    """`serve` with DUALRANDOM_PROJECTIONS_IN_PROCESS=false runs no read-model loop: `min_position` waits for the
    workers' stored positions."""
    runtime.settings = replace(runtime.settings, projections_in_process=False)
    token = account_token(runtime, "hj-eeb", ["planner"])
    h = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(runtime)) as client:
        for i in range(5):
            written = client.post("/api/v1/targets", json=a_target(name=f"读写{i}"), headers=h).json()
            listing = client.get(f"/api/v1/targets?name=读写{i}&min_position={written['position']}", headers=h)
            assert listing.status_code == 200 and listing.json()["total"] == 1
    assert runtime.runner._running == 0  # no loop in this process: the workers did it


def test_the_status_command_gives_each_read_models_position_and_lag(runtime: Runtime) -> None:
    for _ in range(3):
        runtime.app.register("target", a_target(), PLANNER)
    runtime.runner.run_once(runtime.runner.projection("directory"))
    done = subprocess.run([DUALRANDOM, "projections", "status"], env=_env(runtime), capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    lines = done.stdout.decode().splitlines()
    assert lines[0] == "log head: 3"
    assert "directory: position 3, lag 0 events" in lines and "audit: position 0, lag 3 events" in lines


def test_an_unknown_read_model_is_refused_by_name(runtime: Runtime) -> None:
    done = subprocess.run([DUALRANDOM, "projections", "rebuild", "nosuch"], env=_env(runtime), capture_output=True,
                          timeout=60)
    assert done.returncode == 2 and b"nosuch: not a read model" in done.stderr
