"""An HTTP client over the real app (SQLite file or PostgreSQL), projections running in-process."""

from collections.abc import Callable, Iterator

import pytest
from litestar.testing import TestClient

from services.api.app import create_app
from services.api.auth import issue_token
from services.runtime import Runtime


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime)) as c:
        yield c


@pytest.fixture
def auth(runtime: Runtime) -> Callable[..., dict[str, str]]:
    def headers(department: str = "hj-eeb", *roles: str, subject: str | None = None) -> dict[str, str]:
        token = issue_token(runtime.settings.secret_key, department, list(roles or ("planner",)), subject)
        return {"Authorization": f"Bearer {token}"}

    return headers
