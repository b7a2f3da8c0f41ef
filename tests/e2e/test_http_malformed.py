"""Malformed requests are 4xx problem+json, never a 500, and change nothing (each case an outside tester found)."""

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.builders import a_department, a_target

PROBLEM = "application/problem+json"
HUGE = "9" * 30  # beyond 64 bits


def head(runtime) -> int:
    return runtime.app.recorder.max_notification_id() or 0


@pytest.mark.parametrize("path", [
    f"/api/v1/targets?offset={HUGE}", f"/api/v1/targets?min_position={HUGE}", f"/api/v1/plans?year={HUGE}",
    f"/api/v1/tasks?year={HUGE}", f"/api/v1/public/results?offset={HUGE}", f"/api/v1/audit/events?after={HUGE}",
    f"/api/v1/audit/export?after={HUGE}", f"/api/v1/audit/checkpoints?after_size={HUGE}",
    f"/api/v1/kpis?year={HUGE}",
])
def test_integers_beyond_64_bits_are_a_400_naming_the_parameter(client, auth, path) -> None:
    r = client.get(path, headers={} if "/public/" in path else auth("hj-eeb", "planner", "auditor"))
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    name = path.split("?")[1].split("=")[0]
    assert name in r.text


def test_json_nested_a_thousand_deep_is_a_400(client, runtime, auth) -> None:
    before = head(runtime)
    deep = '{"name": "x", "items": ["i"], "category": "key", "period": "2024", "scope": {"a": ' + "[" * 1000
    r = client.post(f"/api/v1/plans/{uuid.uuid4()}/entries", content=deep + "]" * 1000 + "}}",
                    headers={**auth(), "content-type": "application/json"})  # a field that takes any JSON
    assert r.status_code == 400 and r.headers["content-type"].startswith(PROBLEM), r.text
    assert r.json()["errors"][0]["rule"] == "depth"
    r = client.post("/api/v1/targets", content="[" * 1000 + "]" * 1000,
                    headers={**auth(), "content-type": "application/json"})  # not even an object
    assert r.status_code == 400 and r.json()["errors"][0] == {
        "field": "body", "rule": "type", "message": "Expected `object`, got `array`", "source": "body"}, r.text
    assert head(runtime) == before


@pytest.mark.parametrize("path", ["/api/v1/targets/import", "/api/v1/evidence"])
def test_a_form_field_that_is_not_utf8_is_a_400(client, runtime, auth, path) -> None:
    before = head(runtime)
    b = b"XyZbound"
    body = (b"--" + b + b'\r\nContent-Disposition: form-data; name="note"\r\n\r\n\xff\xfe\xfa\r\n--' + b
            + b'\r\nContent-Disposition: form-data; name="file"; filename="t.csv"\r\nContent-Type: text/csv\r\n\r\n'
            b"name\r\nx\r\n--" + b + b"--\r\n")
    r = client.post(path, content=body, headers={**auth("hj-eeb", "planner", "inspector"),
                                                 "content-type": "multipart/form-data; boundary=XyZbound"})
    assert r.status_code == 400 and r.json()["errors"][0]["rule"] == "encoding", r.text
    assert head(runtime) == before


def test_a_deadline_past_the_last_date_is_a_422(client, auth) -> None:
    r = client.get("/api/v1/calendar/deadline?start=9999-12-31", headers=auth())
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "start", r.text


def test_unknown_routes_and_methods_carry_the_correlation_id_and_allow(client, auth) -> None:
    r = client.get("/api/v1/nowhere", headers={**auth(), "X-Correlation-ID": "probe-404"})
    assert r.status_code == 404 and r.headers["x-correlation-id"] == "probe-404"
    assert r.json()["correlation_id"] == "probe-404"
    r = client.put("/api/v1/targets", json=a_target(), headers={**auth(), "X-Correlation-ID": "probe-405"})
    assert r.status_code == 405 and r.headers["x-correlation-id"] == "probe-405"
    assert {m.strip() for m in r.headers["allow"].split(",")} >= {"GET", "POST"}
    assert client.get("/nowhere").headers["x-correlation-id"]  # made when not given


