"""``dualrandom config``: show, set (with a reason; bad values named, nothing recorded) and history."""

import json
from pathlib import Path

from tests.support.serve import run_cli


def test_the_cli_shows_changes_and_lists_the_configuration(tmp_path: Path) -> None:
    env = {"DUALRANDOM_VAR_DIR": str(tmp_path / "var"), "PATH": "/usr/bin:/bin"}
    r = run_cli(["config", "show"], env, timeout=120)
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    assert shown["version"] == 0 and shown["settings"]["joint_share_goal"] == "0.6"
    r = run_cli(["config", "set", "--joint-share-goal", "150%", "--reason", "x", "--department", "hj-eeb"], env)
    assert r.returncode != 0 and "joint_share_goal" in r.stderr
    codes = tmp_path / "codes.json"
    codes.write_text(json.dumps([*shown["settings"]["result_codes"], {
        "code": "partly_corrected", "wording": "发现问题部分整改", "problem_found": True}], ensure_ascii=False),
        encoding="utf-8")
    r = run_cli(["config", "set", "--joint-share-goal", "50%", "--result-codes", str(codes),
                 "--reason", "县局2025年度目标调整", "--department", "hj-eeb"], env)
    assert r.returncode == 0, r.stderr
    assert "changed joint_share_goal, result_codes (version 2" in r.stdout
    after = json.loads(run_cli(["config", "show"], env).stdout)
    assert after["settings"]["joint_share_goal"] == "0.5" and after["settings"]["result_codes"][-1]["code"] == (
        "partly_corrected")
    lines = [json.loads(line) for line in run_cli(["config", "history"], env).stdout.splitlines()]
    assert [e["type"] for e in lines] == ["started", "changed"] and lines[1]["data"]["reason"] == "县局2025年度目标调整"
