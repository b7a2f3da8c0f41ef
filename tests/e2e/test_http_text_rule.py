"""One rule for every text that enters over HTTP (``domain.text``): control characters are a 422 naming the field,
on every endpoint, and change nothing."""

import pytest

from tests.support.builders import a_target

PROBLEM = "application/problem+json"


def head(runtime) -> int:
    return runtime.app.recorder.max_notification_id() or 0


@pytest.mark.parametrize("bad", ["\u0000", "\u0007", "\u001b", "\u000b"])
def test_a_control_character_in_any_json_text_is_refused_naming_the_field(client, runtime, auth, bad) -> None:
    before = head(runtime)
    cases = [
        ("/api/v1/targets", a_target(name=f"获嘉{bad}公司"), "name"),
        ("/api/v1/targets", {**a_target(), "tags": ["ok", f"x{bad}"]}, "tags[1]"),
        ("/api/v1/plans", {"year": 2024, "name": f"计划{bad}"}, "name"),
        ("/api/v1/tasks", {"lead": "hj-eeb", "period": "2024Q1", "items": ["x"], "scope": {f"k{bad}": 1}},
         f"scope.k{bad}"),
    ]
    for path, body, field in cases:
        r = client.post(path, json=body, headers=auth("hj-eeb", "planner"))
        assert r.status_code == 422, (path, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)
        assert [(e["field"], e["rule"]) for e in r.json()["errors"]] == [(field, "control_character")]
    assert head(runtime) == before


def test_a_control_character_in_a_query_parameter_is_refused_naming_it(client, auth) -> None:
    for path in ("/api/v1/targets?name=a%00b", "/api/v1/public/results?q=%07", "/api/v1/tasks?year=2024&x=%1b"):
        headers = {} if "/public/" in path else auth("hj-eeb", "planner")
        r = client.get(path, headers=headers)
        assert r.status_code == 422, (path, r.text)
        assert r.json()["errors"][0]["rule"] == "control_character"
    assert client.get("/api/v1/targets?name=a%00b", headers=auth()).json()["errors"][0]["field"] == "name"


def test_tab_line_feed_and_escaped_text_pass(client, auth) -> None:
    r = client.post("/api/v1/targets", json=a_target(address="获嘉县\t一号\n二号", name="获嘉\\u0000公司"),
                    headers=auth("hj-eeb", "planner"))
    assert r.status_code == 201, r.text  # a backslash followed by "u0000" is text, not a control character
