"""The worked cosignature example in docs/partners.md is what the witness computes, and verifies."""

import base64
import json
import re
from pathlib import Path

from services.audit.witness import WitnessKey, WitnessPublicKey, cosigned_message, parse_signature_line

DOC = Path(__file__).resolve().parents[2] / "docs" / "partners.md"


def example() -> dict[str, object]:
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"<!-- cosignature-example:start -->\n```json\n(.*?)```\n<!-- cosignature-example:end -->",
                      text, re.S)
    assert block is not None
    return json.loads(block.group(1))


def test_the_documented_cosignature_is_reproduced_byte_for_byte() -> None:
    ex = example()
    key = WitnessKey.from_seed(str(ex["witness_name"]), bytes(range(1, 33)))
    assert base64.b64encode(key.public.raw).decode() == ex["public_key"]
    assert key.public.key_id.hex() == ex["key_id"] and key.public.vkey == ex["vkey"]
    body, ts = str(ex["checkpoint_body"]), int(ex["timestamp"])  # type: ignore[call-overload]
    assert cosigned_message(body, ts).decode() == ex["signed_message"]
    sig = key.cosign(body, ts)  # Ed25519 is deterministic
    assert base64.b64encode(sig).decode() == ex["signature"]
    name, key_id, stamp, parsed = parse_signature_line(str(ex["cosignature_line"]))
    assert (name, key_id, stamp, parsed) == (ex["witness_name"], ex["key_id"], ts, sig)


def test_the_documented_vkey_verifies_and_refuses_a_changed_body() -> None:
    ex = example()
    public = WitnessPublicKey.parse(str(ex["vkey"]))
    body, ts = str(ex["checkpoint_body"]), int(ex["timestamp"])  # type: ignore[call-overload]
    sig = base64.b64decode(str(ex["signature"]))
    assert public.verify(body, ts, sig)
    assert not public.verify(body.replace("\n3\n", "\n4\n"), ts, sig)
    assert not public.verify(body, ts + 1, sig)
