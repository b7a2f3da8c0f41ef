"""Accounts over HTTP: the admin creates accounts, people log in (cookie + CSRF, or bearer), and revocation,
deactivation and a removed role take effect at the very next request; the security log and /metrics see it."""

import time
from typing import Any

import pytest

from domain.access import SYSTEM
from services.application import CommandContext
from services.infra.accounts_store import ACCOUNT
from services.infra.metrics import METRICS
from services.runtime import Runtime
from tests.support.builders import a_department, a_target

PROBLEM = "application/problem+json"
PASSWORD = "correct horse battery staple"


def _ok(r: Any, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json() if r.content else None


def _refused(r: Any, status: int) -> Any:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    return r.json()


@pytest.fixture
def admin(runtime: Runtime, client: Any) -> dict[str, str]:
    made = runtime.accounts.create(CommandContext(SYSTEM), {
        "username": "admin", "display_name": "管理员", "department": "hj-admin", "roles": ["admin"]},
        PASSWORD, check_department=False)
    token = runtime.accounts.issue(CommandContext(SYSTEM), made["id"], "setup", 3600).token
    h = {"Authorization": f"Bearer {token}"}
    _ok(client.post("/api/v1/departments", json=a_department(), headers=h), 201)
    return h


def _person(client: Any, admin: dict[str, str], username: str, *roles: str, **over: Any) -> dict[str, Any]:
    return _ok(client.post("/api/v1/accounts", headers=admin, json={
        "username": username, "display_name": "李四", "department": "hj-eeb", "roles": list(roles),
        "password": PASSWORD, **over}), 201)


def _login(client: Any, username: str, password: str = PASSWORD) -> Any:
    return client.post("/api/v1/session", json={"username": username, "password": password})


def test_an_unknown_department_is_refused_and_nothing_is_recorded(client: Any, admin: dict[str, str]) -> None:
    r = client.post("/api/v1/accounts", headers=admin, json={
        "username": "wang", "display_name": "王五", "department": "hj-nope", "roles": ["planner"],
        "password": PASSWORD})
    body = _refused(r, 422)
    assert body["errors"][0]["field"] == "department" and body["errors"][0]["rule"] == "unknown_department"
    assert [a["username"] for a in _ok(client.get("/api/v1/accounts", headers=admin))] == ["admin"]


def test_only_admins_manage_accounts(client: Any, admin: dict[str, str], auth: Any) -> None:
    planner = auth("hj-eeb", "planner")
    _refused(client.get("/api/v1/accounts", headers=planner), 403)
    _refused(client.post("/api/v1/accounts", headers=planner, json={
        "username": "x1", "display_name": "x", "department": "hj-eeb", "roles": ["admin"], "password": PASSWORD}), 403)
    target = _person(client, admin, "zhao", "planner")["id"]
    # 403 whatever the body: a non-admin learns nothing of its shape (a missing reason was a 400 before the 403)
    for method, path, body in (
        ("PATCH", f"/api/v1/accounts/{target}", {}), ("PATCH", f"/api/v1/accounts/{target}", {"roles": ["admin"]}),
        ("POST", f"/api/v1/accounts/{target}/deactivate", {}), ("POST", f"/api/v1/accounts/{target}/reactivate", {}),
        ("POST", f"/api/v1/accounts/{target}/tokens", {}), ("POST", "/api/v1/accounts", {"x": 1}),
    ):
        refused = _refused(client.request(method, path, json=body, headers=planner), 403)
        assert "admin" in refused["detail"], (method, path, refused)
    assert _ok(client.get(f"/api/v1/accounts/{target}", headers=admin))["roles"] == ["planner"]


def test_login_with_cookie_needs_the_csrf_header_and_logout_revokes(client: Any, runtime: Runtime,
                                                                    admin: dict[str, str]) -> None:
    from dataclasses import replace

    runtime.settings = replace(runtime.settings, session_cookie_secure=False)  # the test client speaks plain HTTP
    _person(client, admin, "li", "planner")
    ok_before = METRICS.value("dualrandom_logins_total", outcome="ok")
    session = _ok(_login(client, "li"), 201)
    assert METRICS.value("dualrandom_logins_total", outcome="ok") == ok_before + 1
    cookie = client.cookies.get("dualrandom_session")
    assert cookie == session["token"]
    assert _ok(client.get("/api/v1/session"))["username"] == "li"  # the cookie alone reads
    _refused(client.post("/api/v1/targets", json=a_target()), 403)  # ... but writes only with the CSRF header
    assert client.get("/api/v1/targets").status_code == 200
    _ok(client.post("/api/v1/targets", json=a_target(), headers={"X-CSRF-Token": session["csrf_token"]}), 201)
    _ok(client.delete("/api/v1/session", headers={"X-CSRF-Token": session["csrf_token"]}))
    client.cookies.clear()
    _refused(client.get("/api/v1/targets", headers={"Authorization": f"Bearer {session['token']}"}), 401)


def test_failed_logins_are_slowed_then_locked_and_logged(client: Any, admin: dict[str, str], runtime: Runtime,
                                                        auth: Any) -> None:
    runtime.accounts.slow_seconds = 600  # the first wait, long enough for a loaded machine
    _person(client, admin, "zhao", "planner")
    answers = [_login(client, "zhao", "wrong password!!").status_code for _ in range(3)]
    assert answers == [401, 401, 401]
    r = _login(client, "zhao")  # the right password within the wait: still refused
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 500
    with runtime.engine.begin() as conn:  # the wait is over: two more failures lock the account
        conn.execute(ACCOUNT.update().where(ACCOUNT.c.username == "zhao").values(locked_until=0.0))
    locks = METRICS.value("dualrandom_lockouts_total")
    _refused(_login(client, "zhao", "wrong password!!"), 401)
    with runtime.engine.begin() as conn:
        conn.execute(ACCOUNT.update().where(ACCOUNT.c.username == "zhao").values(locked_until=0.0))
    _refused(_login(client, "zhao", "wrong password!!"), 401)
    assert METRICS.value("dualrandom_lockouts_total") == locks + 1
    r = _login(client, "zhao")
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 800  # locked for 15 minutes
    _refused(_login(client, "nobody"), 401)
    log = _ok(client.get("/api/v1/security-log", headers=auth("hj-eeb", "auditor")))
    assert [(e["username"], e["event"], e["outcome"]) for e in log[:5]] == [
        ("nobody", "login", "unknown_user"), ("zhao", "login", "locked"), ("zhao", "lockout", "locked"),
        ("zhao", "login", "bad_password"), ("zhao", "login", "bad_password")]
    assert all(e["source"] for e in log)
    _refused(client.get("/api/v1/security-log", headers=auth("hj-eeb", "planner")), 403)
    assert "wrong password" not in str(log)


def test_revoked_token_deactivated_account_and_removed_role_are_refused_at_once(
        client: Any, admin: dict[str, str]) -> None:
    svc = _ok(client.post("/api/v1/accounts", headers=admin, json={
        "username": "partner-sync", "display_name": "同步服务", "department": "hj-eeb", "roles": ["planner"],
        "kind": "service"}), 201)
    t1 = _ok(client.post(f"/api/v1/accounts/{svc['id']}/tokens", headers=admin, json={"name": "one"}), 201)
    t2 = _ok(client.post(f"/api/v1/accounts/{svc['id']}/tokens", headers=admin, json={"name": "two"}), 201)
    h1, h2 = ({"Authorization": f"Bearer {t['token']}"} for t in (t1, t2))
    listed = _ok(client.get(f"/api/v1/accounts/{svc['id']}", headers=admin))["tokens"]
    assert sorted(t["name"] for t in listed) == ["one", "two"] and "token" not in str(listed).lower().replace(
        "tokens", "")
    _ok(client.post("/api/v1/targets", json=a_target(), headers=h1), 201)
    _ok(client.delete(f"/api/v1/accounts/{svc['id']}/tokens/{t1['token_id']}", headers=admin))
    _refused(client.get("/api/v1/targets", headers=h1), 401)  # revoked: at once
    assert client.get("/api/v1/targets", headers=h2).status_code == 200  # the other token still works
    _ok(client.patch(f"/api/v1/accounts/{svc['id']}", headers=admin, json={"roles": ["auditor"], "reason": "降权"}))
    _refused(client.post("/api/v1/targets", json=a_target(), headers=h2), 403)  # the role is gone: at once
    _ok(client.post(f"/api/v1/accounts/{svc['id']}/deactivate", headers=admin, json={"reason": "停用"}))
    _refused(client.get("/api/v1/targets", headers=h2), 401)
    _ok(client.post(f"/api/v1/accounts/{svc['id']}/reactivate", headers=admin, json={"reason": "恢复"}))
    assert client.get("/api/v1/targets", headers=h2).status_code == 200


def test_events_record_the_account_id_as_actor(client: Any, admin: dict[str, str]) -> None:
    person = _person(client, admin, "sun", "planner")
    token = _ok(_login(client, "sun"), 201)["token"]
    client.cookies.clear()
    made = _ok(client.post("/api/v1/targets", json=a_target(), headers={"Authorization": f"Bearer {token}"}), 201)
    history = _ok(client.get(f"/api/v1/targets/{made['id']}/history", headers=admin))
    assert history["events"][0]["meta"]["actor"] == person["id"]


def test_passwords_changed_by_their_owner_and_reset_by_an_admin(client: Any, admin: dict[str, str]) -> None:
    person = _person(client, admin, "qian", "planner")
    token = _ok(_login(client, "qian"), 201)["token"]
    client.cookies.clear()
    own = {"Authorization": f"Bearer {token}"}
    new = "another long passphrase"
    body = _refused(client.put(f"/api/v1/accounts/{person['id']}/password", headers=own,
                               json={"password": new, "current_password": "not it at all"}), 422)
    assert body["errors"][0]["field"] == "current_password"
    _refused(client.put(f"/api/v1/accounts/{person['id']}/password", headers=own, json={"password": "short"}), 422)
    _ok(client.put(f"/api/v1/accounts/{person['id']}/password", headers=own,
                   json={"password": new, "current_password": PASSWORD}))
    _refused(_login(client, "qian"), 401)
    _ok(_login(client, "qian", new), 201)
    client.cookies.clear()
    _ok(client.put(f"/api/v1/accounts/{person['id']}/password", headers=admin, json={"password": PASSWORD}))
    _ok(_login(client, "qian"), 201)
    client.cookies.clear()
    admin_id = _ok(client.get("/api/v1/session", headers=admin))["id"]
    _refused(client.put(f"/api/v1/accounts/{admin_id}/password", headers=own, json={"password": new}), 403)


def test_metrics_count_logins_and_revocations(client: Any, admin: dict[str, str]) -> None:
    text = client.get("/metrics").text
    for name in ("dualrandom_logins_total{outcome=\"failed\"}", "dualrandom_lockouts_total",
                 "dualrandom_token_revocations_total", "dualrandom_account_role_changes_total"):
        assert name in text


def test_the_openapi_document_declares_bearer_and_cookie(client: Any) -> None:
    doc = client.get("/schema/openapi.json").json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["BearerToken"]["scheme"] == "bearer"
    assert schemes["SessionCookie"] == {**schemes["SessionCookie"], "type": "apiKey", "in": "cookie",
                                        "name": "dualrandom_session"}
    assert doc["paths"]["/api/v1/session"]["post"].get("security") in ([], None)


def test_an_auditor_logs_out_and_changes_their_own_password_but_no_one_elses(client: Any, admin: dict[str, str]
                                                                               ) -> None:
    auditor = _ok(client.post("/api/v1/accounts", headers=admin, json={
        "username": "audit-zhou", "display_name": "周审计", "department": "hj-eeb", "roles": ["auditor"],
        "password": PASSWORD}), 201)
    token = _ok(_login(client, "audit-zhou"), 201)["token"]
    client.cookies.clear()
    h = {"Authorization": f"Bearer {token}"}
    admin_id = _ok(client.get("/api/v1/session", headers=admin))["id"]
    _refused(client.put(f"/api/v1/accounts/{admin_id}/password", headers=h, json={"password": "x" * 20}), 403)
    _ok(client.put(f"/api/v1/accounts/{auditor['id']}/password", headers=h,
                   json={"password": "y" * 20, "current_password": PASSWORD}))
    _ok(client.delete("/api/v1/session", headers=h))
    _refused(client.get("/api/v1/session", headers=h), 401)


def _cli(runtime: Runtime, *argv: str, stdin: str | None = None) -> Any:
    """``dualrandom <argv>`` in this process, on the test's database and key (as tests/e2e/test_readme_walkthrough)."""
    from click.testing import CliRunner

    from services.cli import main as cli_main

    s = runtime.settings
    env = {"DUALRANDOM_DATABASE_URL": s.effective_database_url, "DUALRANDOM_VAR_DIR": str(s.var_dir),
           "DUALRANDOM_SECRET_KEY": s.secret_key, "DUALRANDOM_RELAY_ENABLED": "false", "DUALRANDOM_LOG_LEVEL": "WARNING"}
    return CliRunner().invoke(cli_main, list(argv), input=stdin, env=env)


def test_an_inspector_link_must_name_an_inspector_of_the_accounts_department(
        demo: Runtime, client: Any, auth: Any) -> None:
    admin = auth("hj-admin", "admin")
    eeb = _ok(client.get("/api/v1/inspectors", params={"department": "hj-eeb", "limit": 1}, headers=admin))["items"][0]
    amr = _ok(client.get("/api/v1/inspectors", params={"department": "hj-amr", "limit": 1}, headers=admin))["items"][0]
    head = demo.runner.head()
    for link, department in (("bogus", "hj-eeb"), (eeb["id"], "hj-amr"), (eeb["staff_id"], "hj-amr"),
                             (amr["id"], "hj-eeb"), ("null", "hj-eeb")):
        body = _refused(client.post("/api/v1/accounts", headers=admin, json={
            "username": "zhang", "display_name": "张三", "department": department, "roles": ["inspector"],
            "inspector": link, "password": PASSWORD}), 422)
        assert [(e["field"], e["rule"]) for e in body["errors"]] == [("inspector", "unknown_inspector")], link
    assert demo.runner.head() == head  # nothing recorded
    by_id = _person(client, admin, "zhang", "inspector", inspector=eeb["id"])
    _person(client, admin, "zhang2", "inspector", inspector=eeb["staff_id"])
    # Same on change: another department's inspector, or a department change that leaves the link behind.
    for change in ({"inspector": amr["id"]}, {"inspector": "bogus"}, {"department": "hj-amr"}):
        body = _refused(client.patch(f"/api/v1/accounts/{by_id['id']}", headers=admin,
                                     json={**change, "reason": "调整"}), 422)
        assert [(e["field"], e["rule"]) for e in body["errors"]] == [("inspector", "unknown_inspector")], change
    moved = _ok(client.patch(f"/api/v1/accounts/{by_id['id']}", headers=admin, json={
        "department": "hj-amr", "inspector": amr["id"], "reason": "调岗"}))
    assert moved["department"] == "hj-amr"

    # The CLI: one line naming the rule, exit code 1, nothing stored.
    for argv in (("create", "--username", "li", "--display-name", "李四", "--department", "hj-eeb", "--role",
                  "inspector", "--inspector", "null", "--service"),
                 ("change", "zhang2", "--inspector", amr["id"], "--reason", "调整")):
        result = _cli(demo, "accounts", *argv)
        assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
        assert result.output.startswith("Error: inspector: ") and "(unknown_inspector)" in result.output
    assert demo.accounts.find("li") is None
    kept = demo.accounts.find("zhang2")
    assert kept is not None and kept.inspector == eeb["staff_id"]


def test_token_lifetimes_are_capped_at_366_days(runtime: Runtime, client: Any, admin: dict[str, str]) -> None:
    svc = _ok(client.post("/api/v1/accounts", headers=admin, json={
        "username": "svc", "display_name": "接口", "department": "hj-eeb", "roles": ["partner"], "kind": "service"}),
        201)
    url = f"/api/v1/accounts/{svc['id']}/tokens"
    for ttl in ("99999999d", "367d", "8785h", "31622401s"):
        body = _refused(client.post(url, headers=admin, json={"name": "long", "ttl": ttl}), 422)
        assert [(e["field"], e["rule"]) for e in body["errors"]] == [("ttl", "max")], ttl
    assert _ok(client.get(f"/api/v1/accounts/{svc['id']}", headers=admin))["tokens"] == []
    year = _ok(client.post(url, headers=admin, json={"name": "year", "ttl": "366d"}), 201)
    assert 366 * 86400 - 60 <= year["expires_at"] - int(time.time()) <= 366 * 86400
    result = _cli(runtime, "token", "issue", "--username", "svc", "--ttl", "99999999d")
    assert result.exit_code == 1 and result.output.count("\n") == 1 and "at most 366d" in result.output
    assert _cli(runtime, "token", "issue", "--username", "svc", "--ttl", "366d").exit_code == 0
