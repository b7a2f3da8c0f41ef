"""Tamper evidence against a real store (SQLite file, PostgreSQL): the audit tree, signed checkpoints, and
``audit verify`` naming the first bad position after raw SQL edits, deletions, swaps and insertions."""

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from domain.access import SYSTEM
from domain.audit.leaf import envelope, leaf_bytes
from domain.audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from projections.audit.projection import LOWEST_STORED_LEVEL, AuditProjection, leaves, nodes
from projections.audit.queries import consistency_proof, inclusion_proof, root_at, tree_size
from projections.runner import ProjectionRunner
from services.application import CommandContext
from services.audit.checkpoints import TreeForkError, checkpoints, create_checkpoint
from services.audit.log import events_table, iter_records
from services.audit.verify import verify_log
from services.infra.settings import Settings
from services.runtime import Runtime
from tests.support.builders import a_department, a_target

CTX = CommandContext(SYSTEM, correlation_id="req-audit-test")


@pytest.fixture
def rt(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    settings = replace(Settings(var_dir=tmp_path / "var", relay_enabled=False), database_url=database_url).with_secret()
    runtime = Runtime(settings).open(with_nats=False)
    runtime.runner.batch_size = 4  # several batches: the tree is extended across transactions
    yield runtime
    runtime.close()


def fill(rt: Runtime, targets: int = 8) -> list[str]:
    """A department, ``targets`` targets, and a few changes: positions 1..(targets + 4)."""
    rt.app.register("department", a_department(), CTX)
    ids = [rt.app.register("target", a_target(), CTX).id for _ in range(targets)]
    rt.app.update("target", uuid.UUID(ids[0]), {"risk_class": "D"}, CTX)
    rt.app.update("target", uuid.UUID(ids[1]), {"supervision_class": "key", "tags": ["重点排污单位"]}, CTX)
    return ids


def head(rt: Runtime) -> int:
    return int(rt.app.recorder.max_notification_id() or 0)


def verify(rt: Runtime) -> Any:
    return verify_log(rt.engine, events_table(rt.app), rt.checkpointer.signer.public, page=5)


def test_the_audit_tree_holds_every_event_once_and_a_rebuild_gives_the_same_tree(rt: Runtime) -> None:
    fill(rt)
    rt.runner.catch_up()
    with rt.engine.connect() as conn:
        size = tree_size(conn)
        live_leaves = conn.execute(sa.select(leaves).order_by(leaves.c.idx)).all()
        live_nodes = conn.execute(sa.select(nodes).order_by(nodes.c.level, nodes.c.idx)).all()
        root = root_at(conn, size)
    records = list(iter_records(rt.engine, events_table(rt.app)))
    assert size == len(records) == head(rt) == 12
    assert [int(r.position) for r in live_leaves] == [r[0] for r in records]
    from domain.audit.merkle import reference_root

    assert root == reference_root([leaf_bytes(envelope(*r)) for r in records])
    # Drop and rebuild from position 0 in one batch: identical rows.
    AuditProjection.metadata.drop_all(rt.engine)
    from projections.runner import positions

    with rt.engine.begin() as conn:
        conn.execute(positions.update().where(positions.c.name == "audit").values(position=0))
    rebuilt = ProjectionRunner(rt.app, rt.engine, [AuditProjection()], batch_size=1000)
    rebuilt.setup()
    rebuilt.catch_up()
    with rt.engine.connect() as conn:
        assert conn.execute(sa.select(leaves).order_by(leaves.c.idx)).all() == live_leaves
        assert conn.execute(sa.select(nodes).order_by(nodes.c.level, nodes.c.idx)).all() == live_nodes


def test_proofs_from_the_stored_tree_verify_against_signed_checkpoints(rt: Runtime) -> None:
    fill(rt, targets=37)  # 40 events, then 41: stored subtrees (16 and 32 leaves) and ones hashed from leaves
    rt.runner.catch_up()
    first, created = create_checkpoint(rt.engine, rt.checkpointer.signer)
    assert created and first is not None and first.verify(rt.checkpointer.signer.public) is None
    assert create_checkpoint(rt.engine, rt.checkpointer.signer) == (first, False)  # nothing new: no new checkpoint
    rt.app.register("target", a_target(), CTX)
    rt.runner.catch_up()
    second, created = create_checkpoint(rt.engine, rt.checkpointer.signer)
    assert created and second is not None and second.tree_size == first.tree_size + 1
    with rt.engine.connect() as conn:
        for position in range(1, head(rt) + 1):
            proof = inclusion_proof(conn, position, second.tree_size)
            assert verify_inclusion(proof.leaf.index, second.tree_size, proof.leaf.hash, proof.path, second.root_hash)
        c = consistency_proof(conn, first.tree_size, second.tree_size)
    assert verify_consistency(first.tree_size, second.tree_size, first.root_hash, second.root_hash, c.path)
    assert verify(rt).ok


def tamper(rt: Runtime, how: str, p: int, q: int) -> None:
    """Raw SQL on dualrandom_events, as someone with database access would do it."""
    sqlite = rt.engine.dialect.name == "sqlite"
    with rt.engine.begin() as conn:
        state = lambda pos: bytes(conn.execute(sa.text("SELECT state FROM dualrandom_events WHERE id = :p"), {"p": pos}).scalar_one())  # noqa: E731
        if how == "edit":
            body = json.loads(state(p))
            body["data"]["name"] = "改过的名称有限公司"
            conn.execute(sa.text("UPDATE dualrandom_events SET state = :s WHERE id = :p"),
                         {"s": json.dumps(body, ensure_ascii=False).encode(), "p": p})
        elif how == "delete":
            conn.execute(sa.text("DELETE FROM dualrandom_events WHERE id = :p"), {"p": p})
        elif how == "swap":
            sp, sq = state(p), state(q)
            conn.execute(sa.text("UPDATE dualrandom_events SET state = :s WHERE id = :p"), {"s": sq, "p": p})
            conn.execute(sa.text("UPDATE dualrandom_events SET state = :s WHERE id = :p"), {"s": sp, "p": q})
        elif how == "delete_renumbered":  # and hide the gap
            conn.execute(sa.text("DELETE FROM dualrandom_events WHERE id = :p"), {"p": p})
            conn.execute(sa.text("UPDATE dualrandom_events SET id = -id WHERE id > :p"), {"p": p})
            conn.execute(sa.text("UPDATE dualrandom_events SET id = -id - 1 WHERE id < 0"))
        elif how == "insert":
            forged = state(p)
            conn.execute(sa.text("UPDATE dualrandom_events SET id = -id WHERE id >= :p"), {"p": p})
            conn.execute(sa.text("UPDATE dualrandom_events SET id = 1 - id WHERE id < 0"))
            new_id = uuid.uuid4()
            conn.execute(
                sa.text("INSERT INTO dualrandom_events (id, originator_id, originator_version, topic, state) "
                        "VALUES (:id, :oid, 1, 'domain.directory:Target.Registered', :s)"),
                {"id": p, "oid": new_id.bytes if sqlite else str(new_id), "s": forged},
            )


@pytest.mark.parametrize(("how", "kind"), [("edit", "altered"), ("delete", "missing"), ("swap", "altered"),
                                           ("insert", "inserted"), ("delete_renumbered", "missing")])
def test_tampering_in_the_database_is_detected_at_the_first_bad_position(rt: Runtime, how: str, kind: str) -> None:
    fill(rt)
    rt.runner.catch_up()
    create_checkpoint(rt.engine, rt.checkpointer.signer)
    assert verify(rt).ok
    p, q = 5, 9  # both Target.Registered events
    tamper(rt, how, p, q)
    report = verify(rt)
    assert not report.ok
    assert report.first_bad_position == p, report.lines()
    assert report.findings[0].kind == kind and report.findings[0].position == p
    # The signed root no longer comes out (or, one event fewer, the checkpoint's size is beyond the log).
    assert any(f.kind in ("checkpoint_mismatch", "checkpoint_beyond_log") for f in report.findings)
    # The signer will not sign the changed history either.
    if how in ("delete", "insert", "delete_renumbered"):
        return  # the audit tree itself is unchanged: the next checkpoint simply waits for new leaves
    rt.runner.catch_up()
    assert create_checkpoint(rt.engine, rt.checkpointer.signer)[1] is False


def test_a_log_rewritten_together_with_its_audit_tree_is_caught_by_the_signed_checkpoints(rt: Runtime) -> None:
    fill(rt)
    rt.runner.catch_up()
    early, _ = create_checkpoint(rt.engine, rt.checkpointer.signer)
    assert early is not None
    rt.app.register("target", a_target(), CTX)
    rt.app.register("target", a_target(), CTX)
    rt.runner.catch_up()
    late, _ = create_checkpoint(rt.engine, rt.checkpointer.signer)
    assert late is not None
    tamper(rt, "edit", 14, 0)  # after the early checkpoint, before the late one
    # The attacker rebuilds the audit projection from the changed log.
    AuditProjection.metadata.drop_all(rt.engine)
    from projections.runner import positions

    with rt.engine.begin() as conn:
        conn.execute(positions.update().where(positions.c.name == "audit").values(position=0))
    rt.runner.setup()
    rt.runner.catch_up()
    report = verify(rt)
    assert [f.kind for f in report.findings] == ["checkpoint_mismatch"]
    assert report.first_bad_position is None and report.suspect_positions == (early.position + 1, late.position)
    with pytest.raises(TreeForkError):
        rt.app.register("target", a_target(), CTX)
        rt.runner.catch_up()
        create_checkpoint(rt.engine, rt.checkpointer.signer)


def test_a_forged_checkpoint_fails_its_signature(rt: Runtime) -> None:
    fill(rt, targets=2)
    rt.runner.catch_up()
    cp, _ = create_checkpoint(rt.engine, rt.checkpointer.signer)
    assert cp is not None
    with rt.engine.begin() as conn:
        conn.execute(checkpoints.update().values(root_hash=leaf_hash(b"forged")))
    report = verify(rt)
    kinds = [f.kind for f in report.findings]
    assert "signature" in kinds and "checkpoint_mismatch" in kinds


@pytest.mark.parametrize(("how", "level", "leaf_index"), [("edit", LOWEST_STORED_LEVEL, 16),
                                                           ("delete", LOWEST_STORED_LEVEL + 1, 32)])
def test_a_corrupted_audit_tree_is_reported_even_when_the_events_are_intact(
    rt: Runtime, how: str, level: int, leaf_index: int
) -> None:
    fill(rt, targets=61)  # 64 events: stored subtrees at the two lowest stored levels
    rt.runner.catch_up()
    with rt.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.min(nodes.c.level))).scalar_one() == LOWEST_STORED_LEVEL
    node = sa.and_(nodes.c.level == level, nodes.c.idx == leaf_index >> level)
    with rt.engine.begin() as conn:
        if how == "edit":
            conn.execute(nodes.update().where(node).values(hash=leaf_hash(b"x")))
        else:
            conn.execute(nodes.delete().where(node))
    report = verify(rt)
    assert [f.kind for f in report.findings] == ["tree_node"] and report.findings[0].leaf_index == leaf_index
    assert f"level {level}," in report.findings[0].message


def test_the_cli_exits_non_zero_and_names_the_position(rt: Runtime, database_url: str) -> None:
    fill(rt, targets=4)
    rt.runner.catch_up()
    env = {**os.environ, "DUALRANDOM_DATABASE_URL": database_url, "DUALRANDOM_VAR_DIR": str(rt.settings.var_dir),
           "DUALRANDOM_RELAY_ENABLED": "false", "DUALRANDOM_LOG_LEVEL": "WARNING"}
    cli = [sys.executable, "-m", "services.cli", "audit"]
    out = subprocess.run([*cli, "checkpoint"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("signed checkpoint: tree size 8")
    tamper(rt, "edit", 3, 0)
    out = subprocess.run([*cli, "verify"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "BAD: first bad position 3" in out.stdout, out.stdout + out.stderr
