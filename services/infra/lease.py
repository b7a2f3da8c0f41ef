"""Leases: exactly one process at a time runs a singleton role (the NATS relay, the checkpoint signer).

- **PostgreSQL**: a session advisory lock (``pg_try_advisory_lock``, keyed by schema and role name) held on a
  connection of its own, outside the pool. When the holder dies (kill -9, a lost host), the server closes its
  session and the lock is free; a standby that tries every ``RETRY_SECONDS`` takes over within about
  ``RETRY_SECONDS`` plus the time PostgreSQL needs to notice the dead connection (at once for a killed process
  on a live host; TCP keepalive for a lost host). The holder checks its connection every ``RETRY_SECONDS`` and
  stops the role when it has lost it (the lock may then be someone else's).
- **SQLite**: an exclusive ``flock`` on ``<var_dir>/<role>.lease`` — the processes of one host (a SQLite file
  is one host's anyway); the kernel drops the lock when the holder dies.

``hold(lease, run, stop)`` runs ``run(inner_stop)`` while the lease is held and waits as a standby otherwise.
"""

import asyncio
import contextlib
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.pool import NullPool

log = structlog.get_logger("dualrandom.lease")

RETRY_SECONDS = 1.0


class Lease:
    """A named lease over the deployment's database (``url``); ``var_dir`` holds SQLite's lock files."""

    def __init__(self, url: str, name: str, var_dir: Path) -> None:
        self.name = name
        self._postgres = url.startswith("postgresql")
        self._engine = sa.create_engine(url, poolclass=NullPool) if self._postgres else None
        self._path = Path(var_dir) / f"{name}.lease"
        self._conn: Any = None
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None or self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lease if it is free (True), else False at once."""
        if self.held:
            return True
        if self._engine is not None:
            conn = self._engine.connect()
            try:
                got = conn.execute(sa.text("SELECT pg_try_advisory_lock(hashtext(current_schema()), "
                                           "hashtext(:k))"), {"k": f"dualrandom:{self.name}"}).scalar_one()
                conn.commit()
            except Exception:
                conn.close()
                raise
            if not got:
                conn.close()
                return False
            self._conn = conn
            return True
        import fcntl

        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def alive(self) -> bool:
        """Whether the lease is still held (PostgreSQL: its session answers)."""
        if self._fd is not None:
            return True
        if self._conn is None:
            return False
        try:
            self._conn.execute(sa.text("SELECT 1")).scalar_one()
            self._conn.commit()
            return True
        except Exception:  # noqa: BLE001 - a lost session: the lock went with it
            self.release()
            return False

    def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()  # the session ends: the advisory lock goes with it
            self._conn = None
        if self._fd is not None:
            os.close(self._fd)  # the flock goes with the descriptor
            self._fd = None

    def close(self) -> None:
        self.release()
        if self._engine is not None:
            self._engine.dispose()


async def _stopped(stop: asyncio.Event, seconds: float) -> bool:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    return stop.is_set()


async def hold(lease: Lease, run: Callable[[asyncio.Event], Coroutine[Any, Any, None]], stop: asyncio.Event,
               retry: float = RETRY_SECONDS) -> None:
    """Until ``stop``: as a standby, try the lease every ``retry`` seconds; while holding it, run the role
    (``run(inner_stop)``) and check the lease every ``retry`` seconds; a lost lease or a role that ended
    stops the role and makes this process a standby again."""
    standby_logged = False
    try:
        while not stop.is_set():
            try:
                got = await asyncio.to_thread(lease.try_acquire)
            except Exception as exc:  # noqa: BLE001 - the database is down: try again
                log.warning("lease_unavailable", lease=lease.name, error=type(exc).__name__)
                got = False
            if not got:
                if not standby_logged:
                    log.info("lease_standby", lease=lease.name)
                    standby_logged = True
                if await _stopped(stop, retry):
                    return
                continue
            standby_logged = False
            log.info("lease_acquired", lease=lease.name, pid=os.getpid())
            inner = asyncio.Event()
            task = asyncio.create_task(run(inner))
            try:
                while not stop.is_set() and not task.done():
                    if await _stopped(stop, retry):
                        break
                    if not await asyncio.to_thread(lease.alive):
                        log.warning("lease_lost", lease=lease.name)
                        break
            finally:
                inner.set()
                try:
                    await asyncio.wait_for(task, timeout=10)
                except Exception:  # noqa: BLE001 - the role's own errors are its to log
                    task.cancel()
                await asyncio.to_thread(lease.release)
                log.info("lease_released", lease=lease.name)
    finally:
        await asyncio.to_thread(lease.close)
