"""A second process that ranks half of a large draw's pool while the drawing process ranks the other half.

A draw ranks every candidate by HMAC-SHA256 (``domain.draw.sampler.rank``): a million candidates take about a
second of one core, the largest part of a province-wide draw and of its verification. One process of CPython runs
one core at a time; this helper is a second one. ``ProcessRankHelper.submit`` sends the key and the ids to
``python -m services.infra.rank_helper`` (started on first use, kept, stopped with the runtime) and returns
``collect``, which reads back the ranks (``domain.draw.sampler.ranks``: the same function the draw uses, so the
result is the same whoever ranks). The drawing process ranks its half meanwhile.

The protocol, on the helper's stdin and stdout: a request is 32 bytes of key, the count of ids and the length
of the payload (two unsigned 64-bit little-endian integers), then the ids' UTF-8 bytes joined by line feeds; the
answer is the ranks, one unsigned 64-bit native-endian integer each, in order. One request at a time: a draw
that finds the helper busy ranks everything itself. A helper that fails (killed, exited) makes ``collect`` return
None (the draw ranks that half itself) and is started again by the next draw.
"""

from __future__ import annotations

import contextlib
import struct
import subprocess
import sys
import threading
from array import array
from collections.abc import Callable, Sequence
from typing import IO, Any

_HEADER = struct.Struct("<32sQQ")


class ProcessRankHelper:
    """``domain.draw.sampler.RankHelper`` by a child process (see the module doc). Thread-safe; ``close`` stops
    the child."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._busy = threading.Lock()
        self._closed = False
        self.helped = 0  # requests answered (for tests and metrics)

    def _started(self) -> subprocess.Popen[bytes]:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            proc = self._proc = subprocess.Popen(
                [sys.executable, "-m", "services.infra.rank_helper"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, close_fds=True,
            )
        return proc

    def submit(self, key: bytes, id_bytes: Sequence[bytes]) -> Callable[[], Sequence[int] | None] | None:
        if self._closed or not self._busy.acquire(blocking=False):
            return None
        try:
            proc = self._started()
        except OSError:
            self._busy.release()
            return None
        payload = b"\n".join(id_bytes)
        count = len(id_bytes)
        sent: list[BaseException] = []

        def send() -> None:  # a pipe takes 64 KiB at a time: written beside the drawing thread's own ranking
            try:
                stdin: IO[bytes] = proc.stdin  # type: ignore[assignment]
                stdin.write(_HEADER.pack(key, count, len(payload)))
                stdin.write(payload)
                stdin.flush()
            except BaseException as exc:  # noqa: BLE001 - reported by collect
                sent.append(exc)

        writer = threading.Thread(target=send, name="dualrandom-rank-helper", daemon=True)
        writer.start()

        def collect() -> Sequence[int] | None:
            try:
                writer.join()
                if sent:
                    raise sent[0]
                data = _read_exactly(proc.stdout, 8 * count)  # type: ignore[arg-type]
                if data is None:
                    raise EOFError("the rank helper ended")
                answer = array("Q")
                answer.frombytes(data)
                self.helped += 1
                return answer
            except (OSError, EOFError, ValueError):
                self._stop(proc)  # its state is unknown: the next draw starts a new one
                return None
            finally:
                self._busy.release()

        return collect

    def _stop(self, proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(OSError):
            proc.kill()
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        if self._proc is proc:
            self._proc = None

    def close(self) -> None:
        self._closed = True
        proc = self._proc
        if proc is not None:
            with self._busy:  # a request under way ends first
                self._stop(proc)


def _read_exactly(stream: IO[bytes], size: int) -> bytes | None:
    chunks: list[bytes] = []
    left = size
    while left:
        chunk = stream.read(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def main(stdin: Any = None, stdout: Any = None) -> None:
    """The helper process: answer requests until stdin ends (the parent stopped it, or exited)."""
    from domain.draw.sampler import ranks

    source = stdin or sys.stdin.buffer
    sink = stdout or sys.stdout.buffer
    while True:
        header = _read_exactly(source, _HEADER.size)
        if header is None:
            return
        key, count, length = _HEADER.unpack(header)
        payload = _read_exactly(source, length) if length else b""
        if payload is None:
            return
        ids = payload.split(b"\n") if count else []
        if len(ids) != count:
            return  # not a request of ours: end (the parent sees the end and ranks itself)
        sink.write(array("Q", ranks(key, ids)).tobytes())
        sink.flush()


if __name__ == "__main__":
    main()
