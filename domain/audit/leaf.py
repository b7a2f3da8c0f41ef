"""Audit leaves: each stored event's envelope, its leaf bytes and hash (pure; the store is read in
``services.audit.log``).

The envelope of the event stored at ``position`` is the JSON object

    {"position": <int>, "aggregate_id": "<uuid, lower-case, hyphenated>", "version": <int>,
     "topic": "<topic column>", "time": "<the stored timestamp, ISO 8601 text as stored>",
     "meta": <the stored "_meta" object, {} when absent>,
     "data": <the stored state object without "timestamp" and "_meta">}

taken from the store's columns and its ``state`` JSON (custom types keep their stored form, e.g.
``{"_type_": "uuid_hex", "_data_": "..."}``). Its leaf bytes are the RFC 8785 form of the envelope and its leaf
hash is SHA-256(0x00 || leaf bytes). The leaf commits to the position, so moving, removing or inserting an
event changes the leaves, not only editing one.
"""

import json
import re
import uuid
from typing import Any

import msgspec

from domain.audit.canonical import SAFE_INT, CanonicalFormError, canonicalize, canonicalize_plain
from domain.audit.merkle import leaf_hash

ENVELOPE_KEYS = ("position", "aggregate_id", "version", "topic", "time", "meta", "data")
_META_FIELDS = ("actor", "department", "role", "correlation_id", "causation_id", "command")


class _Float(Exception):
    pass


def _no_floats(_: str) -> float:
    raise _Float


_DECODE = msgspec.json.Decoder(float_hook=_no_floats)


def _fast_table() -> bytes:
    """One byte per byte value, so that a single ``translate`` shows what the fast path must avoid but escapes:
    ``!`` a byte that starts a character beyond the BMP in UTF-8 (four bytes: a member name with one sorts
    differently by UTF-16 code units, as surrogates, than by code points; BMP characters sort alike both ways,
    and an encoded surrogate is not UTF-8, which the decoder refuses), and ``:`` + 16 ``0`` an integer of 16+
    digits after a separator, white space or a minus sign (it may be beyond 2^53). Conservative: the same in a
    string only sends the event to the careful path. A ``\\u`` escape (it may spell either) is looked for in the
    bytes themselves (``_fast_ok``)."""
    table = bytearray(b"x" * 256)
    for b in b"0123456789":
        table[b] = ord("0")
    for b in b":,[ \t\n\r-":
        table[b] = ord(":")
    for b in range(0xF0, 256):
        table[b] = ord("!")
    return bytes(table)


_FAST_TABLE = _fast_table()
_LONG_INT = b":" + b"0" * 16


def _fast_ok(raw: bytes) -> bool:
    """Whether the fast canonical form is known to be right for these stored bytes (see ``_fast_table``). An escape
    needs a backslash: most states have none, and a search for one byte is the quickest there is."""
    shape = raw.translate(_FAST_TABLE)
    return b"!" not in shape and _LONG_INT not in shape and (b"\\" not in raw or b"\\u" not in raw)


def _decode(position: int, state: bytes | str) -> tuple[Any, bool]:
    """The stored state as JSON, and whether the fast canonical form is known to be right for it."""
    raw = state.encode("utf-8", "surrogatepass") if isinstance(state, str) else state
    try:
        return _DECODE.decode(raw), _fast_ok(raw)
    except _Float:
        pass
    except msgspec.DecodeError:
        pass  # json.loads decides (and says why it is not JSON)
    try:
        return json.loads(raw), False
    except (ValueError, UnicodeDecodeError) as exc:
        raise CanonicalFormError(f"position {position}: the stored state is not JSON ({exc})") from None


def envelope(position: int, aggregate_id: Any, version: int, topic: str, state: bytes | str) -> dict[str, Any]:
    """The envelope of one stored event; CanonicalFormError when its state is not an event's JSON."""
    return _envelope(position, aggregate_id, version, topic, _decode(position, state)[0])


