"""Audit endpoints under ``/api/v1/audit``: the global log, its export, aggregates as of a version or time,
the Merkle tree's checkpoints, public key and proofs; and the guard that keeps auditors from writing."""

import itertools
import uuid
from typing import Annotated, Any, Literal

from litestar import Response, Router, get
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import FromPath, Parameter
from litestar.response import Stream

from domain.access import Actor
from domain.audit.leaf import record_item
from domain.errors import FieldProblem, InvalidInputError, PermissionDeniedError
from domain.values import Role
from projections.audit import queries
from services.api.common import MAX_POSITION, SECURED, AnyRequest, answers, runtime
from services.api.schemas import (
    AggregateHistory,
    AuditCoverage,
    Checkpoint,
    Checkpoints,
    ConsistencyProof,
    EventsPage,
    InclusionProof,
    PublicKey,
    Tree,
)
from services.audit import checkpoints as cps
from services.audit import proofs
from services.audit.history import aggregate_at
from services.audit.log import events_table, export_chunks, iter_records
from services.audit.replay import parse_time
from services.audit.witness import coverage_of, witnesses_of
from services.infra.relay import PUBLIC, ContractError, OutgoingEvent, messages_for, recipients

PROOF_NOTE = (
    " Hashes are lower-case hex; see docs/auditing.md for the leaf format and the RFC 9162 checks."
)


def _require_auditor(actor: Actor) -> None:
    if not (actor.has(Role.AUDITOR) or actor.has(Role.ADMIN)):
        raise PermissionDeniedError(f"role {actor.role!r} may not read the whole log: auditors and admins only")


def _bad_query(key: str, message: str) -> ValidationException:
    return ValidationException(f"{key}: {message}", extra=[{"key": key, "message": message, "source": "query"}])


@get("/events", responses=answers(200, EventsPage),
     sync_to_thread=True, summary="Page the global log",
     description="Events after log position `after`, in order: position, aggregate id and kind, version, event "
     "type, time, actor, department, role, correlation and causation ids, the stored metadata and data, and the "
     "leaf hash. `next_after` pages on. Auditors and admins only.")
def events_page(
    request: AnyRequest,
    after: Annotated[int, Parameter(ge=0, le=MAX_POSITION, description="log position to read after")] = 0,
    limit: Annotated[int, Parameter(ge=1, le=1000, description="page size")] = 100,
) -> dict[str, Any]:
    _require_auditor(request.user)
    rt = runtime(request)
    records = itertools.islice(iter_records(rt.engine, events_table(rt.app), after, page=limit), limit)
    items = [record_item(*r) for r in records]
    return {
        "items": items, "after": after, "limit": limit,
        "next_after": items[-1]["position"] if items else after,
        "head": int(rt.app.recorder.max_notification_id() or 0),
    }


@get("/export", responses=answers(200, None, media_type="application/x-ndjson"),
     summary="Export the whole log as JSON lines",
     description="Streams every event (after `after`, up to `until`) as one JSON object a line, the same items "
     "as `/audit/events`, in constant memory however long the log. Auditors and admins only.")
async def export(
    request: AnyRequest,
    after: Annotated[int, Parameter(ge=0, le=MAX_POSITION, description="log position to start after")] = 0,
    until: Annotated[int | None, Parameter(ge=0, le=MAX_POSITION, description="last log position to include")] = None,
) -> Stream:
    _require_auditor(request.user)
    rt = runtime(request)
    return Stream(
        export_chunks(rt.app.recorder, after, until),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="dualrandom-log.jsonl"'},
    )