def test_a_min_position_beyond_the_head_is_refused_at_once(client, runtime, auth) -> None:
    """A position no write has cannot be waited for: it held a worker thread for 5 s, with or without a token.
    The 422 is the proof that nothing waited (a wait ends in 200 or 503)."""
    beyond = head(runtime) + 1_000_000
    for path, headers in ((f"/api/v1/public/results?min_position={beyond}", {}),
                          (f"/api/v1/targets?min_position={beyond}", auth())):
        r = client.get(path, headers=headers)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "min_position", r.text


def test_an_oversized_authorization_header_is_a_401_without_decoding_it(client, runtime) -> None:
    r = client.get("/api/v1/targets", headers={"Authorization": "Bearer " + "a" * 200_000})
    assert r.status_code == 401 and "longer than 8192 bytes" in r.json()["detail"]


def test_the_public_endpoint_is_rate_limited_per_client(runtime) -> None:
    """Without a token, past DUALRANDOM_PUBLIC_RATE_PER_MINUTE a client gets 429 problem+json with Retry-After;
    the API with a token is not limited by it."""
    from dataclasses import replace

    from litestar.testing import TestClient

    from services.api.app import create_app
    from tests.support.accounts import account_token

    runtime.settings = replace(runtime.settings, public_rate_per_minute=5)
    token = account_token(runtime, "hj-eeb", ["planner"], None, 600)
    with TestClient(create_app(runtime, background=False)) as client:
        answers = [client.get("/api/v1/public/results").status_code for _ in range(6)]
        assert answers == [200] * 5 + [429]
        r = client.get("/api/v1/public/results")
        assert r.headers["content-type"].startswith(PROBLEM) and int(r.headers["retry-after"]) > 0
        assert all(client.get("/api/v1/targets", headers={"Authorization": f"Bearer {token}"}).status_code == 200
                   for _ in range(8))


def test_an_export_for_a_department_that_is_no_code_is_a_422(client, auth) -> None:
    # The department names the export file (Content-Disposition): text no header can carry was a 500.
    r = client.get("/api/v1/publicity/export", params={"department": "\U000b05fe"}, headers=auth("hj-admin", "admin"))
    assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM), r.text
    assert r.json()["errors"][0] == {"field": "department", "rule": "format", "message": r.json()["errors"][0]["message"]}
    assert r.json()["errors"][0]["message"].startswith("must be a department code")


@pytest.mark.parametrize("name", ["state", "kind"])
def test_a_referral_filter_outside_its_choices_is_a_422_naming_it(client, auth, name) -> None:
    for value in ("", "nonsense"):
        r = client.get("/api/v1/referrals", params={name: value}, headers=auth("hj-admin", "admin"))
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == name, r.text
        assert r.json()["errors"][0]["rule"] == "choice"


TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs")))  # a control character is a 422 before decoding
NOT_INTEGERS = st.one_of(TEXT, st.floats(allow_nan=False, allow_infinity=False), st.booleans(), st.none(),
                         st.lists(st.integers(), max_size=2), st.dictionaries(TEXT, st.integers(), max_size=2))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(year=NOT_INTEGERS)
def test_a_json_body_decodes_strictly_a_non_integer_is_no_year(client, runtime, auth, year) -> None:
    # Outside tester: {"year": "2025"} and {"year": 2027.0} drew up plans (the body was converted leniently).
    before = head(runtime)
    r = client.post("/api/v1/plans", json={"year": year}, headers=auth("hj-eeb", "planner"))
    assert r.status_code == 400 and r.headers["content-type"].startswith(PROBLEM), r.text
    assert r.json()["errors"] == [{"field": "year", "rule": "type", "message": r.json()["errors"][0]["message"],
                                   "source": "body"}]
    assert head(runtime) == before


