"""The demo county (获嘉县) on a SQLite file store."""

from collections import Counter
from pathlib import Path

import pytest

from domain.access import SYSTEM
from domain.credit_code import credit_code_error
from domain.directory import Inspector, Target, entry_id
from services.application import CommandContext, DualRandom
from services.cli.demo import DEPARTMENTS, demo_data, load_demo


@pytest.fixture
def app(tmp_path: Path):
    application = DualRandom("sqlite:///" + str(tmp_path / "e.db"))
    yield application
    application.close()


def test_demo_data_is_shaped_like_huojia() -> None:
    data = demo_data()
    assert data == demo_data(2024)  # deterministic
    assert demo_data(7)["target"] != data["target"]
    assert [d["code"] for d in data["department"]] == ["hj-eeb", "hj-amr", "hj-em", "hj-nr", "hj-wr", "hj-hc"]
    assert all(d["city"] == "新乡市" and d["county"] == "获嘉县" for d in data["department"])

    eeb = [i for i in data["item"] if i["department"] == "hj-eeb"]
    assert [i["code"] for i in eeb] == [f"EEB-{n:03d}" for n in range(1, 15)]
    assert all(i["category"] == "general" and i["legal_basis"] and i["documents"] for i in eeb)
    assert {i["name"] for i in eeb if i["needs_expert"]} == {"放射性污染防治监督检查", "新化学物质监督检查"}
    per_dept = Counter(i["department"] for i in data["item"])
    assert all(3 <= per_dept[d["code"]] <= 5 for d in DEPARTMENTS if d["code"] != "hj-eeb")

    targets = data["target"]
    assert 280 <= len(targets) <= 320
    assert len({t["credit_code"] for t in targets}) == len(targets)
    assert len({t["name"] for t in targets}) == len(targets)
    assert all(credit_code_error(t["credit_code"]) is None and t["credit_code"].startswith("91410724") for t in targets)
    classes = Counter(t["supervision_class"] for t in targets)
    assert 0.10 <= classes["key"] / len(targets) <= 0.20 and classes["special"] >= 5
    assert set(Counter(t["risk_class"] for t in targets)) == set("ABCD")
    statuses = Counter(t["status"] for t in targets)
    assert statuses["closed"] >= 1 and statuses["deregistered"] >= 1
    assert all(t["address"].startswith("获嘉县") for t in targets)

    inspectors = data["inspector"]
    assert 25 <= len(inspectors) <= 35
    assert sum(i["department"] == "hj-eeb" for i in inspectors) >= 8
    assert {i["department"] for i in inspectors} == {d["code"] for d in DEPARTMENTS}
    assert 1 <= sum(i["certificate_expiry"] < "2024-01-01" for i in inspectors) <= 5
    assert data["expert"] and all(e["department"] == "hj-eeb" for e in data["expert"])


def test_demo_loads_and_a_second_load_adds_no_events(app: DualRandom) -> None:
    ctx = CommandContext(SYSTEM, correlation_id="demo-1")
    counts = load_demo(app, ctx)
    data = demo_data()
    assert counts == {"departments": 6, "items": len(data["item"]), "targets": len(data["target"]),
                      "inspectors": len(data["inspector"]), "experts": len(data["expert"]),
                      "events": counts["events"]}
    assert counts["events"] == app.recorder.max_notification_id()
    assert counts["events"] >= sum(len(v) for v in data.values())
    assert app.load("department", entry_id("department", "hj-eeb")).data["name"] == "新乡市生态环境局获嘉分局"
    t = data["target"][0]
    assert app.load("target", entry_id("target", t["credit_code"])).data == {**Target.SPEC.defaults(), **t}
    i = data["inspector"][0]
    assert app.load("inspector", entry_id("inspector", f"{i['department']}/{i['staff_id']}")).data == {
        **Inspector.SPEC.defaults(), **i}

    before = app.recorder.max_notification_id()
    again = load_demo(app, CommandContext(SYSTEM, correlation_id="demo-2"))
    assert again == {**counts, "events": 0}
    assert app.recorder.max_notification_id() == before


