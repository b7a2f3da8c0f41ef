"""The tamper matrix with checkpoints held outside the database (SQLite file, PostgreSQL): for each way of
changing the log (edit, delete, renumber, swap, insert, insert into a sequence gap, tail truncation), alone or
covered by deleting the checkpoint rows and/or rebuilding the audit tree, what ``audit verify`` reports with
and without a partner's checkpoints, what the signer does, and what a witness says of the next checkpoint."""

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from projections.audit.projection import AuditProjection
from projections.runner import positions
from services.audit import external as ext
from services.audit import proofs
from services.audit.checkpoints import Checkpoint, SignerAlarmError, checkpoints, create_checkpoint
from services.audit.log import events_table
from services.audit.verify import verify_log
from services.audit.witness import ProofUnavailable, Witness, WitnessKey
from services.runtime import Runtime
from tests.integration.test_audit_tamper import CTX, fill, rt, tamper, verify  # noqa: F401 - rt is a fixture
from tests.support.builders import a_target

HOWS = ["edit", "delete", "delete_renumbered", "swap", "insert", "insert_gap", "truncate"]
COVERS = ["none", "checkpoints", "rebuild", "checkpoints+rebuild"]


def rebuild_audit_tree(rt: Runtime) -> None:  # noqa: F811
    """What an insider does after changing events: drop the audit tree and let the projection rebuild it."""
    AuditProjection.metadata.drop_all(rt.engine)
    with rt.engine.begin() as conn:
        conn.execute(positions.update().where(positions.c.name == "audit").values(position=0))
    rt.runner.setup()
    audit = next(p for p in rt.runner.projections if p.name == "audit")
    while rt.runner.run_once(audit) > 0:
        pass


def make_gap(rt: Runtime, at: int) -> None:  # noqa: F811
    """A hole in the positions from ``at`` on (as PostgreSQL leaves after a rolled-back insert), before the audit
    tree has seen those events."""
    with rt.engine.begin() as conn:
        conn.execute(sa.text("UPDATE dualrandom_events SET id = -id WHERE id >= :p"), {"p": at})
        conn.execute(sa.text("UPDATE dualrandom_events SET id = 1 - id WHERE id < 0"))
        if rt.engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT setval(pg_get_serial_sequence('dualrandom_events', 'id'), "
                                 "(SELECT max(id) FROM dualrandom_events))"))


def insert_into_gap(rt: Runtime, at: int, like: int) -> None:  # noqa: F811
    sqlite = rt.engine.dialect.name == "sqlite"
    with rt.engine.begin() as conn:
        state = conn.execute(sa.text("SELECT state FROM dualrandom_events WHERE id = :p"), {"p": like}).scalar_one()
        new_id = uuid.uuid4()
        conn.execute(sa.text("INSERT INTO dualrandom_events (id, originator_id, originator_version, topic, state) "
                             "VALUES (:id, :oid, 1, 'domain.directory:Target.Registered', :s)"),
                     {"id": at, "oid": new_id.bytes if sqlite else str(new_id), "s": state})


def truncate(rt: Runtime, keep: int) -> None:  # noqa: F811
    with rt.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM dualrandom_events WHERE id > :p"), {"p": keep})


def saved_by_partner(path: Path, cps: list[Checkpoint], as_notes: bool) -> list[Checkpoint]:
    """The partner's file (NDJSON of what /audit/checkpoints returns, or signed notes), read back."""
    if as_notes:
        path.write_text("\n".join(cp.note for cp in cps), encoding="utf-8")
    else:
        path.write_text("".join(json.dumps(cp.view(), ensure_ascii=False) + "\n" for cp in cps), encoding="utf-8")
    return ext.load_file(path)


def store_proofs(rt: Runtime) -> Any:  # noqa: F811
    def fetch(first: int, second: int) -> dict[str, Any]:
        with rt.engine.connect() as conn:
            try:
                return proofs.consistency(conn, first, second)
            except proofs.ProofError as exc:
                raise ProofUnavailable(str(exc)) from None
    return fetch


