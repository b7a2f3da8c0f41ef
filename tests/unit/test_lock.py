"""The lock files pin what pyproject.toml declares (requirements/check.py), and the check notices a change."""

import importlib.util
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("lock_check", ROOT / "requirements" / "check.py")
assert _spec is not None and _spec.loader is not None, "requirements/check.py cannot be loaded"
check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check)


def test_the_locks_are_up_to_date_with_pyproject() -> None:
    assert check.problems(ROOT) == [], "run requirements/update and commit requirements/*.lock"


def _copy(tmp_path: Path) -> Path:
    (tmp_path / "requirements").mkdir()
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    for lock in check.LOCKS:
        shutil.copy(ROOT / "requirements" / lock, tmp_path / "requirements")
    return tmp_path


def test_a_new_dependency_makes_the_locks_stale(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    p = root / "pyproject.toml"
    p.write_text(p.read_text().replace('dependencies = [\n', 'dependencies = [\n    "left-pad==1.0",\n', 1))
    found = check.problems(root)
    assert any("run.lock was resolved from other dependencies" in f for f in found)
    assert any("left-pad is declared but not pinned" in f for f in found)


def test_a_pin_outside_the_declared_range_is_reported(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    lock = root / "requirements" / "test.lock"
    version = check.pins(lock.read_text())["msgspec"]
    lock.write_text(lock.read_text().replace(f"msgspec=={version}", "msgspec==0.18.6"))
    assert check.problems(root) == ["requirements/test.lock: msgspec==0.18.6 is outside the declared <0.24,>=0.23"]