def _message_at(request: AnyRequest, position: int, form: str) -> OutgoingEvent:
    """The message the relay publishes for the event at ``position`` (``form`` ``public``: its public form), if
    the reader may read it: auditors and admins every one; others their department's, the shared directory's,
    and public forms, as their department's NATS user reads them."""
    actor: Actor = request.user
    rt = runtime(request)
    found = rt.app.recorder.select_notifications(position, 1)
    if not found or found[0].id != position:
        raise NotFoundException(f"no event at position {position}")
    ev = rt.app.mapper.to_domain_event(found[0])
    try:
        messages = messages_for(ev, position, rt.settings.deployment)
    except ContractError as exc:
        raise NotFoundException(f"the event at position {position} has no message: {exc}") from None
    meta = getattr(ev, "_meta", None) or {}
    everything = actor.has(Role.AUDITOR) or actor.has(Role.ADMIN)
    if form == PUBLIC:
        public = [m for m in messages if m.subject.split(".")[1] == PUBLIC]
        if not public:
            raise NotFoundException(f"the event at position {position} has no public form")
        return public[0]
    readers = recipients(meta)
    if not (everything or actor.department in readers or "shared" in readers):
        raise PermissionDeniedError(
            f"the event at position {position} is published to {', '.join(readers)} only, not to "
            f"{actor.department!r}")
    return next(m for m in messages if m.subject.split(".")[1] != PUBLIC)


@get("/events/{position:int}/message", responses=answers(200, dict[str, Any]),
     sync_to_thread=True, summary="The message published for one event",
     description="Exactly the bytes of the CloudEvent's data the relay publishes for the event at log `position` "
     "(the integration message, JSON; `form=public`: its public form), with the CloudEvent's `ce-id`, `ce-type`, "
     "`ce-dataschema` and `ce-position` as response headers. A CloudEvent too large for the NATS server is "
     "published without its data and names this address in `ce-dataref`. Auditors and admins read every "
     "message; other roles the messages their department's NATS user receives (their department's, the shared "
     "directory's, public forms).")
def event_message(
    request: AnyRequest,
    position: Annotated[int, Parameter(ge=1, le=MAX_POSITION, description="log position of the event")],
    form: Annotated[Literal["department", "public"], Parameter(
        description="`department`: the message on the departments' subjects; `public`: its public form")
    ] = "department",
) -> Response[bytes]:
    message = _message_at(request, position, form)
    headers = {h: message.headers[h] for h in ("ce-id", "ce-type", "ce-dataschema", "ce-position")}
    return Response(message.body, media_type="application/json", headers=headers)


@get("/aggregates/{aggregate_id:uuid}", responses=answers(200, AggregateHistory),
     sync_to_thread=True, summary="One aggregate's history and past state",
     description="Every event of the aggregate, and its state replayed up to `version`, or up to the last event "
     "made at or before `at` (ISO 8601 with a UTC offset); the current state without either. Auditors and admins "
     "only.")
def aggregate(
    request: AnyRequest,
    aggregate_id: FromPath[uuid.UUID],
    version: Annotated[int | None, Parameter(ge=1, le=MAX_POSITION, description="state as of this version")] = None,
    at: Annotated[str | None, Parameter(description="state as of this time, e.g. 2025-03-01T10:00:00+08:00")] = None,
) -> dict[str, Any]:
    _require_auditor(request.user)
    if version is not None and at is not None:
        raise _bad_query("at", "give version or at, not both")
    when = None
    if at is not None:
        try:
            when = parse_time(at)
        except ValueError as exc:
            raise _bad_query("at", str(exc)) from None
    rt = runtime(request)
    return aggregate_at(rt.app, rt.engine, events_table(rt.app), aggregate_id, version, when)


@get("/tree", responses=answers(200, Tree),
     sync_to_thread=True, summary="The audit tree now",
     description="Size and root of the Merkle tree over the log as the audit projection holds it now (unsigned; "
     "checkpoints sign it). Every role." + PROOF_NOTE)
def tree(request: AnyRequest) -> dict[str, Any]:
    with proofs.read_connection(runtime(request).engine) as conn:
        size = queries.tree_size(conn)
        root = queries.root_at(conn, size)
    return {"tree_size": size, "root_hash": root.hex()}


@get("/checkpoints/latest", responses=answers(200, Checkpoint),
     sync_to_thread=True, summary="The latest signed checkpoint",
     description="Tree size, root hash and time, signed with the deployment's Ed25519 key (`body` is the signed "
     "text, `note` the C2SP signed note). Every role." + PROOF_NOTE)
def latest_checkpoint(request: AnyRequest) -> dict[str, Any]:
    with proofs.read_connection(runtime(request).engine) as conn:
        cp = cps.latest(conn)
        cosigned = witnesses_of(conn, [cp.tree_size] if cp else [])
    if cp is None:
        raise NotFoundException("no checkpoint has been signed yet")
    return cp.view() | {"witnesses": cosigned[cp.tree_size]}


