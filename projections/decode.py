"""Stored notifications -> domain events for the projections, the same objects as the application's mapper
gives, about three times faster.

``mapper.to_domain_event`` decodes the state with the standard library's ``json`` and an ``object_hook`` called
for every JSON object (the ``{"_type_": ..., "_data_": ...}`` wrappers of datetimes, UUIDs, decimals). An event
as the store writes it has exactly one wrapper, its top-level ``timestamp``. Here such a state is decoded by
msgspec (plain dicts, lists, str, int, float, bool, None: the values ``json.loads`` gives), the timestamp
unwrapped with the mapper's own transcoding, and the event built as the mapper builds it (``originator_id``
through the mapper's id convertor, ``originator_version``, ``object.__new__`` and the state as ``__dict__``).
Everything else goes through the mapper unchanged: any other wrapper (``"_type_"`` more than once), any ``\\u``
escape (it may spell ``_type_``), a class version, a cipher or compressor, a transcoder that is not the
library's JSON one, anything msgspec refuses (NaN, a number out of a double's range, invalid JSON).
"""

import inspect
from collections.abc import Callable
from typing import Any, TypedDict
from uuid import UUID

import msgspec
from eventsourcing.domain import (
    CanInitAggregate,
    CanMutateAggregate,
    DecoratedFuncCaller,
    OriginatorIDError,
    OriginatorVersionError,
    _init_mentions_id,
    decorated_funcs,
)
from eventsourcing.persistence import JSONTranscoder, find_id_convertor
from eventsourcing.utils import resolve_topic

_TYPE = b'"_type_"'


def _plain_json(mapper: Any) -> bool:
    """Whether the mapper stores an event's state as the library's plain JSON (no cipher, no compressor)."""
    transcoder = getattr(mapper, "transcoder", None)
    return not (getattr(mapper, "cipher", None) is not None or getattr(mapper, "compressor", None) is not None
                or not isinstance(transcoder, JSONTranscoder) or type(transcoder).decode is not JSONTranscoder.decode
                or type(transcoder)._decode_obj is not JSONTranscoder._decode_obj)


def plain_state_check(mapper: Any) -> Callable[[Any], bool]:
    """Whether a stored notification's state may be read as JSON in place of the decoded event (a projection's
    ``stored_topics``): the mapper stores plain JSON, the event's class is at version 1 and the state says no
    other version (no upcasting due), the only custom-type wrapper is one (the timestamp's), so every other value
    is what the decoded event holds, and there is no ``\\u`` escape (which may spell a wrapper's key)."""
    if not _plain_json(mapper):
        return lambda n: False
    versions: dict[str, bool] = {}  # topic -> class at version 1

    def is_plain(n: Any) -> bool:
        ok = versions.get(n.topic)
        if ok is None:
            try:
                ok = versions[n.topic] = getattr(resolve_topic(n.topic), "class_version", 1) == 1
            except Exception:  # noqa: BLE001 - an unknown topic: the mapper decides (and says why)
                ok = versions[n.topic] = False
        raw = n.state
        # A backslash first: most states have none, and looking for one byte is quicker than for two.
        return (ok and type(raw) is bytes and raw.count(_TYPE) == 1 and b'"class_version"' not in raw
                and (b"\\" not in raw or b"\\u" not in raw))

    return is_plain


def fast_decoder(mapper: Any) -> Callable[[Any], Any]:
    """A ``to_domain_event`` for ``mapper``: the fast path when the mapper's setup allows it, else its own."""
    slow: Callable[[Any], Any] = mapper.to_domain_event
    transcoder: Any = getattr(mapper, "transcoder", None)
    if not _plain_json(mapper):
        return slow
    stamp = transcoder.names.get("datetime_iso")
    if stamp is None:
        return slow
    from_iso = stamp.decode
    decode = msgspec.json.Decoder().decode
    classes: dict[str, Any] = {}  # topic -> (class, id convertor by id type) or None: the mapper decides

    def to_domain_event(n: Any) -> Any:
        raw = n.state
        if type(raw) is not bytes or raw.count(_TYPE) != 1 or b"\\u" in raw:
            return slow(n)
        topic = n.topic
        entry: tuple[Any, dict[Any, Any]] | None = classes.get(topic)
        if entry is None:
            if topic in classes:
                return slow(n)
            cls = resolve_topic(topic)
            entry = classes[topic] = (cls, {}) if getattr(cls, "class_version", 1) == 1 else None
            if entry is None:
                return slow(n)
        try:
            state = decode(raw)
        except (msgspec.DecodeError, ValueError):
            return slow(n)
        ts = state.get("timestamp") if type(state) is dict else None
        if (type(ts) is not dict or len(ts) != 2 or ts.get("_type_") != "datetime_iso"
                or type(ts.get("_data_")) is not str or "class_version" in state):
            return slow(n)  # the one wrapper is elsewhere, or an upcast is due
        try:
            state["timestamp"] = from_iso(ts["_data_"])
        except (ValueError, TypeError, AssertionError):
            return slow(n)  # the mapper says why
        cls, convertors = entry
        oid: UUID | str = n.originator_id
        convert = convertors.get(type(oid))
        if convert is None:
            convert = convertors[type(oid)] = find_id_convertor(cls, type(oid))  # type: ignore[arg-type]  # classes are hashable
        state["originator_id"] = convert(oid)
        state["originator_version"] = n.originator_version
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", state)
        return event

    return to_domain_event


