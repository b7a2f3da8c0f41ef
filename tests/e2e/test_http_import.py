"""Directory import over HTTP and the CLI: all or nothing, idempotent, scoped."""

import io
import subprocess
import sys
from pathlib import Path

import openpyxl

from tests.support.builders import a_department, credit_code

HEADER = "统一社会信用代码,企业名称,县区,行业,监管类别,信用风险等级,标签\n"


def csv_rows(n: int, start: int = 5000, risk: str = "B") -> str:
    return HEADER + "".join(
        f"{credit_code(start + i)},获嘉县导入测试{i}有限公司,获嘉县,化工,一般,{risk},正面清单\n" for i in range(n)
    )


def upload(client, path: str, content: bytes, name: str, headers: dict[str, str]):
    return client.post(path, files={"file": (name, content, "application/octet-stream")}, headers=headers)


def test_an_upload_imports_once_and_a_changed_row_stores_only_its_change(client, runtime, auth) -> None:
    h = auth("hj-amr", "planner")
    first = upload(client, "/api/v1/targets/import", csv_rows(20).encode(), "targets.csv", h)
    assert first.status_code == 200, first.text
    assert first.json()["created"] == 20 and first.json()["events"] == 20
    again = upload(client, "/api/v1/targets/import", csv_rows(20).encode(), "targets.csv", h).json()
    assert again["events"] == 0 and again["unchanged"] == 20 and again["position"] is None
    changed = csv_rows(20).replace(f"{credit_code(5003)},获嘉县导入测试3有限公司,获嘉县,化工,一般,B", f"{credit_code(5003)},获嘉县导入测试3有限公司,获嘉县,化工,一般,D")
    third = upload(client, "/api/v1/targets/import", changed.encode(), "targets.csv", h).json()
    assert third["updated"] == 1 and third["events"] == 1
    listing = client.get(f"/api/v1/targets?risk_class=D&min_position={third['position']}", headers=h).json()
    assert listing["total"] == 1 and listing["items"][0]["credit_code"] == credit_code(5003)


def test_a_file_with_bad_rows_stores_nothing_and_lists_every_bad_row(client, runtime, auth) -> None:
    bad = csv_rows(5)
    lines = bad.splitlines()
    lines[2] = lines[2].replace(credit_code(5001), credit_code(5001)[:-1] + ("0" if credit_code(5001)[-1] != "0" else "1"))
    lines[4] = lines[4].replace(",一般,", ",超级,")
    before = runtime.app.recorder.max_notification_id()
    r = upload(client, "/api/v1/targets/import", ("\n".join(lines) + "\n").encode(), "t.csv", auth("hj-amr"))
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    errors = r.json()["errors"]
    assert {(e["row"], e["field"], e["rule"]) for e in errors} == {(3, "credit_code", "check_digit"), (5, "supervision_class", "choice")}
    assert runtime.app.recorder.max_notification_id() == before


def test_imports_are_scoped_like_every_other_write(client, runtime, auth) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["部门代码", "执法人员编号", "姓名", "执法证号", "执法证有效期"])
    ws.append(["hj-eeb", "E001", "王芳", "豫环执0001", "2028-06-30"])
    buf = io.BytesIO()
    wb.save(buf)
    content = buf.getvalue()
    assert upload(client, "/api/v1/inspectors/import", content, "i.xlsx", auth("hj-amr", "planner")).status_code == 403
    assert upload(client, "/api/v1/inspectors/import", content, "i.xlsx", auth("hj-eeb", "auditor")).status_code == 403
    assert runtime.app.recorder.max_notification_id() is None
    # The department a row names must be registered: else the row is refused, and nothing is stored.
    unknown = upload(client, "/api/v1/inspectors/import", content, "i.xlsx", auth("hj-eeb", "planner"))
    assert unknown.status_code == 422, unknown.text
    assert [(e["row"], e["field"], e["rule"]) for e in unknown.json()["errors"]] == [(2, "department", "unknown_department")]
    assert runtime.app.recorder.max_notification_id() is None
    r = client.post("/api/v1/departments", json=a_department(), headers=auth("hj-eeb", "admin"))
    assert r.status_code == 201, r.text
    ok = upload(client, "/api/v1/inspectors/import", content, "i.xlsx", auth("hj-eeb", "planner"))
    assert ok.status_code == 200 and ok.json()["created"] == 1
    assert upload(client, "/api/v1/targets/import", b"x", "t.xls", auth()).json()["errors"][0]["field"] == "file"
    assert client.post("/api/v1/targets/import", headers=auth()).status_code in (400, 422)


