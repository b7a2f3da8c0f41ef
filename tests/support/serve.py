"""A real ``dualrandom serve`` in tests: the CLI, readiness and the first admin's token."""

import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn

BIN = Path(sys.executable).parent / "dualrandom"
ADMIN_PASSWORD = "a long admin passphrase\n"


def run_cli(args: list[str], env: dict[str, str], timeout: float = 60,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), *args], env=env, capture_output=True, text=True, timeout=timeout, input=stdin)


_LOGS: dict[int, Path] = {}


def spawn(args: list[str], env: dict[str, str], log_path: Path) -> "subprocess.Popen[str]":
    """``dualrandom <args>`` in the background with its stderr (a JSON line per request) in ``log_path``: a pipe
    that nobody reads fills after some 200 requests and then blocks the server in mid-write."""
    with log_path.open("a") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen([str(BIN), *args], env=env, stderr=log, stdout=subprocess.DEVNULL, text=True)
    _LOGS[proc.pid] = log_path
    return proc


def log_of(proc: "subprocess.Popen[str] | subprocess.Popen[bytes]") -> str:
    """What the process wrote on stderr (its log file if started by ``spawn``)."""
    if proc.pid in _LOGS:
        return _LOGS[proc.pid].read_text(errors="replace")
    out = proc.stderr.read() if proc.stderr else ""
    return out.decode(errors="replace") if isinstance(out, bytes) else out


def wait_ready(url: str, proc: "subprocess.Popen[str] | subprocess.Popen[bytes]", timeout: float = 60) -> None:
    """Poll ``/ready`` until it answers 200 (a readiness probe with a deadline, not a wait for a duration)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited with {proc.returncode}: {log_of(proc)[-4000:]!r}")
        try:
            if httpx.get(url + "/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("serve did not become ready")


def create_admin(env: dict[str, str], username: str = "eeb-admin",
                 department: str = "hj-eeb") -> subprocess.CompletedProcess[str]:
    """The first admin of a fresh deployment, as the README creates it (password on stdin)."""
    return run_cli(["accounts", "create-admin", "--username", username, "--display-name", "王主任",
                    "--department", department, "--password-stdin"], env, stdin=ADMIN_PASSWORD)


def admin_token(env: dict[str, str], username: str = "eeb-admin") -> str:
    """Create the first admin and print a token of theirs (``dualrandom token issue --username``)."""
    made = create_admin(env, username)
    assert made.returncode == 0, made.stderr
    issued = run_cli(["token", "issue", "--username", username], env)
    assert issued.returncode == 0, issued.stderr
    return issued.stdout.strip()


def stop(proc: "subprocess.Popen[str] | subprocess.Popen[bytes]", timeout: float = 30) -> None:
    """SIGTERM (the server drains), then SIGKILL if it has not exited within ``timeout``."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def served(app: Any) -> Iterator[str]:
    """The app behind a real uvicorn on a free port, in a thread: its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)