# -- folding stored states into aggregates --------------------------------------------------------------------
_IDENTITY_NAMES = frozenset({"originator_id", "originator_version", "timestamp"})


def _params(func: Callable[..., Any]) -> tuple[str, ...] | None:
    """The parameters after ``self`` a mutator is called with by name, or None when it takes others (``*args``,
    ``**kwargs``, the event's identity)."""
    names = []
    for i, p in enumerate(inspect.signature(func).parameters.values()):
        if i == 0:
            continue
        if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) or p.name in _IDENTITY_NAMES:
            return None
        names.append(p.name)
    return tuple(names)


def stored_step(cls: type) -> Callable[[Any, Any, int, dict[str, Any], Any], Any] | None:
    """For an event class, a function ``step(aggregate, originator_id, originator_version, state, timestamp)``
    that does what the library's ``event.mutate(aggregate)`` does, from the event's decoded stored state (its
    members as plain JSON values, ``timestamp`` already a datetime) without building the event; None when the
    class mutates in a way of its own (then the event must be decoded and mutate itself).

    Two kinds qualify, at class version 1 with the library's own ``mutate`` and ``apply``:
    - a created event (``CanInitAggregate``): the aggregate class named by ``originator_topic``, made with
      ``__new__``, the library's ``__base_init__`` (id, version, timestamp) and the class's ``__init__`` called
      with the state's members it names;
    - an event of an ``@event``-decorated method (``DecoratedFuncCaller``): the checks of
      ``CanMutateAggregate.mutate`` (same id, next version), the decorated method called with the state's
      members it names, then the version and ``modified_on`` set.
    The domain's own methods do the mutation in both cases: a read model folding stored states cannot drift from
    the aggregate's rules."""
    if getattr(cls, "class_version", 1) != 1:
        return None
    if issubclass(cls, CanInitAggregate):
        if cls.mutate is not CanInitAggregate.mutate or cls.apply is not CanMutateAggregate.apply:
            return None
        inits: dict[str, tuple[Any, tuple[str, ...]] | None] = {}
        owner: Any = _owner(cls)
        owner_names = _params(owner.__init__) if owner is not None else None
        members = None if owner_names is None else ("originator_topic", *owner_names)

        def create(aggregate: Any, originator_id: Any, version: int, state: dict[str, Any], timestamp: Any) -> Any:
            topic = state["originator_topic"]
            found = inits.get(topic)
            if found is None:
                agg_cls = resolve_topic(topic)
                names = _params(agg_cls.__init__)
                if names is None or agg_cls in _init_mentions_id:
                    raise TypeError(f"{topic}: its __init__ takes more than the event's members")
                if members is not None and not set(names) <= set(members):
                    raise TypeError(f"{topic}: its __init__ takes members that {cls.__qualname__}'s decoder skips")
                found = inits[topic] = (agg_cls, names)
            agg_cls, names = found
            agg = agg_cls.__new__(agg_cls)
            agg.__base_init__(originator_id, version, timestamp)
            agg.__init__(**{n: state[n] for n in names if n in state})
            return agg

        create.members = members  # type: ignore[attr-defined]
        return create
    if (not issubclass(cls, DecoratedFuncCaller) or cls.mutate is not CanMutateAggregate.mutate
            or cls.apply is not DecoratedFuncCaller.apply):
        return None
    func = decorated_funcs.get(cls)
    names = _params(func) if func is not None else None
    if func is None or names is None:
        return None

    def step(aggregate: Any, originator_id: Any, version: int, state: dict[str, Any], timestamp: Any) -> Any:
        if originator_id != aggregate.id:
            raise OriginatorIDError(originator_id, aggregate.id)
        if version != aggregate.version + 1:
            raise OriginatorVersionError(version, aggregate.version + 1)
        func(aggregate, **{n: state[n] for n in names if n in state})
        aggregate.version = version
        aggregate.modified_on = timestamp
        return aggregate

    step.members = names  # type: ignore[attr-defined]
    return step


def _owner(cls: type) -> type | None:
    """The aggregate class an event class is defined in (``Target`` for ``Target.Registered``), or None."""
    outer = cls.__qualname__.rpartition(".")[0]
    if not outer or "<" in outer:
        return None
    try:
        found = resolve_topic(f"{cls.__module__}:{outer}")
    except Exception:  # noqa: BLE001 - not a class we can name: no restricted decoder
        return None
    return found if isinstance(found, type) else None


class StoredMeta(TypedDict, total=False):
    """Of a stored state's ``_meta``, only the aggregate's kind (what the read models route by)."""

    aggregate: Any


def stored_decoder(step: Callable[..., Any]) -> Callable[[bytes], dict[str, Any]]:
    """Decodes a stored state to the dict ``step`` (from ``stored_step``) needs: the members it reads (``members``),
    ``timestamp``, and of ``_meta`` only ``aggregate``; every other member is skipped unbuilt (a directory
    rebuild decodes a million states, and ``_meta`` alone holds half their strings). Values are the plain JSON
    values a full decode gives. A ``_meta`` that is not an object raises ``msgspec.ValidationError``: the caller
    decodes such a state whole. A step whose members are unknown gets the whole state."""
    members = getattr(step, "members", None)
    if members is None:
        return msgspec.json.Decoder().decode
    fields: dict[str, Any] = dict.fromkeys(members, Any)
    fields.update(timestamp=Any, _meta=StoredMeta)
    shape: Any = TypedDict("StoredState", fields, total=False)  # type: ignore[misc]  # fields known at run time
    decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(shape)
    return decoder.decode
