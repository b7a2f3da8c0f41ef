"""Aggregate heads (``services/infra/heads.py``): a large import reloads each entry from its head and the events
after it. Whatever the history (imports that change some rows, single updates between them, heads missing,
stale or of another format), every entry reloads to exactly the state a full replay gives, and a re-import of
an unchanged file reads one row per entry (SQLite file and PostgreSQL)."""

import random
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

import services.application as application
import services.infra.heads as heads_module
import services.infra.recorder as recorder_module
from domain.access import SYSTEM, Actor
from domain.directory import Target
from services.application import CommandContext, DualRandom
from tests.support.builders import credit_code

ADMIN = Actor("root", "hj-eeb", ("admin",))
COUNTIES = ["获嘉县", "辉县市", "卫辉市"]
CLASSES = ["general", "key", "special"]


@pytest.fixture
def app(database_url: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(application, "_PIPELINE_CHUNK", 40)  # a few hundred rows take the streamed path
    monkeypatch.setattr(recorder_module, "COPY_MIN", 10)
    application_ = DualRandom(database_url)
    yield application_
    application_.close()


def _row(code: str, rng: random.Random) -> dict[str, Any]:
    return {"credit_code": code, "name": f"获嘉县示例企业{code[-4:]}有限公司", "county": rng.choice(COUNTIES),
            "industry": rng.choice(["化工", "机械", "医药"]), "supervision_class": rng.choice(CLASSES),
            "risk_class": rng.choice("ABCD"), "tags": ""}


def _full_replay(app: DualRandom, ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    replayed: list[Any] = [app.repository.get(i) for i in ids]
    return {a.id: {"version": a.version, "data": a.data} for a in replayed}


def _reloaded(app: DualRandom, ids: list[uuid.UUID],
              replayed: dict[uuid.UUID, int] | None = None) -> dict[uuid.UUID, dict[str, Any]]:
    return {i: {"version": a.version, "data": a.data} for i, a in app._load_many(Target, ids, replayed).items()}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_reload_equals_a_full_replay_whatever_the_history(app: DualRandom, seed: int,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    codes = [credit_code() for _ in range(120)]
    current = {c: _row(c, rng) for c in codes}
    ctx = CommandContext(SYSTEM)
    app.import_entries("target", list(enumerate(current.values(), 2)), ctx)
    ids = [Target.id_for(r) for r in current.values()]
    for _ in range(6):
        for c in rng.sample(codes, rng.randint(0, 60)):  # an import changing some rows
            current[c] = {**_row(c, rng), "credit_code": c}
        app.import_entries("target", list(enumerate(current.values(), 2)), ctx)
        for c in rng.sample(codes, rng.randint(0, 5)):  # single updates between imports: heads go stale
            change = {"county": rng.choice(COUNTIES)}
            entry = Target.id_for(current[c])
            if app.load("target", entry).data["county"] != change["county"]:
                app.update("target", entry, change, CommandContext(ADMIN))
            current[c] = {**current[c], **change}
        if rng.random() < 0.2:  # heads of another format: ignored, then replaced
            monkeypatch.setattr(heads_module, "FORMAT", heads_module.FORMAT + 1)
        assert _reloaded(app, ids) == _full_replay(app, ids)
    with app.heads.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(app.heads.table)).scalar()


def test_a_reimport_of_an_unchanged_file_reloads_each_entry_from_one_row(app: DualRandom) -> None:
    rng = random.Random(7)
    codes = [credit_code() for _ in range(100)]
    ctx = CommandContext(SYSTEM)
    for _ in range(5):  # every import changes every row: histories of 5 events
        app.import_entries("target", list(enumerate((_row(c, rng) for c in codes), 2)), ctx)
    ids = [Target.id_for({"credit_code": c}) for c in codes]
    replayed: dict[uuid.UUID, int] = {}
    _reloaded(app, ids, replayed)
    assert set(replayed.values()) == {1}  # each from its head alone
    with app.heads.engine.begin() as conn:  # heads lost (or never written): full replays again ...
        conn.execute(app.heads.table.delete())
    replayed.clear()
    _reloaded(app, ids, replayed)
    assert min(replayed.values()) >= 2
    same = [(n, app.load("target", i).data) for n, i in enumerate(ids, 2)]
    result = app.import_entries("target", same, ctx)  # ... until an import of the same file writes them
    assert (result.created, result.updated, result.events) == (0, 0, 0)
    replayed.clear()
    _reloaded(app, ids, replayed)
    assert set(replayed.values()) == {1}
    assert _reloaded(app, ids) == _full_replay(app, ids)
