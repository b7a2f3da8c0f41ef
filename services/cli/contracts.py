"""Files generated from the contracts (``domain/contracts``): JSON Schemas, the AsyncAPI document, and checks.

``dualrandom contracts generate`` (or ``python -m services.cli.contracts generate``) writes
``docs/contracts/schemas/<Message>.json`` and ``docs/asyncapi.yaml``; ``check`` compares them with the code and
names every incompatible change (a field removed, a type changed, a new required field) of a message that kept
its version; ``scaffold`` prints message classes for the domain events that have none yet.
"""

import inspect
import json
import sys
import typing
from pathlib import Path
from typing import Any

import msgspec

from domain.contracts import REGISTRY, all_event_classes, missing_contracts
from domain.contracts.base import (
    Message,
    aggregate_events,
    aggregate_kind,
    domain_aggregates,
    event_fields,
    topic_of,
)

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = Path("docs/contracts/schemas")
ASYNCAPI = Path("docs/asyncapi.yaml")
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

STREAM_SUBJECTS = {
    "department": "dualrandom.{department}.{aggregate}.{event}",
    "shared": "dualrandom.shared.{aggregate}.{event}",
    "public": "dualrandom.public.{aggregate}.{event}",
}


# -- JSON Schema ---------------------------------------------------------------------------------------
def message_schema(message: type[Message], title: str = "") -> dict[str, Any]:
    """A self-contained JSON Schema (2020-12) of one message, ``$id`` = its CloudEvents ``dataschema``."""
    from domain.contracts.base import SCHEMA_URI_PREFIX

    (_schema,), components = msgspec.json.schema_components([message], ref_template="#/$defs/{name}")
    body = dict(components.pop(message.__name__))
    out: dict[str, Any] = {"$schema": JSON_SCHEMA_DIALECT, "$id": SCHEMA_URI_PREFIX + message.__name__}
    if title:
        out["x-cloudevents-type"] = title
    out.update(body)
    out.setdefault("properties", {})
    out.setdefault("required", [])
    if components:
        out["$defs"] = components
    return out


def schemas() -> dict[str, dict[str, Any]]:
    """Every message's schema (current and older versions, public forms too), by message name."""
    out: dict[str, dict[str, Any]] = {}
    for c in REGISTRY:
        out[c.name] = message_schema(c.message, c.type)
        if c.public is not None:
            out[c.public.__name__] = message_schema(c.public, c.public_type)
    return dict(sorted(out.items()))


def _dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=False) + "\n"


# -- compatibility -------------------------------------------------------------------------------------
def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _resolve(root.get("$defs", {})[ref.split("/")[-1]], root)
    return schema


def breaking_changes(
    old: dict[str, Any], new: dict[str, Any], path: str = "", old_root: dict[str, Any] | None = None,
    new_root: dict[str, Any] | None = None,
) -> list[str]:
    """What in ``new`` breaks a consumer written for ``old``: a property removed, a type changed, a property
    that became required (new or not). Adding an optional property, or a documentation change, is fine."""
    old_root, new_root = old_root or old, new_root or new
    o, n = _resolve(old, old_root), _resolve(new, new_root)
    where = path or "the message"
    problems: list[str] = []
    o_props, n_props = o.get("properties"), n.get("properties")
    if o_props is not None or n_props is not None:
        o_props, n_props = o_props or {}, n_props or {}
        for name in o_props:
            if name not in n_props:
                problems.append(f"{where}: field {name!r} was removed")
        for name in sorted(set(n.get("required", [])) - set(o.get("required", []))):
            problems.append(f"{where}: field {name!r} is now required")
        for name in o_props:
            if name in n_props:
                problems += breaking_changes(
                    o_props[name], n_props[name], f"{path}.{name}".lstrip("."), old_root, new_root
                )
        return problems
    keys = ("type", "anyOf", "items", "additionalProperties", "format", "enum", "const", "prefixItems")
    o_shape = {k: o.get(k) for k in keys}
    n_shape = {k: n.get(k) for k in keys}
    if o_shape != n_shape:
        if o.get("items") and n.get("items") and o.get("type") == n.get("type") == "array":
            return breaking_changes(o["items"], n["items"], f"{path}[]", old_root, new_root)
        problems.append(f"{where}: type changed from {json.dumps(o_shape_text(o))} to {json.dumps(o_shape_text(n))}")
    return problems


