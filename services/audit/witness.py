"""Witnesses: a partner agency's process that cosigns each checkpoint it has checked to extend the last one it
accepted, and the server's store of those cosignatures.

Cosignatures are C2SP tlog-cosignature ``cosignature/v1`` (Ed25519): the witness signs

    cosignature/v1\n
    time <POSIX seconds>\n
    <the checkpoint body, as signed by the log>

and its signature line is ``— <witness name> base64(key id || timestamp as 8 bytes big-endian || signature)``
with key id = SHA-256(<witness name> || 0x0A || 0x04 || 32-byte public key)[:4]. A witness key is given as a
vkey ``<name>+<key id hex>+base64(0x04 || public key)``. Published on ``dualrandom.audit.cosignatures.<department>``
(see docs/partners.md "Running a witness").
"""

import base64
import datetime as dt
import hashlib
import json
import os
import struct
import time as _time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy.engine import Connection, Engine

from domain.audit.merkle import verify_consistency
from services.audit.checkpoints import Checkpoint, metadata, parse_body
from services.audit.keys import PublicKey

COSIGNATURE_V1 = b"\x04"
SUBJECT_PREFIX = "dualrandom.audit.cosignatures"
COSIGNED_TYPE = "cn.gov.dualrandom.audit.cosignature.v1"
REFUSED_TYPE = "cn.gov.dualrandom.audit.witness_refusal.v1"