def _envelope(position: int, aggregate_id: Any, version: int, topic: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise CanonicalFormError(f"position {position}: the stored state is not a JSON object")
    stamp = body.get("timestamp")
    if not (isinstance(stamp, dict) and stamp.get("_type_") == "datetime_iso" and isinstance(stamp.get("_data_"), str)
            and len(stamp) == 2):
        raise CanonicalFormError(f"position {position}: the stored state has no timestamp")
    data = {k: v for k, v in body.items() if k != "timestamp" and k != "_meta"}
    return {
        "position": position,
        "aggregate_id": _id_text(aggregate_id),
        "version": version,
        "topic": topic,
        "time": stamp["_data_"],
        "meta": body.get("_meta", {}),
        "data": data,
    }


def leaf_bytes(env: dict[str, Any]) -> bytes:
    """RFC 8785 bytes of an envelope (only its seven keys count)."""
    return canonicalize({k: env[k] for k in ENVELOPE_KEYS})


def record_leaf(position: int, aggregate_id: Any, version: int, topic: str, state: bytes | str) -> bytes:
    """The leaf hash of a stored event (the hot path of the audit projection and ``audit verify``).

    The usual event (bytes that ``_fast_ok`` passes, a JSON object without floats, the store's timestamp) is
    hashed without building the envelope apart: its decoded state becomes the envelope's ``data`` once the
    timestamp and ``_meta`` are taken out, and the encoder sorts the seven keys. Anything else takes the careful
    path below, which says why an event has no leaf."""
    if type(state) is bytes and type(version) is int and version < SAFE_INT and _fast_ok(state):
        try:
            body = _DECODE.decode(state)
        except (_Float, msgspec.DecodeError):
            body = None
        if type(body) is dict:
            stamp = body.pop("timestamp", None)
            if type(stamp) is dict and len(stamp) == 2 and stamp.get("_type_") == "datetime_iso":
                time = stamp.get("_data_")
                if type(time) is str:
                    try:
                        return leaf_hash(canonicalize_plain({
                            "aggregate_id": _id_text(aggregate_id), "data": body, "meta": body.pop("_meta", {}),
                            "position": position, "time": time, "topic": topic, "version": version,
                        }))
                    except CanonicalFormError:
                        pass  # the careful path says why
    body, plain = _decode(position, state)
    env = _envelope(position, aggregate_id, version, topic, body)
    return leaf_hash(canonicalize_plain(env) if plain and type(version) is int and version < SAFE_INT else canonicalize(env))


def event_type(topic: str) -> str:
    """``domain.directory:Target.RiskClassChanged`` -> ``risk_class_changed`` (like ``event_name``)."""
    name = topic.rpartition(":")[2].rpartition(".")[2]
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def aggregate_kind(topic: str, meta: Any) -> str:
    if isinstance(meta, dict):
        aggregate = meta.get("aggregate")
        if isinstance(aggregate, str):
            return aggregate
    path = topic.rpartition(":")[2].split(".")
    return (path[-2] if len(path) > 1 else path[0]).lower()


def audit_item(env: dict[str, Any], with_leaf: bool = True) -> dict[str, Any]:
    """What an auditor reads about one event: the envelope (hashable as is) plus its metadata spelled out."""
    meta = env["meta"] if isinstance(env["meta"], dict) else {}
    item: dict[str, Any] = {
        "position": env["position"],
        "aggregate_id": env["aggregate_id"],
        "aggregate_kind": aggregate_kind(env["topic"], meta),
        "version": env["version"],
        "type": event_type(env["topic"]),
        "time": env["time"],
        **{f: meta.get(f) for f in _META_FIELDS},
        "topic": env["topic"],
        "meta": env["meta"],
        "data": env["data"],
    }
    if with_leaf:
        item["leaf_hash"] = leaf_hash(leaf_bytes(env)).hex()
    return item


def record_item(position: int, aggregate_id: Any, version: int, topic: str, state: bytes | str) -> dict[str, Any]:
    """The audit item of a stored event; an undecodable one is shown as such (it fails ``audit verify``)."""
    try:
        return audit_item(envelope(position, aggregate_id, version, topic, state))
    except CanonicalFormError as exc:
        raw = state.decode("utf-8", "replace") if isinstance(state, bytes) else state
        return {"position": position, "aggregate_id": _id_text(aggregate_id), "version": version,
                "topic": topic, "error": str(exc), "state": raw}


_CANONICAL_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z").match


def _id_text(value: Any) -> str:
    """``str(uuid)`` of an aggregate id: a text already in that form as it is (the runner reads ids as text on
    PostgreSQL), anything else through ``_uuid``."""
    if type(value) is str and _CANONICAL_ID(value):
        return value
    return str(_uuid(value))


def _uuid(value: Any) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return uuid.UUID(bytes=bytes(value))
    return uuid.UUID(str(value))
