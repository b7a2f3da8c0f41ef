"""The checkpoint signing key: from DUALRANDOM_AUDIT_SIGNING_KEY or generated once into var/, kept private."""

import base64
import os
from dataclasses import replace
from pathlib import Path

import pytest

from services.audit.checkpoints import Checkpoint, body_text, parse_body
from services.audit.keys import KEY_FILE, PublicKey, load_signer
from services.infra.settings import Settings, SettingsError


def test_the_key_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    first = load_signer(Settings(var_dir=tmp_path))
    again = load_signer(Settings(var_dir=tmp_path))
    assert first.public == again.public and first.name == "dualrandom/xinxiang-huojia"
    assert oct(os.stat(tmp_path / KEY_FILE).st_mode & 0o777) == "0o600"


def test_the_key_from_the_environment_is_used_and_never_shown(tmp_path: Path) -> None:
    seed = base64.b64encode(bytes(range(32))).decode()
    settings = Settings.from_env({"DUALRANDOM_AUDIT_SIGNING_KEY": seed, "DUALRANDOM_VAR_DIR": str(tmp_path)})
    assert seed not in repr(settings)
    signer = load_signer(settings)
    assert signer.public.view()["public_key"] == "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="
    assert not (tmp_path / KEY_FILE).exists()


@pytest.mark.parametrize("bad", ["short", base64.b64encode(b"x" * 31).decode(), "!!!!"])
def test_a_wrong_signing_key_is_named_in_one_line(bad: str) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"DUALRANDOM_AUDIT_SIGNING_KEY": bad})
    assert str(err.value).startswith("DUALRANDOM_AUDIT_SIGNING_KEY:") and "\n" not in str(err.value)


def test_a_checkpoint_signed_by_another_key_or_edited_does_not_verify(tmp_path: Path) -> None:
    ours = load_signer(Settings(var_dir=tmp_path / "a"))
    theirs = load_signer(replace(Settings(var_dir=tmp_path / "b"), deployment="elsewhere"))
    body = body_text(ours.name, 7, b"\x01" * 32, "2025-03-01T00:00:00Z")
    cp = Checkpoint(ours.name, 7, b"\x01" * 32, "2025-03-01T00:00:00Z", 9, body, ours.sign(body.encode()),
                    ours.public.key_id.hex())
    assert cp.verify(ours.public) is None
    assert "not the deployment key" in (cp.verify(theirs.public) or "")
    forged = replace(cp, body=body.replace("\n7\n", "\n8\n"))
    assert forged.verify(ours.public) == "the signature does not match the body"
    assert replace(cp, tree_size=8).verify(ours.public) == "the stored columns differ from the signed body"
    assert parse_body(body) == (ours.name, 7, b"\x01" * 32, "2025-03-01T00:00:00Z")
    for bad in ("x\n", body.replace("time ", "when "), body.replace("\n7\n", "\n07\n")):
        with pytest.raises(ValueError):
            parse_body(bad)
    assert PublicKey.parse(ours.public.view()["public_key_hex"], ours.name) == ours.public
