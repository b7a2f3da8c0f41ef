"""The audit API over HTTP: who may read what, the log and its export, aggregates in the past, and a partner
checking an event against a signed checkpoint with nothing but the API's answers."""

import base64
import datetime as dt
import json
import re
import uuid

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from domain.accounts import account_id
from domain.audit.canonical import canonicalize
from domain.audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from tests.support.accounts import account_username
from tests.support.builders import a_department, a_target

PROBLEM = "application/problem+json"
READ_ALL = ["/api/v1/audit/events", "/api/v1/audit/export", f"/api/v1/audit/aggregates/{uuid.uuid4()}"]
READ_ANY = ["/api/v1/audit/tree", "/api/v1/audit/checkpoints", "/api/v1/audit/checkpoints/latest",
            "/api/v1/audit/public-key", "/api/v1/audit/proofs/inclusion?position=1",
            "/api/v1/audit/proofs/consistency?first=1", "/api/v1/audit/coverage"]
ENVELOPE = ("position", "aggregate_id", "version", "topic", "time", "meta", "data")


def head(runtime) -> int:
    return int(runtime.app.recorder.max_notification_id() or 0)


def settle(runtime) -> int:
    """Wait until the audit tree holds every event; returns the log head."""
    position = head(runtime)
    assert runtime.runner.wait_for(position, timeout=10, names=["audit"])
    return position


def some_history(client, auth) -> str:
    """A department, three targets, and changes to the first; returns its id."""
    assert client.post("/api/v1/departments", json=a_department(), headers=auth("hj-eeb", "admin")).status_code == 201
    ids = [client.post("/api/v1/targets", json=a_target(), headers=auth("hj-amr", "planner", subject="amr:wang")).json()["id"]
           for _ in range(3)]
    r = client.patch(f"/api/v1/targets/{ids[0]}", json={"risk_class": "D"}, headers=auth("hj-eeb", "planner", subject="eeb:li"))
    assert r.status_code == 200, r.text
    return ids[0]


def test_audit_endpoints_need_a_token(client) -> None:
    for path in READ_ALL + READ_ANY:
        r = client.get(path)
        assert r.status_code == 401 and r.headers["content-type"].startswith(PROBLEM), path


def test_only_auditors_and_admins_read_the_whole_log(client, runtime, auth) -> None:
    tid = some_history(client, auth)
    for role in ("planner", "inspector", "reviewer", "partner"):
        for path in ("/api/v1/audit/events", "/api/v1/audit/export", f"/api/v1/audit/aggregates/{tid}"):
            r = client.get(path, headers=auth("hj-eeb", role))
            assert r.status_code == 403 and r.headers["content-type"].startswith(PROBLEM), (role, path)
    for role in ("auditor", "admin"):
        assert client.get("/api/v1/audit/export", headers=auth("hj-sj", role)).status_code == 200


def test_every_role_reads_checkpoints_the_key_and_proofs(client, runtime, auth) -> None:
    some_history(client, auth)
    settle(runtime)
    runtime.checkpointer.checkpoint()
    for role in ("partner", "planner", "inspector", "auditor"):
        for path in READ_ANY:
            r = client.get(path, headers=auth("hj-eeb", role))
            assert r.status_code == 200, (role, path, r.text)


def test_an_auditor_changes_nothing_on_any_route(client, runtime, auth) -> None:
    tid = some_history(client, auth)
    before = head(runtime)
    auditor = auth("hj-sj", "auditor")
    own = {"/api/v1/session", "/api/v1/accounts/{account_id:str}/password"}  # log in/out, one's own password
    writes = [(m, r.path) for r in client.app.routes for m in sorted(getattr(r, "methods", ()))
              if m in {"POST", "PUT", "PATCH", "DELETE"} and r.path.startswith("/api/v1") and r.path not in own]
    assert len(writes) >= 13  # every directory's create and update, and the imports
    for method, path in writes:
        url = re.sub(r"\{[^}:]+:uuid\}", tid, path)
        url = re.sub(r"\{[^}]+\}", "1", url)
        for body in ({}, a_target()):
            r = client.request(method, url, json=body, headers=auditor)
            assert r.status_code == 403 and r.headers["content-type"].startswith(PROBLEM), (method, url, r.text)
    assert head(runtime) == before


