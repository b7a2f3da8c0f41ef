"""An HTTP client over the real app (SQLite file or PostgreSQL), projections running in-process."""

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from litestar.testing import TestClient

from services.api.app import create_app
from services.auth import issue_token
from services.runtime import Runtime
from services.settings import Settings


@pytest.fixture
def runtime(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    settings = replace(Settings(var_dir=tmp_path / "var", relay_enabled=False), database_url=database_url).with_secret()
    rt = Runtime(settings).open(with_nats=False)
    yield rt
    rt.close()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:  # type: ignore[type-arg]
    with TestClient(create_app(runtime)) as c:
        yield c


@pytest.fixture
def auth(runtime: Runtime) -> Callable[..., dict[str, str]]:
    def headers(department: str = "hj-eeb", *roles: str, subject: str | None = None) -> dict[str, str]:
        token = issue_token(runtime.settings.secret_key, department, list(roles or ("planner",)), subject)
        return {"Authorization": f"Bearer {token}"}

    return headers