@pytest.mark.parametrize("cover", COVERS)
@pytest.mark.parametrize("how", HOWS)
def test_the_tamper_matrix(rt: Runtime, tmp_path: Path, how: str, cover: str) -> None:  # noqa: F811
    fill(rt)  # positions 1..12
    if how == "insert_gap":
        make_gap(rt, 7)  # positions 1..6, 8..13
    rt.runner.catch_up()
    early, _ = create_checkpoint(rt.engine, rt.checkpointer.signer)
    rt.app.register("target", a_target(), CTX)
    rt.app.register("target", a_target(), CTX)
    rt.runner.catch_up()
    late, _ = create_checkpoint(rt.engine, rt.checkpointer.signer)
    assert early is not None and late is not None and late.tree_size == early.tree_size + 2
    partner = saved_by_partner(tmp_path / "partner.cp", [early, late], as_notes=how in ("edit", "swap"))
    assert [(c.tree_size, c.root_hash) for c in partner] == [(early.tree_size, early.root_hash),
                                                             (late.tree_size, late.root_hash)]
    witness = Witness(WitnessKey.from_seed("hj-eeb.example/witness", bytes(range(32))), rt.checkpointer.signer.public,
                      tmp_path / "witness.json", store_proofs(rt))
    assert witness.judge(late).kind == "cosigned"
    assert verify(rt).ok

    if how == "insert_gap":
        insert_into_gap(rt, 7, 5)
    elif how == "truncate":
        truncate(rt, 11)  # the last three events
    else:
        tamper(rt, how, 5, 9)
    rebuilt = "rebuild" in cover or how == "truncate"  # a truncation trims the tree too (else the tree shows it)
    if "checkpoints" in cover:
        with rt.engine.begin() as conn:
            conn.execute(checkpoints.delete())
    if rebuilt:
        rebuild_audit_tree(rt)

    # audit verify on the store alone: blind exactly when the tree was rebuilt and the checkpoints deleted.
    alone = verify(rt)
    assert alone.ok == (rebuilt and "checkpoints" in cover), alone.lines()
    # audit verify with the partner's checkpoints: always caught.
    report = verify_log(rt.engine, events_table(rt.app), rt.checkpointer.signer.public, page=5, external=partner)
    assert not report.ok
    kinds = {f.kind for f in report.findings}
    if rebuilt and "checkpoints" in cover:
        assert kinds & {"external_mismatch", "external_beyond_log"}, report.lines()

    # The signer, holding the newest published checkpoint: refuses when the tree no longer extends it, and keeps
    # refusing until an operator acknowledges.
    var = tmp_path / "var"
    if rebuilt:
        with pytest.raises(SignerAlarmError):
            create_checkpoint(rt.engine, rt.checkpointer.signer, external=late, var_dir=var)
        assert ext.read_alarm(var) is not None
        with pytest.raises(SignerAlarmError, match="alarm is raised"):
            create_checkpoint(rt.engine, rt.checkpointer.signer, external=late, var_dir=var)
        with rt.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.max(checkpoints.c.tree_size))).scalar() in (None, late.tree_size)
        # What the old signer (checking only the rows left in the database) would sign, a witness refuses.
        if "checkpoints" in cover:
            forged, created = create_checkpoint(rt.engine, rt.checkpointer.signer)
            assert created and forged is not None
            verdict = witness.judge(forged)
            assert verdict.refused and verdict.kind in ("fork", "rollback"), verdict
    else:
        # The audit tree is intact: the signer goes on (the change is in events the tree recorded: verify sees it).
        create_checkpoint(rt.engine, rt.checkpointer.signer, external=late, var_dir=var)
        assert ext.read_alarm(var) is None
        assert witness.judge(late).kind == "seen"  # nothing new, nothing to refuse


