"""Each read model's position and lag at /metrics (Prometheus text) and /ready (JSON; 503 past a threshold)."""

import re
from dataclasses import replace

from litestar.testing import TestClient

from domain.access import Actor
from projections.runner import REBUILD_SUFFIX
from services.api.app import create_app
from services.application import CommandContext
from services.runtime import Runtime, all_projections
from tests.support.builders import a_target

PLANNER = CommandContext(Actor("staff-7", "hj-eeb", ("planner",)))
NAMES = [p.name for p in all_projections()]
SAMPLE = re.compile(r'^(?P<metric>[a-z_]+)(\{(?P<label>projection|outcome|event)="(?P<projection>[a-z_]+)"\})? (?P<value>\d+)$')


def _samples(text: str) -> dict[tuple[str, str | None], int]:
    """Parse the exposition: every sample line, and every metric has its HELP and TYPE lines first."""
    samples: dict[tuple[str, str | None], int] = {}
    declared: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            assert kind in {"gauge", "counter"}
            declared.add(name)
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        assert match["metric"] in declared, f"{match['metric']} has no TYPE line before its samples"
        samples[(match["metric"], match["projection"])] = int(match["value"])
    return samples


def _client(runtime: Runtime) -> TestClient:
    return TestClient(create_app(runtime, background=False))  # no loop: the test moves the read models


def test_metrics_give_the_log_head_and_each_read_models_position_and_lag(runtime: Runtime) -> None:
    for _ in range(5):
        runtime.app.register("target", a_target(), PLANNER)
    with _client(runtime) as client:
        response = client.get("/metrics")
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
        behind = _samples(response.text)
        runtime.runner.catch_up()
        caught_up = _samples(client.get("/metrics").text)
    assert behind[("dualrandom_log_head", None)] == 5
    for name in NAMES:
        assert behind[("dualrandom_projection_position", name)] == 0
        assert behind[("dualrandom_projection_lag_events", name)] == 5
        assert caught_up[("dualrandom_projection_position", name)] == 5
        assert caught_up[("dualrandom_projection_lag_events", name)] == 0
    assert not any(m == "dualrandom_projection_rebuild_position" for m, _ in caught_up)


def test_ready_shows_each_read_model_and_lag_alone_does_not_make_it_unready_by_default(runtime: Runtime) -> None:
    for _ in range(4):
        runtime.app.register("target", a_target(), PLANNER)
    runtime.runner.run_once(runtime.runner.projection("directory"))
    with _client(runtime) as client:
        response = client.get("/ready")
    body = response.json()
    assert response.status_code == 200 and body["status"] == "ready" and body["max_lag"] is None
    assert body["head"] == 4
    assert body["projections"]["directory"] == {"position": 4, "lag": 0, "ready": True, "failed": None}
    assert body["projections"]["audit"] == {"position": 0, "lag": 4, "ready": True, "failed": None}


def test_ready_answers_503_while_a_read_model_lags_more_than_the_threshold(runtime: Runtime) -> None:
    runtime.settings = replace(runtime.settings, ready_max_lag=2)
    for _ in range(3):
        runtime.app.register("target", a_target(), PLANNER)
    with _client(runtime) as client:
        lagging = client.get("/ready")
        runtime.runner.catch_up(until=1)  # lag 2: at the threshold is still ready
        at_threshold = client.get("/ready")
    assert lagging.status_code == 503
    assert lagging.json()["status"] == "lagging" and lagging.json()["max_lag"] == 2
    assert lagging.json()["projections"]["directory"] == {"position": 0, "lag": 3, "ready": False, "failed": None}
    assert at_threshold.status_code == 200 and at_threshold.json()["status"] == "ready"


def test_after_a_cold_start_ready_waits_until_every_read_model_has_caught_up_once(runtime: Runtime) -> None:
    runtime.settings = replace(runtime.settings, ready_startup_lag=2)
    for _ in range(5):
        runtime.app.register("target", a_target(), PLANNER)
    with _client(runtime) as client:
        cold = client.get("/ready")
        runtime.runner.catch_up(until=2)  # lag 3: still behind the start-up threshold
        behind = client.get("/ready")
        runtime.runner.catch_up(until=3)  # lag 2: within it
        caught_up = client.get("/ready")
        for _ in range(4):  # lag 6 after the process was ready once: lag alone no longer makes it unready
            runtime.app.register("target", a_target(), PLANNER)
        later = client.get("/ready")
    assert cold.status_code == 503 and cold.json()["status"] == "starting"
    assert cold.json()["startup_max_lag"] == 2
    assert cold.json()["projections"]["directory"] == {"position": 0, "lag": 5, "ready": False, "failed": None}
    assert behind.status_code == 503 and behind.json()["status"] == "starting"
    assert caught_up.status_code == 200 and caught_up.json()["status"] == "ready"
    assert later.status_code == 200 and later.json()["projections"]["directory"]["lag"] == 6


def test_the_start_up_gate_is_on_by_default() -> None:
    from services.infra.settings import Settings

    assert Settings.from_env({}).ready_startup_lag == 1000
    assert Settings.from_env({"DUALRANDOM_READY_STARTUP_LAG": "0"}).ready_startup_lag == 0


def test_a_copy_being_rebuilt_shows_its_progress(runtime: Runtime) -> None:
    for _ in range(3):
        runtime.app.register("target", a_target(), PLANNER)
    runtime.runner.catch_up()
    (copy,) = runtime.runner.build_copies(["directory"], until=2)  # a rebuild half way, not swapped yet
    try:
        with _client(runtime) as client:
            metrics = _samples(client.get("/metrics").text)
            ready = client.get("/ready").json()
    finally:
        runtime.runner.drop_copy(copy)
    assert metrics[("dualrandom_projection_rebuild_position", "directory")] == 2
    assert metrics[("dualrandom_projection_position", "directory")] == 3
    assert ready["rebuilding"] == {"directory": {"position": 2, "lag": 1}}
    assert "directory" + REBUILD_SUFFIX not in ready["projections"]
