"""Contracts: every domain event has a versioned message, released messages never change incompatibly, the
checked-in JSON Schemas and AsyncAPI document are generated from the code, and the relay's envelopes follow
CloudEvents 1.0 (one copy per department concerned, a redacted public form when the contract declares one)."""

import ast
import json
import re
import sys
import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from domain.contracts import (
    REGISTRY,
    Message,
    Registry,
    all_event_classes,
    contract,
    missing_contracts,
    topic_of,
)
from domain.contracts.base import event_fields
from domain.directory import Target
from services.cli import contracts as contracts_gen
from services.infra.relay import ContractError, build_messages, event_id

ROOT = Path(__file__).resolve().parents[2]
CE_EXTENSION = re.compile(r"^[a-z0-9]{1,20}$")
CE_REQUIRED = {"ce-specversion", "ce-id", "ce-source", "ce-type"}
CE_STANDARD = CE_REQUIRED | {"ce-subject", "ce-time", "ce-dataschema"}


def test_every_domain_event_class_has_a_contract() -> None:
    events = all_event_classes()
    topics = {topic_of(e) for e in events}
    # The walk finds every aggregate of the domain package, including those of base classes' methods.
    assert "domain.directory:Target.Registered" in topics
    assert "domain.directory:DirectoryEntry.DetailsUpdated" in topics
    assert "domain.planning.plan:AnnualPlan.EntryAdded" in topics
    assert len(events) >= 30
    assert missing_contracts() == [], "add a contract in domain/contracts (see its docstring)"


def test_an_event_without_a_contract_is_reported() -> None:
    from eventsourcing.domain import Aggregate, event

    class Probe(Aggregate):
        class Poked(Aggregate.Event):
            how: str

        @event(Poked)
        def poke(self, how: str) -> None:
            pass

    from domain.contracts.base import aggregate_events

    assert "Probe.Poked" in {e.__qualname__.split("<locals>.")[-1] for e in aggregate_events(Probe)}
    assert REGISTRY.current(topic_of(Probe.Poked)) is None


def test_each_message_carries_exactly_the_fields_of_its_event() -> None:
    for ev in all_event_classes():
        c = REGISTRY.current(topic_of(ev))
        assert c is not None
        fields = {f.name for f in msgspec.structs.fields(c.message)}
        if c.convert is None:
            assert fields == set(event_fields(ev)), f"{c.name} and {topic_of(ev)} have different fields"
        else:  # a directory Registered event keeps the fields in ``data``: the kind's field spec
            aggregate = getattr(sys.modules[ev.__module__], ev.__qualname__.split(".")[0])
            spec = set(aggregate.SPEC.fields)
            assert fields == spec, f"{c.name} differs from the field spec"


def test_message_names_follow_aggregate_event_version() -> None:
    for c in REGISTRY:
        assert re.fullmatch(r"[A-Z][A-Za-z0-9]+V[1-9][0-9]*", c.name)
        assert c.type == f"cn.gov.dualrandom.{c.aggregate}.{c.event}.v{c.version}"
        assert c.dataschema == f"urn:dualrandom:schema:{c.name}"
    with pytest.raises(TypeError, match="TargetTaggedV<n>"):
        contract(Target.Tagged, registry=Registry())(type("TagAddedV1", (Message,), {"__annotations__": {"tag": str}}))


def test_checked_in_schemas_and_asyncapi_are_generated_from_the_code() -> None:
    assert contracts_gen.check(ROOT) == [], "run `dualrandom contracts generate` (or add a new version)"
    files = {p.stem for p in (ROOT / "docs/contracts/schemas").glob("*.json")}
    assert files == set(contracts_gen.schemas())
    schema = json.loads((ROOT / "docs/contracts/schemas/TargetRegisteredV1.json").read_text("utf-8"))
    assert schema["$id"] == "urn:dualrandom:schema:TargetRegisteredV1"
    assert "credit_code" in schema["required"]


def test_the_asyncapi_document_lists_every_message_and_subject() -> None:
    doc = yaml.safe_load((ROOT / "docs/asyncapi.yaml").read_text("utf-8"))
    assert doc["asyncapi"].startswith("3.")
    current = {c.name for c in REGISTRY if REGISTRY.current(c.event_topic) is c}
    assert current <= set(doc["components"]["messages"])
    addresses = {ch["address"] for ch in doc["channels"].values()}
    assert "dualrandom.shared.target.registered" in addresses
    assert "dualrandom.{department}.inspector.details_updated" in addresses
    assert "dualrandom.{department}.task.targets_drawn" in addresses
    for ch in doc["channels"].values():
        for ref in ch["messages"].values():
            assert ref["$ref"].split("/")[-1] in doc["components"]["messages"]