def o_shape_text(s: dict[str, Any]) -> Any:
    return {k: v for k, v in s.items() if k not in {"title", "description", "default", "examples"}}


def check(root: Path = ROOT) -> list[str]:
    """Problems between the code and the checked-in files (empty: all in step)."""
    problems: list[str] = []
    for topic in missing_contracts():
        problems.append(f"domain event {topic} has no contract in domain/contracts")
    generated = schemas()
    directory = root / SCHEMA_DIR
    checked_in = {p.stem: json.loads(p.read_text("utf-8")) for p in sorted(directory.glob("*.json"))}
    for name, old in checked_in.items():
        new = generated.get(name)
        if new is None:
            problems.append(f"{name}: a published message was removed (keep it, or keep its schema file)")
            continue
        for p in breaking_changes(old, new):
            problems.append(f"{name}: {p}: incompatible change without a new version (add {_next(name)})")
    for name, new in generated.items():
        if name not in checked_in:
            problems.append(f"{name}: no schema file: run `dualrandom contracts generate`")
        elif checked_in[name] != new and not any(p.startswith(f"{name}:") for p in problems):
            problems.append(f"{name}: schema file out of date: run `dualrandom contracts generate`")
    asyncapi_path = root / ASYNCAPI
    if not asyncapi_path.exists() or asyncapi_path.read_text("utf-8") != asyncapi_text():
        problems.append(f"{ASYNCAPI} is out of date: run `dualrandom contracts generate`")
    return problems


def _next(name: str) -> str:
    base, _, version = name.rpartition("V")
    return f"{base}V{int(version) + 1}" if version.isdigit() else f"{name}V2"


