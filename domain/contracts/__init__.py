"""Contracts: the versioned messages partner agencies read, one per (aggregate, event), apart from domain events.

A domain event is a persistence format and may change with the model; a message ``<Aggregate><Event>V<n>``
(``TaskTargetsDrawnV1``) is a published promise: once released, a version never loses a field, changes a
field's type or gains a required field. The relay publishes the newest version of each event's message as
the data of a CloudEvent of type ``cn.gov.dualrandom.<aggregate>.<event>.v<n>``.

Adding a contract for a new domain event, in 3 steps:

1. In the module of ``domain/contracts/`` named after the domain module (``domain/tasks/task.py`` ->
   ``tasks.py``; import a new module below), declare the message with the event's data fields, typed::

       @contract(Task.TargetsDrawn)
       class TaskTargetsDrawnV1(Message):
           round: int
           record: dict[str, Any]

   (``python -m services.cli.contracts scaffold`` prints these classes for every event without one.)
   ``convert=`` reshapes the event's state first; ``public=`` (+ ``redact=``) declares a redacted form that
   is also published on ``dualrandom.public.<aggregate>.<event>``: list only fields anyone may see.
2. Run ``dualrandom contracts generate`` (``python -m services.cli.contracts generate``): it writes
   ``docs/contracts/schemas/<Message>.json`` and ``docs/asyncapi.yaml``. Commit them.
3. Run ``pytest tests/unit/test_contracts.py``. To change a released message incompatibly, add
   ``...V2`` beside ``V1`` (keep V1 and its schema file), then regenerate.
"""

from domain.contracts.base import (
    REGISTRY,
    SCHEMA_URI_PREFIX,
    TYPE_PREFIX,
    Contract,
    Message,
    Registry,
    aggregate_events,
    contract,
    domain_aggregates,
    topic_of,
)

# isort: off
# Registered in this order (the registry's order); after base, which they import.
from domain.contracts import directory, planning, calendar, tasks, execution, accounts, configuration  # noqa: F401
# isort: on

__all__ = [
    "REGISTRY", "SCHEMA_URI_PREFIX", "TYPE_PREFIX", "Contract", "Message", "Registry", "aggregate_events",
    "all_event_classes", "contract", "contract_for", "domain_aggregates", "missing_contracts", "topic_of",
]


def contract_for(event_or_topic: object) -> Contract | None:
    """The current contract of a domain event (instance, class or topic ``module:Aggregate.Event``)."""
    if isinstance(event_or_topic, str):
        return REGISTRY.current(event_or_topic)
    cls = event_or_topic if isinstance(event_or_topic, type) else type(event_or_topic)
    return REGISTRY.current(topic_of(cls))


def all_event_classes() -> list[type]:
    """Every event class of every aggregate under ``domain`` (found by walking the package)."""
    return [ev for agg in domain_aggregates() for ev in aggregate_events(agg)]


def missing_contracts() -> list[str]:
    """Topics of domain event classes that have no contract."""
    return [topic_of(ev) for ev in all_event_classes() if REGISTRY.current(topic_of(ev)) is None]
