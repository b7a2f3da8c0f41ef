"""The layer rules hold: ruff bans imports per directory (domain/ruff.toml, projections/ruff.toml).

Each case copies the real configuration into a temporary tree, writes one module there and runs the installed
ruff on it: a forbidden import is reported as TID251, an allowed one passes.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUFF = Path(sys.executable).with_name("ruff")


def _ruff(tmp_path: Path, layer: str, source: str) -> list[dict[str, object]]:
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / layer).mkdir()
    shutil.copy(ROOT / layer / "ruff.toml", tmp_path / layer / "ruff.toml")
    module = tmp_path / layer / "probe.py"
    module.write_text(source, encoding="utf-8")
    done = subprocess.run(
        [str(RUFF), "check", "--no-cache", "--select", "TID251", "--output-format", "json", str(module)],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    found: list[dict[str, object]] = json.loads(done.stdout)
    return found


@pytest.mark.parametrize(
    ("layer", "source", "banned"),
    [
        ("domain", "import logging\n", "logging"),
        ("domain", "import structlog\n", "structlog"),
        ("domain", "import sqlalchemy as sa\n", "sqlalchemy"),
        ("domain", "from sqlalchemy.orm import Session\n", "sqlalchemy"),
        ("domain", "from litestar import get\n", "litestar"),
        ("domain", "import nats\n", "nats"),
        ("domain", "import psycopg\n", "psycopg"),
        ("domain", "import uvicorn\n", "uvicorn"),
        ("domain", "from eventsourcing.persistence import Recorder\n", "eventsourcing.persistence"),
        ("domain", "import eventsourcing_sqlalchemy\n", "eventsourcing_sqlalchemy"),
        ("domain", "from services.application import DualRandom\n", "services"),
        ("domain", "from projections.runner import ProjectionRunner\n", "projections"),
        ("projections", "from services.usecases.tasks import Tasks\n", "services"),
        ("projections", "import services.runtime\n", "services"),
    ],
)
def test_a_forbidden_import_is_reported(tmp_path: Path, layer: str, source: str, banned: str) -> None:
    found = _ruff(tmp_path, layer, source)
    assert [f["code"] for f in found] == ["TID251"]
    assert f"`{banned}` is banned" in str(found[0]["message"])


@pytest.mark.parametrize(
    ("layer", "source"),
    [
        ("domain", "from eventsourcing.domain import Aggregate, event\n"),
        ("domain", "from domain.errors import DomainError\n"),
        ("projections", "import sqlalchemy as sa\nfrom domain.directory import KINDS\n"),
        ("projections", "from projections.runner import ProjectionRunner\n"),
    ],
)
def test_an_allowed_import_passes(tmp_path: Path, layer: str, source: str) -> None:
    assert _ruff(tmp_path, layer, source) == []


def test_the_layers_as_they_are_pass() -> None:
    done = subprocess.run(
        [str(RUFF), "check", "--no-cache", "--select", "TID251", "domain", "projections"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