def test_the_issue_case_rows_deleted_tree_rebuilt_server_restarted(rt: Runtime, tmp_path: Path) -> None:  # noqa: F811
    """Edit an event, rebuild the tree, delete the covering checkpoints, restart: nothing is signed, the alarm
    shows until acknowledged."""
    fill(rt)
    rt.runner.catch_up()
    published, _ = create_checkpoint(rt.engine, rt.checkpointer.signer)
    assert published is not None
    tamper(rt, "edit", 5, 0)
    rebuild_audit_tree(rt)
    with rt.engine.begin() as conn:
        conn.execute(checkpoints.delete().where(checkpoints.c.tree_size >= 5))
    restarted = Runtime(rt.settings).open(with_nats=False)
    try:
        restarted.app.register("target", a_target(), CTX)
        restarted.runner.catch_up()
        with pytest.raises(SignerAlarmError, match="not the one published"):
            restarted.checkpointer.checkpoint(published)
        with pytest.raises(SignerAlarmError, match="alarm is raised"):
            restarted.checkpointer.checkpoint(None)  # even without JetStream's copy now
        with rt.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(checkpoints)).scalar_one() == 0
        alarm = ext.acknowledge(rt.settings.var_dir, "operator", "restored from backup of 2025-03-01")
        assert alarm is not None and alarm["external_tree_size"] == published.tree_size
        # Acknowledged: that checkpoint is no longer held against the store.
        assert restarted.checkpointer.checkpoint(published) is not None
    finally:
        restarted.close()


def test_two_checkpoints_of_one_size_with_different_roots_are_a_fork(rt: Runtime, tmp_path: Path) -> None:  # noqa: F811
    fill(rt)
    rt.runner.catch_up()
    cp, _ = create_checkpoint(rt.engine, rt.checkpointer.signer)
    assert cp is not None
    other_root = bytes(32)
    from services.audit.checkpoints import body_text

    body = body_text(cp.origin, cp.tree_size, other_root, cp.time)
    forked = Checkpoint(cp.origin, cp.tree_size, other_root, cp.time, -1, body,
                        rt.checkpointer.signer.sign(body.encode()), cp.key_id)
    report = verify_log(rt.engine, events_table(rt.app), rt.checkpointer.signer.public, external=[forked])
    assert [f.kind for f in report.findings] == ["fork"]


def test_a_checkpoint_signed_by_another_key_is_reported_and_ignored(rt: Runtime) -> None:  # noqa: F811
    from services.audit.keys import Signer

    fill(rt)
    rt.runner.catch_up()
    cp, _ = create_checkpoint(rt.engine, Signer.from_seed(rt.checkpointer.signer.name, bytes(32)))
    assert cp is not None
    with rt.engine.begin() as conn:
        conn.execute(checkpoints.delete())
    report = verify_log(rt.engine, events_table(rt.app), rt.checkpointer.signer.public, external=[cp])
    assert [f.kind for f in report.findings] == ["external_signature"]


def test_verify_says_how_many_events_no_external_checkpoint_covers(rt: Runtime) -> None:  # noqa: F811
    fill(rt)
    rt.runner.catch_up()
    cp, _ = create_checkpoint(rt.engine, rt.checkpointer.signer)
    assert cp is not None
    for _ in range(3):
        rt.app.register("target", a_target(), CTX)
    rt.runner.catch_up()
    report = verify_log(rt.engine, events_table(rt.app), rt.checkpointer.signer.public, external=[cp])
    assert report.ok and report.uncovered_events == 3
    assert any("covers the last 3 events" in line for line in report.lines())
    assert verify_log(rt.engine, events_table(rt.app), rt.checkpointer.signer.public).uncovered_events is None


@pytest.mark.parametrize("text", ["{not json\n", "dualrandom/x\n1\nAAAA\n", '{"body": "x"}\n'])
def test_an_unreadable_checkpoint_file_is_refused_with_the_reason(tmp_path: Path, text: str) -> None:
    path = tmp_path / "cp.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ext.ExternalCheckpointError, match=str(path)):
        ext.load_file(path)