@get("/checkpoints", responses=answers(200, Checkpoints),
     sync_to_thread=True, summary="Signed checkpoints",
     description="Checkpoints by tree size, after `after_size`. Every role.")
def checkpoint_list(
    request: AnyRequest,
    after_size: Annotated[int, Parameter(ge=0, le=MAX_POSITION, description="tree size to list after")] = 0,
    limit: Annotated[int, Parameter(ge=1, le=1000, description="page size")] = 100,
) -> dict[str, Any]:
    with proofs.read_connection(runtime(request).engine) as conn:
        found = cps.listing(conn, after_size, limit)
        cosigned = witnesses_of(conn, [cp.tree_size for cp in found])
    return {"items": [cp.view() | {"witnesses": cosigned[cp.tree_size]} for cp in found],
            "next_after_size": found[-1].tree_size if found else after_size}


@get("/coverage", responses=answers(200, AuditCoverage),
     sync_to_thread=True, summary="What the checkpoints and witnesses cover",
     description="The log head, the audit tree's size, the newest checkpoint and the newest one a partner's "
     "witness cosigned (each with its cosignatures), how many leaves were added since each, the configured "
     "witness keys, and the signer's alarm. Every role.")
def coverage(request: AnyRequest) -> dict[str, Any]:
    rt = runtime(request)
    with proofs.read_connection(rt.engine) as conn:
        return coverage_of(conn, rt)


@get("/public-key", responses=answers(200, PublicKey),
     summary="The checkpoint signing key",
     description="The deployment's Ed25519 public key (raw 32 bytes in base64 and hex), its C2SP key id and "
     "verifier key. Every role.")
async def public_key(request: AnyRequest) -> dict[str, Any]:
    return runtime(request).checkpointer.signer.public.view()


@get("/proofs/inclusion", responses=answers(200, InclusionProof),
     sync_to_thread=True, summary="Inclusion proof of an event",
     description="RFC 6962 audit path of the event at log `position` to the root of the tree of `tree_size` "
     "leaves (default: the latest checkpoint that covers it, else the tree now), with the leaf hash, the root "
     "and the checkpoint of that size when there is one. Every role." + PROOF_NOTE)
def inclusion(
    request: AnyRequest,
    position: Annotated[int, Parameter(ge=1, le=MAX_POSITION, description="log position of the event")],
    tree_size: Annotated[int | None, Parameter(ge=1, le=MAX_POSITION, description="size of the tree to prove against")] = None,
) -> dict[str, Any]:
    with proofs.read_connection(runtime(request).engine) as conn:
        try:
            found = proofs.inclusion(conn, position, tree_size)
        except proofs.ProofError as exc:
            raise InvalidInputError([FieldProblem("tree_size", "range", str(exc))]) from None
    if found is None:
        raise NotFoundException(f"no event at position {position} in the audit tree (yet)")
    return found


@get("/proofs/consistency", responses=answers(200, ConsistencyProof),
     sync_to_thread=True, summary="Consistency proof between two tree sizes",
     description="RFC 6962 proof that the tree of `first` leaves is a prefix of the tree of `second` leaves "
     "(default: the latest checkpoint's size, else the tree now): the log only grew. Every role." + PROOF_NOTE)
def consistency(
    request: AnyRequest,
    first: Annotated[int, Parameter(ge=0, le=MAX_POSITION, description="the older tree size")],
    second: Annotated[int | None, Parameter(ge=0, le=MAX_POSITION, description="the newer tree size")] = None,
) -> dict[str, Any]:
    with proofs.read_connection(runtime(request).engine) as conn:
        try:
            return proofs.consistency(conn, first, second)
        except proofs.ProofError as exc:
            raise InvalidInputError([FieldProblem("second", "range", str(exc))]) from None


def audit_router() -> Router:
    """Routes under ``/api/v1/audit``."""
    return Router(
        path="/audit",
        route_handlers=[events_page, export, event_message, aggregate, tree, latest_checkpoint, checkpoint_list, coverage,
                        public_key, inclusion, consistency],
        tags=["audit"],
        security=SECURED,
    )
