"""Checkpoints held outside the database: read from a partner's file or from JetStream, and the signer's
alarm when the store no longer reproduces them.

A checkpoint file is either NDJSON (one JSON object a line: an item of ``/api/v1/audit/checkpoints`` or the body
of a message on ``dualrandom.audit.checkpoints``; only ``body`` and ``signature``, or ``note``, are read), or
C2SP signed notes one after another (``body``, an empty line, the signature line(s), then an empty line before
the next note). Only what is signed is trusted: the size, root and time come from the verified body.
"""

import asyncio
import base64
import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from services.audit.checkpoints import SUBJECT, Checkpoint, parse_body
from services.audit.keys import PublicKey

ALARM_FILE = "audit-signer-alarm.json"
ACK_FILE = "audit-signer-acknowledged.json"


class ExternalCheckpointError(ValueError):
    """A checkpoint from outside the database that cannot be read."""


def from_signed(body: str, signature: bytes, key_id: str) -> Checkpoint:
    """A checkpoint from its signed body (position unknown: -1)."""
    try:
        origin, size, root, time = parse_body(body)
    except ValueError as exc:
        raise ExternalCheckpointError(f"malformed checkpoint body: {exc}") from None
    return Checkpoint(origin, size, root, time, -1, body, signature, key_id)


def from_note(note: str) -> Checkpoint:
    """A checkpoint from a C2SP signed note; the signature line whose key name is the origin is the log's."""
    body, sep, sigs = note.partition("\n\n")
    if not sep:
        raise ExternalCheckpointError("a signed note needs an empty line between the body and its signatures")
    body += "\n"
    try:
        origin = parse_body(body)[0]
    except ValueError as exc:
        raise ExternalCheckpointError(f"malformed checkpoint body: {exc}") from None
    for line in sigs.split("\n"):
        if not line.startswith("\u2014 "):
            continue
        name, _, b64 = line[2:].partition(" ")
        if name != origin:
            continue  # a cosignature
        try:
            raw = base64.b64decode(b64, validate=True)
        except ValueError:
            raise ExternalCheckpointError("the signature line is not base64") from None
        if len(raw) != 68:
            raise ExternalCheckpointError("an Ed25519 note signature has 4 + 64 bytes")
        return from_signed(body, raw[4:], raw[:4].hex())
    raise ExternalCheckpointError(f"no signature line by {origin!r} in the note")


def from_json(item: dict[str, Any]) -> Checkpoint:
    """A checkpoint from a JSON object (an API item or a JetStream message body)."""
    if isinstance(item.get("body"), str) and isinstance(item.get("signature"), str):
        try:
            signature = base64.b64decode(item["signature"], validate=True)
        except ValueError:
            raise ExternalCheckpointError("signature: not base64") from None
        return from_signed(item["body"], signature, str(item.get("key_id", "")))
    if isinstance(item.get("note"), str):
        return from_note(item["note"])
    raise ExternalCheckpointError("a checkpoint object needs body and signature, or note")


def parse_text(text: str) -> list[Checkpoint]:
    """Every checkpoint of a file's text (NDJSON or signed notes one after another)."""
    stripped = text.lstrip()
    out: list[Checkpoint] = []
    if stripped.startswith("{"):
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ExternalCheckpointError(f"line {n}: not JSON ({exc.msg})") from None
            if not isinstance(item, dict):
                raise ExternalCheckpointError(f"line {n}: not a JSON object")
            try:
                out.append(from_json(item))
            except ExternalCheckpointError as exc:
                raise ExternalCheckpointError(f"line {n}: {exc}") from None
        return out
    blocks = [b for b in stripped.replace("\r\n", "\n").split("\n\n") if b.strip()]
    # a note is two blocks: its body, then its signature lines
    if len(blocks) % 2:
        raise ExternalCheckpointError("signed notes come as body, empty line, signature lines, empty line")
    for i in range(0, len(blocks), 2):
        out.append(from_note(blocks[i].strip("\n") + "\n\n" + blocks[i + 1].strip("\n") + "\n"))
    return out