def test_the_cli_import_shows_progress_and_is_all_or_nothing(tmp_path: Path) -> None:
    env_base = {"DUALRANDOM_VAR_DIR": str(tmp_path / "var"), "PATH": "/usr/bin:/bin"}
    good = tmp_path / "targets.csv"
    good.write_text(csv_rows(30, start=7000), encoding="utf-8")
    exe = str(Path(sys.executable).parent / "dualrandom")
    r = subprocess.run([exe, "import", "targets", str(good), "--department", "hj-eeb"], env=env_base,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "30 created" in r.stdout and "import targets" in r.stderr and "30/30" in r.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text(csv_rows(3, start=7100).replace(",一般,", ",,"), encoding="utf-8")
    r = subprocess.run([exe, "import", "targets", str(bad), "--department", "hj-eeb"], env=env_base,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert r.stderr.count("supervision_class") == 3 and "row 2" in r.stderr and "nothing was imported" in r.stderr


TEMPLATES = Path(__file__).resolve().parents[2] / "docs" / "templates"


def _refused(client, runtime, content: bytes, name: str, headers: dict[str, str]) -> list[dict]:
    before = runtime.app.recorder.max_notification_id()
    r = upload(client, "/api/v1/targets/import", content, name, headers)
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json"), r.text
    assert runtime.app.recorder.max_notification_id() == before
    return r.json()["errors"]


def test_a_file_of_another_kind_names_each_missing_required_column(client, runtime, auth) -> None:
    # Outside tester: the inspectors template uploaded as targets imported nothing and answered 200.
    errors = _refused(client, runtime, (TEMPLATES / "inspectors.csv").read_bytes(), "inspectors.csv", auth("hj-amr"))
    assert {(e["field"], e["rule"], e["row"]) for e in errors} == {
        (f, "required_column", 1) for f in ("credit_code", "name", "county", "supervision_class", "risk_class")}
    assert "统一社会信用代码" in errors[0]["message"]
    lacking = HEADER.replace(",信用风险等级", "") + f"{credit_code(5400)},甲公司,获嘉县,化工,一般,正面清单\n"
    assert [(e["field"], e["rule"]) for e in _refused(client, runtime, lacking.encode(), "t.csv", auth("hj-amr"))] == [
        ("risk_class", "required_column")]


def test_a_file_without_rows_or_binary_is_refused_with_its_rule(client, runtime, auth) -> None:
    h = auth("hj-amr")
    assert [(e["field"], e["rule"]) for e in _refused(client, runtime, HEADER.encode(), "t.csv", h)] == [
        ("file", "no_rows")]
    for content in (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
                    bytes(range(256)) * 4):
        for name in ("t.csv", "upload"):
            assert [(e["field"], e["rule"]) for e in _refused(client, runtime, content, name, h)] == [
                ("file", "format")], (content[:8], name)


def test_a_header_with_a_control_character_is_refused_by_its_position(client, runtime, auth) -> None:
    # Outside tester: a header holding U+0000 was echoed back in ignored_columns.
    content = HEADER.replace("企业名称", "企业\x00名称") + csv_rows(1, start=5500).split("\n", 1)[1]
    errors = _refused(client, runtime, content.encode(), "t.csv", auth("hj-amr"))
    assert [(e["field"], e["rule"], e["row"]) for e in errors] == [("column B", "control_character", 1)]
    assert "U+0000" in errors[0]["message"] and "\x00" not in errors[0]["message"]
