"""Integration messages: the base class, the contract registry and the discovery of domain event classes.

Pure: msgspec structs and introspection of ``domain``; no web, database, messaging or logging imports.
"""

import importlib
import pkgutil
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from eventsourcing.domain import Aggregate, CommandMethodDecorator

TYPE_PREFIX = "cn.gov.dualrandom"
"""Reverse-DNS prefix of CloudEvents ``type``: ``cn.gov.dualrandom.<aggregate>.<event>.v<n>``."""

SCHEMA_URI_PREFIX = "urn:dualrandom:schema:"
"""CloudEvents ``dataschema`` and JSON Schema ``$id``: ``urn:dualrandom:schema:<Message>``; the schema is
``docs/contracts/schemas/<Message>.json`` in the repository (and in every release)."""

_MESSAGE_NAME = re.compile(r"^(?P<base>[A-Z][A-Za-z0-9]*)V(?P<version>[1-9][0-9]*)$")


class Message(msgspec.Struct, kw_only=True, frozen=True):
    """Base of every integration message: the data of one CloudEvent, JSON, fields typed."""


M = TypeVar("M", bound=type[Message])


def snake(name: str) -> str:
    """``TargetsDrawn`` -> ``targets_drawn``, ``AnnualPlan`` -> ``annual_plan``."""
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def topic_of(cls: type) -> str:
    """``domain.directory:Target.Registered``: how the store names an event class (and the registry key)."""
    return f"{cls.__module__}:{cls.__qualname__}"


def aggregate_kind(aggregate: type) -> str:
    """The aggregate's token in subjects and types: its ``KIND`` or its snake_case class name."""
    return str(getattr(aggregate, "KIND", "") or snake(aggregate.__name__))


@dataclass(frozen=True)
class Contract:
    """One message version for one domain event class, and how to make it."""

    event_topic: str  # ``module:Aggregate.Event``
    aggregate: str  # kind: ``target``, ``task``...
    event: str  # snake_case: ``targets_drawn``
    version: int
    message: type[Message]
    convert: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None
    public: type[Message] | None = None  # the redacted public form, published on dualrandom.public...
    redact: Callable[[Message], Message] | None = None

    @property
    def name(self) -> str:
        return self.message.__name__

    @property
    def type(self) -> str:
        """CloudEvents ``type`` (see ``type_for``)."""
        return self.type_for(self.aggregate)

    def type_for(self, aggregate: str) -> str:
        """CloudEvents ``type`` for an event of aggregate kind ``aggregate``: an event class declared on a base
        (``DirectoryEntry.DetailsUpdated``) is typed by the kind that stored it (``target.details_updated``)."""
        return f"{TYPE_PREFIX}.{aggregate}.{self.event}.v{self.version}"

    @property
    def public_type(self) -> str:
        return self.public_type_for(self.aggregate)

    def public_type_for(self, aggregate: str) -> str:
        return f"{TYPE_PREFIX}.public.{aggregate}.{self.event}.v{self.version}"

    @property
    def dataschema(self) -> str:
        return SCHEMA_URI_PREFIX + self.name

    @property
    def public_dataschema(self) -> str:
        assert self.public is not None
        return SCHEMA_URI_PREFIX + self.public.__name__

    def to_message(self, state: Mapping[str, Any]) -> Message:
        """The message for an event's JSON-safe state (its fields without originator id/version/timestamp).

        msgspec.ValidationError when the event no longer fits this contract.
        """
        data = self.convert(state) if self.convert is not None else state
        return msgspec.convert(data, self.message, strict=False)

    def to_public(self, message: Message) -> Message | None:
        """The redacted public form, or None when the contract declares none."""
        if self.public is None:
            return None
        if self.redact is not None:
            return self.redact(message)
        return msgspec.convert(msgspec.to_builtins(message), self.public, strict=False)


