"""The worked example of verifying the log (docs/auditing.md) holds: recomputed here from its own numbers, the way an
auditor would (hashlib and an Ed25519 library), and with the project's own code."""

import base64
import hashlib
import json
import re
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from domain.audit.canonical import canonicalize
from domain.audit.leaf import leaf_bytes
from domain.audit.merkle import leaf_hash, verify_inclusion
from services.audit.checkpoints import body_text, parse_body
from services.audit.keys import PublicKey, Signer

README = Path(__file__).parents[2] / "docs" / "auditing.md"


def example() -> dict:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- verify-example:start -->\s*```json\n(.*?)```\s*<!-- verify-example:end -->", text, re.S)
    assert block, "docs/auditing.md: the worked example block is missing"
    return json.loads(block.group(1))


def test_the_worked_example_verifies_by_hand() -> None:
    ex = example()
    raw = ex["leaf_bytes"].encode("utf-8")
    leaf = hashlib.sha256(b"\x00" + raw).digest()
    assert leaf.hex() == ex["leaf_hash"]
    (sibling,) = [bytes.fromhex(p) for p in ex["proof"]]
    root = hashlib.sha256(b"\x01" + sibling + leaf).digest()
    assert root.hex() == ex["root_hash"]
    # The sibling is the parent of the RFC 6962 test leaves "" and "00".
    assert sibling == hashlib.sha256(b"\x01" + hashlib.sha256(b"\x00").digest() + hashlib.sha256(b"\x00\x00").digest()).digest()
    body = ex["checkpoint_body"]
    Ed25519PublicKey.from_public_bytes(base64.b64decode(ex["public_key"])).verify(
        base64.b64decode(ex["signature"]), body.encode("utf-8")
    )
    assert body.split("\n")[1:3] == [str(ex["tree_size"]), base64.b64encode(root).decode()]


def test_the_worked_example_is_what_the_code_produces() -> None:
    ex = example()
    assert canonicalize(ex["envelope"]) == leaf_bytes(ex["envelope"]) == ex["leaf_bytes"].encode("utf-8")
    leaf = leaf_hash(ex["leaf_bytes"].encode())
    proof = [bytes.fromhex(p) for p in ex["proof"]]
    assert verify_inclusion(ex["leaf_index"], ex["tree_size"], leaf, proof, bytes.fromhex(ex["root_hash"]))
    signer = Signer.from_seed("dualrandom/example", bytes(range(32)))
    body = body_text("dualrandom/example", ex["tree_size"], bytes.fromhex(ex["root_hash"]), "2025-03-01T02:00:10Z")
    assert body == ex["checkpoint_body"] and parse_body(body)[1] == 3
    assert base64.b64encode(signer.sign(body.encode())).decode() == ex["signature"]  # Ed25519 is deterministic
    assert signer.public.key_id.hex() == ex["key_id"]
    assert PublicKey.parse(signer.public.vkey, "").raw == base64.b64decode(ex["public_key"])