def test_the_cli_verifies_against_the_notes_a_partner_saved(rt: Runtime, database_url: str, tmp_path: Path) -> None:  # noqa: F811
    import os
    import subprocess
    import sys

    fill(rt, targets=4)
    rt.runner.catch_up()
    env = {**os.environ, "DUALRANDOM_DATABASE_URL": database_url, "DUALRANDOM_VAR_DIR": str(rt.settings.var_dir),
           "DUALRANDOM_RELAY_ENABLED": "false", "DUALRANDOM_LOG_LEVEL": "WARNING"}
    cli = [sys.executable, "-m", "services.cli", "audit"]
    out = subprocess.run([*cli, "checkpoint"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    saved = tmp_path / "saved.notes"
    saved.write_text(out.stdout.split("\n", 1)[1], encoding="utf-8")  # the signed note it printed
    tamper(rt, "edit", 3, 0)
    rebuild_audit_tree(rt)
    with rt.engine.begin() as conn:
        conn.execute(checkpoints.delete())
    blind = subprocess.run([*cli, "verify"], env=env, capture_output=True, text=True, timeout=60)
    assert blind.returncode == 0 and "OK" in blind.stdout, blind.stdout + blind.stderr
    caught = subprocess.run([*cli, "verify", "--checkpoints", str(saved)], env=env, capture_output=True, text=True,
                            timeout=60)
    assert caught.returncode == 1, caught.stdout + caught.stderr
    assert "external_mismatch: the log does not give the root of the checkpoint of size 8" in caught.stdout
    assert "BAD: first bad position between 1 and 8" in caught.stdout
    bad = subprocess.run([*cli, "verify", "--checkpoints", str(tmp_path / "missing")], env=env, capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "--checkpoints" in bad.stderr
    quiet = subprocess.run([*cli, "alarm"], env=env, capture_output=True, text=True, timeout=60)
    assert quiet.returncode == 0 and "no alarm" in quiet.stdout
    # The signing key from a file outside the data directory; inside it is refused.
    key_file = tmp_path / "keys" / "audit.key"
    key_file.parent.mkdir()
    key_file.write_text("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n", encoding="ascii")
    shown = subprocess.run([*cli, "key"], env={**env, "DUALRANDOM_AUDIT_SIGNING_KEY_FILE": str(key_file)},
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "public_key: A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=" in shown.stdout, shown.stderr
    inside = rt.settings.var_dir / "audit.key"
    inside.write_text(key_file.read_text(), encoding="ascii")
    refused = subprocess.run([*cli, "key"], env={**env, "DUALRANDOM_AUDIT_SIGNING_KEY_FILE": str(inside)},
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "inside the data directory" in refused.stderr, refused.stderr


def test_after_a_key_rotation_old_checkpoints_stay_verifiable_under_the_old_key(rt: Runtime) -> None:  # noqa: F811
    from dataclasses import replace

    fill(rt, targets=2)
    rt.runner.catch_up()
    old, _ = create_checkpoint(rt.engine, rt.checkpointer.signer)
    assert old is not None
    old_key = rt.checkpointer.signer.public
    settings = replace(rt.settings, audit_signing_key="AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
                       audit_previous_keys=(old_key.vkey,))
    rotated = Runtime(settings).open(with_nats=False)
    try:
        new_key = rotated.checkpointer.signer.public
        assert new_key.key_id != old_key.key_id and rotated.checkpointer.previous_keys == (old_key,)
        rotated.app.register("target", a_target(), CTX)
        rotated.runner.catch_up()
        new = rotated.checkpointer.checkpoint(old)  # the guard checks the published one under the old key
        assert new is not None and new.key_id == new_key.key_id.hex()
        assert ext.from_note(new.note).key_id == new_key.key_id.hex()  # the key id is in every note
        table = events_table(rotated.app)
        both = verify_log(rotated.engine, table, new_key, previous_keys=(old_key,), external=[old, new])
        assert both.ok, both.lines()
        only_new = verify_log(rotated.engine, table, new_key)
        assert [f.kind for f in only_new.findings] == ["signature"] and str(old.tree_size) in only_new.findings[0].message
    finally:
        rotated.close()


def test_a_checkpoint_not_signed_by_the_deployment_does_not_stop_the_signer(rt: Runtime, tmp_path: Path) -> None:  # noqa: F811
    from services.audit.checkpoints import body_text
    from services.audit.keys import Signer

    fill(rt, targets=2)
    rt.runner.catch_up()
    other = Signer.from_seed(rt.checkpointer.signer.name, bytes(32))
    body = body_text(other.name, 10**6, bytes(32), "2025-03-01T00:00:00Z")
    huge = Checkpoint(other.name, 10**6, bytes(32), "2025-03-01T00:00:00Z", 10**6, body, other.sign(body.encode()),
                      other.public.key_id.hex())
    cp, created = create_checkpoint(rt.engine, rt.checkpointer.signer, external=huge, var_dir=tmp_path / "var")
    assert created and cp is not None and ext.read_alarm(tmp_path / "var") is None