class Registry:
    """Contracts by event topic (every version) and by message name."""

    def __init__(self) -> None:
        self._by_topic: dict[str, list[Contract]] = {}
        self._by_name: dict[str, Contract] = {}

    def add(self, contract: Contract) -> Contract:
        if contract.name in self._by_name:
            raise ValueError(f"message {contract.name} is declared twice")
        versions = self._by_topic.setdefault(contract.event_topic, [])
        if any(c.version == contract.version for c in versions):
            raise ValueError(f"{contract.event_topic} has two contracts of version {contract.version}")
        versions.append(contract)
        versions.sort(key=lambda c: c.version)
        self._by_name[contract.name] = contract
        return contract

    def current(self, event_topic: str) -> Contract | None:
        """The newest version for an event topic (what the relay publishes), None when there is none."""
        versions = self._by_topic.get(event_topic)
        return versions[-1] if versions else None

    def versions(self, event_topic: str) -> list[Contract]:
        return list(self._by_topic.get(event_topic, []))

    def by_name(self, name: str) -> Contract:
        return self._by_name[name]

    def __iter__(self) -> Iterator[Contract]:
        return iter(sorted(self._by_name.values(), key=lambda c: (c.aggregate, c.event, c.version)))

    def __len__(self) -> int:
        return len(self._by_name)


REGISTRY = Registry()


def contract(
    event: type,
    *,
    convert: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
    public: type[Message] | None = None,
    redact: Callable[[Message], Message] | None = None,
    registry: Registry | None = None,
) -> Callable[[M], M]:
    """Class decorator: ``message`` is a version of the integration message for domain event class ``event``.

    The class must be named ``<Aggregate><Event>V<n>`` after the event's qualified name (``Target.Registered``
    -> ``TargetRegisteredV1``).
    """

    def register(message: M) -> M:
        match = _MESSAGE_NAME.match(message.__name__)
        parts = event.__qualname__.split(".")
        expected = "".join(p.lstrip("_") for p in parts[-2:])
        if match is None or match["base"] != expected:
            raise TypeError(f"the message for {event.__qualname__} must be named {expected}V<n>, not {message.__name__}")
        module = importlib.import_module(event.__module__)
        aggregate = getattr(module, parts[0])
        for part in parts[1:-1]:
            aggregate = getattr(aggregate, part)
        (REGISTRY if registry is None else registry).add(
            Contract(
                event_topic=topic_of(event), aggregate=aggregate_kind(aggregate), event=snake(parts[-1]),
                version=int(match["version"]), message=message, convert=convert, public=public, redact=redact,
            )
        )
        return message

    return register


# -- discovery of the domain's event classes -------------------------------------------------------------
def domain_aggregates(package: str = "domain") -> list[type]:
    """Every concrete eventsourcing Aggregate class defined under ``package``: modules are imported; a class
    that another one found there subclasses (``DirectoryEntry``) is a base, not an aggregate of its own."""
    pkg = importlib.import_module(package)
    found: dict[str, type] = {}
    for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{package}."):
        if info.name.startswith(f"{package}.contracts"):
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (
                isinstance(value, type) and issubclass(value, Aggregate) and value is not Aggregate
                and value.__module__ == module.__name__
            ):
                found[topic_of(value)] = value
    classes = list(found.values())
    return sorted(
        (c for c in classes if not any(o is not c and issubclass(o, c) for o in classes)), key=topic_of
    )


def aggregate_events(aggregate: type) -> list[type]:
    """The event classes an aggregate stores, as the store names them: those its ``@event`` methods (its own
    and its bases') trigger, e.g. ``DirectoryEntry.DetailsUpdated`` for a Target, plus nested event classes of
    its own body that no method triggers (triggered by hand). eventsourcing's automatic per-class copies of
    inherited event classes (``Target.Event``, ``Target.Created``, ``Target.DetailsUpdated``) are never stored."""
    found: dict[str, type] = {}
    for klass in aggregate.__mro__:
        for value in vars(klass).values():
            if not isinstance(value, CommandMethodDecorator):
                continue
            cls = value.given_event_cls
            if cls is None and value.event_cls_name:
                cls = getattr(klass, value.event_cls_name, None)
            if isinstance(cls, type):
                found.setdefault(topic_of(cls), cls)
    inherited = {n for base in aggregate.__mro__[1:] for n in dir(base)}
    for name in dir(aggregate):
        value = getattr(aggregate, name, None)
        if (
            isinstance(value, type) and issubclass(value, Aggregate.Event) and name not in inherited
            and value.__qualname__ == f"{aggregate.__qualname__}.{name}"
        ):
            found.setdefault(topic_of(value), value)
    return [found[t] for t in sorted(found)]


def event_fields(event: type) -> dict[str, Any]:
    """The data fields of an event class: its annotations without originator id, version and timestamp."""
    import typing

    hints = typing.get_type_hints(event)
    skip = {"originator_id", "originator_version", "timestamp", "originator_topic"}
    return {
        k: v for k, v in hints.items()
        if k not in skip and not k.startswith("_") and typing.get_origin(v) is not typing.ClassVar
    }