def test_query_parameters_keep_their_documented_parsing(client, auth) -> None:
    r = client.get("/api/v1/plans?year=2025", headers=auth())  # a query string is text: "2025" is the year
    assert r.status_code == 404, r.text
    r = client.get("/api/v1/plans?year=twenty", headers=auth())
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "year", r.text


@pytest.mark.parametrize(("path", "body", "field", "rule"), [
    ("/api/v1/departments", {k: v for k, v in a_department(code="hj-new").items() if k != "city"}, "city", "required"),
    ("/api/v1/plans", {"name": "计划"}, "year", "required"),
    ("/api/v1/plans", {"year": 2025, "color": "red"}, "color", "unknown_field"),
    ("/api/v1/targets", a_target(county=5), "county", "type"),
    ("/api/v1/plans", [2025], "body", "type"),
])
def test_a_body_problem_names_the_field_and_the_rule(client, runtime, auth, path, body, field, rule) -> None:
    # Outside tester: a missing `city` was reported as field "data", rule "type".
    before = head(runtime)
    r = client.post(path, json=body, headers=auth("hj-admin", "admin", "planner"))
    assert r.status_code == 400 and r.headers["content-type"].startswith(PROBLEM), r.text
    assert [(e["field"], e["rule"], e["source"]) for e in r.json()["errors"]] == [(field, rule, "body")]
    assert head(runtime) == before


def test_a_missing_query_parameter_is_named_with_rule_required(client, auth) -> None:
    # Outside tester: GET /plans without `year` was reported as field "body".
    r = client.get("/api/v1/plans", headers=auth())
    assert r.status_code == 400, r.text
    assert r.json()["errors"] == [{"field": "year", "rule": "required", "message": "is required", "source": "query"}]


def test_a_bad_year_is_a_year_problem_only(client, auth) -> None:
    # Outside tester: {"year": 1} also listed a spurious name/required problem.
    r = client.post("/api/v1/plans", json={"year": 1}, headers=auth("hj-eeb", "planner"))
    assert r.status_code == 422 and [(e["field"], e["rule"]) for e in r.json()["errors"]] == [("year", "range")]


def test_a_list_field_of_more_than_500_entries_is_refused_before_it_is_read(client, runtime, auth) -> None:
    before = head(runtime)
    body = {**a_target(), "tags": [f"t{i}" for i in range(200_000)]}  # 557 s of CPU when duplicates were quadratic
    r = client.post("/api/v1/targets", json=body, headers=auth("hj-eeb", "planner"))
    assert r.status_code == 413, r.text  # 2.2 MB: beyond DUALRANDOM_MAX_JSON_KB, refused before it is read
    assert [(e["field"], e["rule"]) for e in r.json()["errors"]] == [("body", "max_size")]
    body = {**a_target(), "tags": [f"t{i}" for i in range(50_000)]}  # within the body limit: the list's own rule
    r = client.post("/api/v1/targets", json=body, headers=auth("hj-eeb", "planner"))
    assert r.status_code == 422, r.text
    assert [(e["field"], e["rule"]) for e in r.json()["errors"]] == [("tags", "max_items")]
    ok = client.post("/api/v1/targets", json={**a_target(), "tags": ["a", "b", "a"] * 150},
                     headers=auth("hj-eeb", "planner"))
    assert ok.status_code == 201, ok.text
    assert client.get(f"/api/v1/targets/{ok.json()['id']}", headers=auth()).json()["tags"] == ["a", "b"]
    assert head(runtime) == before + 1


@pytest.mark.parametrize("value", [2**31, 2**63 - 1])
def test_the_security_log_takes_any_documented_before(client, auth, value) -> None:
    r = client.get(f"/api/v1/security-log?before={value}", headers=auth("hj-eeb", "auditor"))
    assert r.status_code == 200, r.text
    assert r.json() == client.get("/api/v1/security-log", headers=auth("hj-eeb", "auditor")).json()