def test_the_log_pages_in_order_with_who_did_what(client, runtime, auth) -> None:
    tid = some_history(client, auth)
    h = auth("hj-sj", "auditor")
    first = client.get("/api/v1/audit/events?limit=3", headers=h).json()
    assert [e["position"] for e in first["items"]] == [1, 2, 3] and first["next_after"] == 3 and first["head"] == 5
    rest = client.get(f"/api/v1/audit/events?after={first['next_after']}&limit=100", headers=h).json()["items"]
    change = rest[-1]
    assert change["aggregate_id"] == tid and change["aggregate_kind"] == "target" and change["version"] == 2
    assert change["type"] == "risk_class_changed" and change["data"] == {"risk_class": "D", "previous": "B"}
    li = account_id(account_username("hj-eeb", ["planner"], "eeb:li"))  # the account of the token "for eeb:li"
    assert (change["actor"], change["department"], change["role"]) == (li, "hj-eeb", "planner")
    assert change["correlation_id"] and change["causation_id"] and change["time"].endswith("+00:00")
    assert rest[0]["actor"] == account_id(account_username("hj-amr", ["planner"], "amr:wang")) and rest[0]["type"] == "registered"
    r = client.get("/api/v1/audit/events?limit=5000", headers=h)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "limit"


def test_the_export_streams_every_event_as_json_lines(client, runtime, auth) -> None:
    some_history(client, auth)
    r = client.get("/api/v1/audit/export", headers=auth("hj-sj", "auditor"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert [e["position"] for e in lines] == list(range(1, head(runtime) + 1))
    tail = client.get("/api/v1/audit/export?after=3", headers=auth("hj-sj", "admin")).text.splitlines()
    assert [json.loads(x)["position"] for x in tail] == [4, 5]


def test_an_aggregate_is_read_as_of_a_version_or_a_time(client, runtime, auth) -> None:
    tid = some_history(client, auth)
    h = auth("hj-sj", "auditor")
    now = client.get(f"/api/v1/audit/aggregates/{tid}", headers=h).json()
    assert now["kind"] == "target" and now["version"] == 2 and now["state"]["risk_class"] == "D"
    v1 = client.get(f"/api/v1/audit/aggregates/{tid}?version=1", headers=h).json()
    assert v1["state"]["risk_class"] == "B" and v1["as_of"]["version"] == 1 and len(v1["events"]) == 2
    at = now["events"][0]["time"]
    by_time = client.get(f"/api/v1/audit/aggregates/{tid}", params={"at": at}, headers=h).json()
    assert by_time["state"] == v1["state"]
    early = (dt.datetime.fromisoformat(at) - dt.timedelta(hours=1)).isoformat()
    assert client.get(f"/api/v1/audit/aggregates/{tid}", params={"at": early}, headers=h).status_code == 404
    bad = client.get(f"/api/v1/audit/aggregates/{tid}", params={"at": "yesterday"}, headers=h)
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "at"
    both = client.get(f"/api/v1/audit/aggregates/{tid}", params={"at": at, "version": 1}, headers=h)
    assert both.status_code == 400
    assert client.get(f"/api/v1/audit/aggregates/{tid}?version=9", headers=h).status_code == 422
    assert client.get(f"/api/v1/audit/aggregates/{uuid.uuid4()}", headers=h).status_code == 404


def test_a_partner_checks_an_event_against_a_signed_checkpoint_with_only_the_api(client, runtime, auth) -> None:
    some_history(client, auth)
    settle(runtime)
    first = runtime.checkpointer.checkpoint()
    client.post("/api/v1/targets", json=a_target(), headers=auth("hj-amr", "planner"))
    settle(runtime)
    second = runtime.checkpointer.checkpoint()
    assert first is not None and second is not None
    partner = auth("hj-amr", "partner")
    key = client.get("/api/v1/audit/public-key", headers=partner).json()
    cp = client.get("/api/v1/audit/checkpoints/latest", headers=partner).json()
    assert cp["tree_size"] == second.tree_size == 6
    # The signature covers the body; the body names the size and the root.
    Ed25519PublicKey.from_public_bytes(base64.b64decode(key["public_key"])).verify(
        base64.b64decode(cp["signature"]), cp["body"].encode()
    )
    _origin, size, root_b64, time_line, _ = cp["body"].split("\n")
    assert (int(size), base64.b64decode(root_b64).hex(), time_line) == (cp["tree_size"], cp["root_hash"], f"time {cp['time']}")
    # An auditor hands the partner the exported event at position 4.
    event = [json.loads(x) for x in client.get("/api/v1/audit/export", headers=auth("hj-sj", "auditor")).text.splitlines()][3]
    leaf = leaf_hash(canonicalize({k: event[k] for k in ENVELOPE}))
    proof = client.get("/api/v1/audit/proofs/inclusion?position=4", headers=partner).json()
    assert proof["checkpoint"]["tree_size"] == 6 and proof["leaf_hash"] == leaf.hex() == event["leaf_hash"]
    assert verify_inclusion(proof["leaf_index"], cp["tree_size"], leaf, [bytes.fromhex(p) for p in proof["proof"]],
                            bytes.fromhex(cp["root_hash"]))
    # The log only grew between the two checkpoints.
    c = client.get(f"/api/v1/audit/proofs/consistency?first={first.tree_size}", headers=partner).json()
    assert (c["first"], c["second"]) == (5, 6) and c["first_root"] == first.root_hash.hex()
    assert verify_consistency(5, 6, first.root_hash, bytes.fromhex(cp["root_hash"]), [bytes.fromhex(p) for p in c["proof"]])
    assert client.get("/api/v1/audit/proofs/inclusion?position=999", headers=partner).status_code == 404
    assert client.get("/api/v1/audit/proofs/inclusion?position=4&tree_size=99", headers=partner).status_code == 422


def test_coverage_shows_the_witnesses_and_ready_shows_the_signer_alarm(client, runtime, auth) -> None:
    from services.audit.external import acknowledge, raise_alarm
    from services.audit.witness import WitnessKey, store_cosignature

    some_history(client, auth)
    settle(runtime)
    cp = runtime.checkpointer.checkpoint()
    assert cp is not None
    partner = auth("hj-amr", "partner")
    before = client.get("/api/v1/audit/coverage", headers=partner).json()
    assert before["witnessed_checkpoint"] is None and before["events_since_witnessed"] == cp.tree_size
    assert before["latest_checkpoint"]["witnesses"] == [] and before["events_since"] == 0
    wkey = WitnessKey.from_seed("hj-eeb.example.gov.cn/witness", bytes(range(1, 33)))
    runtime.checkpointer.witness_keys = [wkey.public]
    line = "\u2014 x"  # a forged line is ignored
    assert store_cosignature(runtime.engine, [wkey.public], {"cosignature": line, "body": cp.body}) is None
    from services.audit.witness import signature_line

    good = signature_line(wkey.public, 1700000000, wkey.cosign(cp.body, 1700000000))
    assert store_cosignature(runtime.engine, [wkey.public], {"cosignature": good, "body": cp.body,
                                                              "department": "hj-eeb"}) == wkey.public.name
    client.post("/api/v1/targets", json=a_target(), headers=auth("hj-amr", "planner"))
    settle(runtime)
    view = client.get("/api/v1/audit/coverage", headers=partner).json()
    assert view["witnessed_checkpoint"]["tree_size"] == cp.tree_size and view["events_since_witnessed"] == 1
    assert [w["witness"] for w in view["witnessed_checkpoint"]["witnesses"]] == [wkey.public.name]
    assert view["witness_keys"] == [wkey.public.vkey]
    listed = client.get("/api/v1/audit/checkpoints", headers=partner).json()["items"]
    # the signer may have signed a newer checkpoint (with the target) since: the witnessed one is cp's size
    witnessed = next(c for c in listed if c["tree_size"] == cp.tree_size)
    assert [w["department"] for w in witnessed["witnesses"]] == ["hj-eeb"]
    # The signer's alarm: /ready and /metrics show it (the status stays ready: reads go on).
    assert client.get("/ready").json()["audit_signer_alarm"] is None
    assert "dualrandom_audit_signer_alarm 0" in client.get("/metrics").text
    raise_alarm(runtime.settings.var_dir, "test", cp)
    r = client.get("/ready")
    assert r.status_code == 200 and r.json()["audit_signer_alarm"]["external_tree_size"] == cp.tree_size
    assert "dualrandom_audit_signer_alarm 1" in client.get("/metrics").text
    assert client.get("/api/v1/audit/coverage", headers=partner).json()["signer_alarm"] is not None
    acknowledge(runtime.settings.var_dir, "operator", "test")
    assert client.get("/ready").json()["audit_signer_alarm"] is None