def _schema(fields: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": fields, "required": required}


def test_incompatible_changes_are_named_and_compatible_ones_pass() -> None:
    s, i = {"type": "string"}, {"type": "integer"}
    old = _schema({"a": s, "b": s, "c": {"type": "array", "items": s}}, ["a"])
    assert contracts_gen.breaking_changes(old, old) == []
    assert contracts_gen.breaking_changes(old, _schema({"a": s, "b": s, "c": old["properties"]["c"], "d": s},
                                                       ["a"])) == []  # a new optional field
    assert any("'b' was removed" in p for p in contracts_gen.breaking_changes(old, _schema({"a": s, "c": s}, ["a"])))
    changed = contracts_gen.breaking_changes(old, _schema({"a": i, "b": s, "c": old["properties"]["c"]}, ["a"]))
    assert changed and "a: type changed" in changed[0]
    required = contracts_gen.breaking_changes(
        old, _schema({"a": s, "b": s, "c": old["properties"]["c"], "d": s}, ["a", "d"]))
    assert any("'d' is now required" in p for p in required)
    items = contracts_gen.breaking_changes(old, _schema({"a": s, "b": s, "c": {"type": "array", "items": i}}, ["a"]))
    assert items and items[0].startswith("c[]")


def test_a_changed_released_message_fails_the_check(tmp_path: Path) -> None:
    contracts_gen.generate(tmp_path)
    assert contracts_gen.check(tmp_path) == []
    path = tmp_path / "docs/contracts/schemas/TargetTaggedV1.json"
    old = json.loads(path.read_text("utf-8"))
    old["properties"]["since"] = {"type": "string"}  # released with a field the code no longer has
    path.write_text(json.dumps(old), "utf-8")
    (tmp_path / "docs/contracts/schemas/GoneV1.json").write_text(json.dumps(_schema({}, [])), "utf-8")
    problems = contracts_gen.check(tmp_path)
    assert any("TargetTaggedV1" in p and "'since' was removed" in p and "TargetTaggedV2" in p for p in problems)
    assert any(p.startswith("GoneV1: a published message was removed") for p in problems)


def test_the_contracts_package_stays_pure() -> None:
    forbidden = ("litestar", "sqlalchemy", "nats", "structlog", "logging", "services", "projections", "psycopg")
    for path in (ROOT / "domain/contracts").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.name} imports {name}"