def test_the_demo_plan_runs_the_seed_plan_and_a_drawn_joint_task(runtime) -> None:
    from domain.access import SYSTEM
    from domain.planning.plan import plan_id
    from services.application import CommandContext
    from services.cli.demo import load_demo, load_demo_plan

    load_demo(runtime.app, CommandContext(SYSTEM))
    runtime.runner.catch_up()
    line = load_demo_plan(runtime)
    assert "targets drawn" in line
    plan = runtime.plans.plan(plan_id("hj-eeb", 2024))
    assert sorted(plan.entries) == ["2024001", "2024002", "2024003", "2024004"]
    (task,) = [runtime.task_opening.task(__import__("uuid").UUID(t["id"]))
               for t in runtime.task_opening.list_tasks(SYSTEM, 2024, None, 10, 0)["items"]]
    assert task.is_joint and task.state == "drawn" and sorted(task.teams) == ["hj-amr", "hj-eeb"]
    assert load_demo_plan(runtime).endswith("nothing done")


def test_the_demo_year_runs_from_the_draw_to_the_follow_up_and_names_every_document(runtime) -> None:
    import uuid

    from domain.access import SYSTEM, Actor
    from services.application import CommandContext
    from services.cli.demo import DEMO_YEAR_PATHS, demo_year_lines, load_demo, load_demo_plan, load_demo_year

    load_demo(runtime.app, CommandContext(SYSTEM))
    runtime.runner.catch_up()
    load_demo_plan(runtime)
    ids = load_demo_year(runtime)
    eeb = Actor("auditor", "hj-audit", ("auditor",))
    assert runtime.inspections.inspection_view(eeb, uuid.UUID(ids["inspection"]))["state"] == "published"
    assert runtime.inspections.inspection_view(eeb, uuid.UUID(ids["case_inspection"]))["state"] == "published"
    assert runtime.notices.notices_view(eeb, uuid.UUID(ids["visit"]))["result"]["delivered"]
    assert runtime.referrals.referral_view(eeb, uuid.UUID(ids["referral"]))["state"] == "accepted"
    judicial = runtime.referrals.referral_view(eeb, uuid.UUID(ids["judicial"]))
    assert judicial["kind"] == "judicial" and judicial["copy_to"] == "获嘉县人民检察院"
    case_task = runtime.inspections.inspection_view(eeb, uuid.UUID(ids["case_inspection"]))["task_id"]
    assert runtime.task_opening.task(uuid.UUID(case_task)).origin == "case"
    visits = runtime.follow_ups.follow_up_view(eeb, uuid.UUID(ids["round"]))["visits"]
    assert any(v["visits"] for v in visits.values())
    # Again: nothing is stored, the same documents are named.
    before = runtime.app.recorder.max_notification_id()
    lines = demo_year_lines(runtime)
    assert runtime.app.recorder.max_notification_id() == before
    for title, path in DEMO_YEAR_PATHS:
        assert any(title in line and path.format(**ids) in line for line in lines), title


def test_the_demo_command_prints_the_same_documents_again_on_the_servers_address(
        database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``dualrandom demo --with-plan`` twice: the second run stores nothing and prints the same URLs, on the
    address ``dualrandom serve`` answers on (DUALRANDOM_HOST, DUALRANDOM_PORT)."""
    from click.testing import CliRunner

    from services.cli import main
    from services.cli.demo import DEMO_YEAR_PATHS, server_base

    monkeypatch.setenv("DUALRANDOM_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("DUALRANDOM_DATABASE_URL", database_url)
    monkeypatch.setenv("DUALRANDOM_HOST", "0.0.0.0")
    monkeypatch.setenv("DUALRANDOM_PORT", "8123")
    runner = CliRunner()
    runs = [runner.invoke(main, ["demo", "--with-plan"]) for _ in range(2)]
    for r in runs:
        assert r.exit_code == 0, r.output
    urls = [[line.split(": ", 1)[1] for line in r.output.splitlines() if line.startswith("  ") and "http" in line]
            for r in runs]
    assert len(urls[0]) == len(DEMO_YEAR_PATHS) and urls[1] == urls[0]
    assert all(u.startswith("http://127.0.0.1:8123/api/v1/") for u in urls[0])
    assert "0 events" in runs[1].output.splitlines()[0]
    assert server_base("::", 80) == "http://[::1]:80" and server_base("10.0.0.5", 8000) == "http://10.0.0.5:8000"
    assert server_base("fe80::1", 8000) == "http://[fe80::1]:8000"