def load_file(path: Path) -> list[Checkpoint]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ExternalCheckpointError(f"{path}: {exc}") from None
    try:
        return parse_text(text)
    except ExternalCheckpointError as exc:
        raise ExternalCheckpointError(f"{path}: {exc}") from None


async def fetch_jetstream(url: str, stream: str = "DUALRANDOM", *, last_only: bool = False,
                          timeout: float = 10.0) -> list[Checkpoint]:
    """The checkpoints on ``dualrandom.audit.checkpoints`` in the stream (all, or the newest only)."""
    import nats
    from nats.js.errors import NotFoundError

    nc = await nats.connect([u.strip() for u in url.split(",") if u.strip()], connect_timeout=5,
                            allow_reconnect=False, max_reconnect_attempts=1)
    try:
        js = nc.jetstream(timeout=timeout)
        if last_only:
            try:
                last = await js.get_last_msg(stream, SUBJECT)
            except NotFoundError:
                return []
            return [from_json(json.loads(last.data or b"{}"))]
        out: list[Checkpoint] = []
        try:
            info = await js.stream_info(stream, subjects_filter=SUBJECT)
        except NotFoundError:
            return []
        total = int((info.state.subjects or {}).get(SUBJECT, 0))
        if total == 0:
            return []
        sub = await js.subscribe(SUBJECT, stream=stream, ordered_consumer=True)
        try:
            while len(out) < total:
                msg = await sub.next_msg(timeout=timeout)
                out.append(from_json(json.loads(msg.data or b"{}")))
        finally:
            await sub.unsubscribe()
        return out
    finally:
        await nc.close()


def fetch_jetstream_sync(url: str, stream: str = "DUALRANDOM", *, last_only: bool = False) -> list[Checkpoint]:
    return asyncio.run(fetch_jetstream(url, stream, last_only=last_only))


# -- the signer's alarm -------------------------------------------------------------------------------------------
# Kept in files of the var directory, not in the database: whoever can rewrite the database could delete a row.
def read_alarm(var_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((var_dir / ALARM_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def raise_alarm(var_dir: Path, reason: str, external: Checkpoint | None) -> dict[str, Any]:
    existing = read_alarm(var_dir)
    if existing is not None:
        return existing
    alarm = {
        "since": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "reason": reason,
        "external_tree_size": external.tree_size if external else None,
        "external_root_hash": external.root_hash.hex() if external else None,
    }
    var_dir.mkdir(parents=True, exist_ok=True)
    tmp = var_dir / (ALARM_FILE + ".tmp")
    tmp.write_text(json.dumps(alarm, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, var_dir / ALARM_FILE)
    return alarm


def acknowledged(var_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((var_dir / ACK_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def acknowledge(var_dir: Path, operator: str, reason: str) -> dict[str, Any] | None:
    """Clear the alarm after an investigation: the external checkpoint it named is no longer held against the
    store (the signer may then sign the store's history as it is). Returns the cleared alarm (None: none)."""
    alarm = read_alarm(var_dir)
    if alarm is None:
        return None
    record = {**alarm, "acknowledged_by": operator, "acknowledged_reason": reason,
              "acknowledged_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    (var_dir / ACK_FILE).write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    (var_dir / ALARM_FILE).unlink(missing_ok=True)
    return alarm


def is_acknowledged(var_dir: Path, external: Checkpoint) -> bool:
    ack = acknowledged(var_dir)
    return bool(ack and ack.get("external_tree_size") == external.tree_size
                and ack.get("external_root_hash") == external.root_hash.hex())


def check_signature(cp: Checkpoint, key: PublicKey) -> str | None:
    """None when the checkpoint's body is signed by ``key``."""
    if cp.key_id and cp.key_id != key.key_id.hex():
        return f"signed with key {cp.key_id}, not {key.key_id.hex()}"
    if not key.verify(cp.body.encode("utf-8"), cp.signature):
        return "the signature does not match the body"
    return None