cosignatures = sa.Table(
    "audit_cosignatures",
    metadata,
    sa.Column("tree_size", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("key_id", sa.String(8), primary_key=True),
    sa.Column("witness", sa.String(200), nullable=False),
    sa.Column("department", sa.String(64), nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
    sa.Column("signature", sa.LargeBinary(64), nullable=False),
    sa.Column("body", sa.Text, nullable=False),  # the checkpoint body cosigned: stands without audit_checkpoints
)


def subject(department: str) -> str:
    return f"{SUBJECT_PREFIX}.{department}"


@dataclass(frozen=True)
class WitnessPublicKey:
    name: str
    raw: bytes

    @property
    def key_id(self) -> bytes:
        return hashlib.sha256(self.name.encode() + b"\n" + COSIGNATURE_V1 + self.raw).digest()[:4]

    @property
    def vkey(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(COSIGNATURE_V1 + self.raw).decode()}"

    @classmethod
    def parse(cls, vkey: str) -> "WitnessPublicKey":
        name, _, rest = vkey.strip().partition("+")
        kid, _, b64 = rest.partition("+")
        try:
            raw = base64.b64decode(b64, validate=True)
        except ValueError:
            raise ValueError(f"witness key {vkey!r}: not base64") from None
        if not name or raw[:1] != COSIGNATURE_V1 or len(raw) != 33:
            raise ValueError(f"witness key {vkey!r}: not a cosignature/v1 Ed25519 vkey (type byte 0x04)")
        key = cls(name, raw[1:])
        if key.key_id.hex() != kid:
            raise ValueError(f"witness key {vkey!r}: the key id does not match the name and key")
        return key

    def verify(self, body: str, timestamp: int, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, cosigned_message(body, timestamp))
        except (InvalidSignature, ValueError):
            return False
        return True


class WitnessKey:
    def __init__(self, name: str, private: Ed25519PrivateKey) -> None:
        self._private = private
        raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public = WitnessPublicKey(name, raw)

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> "WitnessKey":
        return cls(name, Ed25519PrivateKey.from_private_bytes(seed))

    def cosign(self, body: str, timestamp: int) -> bytes:
        return self._private.sign(cosigned_message(body, timestamp))


def cosigned_message(body: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n".encode() + body.encode("utf-8")


def signature_line(key: WitnessPublicKey, timestamp: int, signature: bytes) -> str:
    return f"\u2014 {key.name} " + base64.b64encode(key.key_id + struct.pack(">Q", timestamp) + signature).decode()


def parse_signature_line(line: str) -> tuple[str, str, int, bytes]:
    """(witness name, key id hex, timestamp, signature) of a cosignature line; ValueError when malformed."""
    if not line.startswith("\u2014 "):
        raise ValueError("a signature line starts with U+2014 and a space")
    name, _, b64 = line[2:].rstrip("\n").partition(" ")
    raw = base64.b64decode(b64, validate=True)
    if len(raw) != 4 + 8 + 64:
        raise ValueError("a cosignature/v1 signature has 4 + 8 + 64 bytes")
    return name, raw[:4].hex(), struct.unpack(">Q", raw[4:12])[0], raw[12:]


# -- the witness ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    kind: str  # cosigned | seen | stale | fork | rollback | bad_signature
    message: str
    line: str | None = None  # the cosignature line when cosigned
    timestamp: int | None = None

    @property
    def refused(self) -> bool:
        return self.kind in ("fork", "rollback", "bad_signature")


ProofSource = Callable[[int, int], dict[str, Any]]  # (first, second) -> /audit/proofs/consistency's answer


class ProofUnavailable(Exception):
    """The log cannot give a consistency proof between two sizes (its tree is smaller than asked)."""


class Witness:
    """Keeps the last checkpoint it accepted in a state file ({tree_size, root_hash, body}) and cosigns a new
    checkpoint only when a consistency proof shows that it extends that one."""

    def __init__(self, key: WitnessKey, log_key: PublicKey, state_file: Path, proofs: ProofSource,
                 clock: Callable[[], float] = _time.time) -> None:
        self.key = key
        self.log_key = log_key
        self.state_file = state_file
        self.proofs = proofs
        self.clock = clock

    def state(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return data if isinstance(data, dict) else None

    def _save(self, cp: Checkpoint) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(self.state_file.suffix + ".tmp")
        tmp.write_text(json.dumps({"tree_size": cp.tree_size, "root_hash": cp.root_hash.hex(), "body": cp.body,
                                   "accepted_at": dt.datetime.now(dt.UTC).isoformat()}), encoding="utf-8")
        os.replace(tmp, self.state_file)

    def _consistent(self, first: int, first_root: bytes, second: int, second_root: bytes) -> bool:
        answer = self.proofs(first, second)
        path = [bytes.fromhex(h) for h in answer["proof"]]
        return verify_consistency(first, second, first_root, second_root, path)

    def judge(self, cp: Checkpoint) -> Verdict:
        """Check ``cp`` against the state; cosign and keep it when it extends the state."""
        if cp.origin != self.log_key.name or not self.log_key.verify(cp.body.encode("utf-8"), cp.signature):
            return Verdict("bad_signature", f"the checkpoint of size {cp.tree_size} is not signed by "
                           f"{self.log_key.name} ({self.log_key.key_id.hex()})")
        try:
            parse_body(cp.body)
        except ValueError as exc:
            return Verdict("bad_signature", f"malformed checkpoint body: {exc}")
        state = self.state()
        if state is not None:
            old_size, old_root = int(state["tree_size"]), bytes.fromhex(state["root_hash"])
            if cp.tree_size == old_size:
                if cp.root_hash != old_root:
                    return Verdict("fork", f"two checkpoints of size {old_size} with different roots: "
                                   f"{old_root.hex()} (accepted) and {cp.root_hash.hex()} ({cp.time})")
                return Verdict("seen", f"the checkpoint of size {old_size} was cosigned already")
            if cp.tree_size < old_size:
                try:
                    ok = self._consistent(cp.tree_size, cp.root_hash, old_size, old_root)
                except ProofUnavailable as exc:
                    return Verdict("rollback", f"a checkpoint of size {cp.tree_size} after one of size {old_size} "
                                   f"was accepted, and the log cannot prove they are consistent ({exc}): "
                                   "the log was rolled back")
                if not ok:
                    return Verdict("fork", f"the checkpoint of size {cp.tree_size} ({cp.time}) is not a prefix of "
                                   f"the accepted one of size {old_size}")
                return Verdict("stale", f"the checkpoint of size {cp.tree_size} is older than the accepted one")
            try:
                ok = self._consistent(old_size, old_root, cp.tree_size, cp.root_hash)
            except ProofUnavailable as exc:
                return Verdict("fork", f"the log gives no consistency proof from the accepted size {old_size} to "
                               f"{cp.tree_size} ({exc})")
            if not ok:
                return Verdict("fork", f"the checkpoint of size {cp.tree_size} ({cp.time}) does not extend the "
                               f"accepted one of size {old_size}: the log was rewritten")
        timestamp = int(self.clock())
        line = signature_line(self.key.public, timestamp, self.key.cosign(cp.body, timestamp))
        self._save(cp)
        return Verdict("cosigned", f"cosigned the checkpoint of size {cp.tree_size}", line, timestamp)

    def message(self, cp: Checkpoint, verdict: Verdict, department: str) -> tuple[bytes, dict[str, str]]:
        """The NATS message of a cosignature or a refusal (CloudEvents 1.0, binary mode)."""
        kind = COSIGNED_TYPE if verdict.kind == "cosigned" else REFUSED_TYPE
        msg_id = f"{'cosignature' if verdict.kind == 'cosigned' else 'refusal'}:{self.key.public.name}:{cp.tree_size}"
        body: dict[str, Any] = {
            "witness": self.key.public.name, "key_id": self.key.public.key_id.hex(), "vkey": self.key.public.vkey,
            "department": department, "origin": cp.origin, "tree_size": cp.tree_size,
            "root_hash": cp.root_hash.hex(), "body": cp.body,
        }
        if verdict.kind == "cosigned":
            body |= {"timestamp": verdict.timestamp, "cosignature": verdict.line}
        else:
            body |= {"refused": verdict.kind, "reason": verdict.message}
        headers = {"Nats-Msg-Id": msg_id, "ce-specversion": "1.0", "ce-id": msg_id,
                   "ce-source": f"/dualrandom/witness/{department}", "ce-type": kind,
                   "ce-subject": str(cp.tree_size), "content-type": "application/json"}
        return json.dumps(body, ensure_ascii=False).encode("utf-8"), headers


# -- the server's store of cosignatures -----------------------------------------------------------------------------
def store_cosignature(engine: Engine, keys: list[WitnessPublicKey], message: dict[str, Any]) -> str | None:
    """Store a cosignature message when it verifies against a configured witness key and the checkpoint is
    ours; returns the witness name, or None (ignored: unknown key, bad signature, refusal)."""
    line = message.get("cosignature")
    body = message.get("body")
    if not isinstance(line, str) or not isinstance(body, str):
        return None
    try:
        name, key_id, timestamp, signature = parse_signature_line(line)
        _, size, root, _ = parse_body(body)
    except ValueError:
        return None
    key = next((k for k in keys if k.name == name and k.key_id.hex() == key_id), None)
    if key is None or not key.verify(body, timestamp, signature):
        return None
    with engine.begin() as conn:
        exists = conn.execute(sa.select(sa.func.count()).select_from(cosignatures).where(
            cosignatures.c.tree_size == size, cosignatures.c.key_id == key_id)).scalar_one()
        if not exists:
            conn.execute(cosignatures.insert().values(
                tree_size=size, key_id=key_id, witness=name, department=str(message.get("department", ""))[:64],
                timestamp=timestamp, root_hash=root, signature=signature, body=body))
    return name


def witnesses_of(conn: Connection, sizes: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The stored cosignatures of checkpoints of these sizes: {size: [{witness, department, key_id, timestamp,
    root_hash, signature}]}."""
    out: dict[int, list[dict[str, Any]]] = {s: [] for s in sizes}
    if not sizes:
        return out
    rows = conn.execute(sa.select(cosignatures).where(cosignatures.c.tree_size.in_(sizes))
                        .order_by(cosignatures.c.tree_size, cosignatures.c.witness)).all()
    for r in rows:
        out[int(r.tree_size)].append({
            "witness": r.witness, "department": r.department, "key_id": r.key_id, "timestamp": int(r.timestamp),
            "root_hash": bytes(r.root_hash).hex(), "signature": base64.b64encode(bytes(r.signature)).decode()})
    return out


def count_witnesses(cp: Checkpoint, stored: list[dict[str, Any]], keys: list[WitnessPublicKey]) -> list[str]:
    """Names of the distinct configured witnesses whose stored cosignature verifies for ``cp``."""
    names = []
    for c in stored:
        key = next((k for k in keys if k.key_id.hex() == c["key_id"] and k.name == c["witness"]), None)
        if key is not None and key.verify(cp.body, c["timestamp"], base64.b64decode(c["signature"])) \
                and key.name not in names:
            names.append(key.name)
    return names


def coverage_of(conn: Connection, rt: Any) -> dict[str, Any]:
    """The newest checkpoint, the newest witnessed one, and how far the log has grown since each."""
    from projections.audit.queries import tree_size
    from services.audit.checkpoints import checkpoints, from_row, latest
    from services.audit.external import read_alarm

    size = tree_size(conn)
    head = int(conn.execute(sa.text("SELECT max(id) FROM dualrandom_events")).scalar() or 0)
    newest = latest(conn)
    row = conn.execute(sa.select(checkpoints).where(checkpoints.c.tree_size.in_(
        sa.select(cosignatures.c.tree_size))).order_by(checkpoints.c.tree_size.desc()).limit(1)).first()
    witnessed = from_row(row) if row else None
    cosigned = witnesses_of(conn, [c.tree_size for c in (newest, witnessed) if c is not None])
    alarm = read_alarm(rt.settings.var_dir)
    return {
        "head": head, "tree_size": size,
        "latest_checkpoint": newest.view() | {"witnesses": cosigned[newest.tree_size]} if newest else None,
        "events_since": size - (newest.tree_size if newest else 0),
        "witnessed_checkpoint": witnessed.view() | {"witnesses": cosigned[witnessed.tree_size]} if witnessed else None,
        "events_since_witnessed": size - (witnessed.tree_size if witnessed else 0),
        "witness_keys": [k.vkey for k in rt.checkpointer.witness_keys],
        "signer_alarm": None if alarm is None else {"since": alarm.get("since"),
                                                    "external_tree_size": alarm.get("external_tree_size")},
    }


def witnessed_checkpoints(engine: Engine, keys: list[WitnessPublicKey], k: int) -> list[Checkpoint]:
    """The checkpoints (from the stored cosignatures' bodies, whatever is left of audit_checkpoints) that at
    least ``k`` distinct configured witnesses cosigned, by size. Their log signature is not kept here: the
    witnesses' cosignatures vouch for them."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(cosignatures).order_by(cosignatures.c.tree_size)).all()
    by_body: dict[str, set[str]] = {}
    for r in rows:
        key = next((x for x in keys if x.key_id.hex() == r.key_id and x.name == r.witness), None)
        if key is not None and key.verify(r.body, int(r.timestamp), bytes(r.signature)):
            by_body.setdefault(r.body, set()).add(key.name)
    out = []
    for body, names in by_body.items():
        if len(names) >= k:
            origin, size, root, time = parse_body(body)
            out.append(Checkpoint(origin, size, root, time, -1, body, b"", ""))
    return sorted(out, key=lambda c: c.tree_size)
