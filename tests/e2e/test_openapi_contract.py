"""The OpenAPI document describes every operation: a schema for each success, the problems it answers (RFC 9457,
the Problem schema), and the bearer token on every /api/v1 operation but the public ones."""

from typing import Any

from litestar.testing import TestClient

from services.api.middleware import LOGIN_PATH, PUBLIC_PATHS

METHODS = {"get", "post", "put", "patch", "delete"}
PROBLEM_REF = "#/components/schemas/Problem"


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, op) for p, item in doc["paths"].items() for m, op in item.items() if m in METHODS]


def _schema_of(response: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    content = response.get("content") or {}
    for media, body in content.items():
        return media, body.get("schema") or {}
    return None


def test_every_operation_documents_its_answers(client: TestClient) -> None:
    doc = client.get("/schema/openapi.json").json()
    assert doc["components"]["securitySchemes"]["BearerToken"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": doc["components"]["securitySchemes"]["BearerToken"]["description"],
    }
    problem = doc["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail"} <= set(problem["required"])
    ops = _operations(doc)
    assert len(ops) > 100
    wrong = []
    for method, path, op in ops:
        name = f"{method.upper()} {path}"
        responses = op.get("responses") or {}
        ok = [s for s in responses if s.startswith("2")]
        if len(ok) != 1:
            wrong.append(f"{name}: {len(ok)} success responses")
        for status, response in responses.items():
            if status == "304":  # Not Modified has no body (RFC 9110): nothing to describe
                assert "content" not in response, name
                continue
            found = _schema_of(response)
            if found is None or not found[1]:
                wrong.append(f"{name} {status}: no schema")
                continue
            media, schema = found
            is_problem = media == "application/problem+json" and schema.get("$ref") == PROBLEM_REF
            if status.startswith(("4", "5")) and not is_problem and (path, status) != ("/ready", "503"):
                wrong.append(f"{name} {status}: not the Problem schema as application/problem+json ({media})")
        secured = path.startswith("/api/v1") and path not in PUBLIC_PATHS and (path, method) != (LOGIN_PATH, "post")
        if secured:
            if {"BearerToken": []} not in (op.get("security") or []):
                wrong.append(f"{name}: no bearer security")
            if {"SessionCookie": []} not in (op.get("security") or []):
                wrong.append(f"{name}: no session cookie security")
            if "401" not in responses:
                wrong.append(f"{name}: 401 not documented")
            if method != "get" and "403" not in responses:
                wrong.append(f"{name}: 403 (auditors write nothing) not documented")
        elif op.get("security"):
            wrong.append(f"{name}: public, yet secured")
        if any(p.get("in") == "query" and not p.get("description") for p in op.get("parameters") or []):
            wrong.append(f"{name}: a query parameter without a description")
    assert not wrong, "\n".join(wrong)


def test_request_bodies_describe_their_fields(client: TestClient) -> None:
    schemas = client.get("/schema/openapi.json").json()["components"]["schemas"]
    assert schemas["ReferralIn"]["properties"]["kind"]["enum"] == ["department", "judicial", "discipline"]
    assert schemas["Push"]["properties"]["state"]["enum"] == ["pushed", "failed", "confirmed"]
    assert schemas["TaskCreate"]["properties"]["plan_entry"]["examples"]
    assert schemas["PlanCreate"]["properties"]["year"]["description"] == "the plan year"
    paths = client.get("/schema/openapi.json").json()["paths"]
    bodies = {
        c["schema"].get("$ref") or c["schema"]["allOf"][0]["$ref"]
        for item in paths.values() for op in item.values() if isinstance(op, dict) and "requestBody" in op
        for c in op["requestBody"]["content"].values() if "$ref" in c["schema"] or "allOf" in c["schema"]
    }
    undescribed = [
        f"{ref.rsplit('/', 1)[-1]}.{name}"
        for ref in bodies for name, field in schemas[ref.rsplit("/", 1)[-1]]["properties"].items()
        if not field.get("description")
    ]
    assert len(bodies) > 30 and not undescribed, undescribed
    for path in ("/api/v1/plans", "/api/v1/tasks", "/api/v1/referrals"):
        body = paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body["examples"], path


def test_every_upload_documents_its_file_field_as_the_server_reads_it(client: TestClient) -> None:
    """Multipart bodies: the one field the server reads is ``file`` (binary, required), as the docs say; the
    document said ``files`` (an array) for the imports."""
    paths = client.get("/schema/openapi.json").json()["paths"]
    uploads = {
        f"{method.upper()} {path}": op["requestBody"]["content"]["multipart/form-data"]["schema"]
        for path, item in paths.items() for method, op in item.items()
        if isinstance(op, dict) and "multipart/form-data" in (op.get("requestBody") or {}).get("content", {})
    }
    assert len(uploads) >= 5, sorted(uploads)  # the imports, evidence, the calendar
    for name, schema in uploads.items():
        assert schema["properties"]["file"]["format"] == "binary", name
        assert schema["required"] == ["file"] and "files" not in schema["properties"], name