# -- AsyncAPI 3.0 --------------------------------------------------------------------------------------
def asyncapi(stream: str = "DUALRANDOM") -> dict[str, Any]:
    """The AsyncAPI 3.0 document: one channel per (subject family, message), one receive operation each."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schema_refs: dict[str, Any] = {}
    ce_headers = {
        "type": "object",
        "description": "CloudEvents 1.0 binary mode (NATS protocol binding): attributes as ce-* headers.",
        "required": ["ce-specversion", "ce-id", "ce-source", "ce-type", "ce-subject", "ce-time", "ce-position",
                     "Nats-Msg-Id"],
        "properties": {
            "ce-specversion": {"const": "1.0"},
            "ce-id": {"type": "string", "description": "event id (UUIDv5 of aggregate id and version); "
                      "the same on every copy: de-duplicate on it"},
            "ce-source": {"type": "string", "description": "/dualrandom/<deployment>/<department>"},
            "ce-type": {"type": "string"},
            "ce-subject": {"type": "string", "description": "aggregate id"},
            "ce-time": {"type": "string", "format": "date-time"},
            "ce-dataschema": {"type": "string", "description": "urn:dualrandom:schema:<Message>"},
            "ce-position": {"type": "string", "description": "extension: global log position (decimal)"},
            "ce-correlationid": {"type": "string", "description": "extension: the request that caused it"},
            "ce-causationid": {"type": "string", "description": "extension: the command or event that caused it"},
            "ce-aggregateversion": {"type": "string", "description": "extension: aggregate version (decimal)"},
            "content-type": {"const": "application/json", "description": "absent when the data is omitted"},
            "Nats-Msg-Id": {"type": "string", "description": "<ce-id>:<subject department>"},
            "ce-dataref": {"type": "string", "description": "extension (CloudEvents dataref), only when the data is "
                           "omitted: /api/v1/audit/events/<ce-position>/message on the deployment's API "
                           "(?form=public on dualrandom.public.>) serves the message's exact bytes"},
            "Dualrandom-Data-Omitted": {"const": "too-large", "description": "only when the message was too large "
                                        "for the NATS server: the body is empty, fetch the data at ce-dataref"},
        },
    }
    for agg in domain_aggregates():
        kind = aggregate_kind(agg)
        for ev in aggregate_events(agg):
            c = REGISTRY.current(topic_of(ev))
            if c is None:
                continue
            forms = [(c.name, c.message, c.type_for(kind))]
            if c.public is not None:
                forms.append((c.public.__name__, c.public, c.public_type_for(kind)))
            for name, message, _ce_type in forms:
                schema_refs[name] = {"$ref": f"contracts/schemas/{name}.json"}
                messages.setdefault(name, {
                    "name": name,
                    "title": name,
                    "summary": ((message.__doc__ or "").strip().splitlines() or [name])[0],
                    "contentType": "application/json",
                    "headers": {"$ref": "#/components/schemas/CloudEventHeaders"},
                    "payload": {"$ref": f"#/components/schemas/{name}"},
                })
            event = c.event
            ch = f"{kind}_{event}"
            if kind == "target":
                channels[ch] = {"address": STREAM_SUBJECTS["shared"].format(aggregate=kind, event=event)}
            else:
                channels[ch] = {
                    "address": f"dualrandom.{{department}}.{kind}.{event}",
                    "parameters": {"department": {"description": "department code: its owner, or each department "
                                                                "of a joint task (one copy each, same ce-id)"}},
                }
            channels[ch]["description"] = f"CloudEvents type {c.type_for(kind)}"
            channels[ch]["messages"] = {c.name: {"$ref": f"#/components/messages/{c.name}"}}
            operations[f"receive_{ch}"] = {
                "action": "receive", "channel": {"$ref": f"#/channels/{ch}"},
                "messages": [{"$ref": f"#/channels/{ch}/messages/{c.name}"}],
            }
            if c.public is not None:
                pname = c.public.__name__
                pch = f"public_{ch}"
                channels[pch] = {
                    "address": STREAM_SUBJECTS["public"].format(aggregate=kind, event=event),
                    "description": f"CloudEvents type {c.public_type_for(kind)} (redacted public form)",
                    "messages": {pname: {"$ref": f"#/components/messages/{pname}"}},
                }
                operations[f"receive_{pch}"] = {
                    "action": "receive", "channel": {"$ref": f"#/channels/{pch}"},
                    "messages": [{"$ref": f"#/channels/{pch}/messages/{pname}"}],
                }
    channels["audit_checkpoints"] = {
        "address": "dualrandom.audit.checkpoints",
        "description": "signed audit checkpoints (type cn.gov.dualrandom.audit.checkpoint.v1); see docs/auditing.md",
        "messages": {"AuditCheckpointV1": {"$ref": "#/components/messages/AuditCheckpointV1"}},
    }
    operations["receive_audit_checkpoints"] = {
        "action": "receive", "channel": {"$ref": "#/channels/audit_checkpoints"},
        "messages": [{"$ref": "#/channels/audit_checkpoints/messages/AuditCheckpointV1"}],
    }
    messages["AuditCheckpointV1"] = {
        "name": "AuditCheckpointV1", "title": "cn.gov.dualrandom.audit.checkpoint.v1",
        "contentType": "application/json", "payload": {"type": "object"},
    }
    channels["audit_cosignatures"] = {
        "address": "dualrandom.audit.cosignatures.{department}",
        "parameters": {"department": {"description": "the witness's department code (its NATS user publishes "
                                                     "only its own)"}},
        "description": "partner witnesses' C2SP cosignature/v1 cosignatures of checkpoints (type "
        "cn.gov.dualrandom.audit.cosignature.v1) and refusals (cn.gov.dualrandom.audit.witness_refusal.v1); "
        "see docs/partners.md, Running a witness",
        "messages": {name: {"$ref": f"#/components/messages/{name}"}
                     for name in ("AuditCosignatureV1", "AuditWitnessRefusalV1")},
    }
    operations["send_audit_cosignatures"] = {
        "action": "send", "channel": {"$ref": "#/channels/audit_cosignatures"},
        "messages": [{"$ref": f"#/channels/audit_cosignatures/messages/{name}"}
                     for name in ("AuditCosignatureV1", "AuditWitnessRefusalV1")],
    }
    messages["AuditCosignatureV1"] = {
        "name": "AuditCosignatureV1", "title": "cn.gov.dualrandom.audit.cosignature.v1",
        "contentType": "application/json", "payload": {"type": "object"},
    }
    messages["AuditWitnessRefusalV1"] = {
        "name": "AuditWitnessRefusalV1", "title": "cn.gov.dualrandom.audit.witness_refusal.v1",
        "contentType": "application/json", "payload": {"type": "object"},
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "dualrandom partner events",
            "version": "1.0.0",
            "description": (
                f"Every event of the dualrandom log, published by the relay to the JetStream stream {stream} "
                "(subjects dualrandom.>) as CloudEvents 1.0 in binary mode. A department reads its own "
                "subject dualrandom.<code>.>, the shared target directory dualrandom.shared.>, published "
                "results dualrandom.public.> and audit checkpoints dualrandom.audit.>, through its own durable "
                "pull consumers. Generated by `dualrandom contracts generate`: do not edit. See docs/partners.md."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "production": {"host": "nats.example.gov.cn:4222", "protocol": "nats",
                           "description": "3-node JetStream cluster, R3 stream (deploy/nats/cluster)"},
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": {"CloudEventHeaders": ce_headers, **schema_refs},
            "messages": messages,
        },
    }


def asyncapi_text() -> str:
    import yaml

    head = "# Generated by `dualrandom contracts generate` from domain/contracts: do not edit.\n"
    return head + yaml.safe_dump(asyncapi(), sort_keys=False, allow_unicode=True, width=110)


def generate(root: Path = ROOT) -> list[Path]:
    """Write every schema (never deleting one) and the AsyncAPI document; returns the files written."""
    directory = root / SCHEMA_DIR
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in schemas().items():
        path = directory / f"{name}.json"
        text = _dump(schema)
        if not path.exists() or path.read_text("utf-8") != text:
            path.write_text(text, "utf-8")
            written.append(path)
    path = root / ASYNCAPI
    text = asyncapi_text()
    if not path.exists() or path.read_text("utf-8") != text:
        path.write_text(text, "utf-8")
        written.append(path)
    return written


# -- scaffold ------------------------------------------------------------------------------------------
def _type_text(t: Any) -> str:
    if t is type(None):
        return "None"
    if t is Any:
        return "Any"
    origin = typing.get_origin(t)
    if origin in (typing.Union, __import__("types").UnionType):
        return " | ".join(_type_text(a) for a in typing.get_args(t))
    if origin is not None:
        args = ", ".join(_type_text(a) for a in typing.get_args(t))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if isinstance(t, type):
        return t.__name__
    return repr(t).replace("typing.", "")


def scaffold(events: list[type] | None = None) -> str:
    """Python source of ``V1`` messages for domain events (default: those without a contract), grouped by
    domain module, with the imports a new ``domain/contracts`` module needs."""
    todo = events if events is not None else [e for e in all_event_classes() if REGISTRY.current(topic_of(e)) is None]
    by_module: dict[str, list[type]] = {}
    for ev in todo:
        by_module.setdefault(ev.__module__, []).append(ev)
    out: list[str] = []
    for module, evs in by_module.items():
        aggregates = sorted({ev.__qualname__.split(".")[0] for ev in evs})
        lines = [f"# ---- for {module} ----", "from typing import Any", "",
                 "from domain.contracts.base import Message, contract",
                 f"from {module} import {', '.join(aggregates)}"]
        for ev in evs:
            agg, name = ev.__qualname__.split(".")[-2:]
            lines += ["", "", f"@contract({agg}.{name})", f"class {agg}{name}V1(Message):"]
            doc = inspect.getdoc(ev) or ""
            fields = event_fields(ev)
            if doc and not doc.startswith(f"{name}("):
                lines.append(f'    """{doc.splitlines()[0]}"""')
                if fields:
                    lines.append("")
            elif not fields:
                lines.append("    pass")
            for fname, ftype in fields.items():
                lines.append(f"    {fname}: {_type_text(ftype)}")
        out.append("\n".join(lines) + "\n")
    return "\n\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "check"
    if command == "generate":
        for p in generate():
            print(f"wrote {p.relative_to(ROOT)}")
        return 0
    if command == "scaffold":
        print(scaffold(), end="")
        return 0
    problems = check()
    for problem in problems:
        print(problem)
    return 1 if problems else 0


__all__ = ["asyncapi", "breaking_changes", "check", "generate", "message_schema", "scaffold", "schemas"]

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