def test_the_partner_helper_needs_only_nats_py() -> None:
    tree = ast.parse((ROOT / "services/infra/partner.py").read_text("utf-8"))
    for node in ast.walk(tree):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
            [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        for name in names:
            top = name.split(".")[0]
            assert top == "nats" or top in sys.stdlib_module_names, f"partner.py imports {name}"


# -- envelopes -------------------------------------------------------------------------------------------
def _description(meta: dict[str, Any], data: dict[str, Any], type_: str = "tagged", version: int = 3) -> dict[str, Any]:
    return {
        "position": 42, "aggregate_id": "b0ac29f1-47a0-557c-b2a3-2948101a4165", "version": version, "type": type_,
        "time": "2025-03-01T02:00:00.123456+00:00", "meta": meta, "data": data,
    }


META = {"actor": "eeb:li", "department": "hj-eeb", "role": "planner", "correlation_id": "req-7f3a",
        "causation_id": "9d2c6a51-0b7e-4c1d-8f0e-2a7b3c4d5e6f", "command": "update_target", "aggregate": "target",
        "owner": "shared"}


def test_an_envelope_is_a_cloudevent_in_binary_mode() -> None:
    (out,) = build_messages(_description(META, {"tag": "key-polluter"}), "xinxiang-huojia",
                            topic_of(Target.Tagged))
    h = out.headers
    eid = event_id("b0ac29f1-47a0-557c-b2a3-2948101a4165", 3)
    assert out.subject == "dualrandom.shared.target.tagged"
    assert h["ce-specversion"] == "1.0" and h["ce-id"] == eid and h["Nats-Msg-Id"] == f"{eid}:shared"
    assert h["ce-source"] == "/dualrandom/xinxiang-huojia/shared"
    assert h["ce-type"] == "cn.gov.dualrandom.target.tagged.v1"
    assert h["ce-subject"] == "b0ac29f1-47a0-557c-b2a3-2948101a4165"
    assert h["ce-time"] == "2025-03-01T02:00:00.123456+00:00"
    assert h["ce-dataschema"] == "urn:dualrandom:schema:TargetTaggedV1"
    assert h["ce-position"] == "42" and h["ce-aggregateversion"] == "3"
    assert h["ce-correlationid"] == "req-7f3a" and h["ce-causationid"] == META["causation_id"]
    assert h["content-type"] == "application/json"
    for name in h:
        if name.startswith("ce-") and name not in CE_STANDARD:
            assert CE_EXTENSION.match(name[3:]), f"{name} is not a valid CloudEvents extension name"
    assert set(h) >= CE_REQUIRED
    assert json.loads(out.body) == {"tag": "key-polluter"}


def test_a_joint_task_event_goes_to_every_department_with_one_event_id() -> None:
    meta = {**META, "aggregate": "target", "owner": "hj-eeb", "departments": ["hj-smb", "hj-eeb", "hj-emb"]}
    outs = build_messages(_description(meta, {"tag": "x"}), "d", topic_of(Target.Tagged))
    assert [o.subject for o in outs] == [f"dualrandom.{d}.target.tagged" for d in ("hj-eeb", "hj-emb", "hj-smb")]
    assert len({o.headers["ce-id"] for o in outs}) == 1
    assert len({o.headers["Nats-Msg-Id"] for o in outs}) == 3
    assert {o.headers["ce-source"] for o in outs} == {"/dualrandom/d/hj-eeb"}
    private = build_messages(_description({**META, "owner": "hj-eeb"}, {"tag": "x"}), "d", topic_of(Target.Tagged))
    assert [o.subject for o in private] == ["dualrandom.hj-eeb.target.tagged"]


def test_a_contract_with_a_public_form_also_publishes_the_redacted_message() -> None:
    registry = Registry()

    class TargetRiskClassChangedPublicV1(Message, frozen=True):
        risk_class: str

    @contract(Target.RiskClassChanged, public=TargetRiskClassChangedPublicV1, registry=registry)
    class TargetRiskClassChangedV1(Message, frozen=True):
        risk_class: str
        previous: str  # not in the public form

    outs = build_messages(_description(META, {"risk_class": "D", "previous": "B"}, "risk_class_changed"), "d",
                          topic_of(Target.RiskClassChanged), registry)
    assert [o.subject for o in outs] == ["dualrandom.shared.target.risk_class_changed",
                                         "dualrandom.public.target.risk_class_changed"]
    public = outs[1]
    assert json.loads(public.body) == {"risk_class": "D"}  # never the confidential field
    assert public.headers["ce-type"] == "cn.gov.dualrandom.public.target.risk_class_changed.v1"
    assert public.headers["ce-dataschema"] == "urn:dualrandom:schema:TargetRiskClassChangedPublicV1"
    assert public.headers["ce-id"] == outs[0].headers["ce-id"]
    assert public.headers["Nats-Msg-Id"].endswith(":public")


def test_an_event_that_does_not_fit_its_contract_or_has_none_stops_the_relay() -> None:
    with pytest.raises(ContractError, match="does not fit TargetTaggedV1"):
        build_messages(_description(META, {"label": "x"}), "d", topic_of(Target.Tagged))
    with pytest.raises(ContractError, match=r"no contract for domain\.x:Y\.Z"):
        build_messages(_description(META, {}), "d", "domain.x:Y.Z")
    assert uuid.UUID(event_id("a", 1)).version == 5


def test_scaffold_prints_a_contract_for_an_event_without_one() -> None:
    from domain.planning.plan import AnnualPlan

    text = contracts_gen.scaffold([AnnualPlan.RulesAdjusted])
    assert "from domain.planning.plan import AnnualPlan" in text
    assert "@contract(AnnualPlan.RulesAdjusted)\nclass AnnualPlanRulesAdjustedV1(Message):" in text
    assert "    rules: list[dict[str, Any]]" in text
    namespace: dict[str, Any] = {}
    exec(compile(text.replace("from domain.contracts.base import Message, contract",
                              "from domain.contracts.base import Message\ncontract = lambda e: (lambda c: c)"),
                 "<scaffold>", "exec"), namespace)
    assert {msgspec.structs.fields(namespace["AnnualPlanRulesAdjustedV1"])[i].name for i in range(4)} == {
        "entry_number", "rules", "reason", "previous"}
