"""Hostile input: schemathesis generates requests from the live OpenAPI document for every operation, as each
role (and without a token for the public operations), and every answer must be one the document describes.

Fixed seed, derandomized, bounded examples: the same requests every run; nothing waits for a duration
(``min_position`` values the generator makes valid are sent as 0, a position every read model has reached, so the
read-your-writes wait never runs out its 5 s). Checks: every built-in schemathesis response check (no 5xx, status
documented, content type, headers and body as documented, invalid input refused with a 4xx, a missing token
refused, an undocumented method refused) but ``positive_data_acceptance``: a request the JSON schema allows may
still break a domain rule (an empty name, an unknown id) and get the documented 422/404 problem. The e2e
conftest's own contract check runs on every response too.

The app holds the demo county and its 2024 plan with a drawn task; an operation whose path names a directory
entry, that plan or task is also run with the path naming the real one (generated bodies and queries)."""

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.generation import GenerationMode
from schemathesis.python import asgi as schemathesis_asgi
from schemathesis.specs.openapi.checks import positive_data_acceptance

from domain.access import SYSTEM
from domain.planning.plan import plan_id
from services.api.common import MAX_POSITION
from services.api.middleware import PUBLIC_PATHS
from services.application import CommandContext
from services.cli.demo import load_demo, load_demo_plan
from services.runtime import Runtime
from tests.e2e.conftest import checked_app
from tests.support.accounts import account_token

SEED = 20241204
EXAMPLES = 3  # per operation, generation mode and role
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
ROLES = ("admin", "planner", "inspector", "reviewer", "auditor", "partner")
load_all_checks()
# Every check schemathesis has (a stateful one does nothing on single requests) but positive_data_acceptance.
CHECK_FUNCTIONS = [c for c in CHECKS.get_all() if c is not positive_data_acceptance]
POSTGRES_ROLES = ("admin",)  # on PostgreSQL (slower per request) the admin, who reaches every operation, and public
DEPARTMENT = {"admin": "hj-admin", "auditor": "hj-audit"}  # the others act for the ecology bureau


@pytest.fixture
def api(runtime: Runtime, database_url: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    """The OpenAPI document of the live app over the demo county and its 2024 plan (a task drawn), requests sent
    through its ASGI interface (lifespan running)."""
    role = getattr(request.node, "callspec", None) and request.node.callspec.params.get("role")
    if role and database_url.startswith("postgresql") and role not in POSTGRES_ROLES:
        pytest.skip(f"on PostgreSQL the fuzz runs as {', '.join(POSTGRES_ROLES)} only (the SQLite run has every role)")
    load_demo(runtime.app, CommandContext(actor=SYSTEM))
    load_demo_plan(runtime)
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", checked_app(runtime))
    try:
        yield schema
    finally:
        schemathesis_asgi.shutdown_lifespans()  # the projections and checkpointer stop before the runtime closes


def _real_ids(api: Any, headers: dict[str, str]) -> dict[str, dict[str, str]]:
    """Path parameters naming real entries, per path prefix: a directory entry of each kind, the demo plan, its
    first entry and task, the ecology bureau."""
    found: dict[str, dict[str, str]] = {}
    with schemathesis_asgi.get_client(api.app) as client:
        for kind in ("departments", "items", "targets", "inspectors", "experts"):
            entries = client.get(f"/api/v1/{kind}", params={"limit": 1}, headers=headers).json()["items"]
            found[f"/api/v1/{kind}/"] = {"entry_id": entries[0]["id"]}
        tasks = client.get("/api/v1/tasks", params={"department": "hj-eeb"}, headers=headers).json()["items"]
    found["/api/v1/plans/"] = {"plan_id": str(plan_id("hj-eeb", 2024)), "number": "2024001"}
    found["/api/v1/tasks/"] = {"task_id": tasks[0]["id"], "department": "hj-eeb"}
    return found


def _reached_position(case: Any) -> None:
    """A valid ``min_position`` becomes 0 (reached by every read model): a later one would be waited for."""
    query = case.query or {}
    value = query.get("min_position")
    number = int(value) if isinstance(value, str) and value.isdigit() else value
    if isinstance(number, int) and not isinstance(number, bool) and 0 <= number <= MAX_POSITION:
        query["min_position"] = 0


def _fuzz(api: Any, headers: dict[str, str], public_only: bool,
          real: dict[str, dict[str, str]] | None = None) -> list[str]:
    """Every operation (only the public ones when ``public_only``) in both generation modes, and once more with its
    path naming real entries when ``real`` knows them all: the first failure of each, as schemathesis reports it
    (the checks, the response and a curl line to reproduce it)."""
    failures: list[str] = []
    for result in api.get_all_operations():
        operation = result.ok()
        if public_only and operation.path not in PUBLIC_PATHS:
            continue
        runs: list[tuple[str, GenerationMode, dict[str, str] | None]] = [(m.value, m, None) for m in MODES]
        names = {p.name for p in operation.path_parameters}
        known = next((ids for prefix, ids in (real or {}).items() if operation.path.startswith(prefix)), {})
        if names and names <= set(known):
            runs.append(("real ids", GenerationMode.POSITIVE, {n: known[n] for n in names}))
        for label, mode, path in runs:
            found = _first_failure(operation, mode, headers, path)
            if found:
                failures.append(f"{operation.label} ({label}): {found}")
    return failures


def _first_failure(operation: Any, mode: GenerationMode, headers: dict[str, str],
                   path: dict[str, str] | None) -> str | None:
    found: list[str] = []

    @seed(SEED)
    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path))
    def run(case: Any) -> None:
        if found:
            return
        _reached_position(case)
        response = case.call(headers=headers)
        try:
            case.validate_response(response, checks=CHECK_FUNCTIONS, headers=headers)
        except (AssertionError, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup is an exception group
            found.append(str(exc))

    try:
        run()
    except Unsatisfiable:
        # An operation without parameters or body admits no invalid request: nothing to negate.
        if mode is not GenerationMode.NEGATIVE:
            raise
    return found[0] if found else None


@pytest.mark.parametrize("role", ROLES)
def test_every_operation_answers_as_documented(api: Any, runtime: Runtime, role: str) -> None:
    admin = account_token(runtime, "hj-admin", ["admin"])
    real = _real_ids(api, {"Authorization": f"Bearer {admin}"})
    token = account_token(runtime, DEPARTMENT.get(role, "hj-eeb"), [role])
    failures = _fuzz(api, {"Authorization": f"Bearer {token}"}, public_only=False, real=real)
    assert not failures, f"{len(failures)} operations answered outside the document:\n" + "\n".join(failures)


def test_public_operations_without_a_token_answer_as_documented(api: Any) -> None:
    failures = _fuzz(api, {}, public_only=True)
    assert not failures, f"{len(failures)} operations answered outside the document:\n" + "\n".join(failures)
