"""Request and response bodies of the HTTP edge, in one place (msgspec Structs; litestar documents them).

Request structs keep the exact validation they always had: enumerations the use cases check themselves are
documented (``enum`` in the schema) but not enforced here, so a wrong value is still answered by the use case
with its own 422. Response structs describe the bodies the handlers return (extra keys allowed)."""

import datetime as dt
import uuid
from typing import Annotated, Any

import msgspec

from domain.execution.clue import ClueSource
from domain.execution.inspection import PushChannel, PushState, ReviewState
from domain.execution.referral import ReferralKind, ReferralState
from domain.execution.visit import DeliveryMethod
from domain.execution.vocabulary import DEFAULT_RESULT_CODES, FollowUpVisitMethod
from domain.tasks.task import ORIGINS as TASK_ORIGINS
from domain.values import InspectionMethod, ItemCategory, Role

UNSET = msgspec.UNSET
Unset = msgspec.UnsetType
JsonValue = Any  # any JSON value: the use case's own structure
Json = dict[str, JsonValue]

ROLES = [r.value for r in Role]
SENDING_METHODS = [m.value for m in DeliveryMethod]
INSPECTION_METHODS = [m.value for m in InspectionMethod]
RESULT_CODES = [c.code for c in DEFAULT_RESULT_CODES]
REVIEW_STATES = [s.value for s in ReviewState]
ALL_PUSH_STATES = [s.value for s in PushState]
PUSH_STATES = [s for s in ALL_PUSH_STATES if s != PushState.PENDING.value]
PUSH_CHANNELS = [c.value for c in PushChannel]
REFERRAL_KINDS = [k.value for k in ReferralKind]
REFERRAL_STATES = [s.value for s in ReferralState]
DIRECTIONS = ["incoming", "outgoing"]
DEADLINES = ["respond_by", "outcome_by"]
CLUE_SOURCES = [s.value for s in ClueSource]
FOLLOW_UP_METHODS = [m.value for m in FollowUpVisitMethod]
CATEGORIES = [c.value for c in ItemCategory]
ORIGINS = list(TASK_ORIGINS)
EXPORT_FORMATS = ["json", "xlsx", "csv"]


def doc(description: str, *, enum: list[str] | None = None, example: Any = None) -> msgspec.Meta:
    """A field's description (and closed list, documented only, and an example) for the OpenAPI document."""
    extra: dict[str, Any] = {"description": description}
    if enum is not None:
        extra["extra"] = {"enum": enum}
    if example is not None:
        extra["examples"] = [example]
    return msgspec.Meta(extra_json_schema=extra)


Date = Annotated[str | None, doc("a date, YYYY-MM-DD; omitted: today", example="2024-05-20")]
Note = Annotated[str, doc("a free note")]
Recipient = Annotated[str, doc("to whom")]
Why = Annotated[str, doc("the reason, recorded in the event")]
TargetId = Annotated[str, doc("a drawn target's id")]
Documents_ = Annotated[list[Json], doc("evidence references `{sha256, size, name, media_type}` (POST /evidence)")]


class _In(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A request body: unknown fields are refused (400)."""


# -- problems -----------------------------------------------------------------------------------------------------
class FieldError(msgspec.Struct, kw_only=True):
    field: str
    rule: str
    message: str
    source: str | Unset | None = UNSET


class Problem(msgspec.Struct, kw_only=True):
    """RFC 9457 problem details (application/problem+json), as every error is answered."""

    type: Annotated[str, doc("https://dualrandom.example/problems/<kind>")]
    title: str
    status: int
    detail: str
    instance: str | Unset = UNSET
    correlation_id: str | Unset | None = UNSET
    errors: Annotated[list[FieldError] | Unset, doc("the field and the rule of each problem")] = UNSET


# -- accounts and sessions -------------------------------------------------------------------------------------------
class LoginIn(_In):
    username: Annotated[str, msgspec.Meta(max_length=100, description="the account's username")]
    password: Annotated[str, msgspec.Meta(max_length=1024, description="the password (never logged or stored)")]


class AccountIn(_In):
    username: Annotated[str, doc("1-100 letters, digits or . _ : @ / -")]
    display_name: Annotated[str, doc("the name people read in history, e.g. 张三")]
    department: Annotated[str, doc("a department in the directory")]
    roles: Annotated[list[str], doc("admin, planner, inspector, reviewer, auditor, partner")]
    inspector: Annotated[str | None, doc("inspector entry id or staff id of an inspector of the account's department (inspectors and reviewers)")] = None
    kind: Annotated[str, doc("person or service (a service has no password, only API tokens)")] = "person"
    password: Annotated[str | None, doc("a person's first password (12+ characters); omit for a service")] = None
    reason: Annotated[str | None, doc("why (recorded on the event)")] = None


class AccountChangeIn(_In):
    reason: Annotated[str, doc("why (recorded on the event)")]
    roles: Annotated[list[str] | Unset, doc("the new roles (all of them)")] = UNSET
    department: Annotated[str | Unset, doc("a department in the directory")] = UNSET
    display_name: Annotated[str | Unset, doc("the name people read in history")] = UNSET
    inspector: Annotated[str | Unset | None, doc("inspector entry id or staff id; null removes the link")] = UNSET


class ReasonIn(_In):
    reason: Annotated[str, doc("why (recorded on the event)")]


class PasswordIn(_In):
    password: Annotated[str, doc("the new password (12+ characters)")]
    current_password: Annotated[str | None, doc("required when changing one's own password")] = None


class TokenIn(_In):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100, description="the token's name, e.g. 数据同步")]
    ttl: Annotated[str | None, doc("lifetime like 30m, 8h, 90d (default DUALRANDOM_TOKEN_DEFAULT_TTL), at most 366d")] = None


class TokenRef(msgspec.Struct, kw_only=True):
    id: str
    name: str


class AccountView(msgspec.Struct, kw_only=True):
    """An account as stored now (its history is in the event log: kind ``account``)."""

    id: str
    username: str
    display_name: str
    department: str
    roles: list[str]
    inspector: str | None
    kind: str
    active: bool
    version: int
    tokens: Annotated[list[TokenRef], doc("tokens and sessions not revoked (their secrets are never shown again)")]


class TokenIssued(msgspec.Struct, kw_only=True):
    """A token: ``token`` is shown this once (only its id is stored)."""

    token: str
    token_id: str
    expires_at: Annotated[int, doc("Unix seconds")]
    account: AccountView


class Revoked(msgspec.Struct, kw_only=True):
    """A token or session revoked: refused from the next request on."""

    token_id: str
    revoked: bool


class Session(msgspec.Struct, kw_only=True):
    """A session: the HttpOnly cookie is set; ``csrf_token`` goes in ``X-CSRF-Token`` on every state-changing
    request made with the cookie; ``token`` may be used as a bearer token instead (then no CSRF header)."""

    token: str
    token_id: str
    csrf_token: str
    expires_at: int
    account: AccountView


class SecurityLogEntry(msgspec.Struct, kw_only=True):
    id: int
    at: str
    username: str
    account_id: str | None
    event: Annotated[str, doc("login, logout, lockout, password_change, password_reset")]
    outcome: Annotated[str, doc("ok, bad_password, unknown_user, inactive, locked")]
    source: Annotated[str, doc("the client's address")]


# -- answers --------------------------------------------------------------------------------------------------------
class Recorded(msgspec.Struct, kw_only=True):
    """What a command stored: the aggregate id, its version and the last log position (null: nothing changed),
    and the command's own summary fields."""

    id: str
    version: int
    position: int | None


class EntryWritten(msgspec.Struct, kw_only=True):
    """A directory write: the entry, its version, the log position (null: nothing changed) and the fields
    that changed."""

    id: str
    version: int
    position: int | None
    changed: list[str]


class Entry(msgspec.Struct, kw_only=True):
    """A directory entry's current state: its fields follow the envelope."""

    id: str
    version: int
    created_on: str
    modified_on: str


class ConfigurationView(msgspec.Struct, kw_only=True):
    """The deployment's configuration: ``version`` 0 until first changed."""

    version: int
    settings: Json
    defaults: Json


class ConfigurationChange(_In):
    reason: Annotated[str, doc("why, recorded in the event", example="县局2025年度目标调整")]
    joint_share_goal: Annotated[str | Unset, doc("exact ratio: \"0.6\", \"60%\" or \"3/5\"")] = UNSET
    baseline_rules: Annotated[list[Json] | Unset, doc("sampling rules, as a plan entry's `rules`")] = UNSET
    result_codes: Annotated[list[Json] | Unset, doc("`{code, wording, english, problem_found}` each")] = UNSET


class History(msgspec.Struct, kw_only=True):
    id: str
    events: list[Json]


class ImportSummary(msgspec.Struct, kw_only=True):
    created: int
    updated: int
    unchanged: int
    events: int
    position: int | None
    ignored_columns: Annotated[list[dict[str, str]], doc(
        "columns whose header is not one of the kind's: `{column, header}`; their values were not read")] = []
    new_tags: Annotated[list[dict[str, Any]], doc(
        "tags outside the vocabulary, kept as written: `{tag, rows, first_row}`")] = []


class Page(msgspec.Struct, kw_only=True):
    """One page of a listing."""

    items: list[Json]
    total: Annotated[int, doc("matches; in directory listings and the public results at most 1000 unless "
                              "`count=exact` (see total_exact)")]
    limit: int
    offset: int
    next_cursor: Annotated[str | Unset | None, doc("directory listings: pass as `cursor` for the next page; "
                                                   "null after the last")] = UNSET
    total_exact: Annotated[bool | Unset, doc("directory listings and the public results: false when `total` is the "
                                             "cap, not the count")] = UNSET
    next_offset: Annotated[int | Unset | None, doc("the public results: `offset` of the next page; null after the "
                                                   "last")] = UNSET


class Items(msgspec.Struct, kw_only=True):
    items: list[Json]


class Overlaps(msgspec.Struct, kw_only=True):
    overlaps: list[Json]


class View(msgspec.Struct, kw_only=True):
    """A read view (an object; its fields are described in the operation's description)."""


class TaskView(msgspec.Struct, kw_only=True):
    """A task (GET /tasks/{id}); the drawn targets are not in it."""

    id: str
    version: int
    number: str | None
    name: str
    lead: str
    departments: list[str]
    participants: dict[str, list[str]]
    is_joint: bool
    is_random: bool
    origin: Annotated[str, doc("how the task came about", enum=ORIGINS)]
    reason: str | None
    plan_entry: str | None
    year: int
    period: str
    category: str | None
    scope: JsonValue
    rules: JsonValue
    options: Json
    state: str
    round: int
    commitment: str | None
    frozen: Json | None
    withdrawn: list[Json]
    overlaps: Annotated[
        list[dict[str, str]],
        doc("current random tasks this one overlaps, declared when it was opened: id, number, name, period"),
    ] = []
    overlap_reason: Annotated[str, doc("why a second draw over the same ground was needed ('' when none)")] = ""
    entropy_source: Annotated[str, doc("the current round's declared entropy source ('' when none)")] = ""
    share_commitments: Annotated[
        dict[str, str], doc("joint tasks: department -> SHA-256 of its seed share, this round")
    ] = {}
    seed_shares: Annotated[dict[str, str], doc("joint tasks: department -> its revealed seed share, this round")] = {}
    drawn: int
    teams_drawn: list[str]


class Breach(msgspec.Struct, kw_only=True):
    rule: str
    period: str | None
    stratum: str | None
    message: str


class PlanView(msgspec.Struct, kw_only=True):
    """A plan with its entries, quotas, tasks and the breaches of its rules."""

    id: str
    version: int
    department: str
    year: int
    name: str
    inspectors: JsonValue
    entries: list[Json]
    removed: JsonValue
    tasks: list[Json]
    breaches: list[Breach]
    department_name: str | Unset = UNSET


class AssignmentView(msgspec.Struct, kw_only=True):
    """One visit: its task(s), target, items and teams per department."""

    id: str
    version: int
    tasks: list[Json]
    target_id: str
    lead: str
    departments: list[str]
    items: JsonValue
    teams: JsonValue
    visit_date: str | None
    period: str | None
    state: str
    off_site_first: JsonValue
    recusals: list[Json]
    redraws: Json
    merged_into: str | None
    target: Annotated[Json | Unset, doc("the target's `target_name`, `credit_code`, `address`")] = UNSET
    department_names: Annotated[Json | Unset, doc("department code -> name")] = UNSET
    item_names: Annotated[Json | Unset, doc("item id -> `{code, name, department}`")] = UNSET
    people: Annotated[Json | Unset, doc("id of everyone on the teams -> `{name, certificate_no, department}` "
                                        "(experts: `field`, `organisation`)")] = UNSET


class InspectionView(msgspec.Struct, kw_only=True):
    """A department's inspection of a visit."""

    id: str
    version: int
    assignment_id: str
    task_id: str | None
    department: str
    target_id: str
    items: list[str]
    team: JsonValue
    state: Annotated[str, doc("review state", enum=REVIEW_STATES)]
    inspected_on: str | None
    methods: list[str]
    method_labels: list[str]
    findings: list[Json]
    history: list[Json]
    approved_on: str | None
    deadline: Json | None
    overdue: bool
    days_left: int | None
    published_on: str | None
    published_late: bool | None
    push_state: Annotated[str | None, doc("push state (null before approval)", enum=ALL_PUSH_STATES)]
    push: JsonValue


class VisitInspections(msgspec.Struct, kw_only=True):
    assignment_id: str
    departments: list[str]
    lead: str
    inspections: dict[str, Json]


class NoticesView(msgspec.Struct, kw_only=True):
    assignment_id: str
    lead: str
    departments: list[str]
    version: int
    pre_visit: Json | None
    result: Json | None
    shared: list[Json]


class ReferralView(msgspec.Struct, kw_only=True):
    id: str
    version: int
    kind: Annotated[str, doc("referral kind", enum=REFERRAL_KINDS)]
    from_department: str
    to: str
    copy_to: str | None
    source: JsonValue
    reason: str
    transferred_on: str | None
    documents: list[Json]
    respond_by: str | None
    outcome_by: str | None
    state: Annotated[str, doc("referral state", enum=REFERRAL_STATES)]
    receipt: Json | None
    decision: Json | None
    outcome: Json | None
    extensions: list[Json]
    overdue: JsonValue
    finding: Annotated[Json | None, doc("the referred finding as recorded (confidential fields too: a referral is "
                                        "between authorities), with inspected_on; null when its inspection is gone")]
    names: Annotated[Json, doc("names next to ids: departments {code: name}, targets {id: {name, credit_code, "
                               "address}}, items {id: {code, name}}")]


class FollowUpView(msgspec.Struct, kw_only=True):
    id: str
    version: int
    department: str
    period: str
    ratio: str
    pool: JsonValue
    quota: int
    commitment: str | None
    entropy_source: Annotated[
        str | None,
        doc("the public entropy source declared with the commitment ('' for none; null: planned before sources "
            "were declared, its draw took any text)"),
    ] = None
    position: Annotated[int | None, doc("the log position the pool was read at (null: planned before it was "
                                        "recorded)")] = None
    draw: Annotated[Json | None, doc("the draw record with the revealed seed (null before the draw, and for "
                                     "readers who do not see the whole round)")]
    selected: Annotated[list[str], doc("the selected targets; an inspector reads only those they did not inspect "
                                       "in the period")]
    whole_round: Annotated[bool, doc("whether this reader sees the whole round (pool, draw, every selected "
                                     "target): admins, auditors, the department's planners and reviewers")] = True
    visits: JsonValue
    opinions_visible: bool
    overlaps: Annotated[
        list[dict[str, str]],
        doc("the department's follow-up rounds whose periods overlap this one, declared when it was planned: id, "
            "period"),
    ] = msgspec.field(default_factory=list)
    overlap_reason: Annotated[str, doc("why a second follow-up draw over overlapping periods ('' when none)")] = ""


class ChainCheckAnswer(msgspec.Struct, kw_only=True):
    """One check of a round's chain (docs/verifying-a-draw.md section 13.1): `freeze`, `commitment`,
    `entropy_source`, `share_commitments` or `seed_shares`; `status` `ok`, `differs` (`detail`: the first
    difference) or `not_checked` (`detail`: why: it is relative to a freeze that differs)."""

    check: str
    status: str
    detail: str | None


class ChainAnswer(msgspec.Struct, kw_only=True):
    """A round's chain: `match` when every check is `ok`; `first_difference` the first check's that is not, in
    section 13.1's order; `checks` all five."""

    match: bool
    first_difference: str | None
    checks: list[ChainCheckAnswer]


class Verification(msgspec.Struct, kw_only=True):
    """A re-run draw: `match`, or the first difference (`null` on a match), with the round checked and the
    pool recomputed from the log at the freeze position. For a task's round, `chain` reports the round's chain
    (section 13.1), checked first: when it does not hold, `match` is false and `first_difference` is the chain's.
    For a follow-up round, `skipped` is true when a version 1 round (no recorded `position`) could not be
    re-derived (section 17): `match` is false and `first_difference` says why, which is not a mismatch."""

    match: bool
    first_difference: JsonValue
    skipped: bool | Unset = UNSET
    task_id: str | Unset = UNSET
    round: int | Unset = UNSET
    status: str | Unset = UNSET  # current or withdrawn
    freeze_position: int | Unset = UNSET
    pool_size: int | Unset = UNSET
    pool_digest: str | Unset | None = UNSET
    chain: ChainAnswer | Unset = UNSET


class DrawRoundSummary(msgspec.Struct, kw_only=True):
    """One round of a task's target draw, without its selected ids."""

    round: int
    status: str  # current or withdrawn
    stage: str  # committed, frozen or drawn: how far the round got
    withdrawn_reason: str | None
    commitment: str | None
    freeze_position: int | None
    pool_size: int | None
    designated: bool  # a case task's named targets, not a draw
    selected: int  # how many targets the round selected


class DrawRounds(msgspec.Struct, kw_only=True):
    """Every round of a task's target draw, current and withdrawn, in round order."""

    task_id: str
    current_round: int
    rounds: list[DrawRoundSummary]


class DrawRound(msgspec.Struct, kw_only=True):
    """One round in full: commitment, frozen pool (position, digest, strata), draw record, teams."""

    task_id: str
    round: int
    status: str
    stage: str
    withdrawn_reason: str | None
    commitment: str | None
    frozen: Json | None
    record: Json | None
    teams: Json


class CalendarView(msgspec.Struct, kw_only=True):
    covered_years: list[int]
    working_days: int
    loaded: list[Json]
    version: int


class ClueRecorded(msgspec.Struct, kw_only=True):
    """A recorded clue: the target's raised risk class and the case-triggered task opened."""

    clue_id: str
    clue: Json
    target_id: str
    risk: Json
    task: Json
    position: int | None
    version: int


class EvidenceRef(msgspec.Struct, kw_only=True):
    sha256: str
    size: int
    name: str
    media_type: str


class Deadline(msgspec.Struct, kw_only=True):
    """`start` + `working_days` working days = `date`; provisional when a year counted has no schedule."""

    date: str
    provisional: bool
    start: str
    working_days: int
    uncovered_years: list[int]


class DrawnList(msgspec.Struct, kw_only=True):
    """The drawn visits; the whole record and the teams only for the task's planners and auditors."""

    task_id: str
    number: str | None
    round: int
    state: str
    visits: list[Json]
    next_cursor: str | None = None
    record: Json | Unset = UNSET
    teams: JsonValue | Unset = UNSET
    inspectors: Annotated[Json | Unset, doc("every team member by id: name, certificate_no, department")] = UNSET


class EventsPage(msgspec.Struct, kw_only=True):
    items: list[Json]
    after: int
    limit: int
    next_after: int
    head: int


class AsOf(msgspec.Struct, kw_only=True):
    version: int
    position: int
    time: str | None


class AggregateHistory(msgspec.Struct, kw_only=True):
    """An aggregate's events and its state replayed as of a version or time."""

    id: str
    kind: str | None
    version: int
    as_of: AsOf
    state: Json
    events: list[Json]


class Tree(msgspec.Struct, kw_only=True):
    tree_size: int
    root_hash: str


class SignerAlarm(msgspec.Struct, kw_only=True):
    since: Annotated[str, doc("UTC, YYYY-MM-DDTHH:MM:SSZ")]
    external_tree_size: Annotated[int | None, doc("size of the external checkpoint the store does not reproduce")]


class Cosignature(msgspec.Struct, kw_only=True):
    """A witness's C2SP cosignature/v1 of a checkpoint, checked against the witness keys the admin configured."""

    witness: Annotated[str, doc("the witness's key name")]
    department: str
    key_id: Annotated[str, doc("C2SP key id (hex) of the witness key")]
    timestamp: Annotated[int, doc("POSIX seconds, as signed")]
    root_hash: str
    signature: Annotated[str, doc("Ed25519 signature (base64) of cosignature/v1, time, and the checkpoint body")]


class Checkpoint(msgspec.Struct, kw_only=True):
    """A signed checkpoint: `body` is the signed text, `note` the C2SP signed note."""

    origin: str
    tree_size: int
    root_hash: str
    time: Annotated[str, doc("UTC, YYYY-MM-DDTHH:MM:SSZ")]
    position: int
    key_id: str
    signature: str
    body: str
    note: str
    witnesses: Annotated[list[Cosignature], doc("the partners' witnesses that cosigned it")] = []


class AuditCoverage(msgspec.Struct, kw_only=True):
    """How much of the log the newest checkpoint and its witnesses cover."""

    head: Annotated[int, doc("log position of the last event")]
    tree_size: Annotated[int, doc("leaves in the audit tree now")]
    latest_checkpoint: Checkpoint | None
    events_since: Annotated[int, doc("leaves added to the audit tree since the newest checkpoint")]
    witnessed_checkpoint: Annotated[Checkpoint | None, doc("the newest checkpoint cosigned by a witness")]
    events_since_witnessed: Annotated[int, doc("leaves added since the newest witnessed checkpoint")]
    witness_keys: Annotated[list[str], doc("vkeys of the witnesses the admin configured")]
    signer_alarm: Annotated[SignerAlarm | None, doc("set while the signer refuses to sign")] = None


class Checkpoints(msgspec.Struct, kw_only=True):
    items: list[Checkpoint]
    next_after_size: int


class PublicKey(msgspec.Struct, kw_only=True):
    algorithm: Annotated[str, doc("the signature algorithm", enum=["Ed25519"])]
    key_name: str
    key_id: str
    public_key: Annotated[str, doc("the raw 32 bytes, base64")]
    public_key_hex: str
    vkey: Annotated[str, doc("the C2SP verifier key")]


class InclusionProof(msgspec.Struct, kw_only=True):
    position: int
    leaf_index: int
    tree_size: int
    leaf_hash: str
    root_hash: str
    proof: list[str]
    checkpoint: Checkpoint | None


class ConsistencyProof(msgspec.Struct, kw_only=True):
    first: int
    second: int
    first_root: str
    second_root: str
    proof: list[str]


class Inbox(msgspec.Struct, kw_only=True):
    department: str
    tasks: list[Json]
    inspectors: list[Json]


class Health(msgspec.Struct, kw_only=True):
    status: str


class Lag(msgspec.Struct, kw_only=True):
    position: int
    lag: int


class ProjectionFailure(msgspec.Struct, kw_only=True):
    position: Annotated[int, doc("the log position of the event the read model cannot apply")]
    error: Annotated[str, doc("the exception's type (its message: `dualrandom projections status`)")]
    since: Annotated[str, doc("when it was first recorded, ISO 8601 UTC")]


class ProjectionLag(Lag, kw_only=True):
    ready: bool
    failed: Annotated[ProjectionFailure | None, doc("set while the read model cannot apply an event")] = None


class RelayLag(Lag, kw_only=True):
    failed: Annotated[ProjectionFailure | None, doc("set while the relay cannot publish the event at `position`")] = None


class Readiness(msgspec.Struct, kw_only=True):
    status: Annotated[str, doc("ready; starting, lagging or failed (503)",
                               enum=["ready", "starting", "lagging", "failed"])]
    head: int
    max_lag: int | None
    startup_max_lag: Annotated[int | None, doc("DUALRANDOM_READY_STARTUP_LAG; null: no start-up gate")] = None
    projections: dict[str, ProjectionLag]
    rebuilding: dict[str, Lag]
    relay: Annotated[RelayLag | None, doc("the relay's lag (null where this process runs none); `failed` while "
                                          "JetStream refuses an event or an event has no contract")]
    audit_signer_alarm: Annotated[SignerAlarm | None, doc("set while the audit signer refuses to sign")] = None


# -- plans ----------------------------------------------------------------------------------------------------------
class PlanCreate(_In):
    year: Annotated[int, doc("the plan year", example=2024)]
    department: Annotated[str | Unset, doc("department code; default: yours")] = UNSET
    name: Annotated[str | Unset, doc("default: <year>年“双随机、一公开”监管随机抽查工作计划")] = UNSET


Rules = Annotated[
    list[Json],
    doc("sampling rules per supervision class (and risk class): min_ratio, min_per_inspector, combine "
        "(either|larger), full, once_a_year", example=[{"supervision_class": "key", "min_ratio": "25%"}]),
]
Scope = Annotated[Json, doc("county, industries, supervision_classes, risk_classes, tags, description")]
Period = Annotated[str, doc("2024Q1, 2024-03, 2024H1 or 2024", example="2024Q2")]
Category = Annotated[str, doc("the entry's category", enum=CATEGORIES)]


class EntryCreate(_In):
    name: Annotated[str, doc("the entry's name", example="企业年报信息抽查")]
    items: Annotated[list[str], doc("item ids of the department (several make one visit, 多项合一)")]
    category: Category
    period: Period
    rules: Rules = []
    scope: Scope | Unset = UNSET


class EntryChange(_In):
    name: Annotated[str | Unset, doc("the entry's name")] = UNSET
    items: Annotated[list[str] | Unset, doc("item ids of the department")] = UNSET
    category: Category | Unset = UNSET
    period: Period | Unset = UNSET
    scope: Annotated[Scope | Unset | None, doc("null clears it: no conditions, the whole county (不定向)")] = UNSET


class RulesAdjust(_In):
    rules: Rules
    reason: Annotated[str, doc("why the ratios change (适时调整)")]


class Reason(_In):
    reason: Annotated[str, doc("the reason, recorded in the event", example="清单调整")]


# -- tasks ----------------------------------------------------------------------------------------------------------
class TaskCreate(_In):
    plan_entry: Annotated[str | Unset, doc("the plan entry's number (YYYYnnn)", example="2024001")] = UNSET
    lead: Annotated[str | Unset, doc("the lead department; default: yours")] = UNSET
    participants: Annotated[
        dict[str, list[str]] | Unset, doc("participating department -> the items it brings (joint task)")
    ] = UNSET
    period: Period | Unset = UNSET
    category: Category | Unset = UNSET
    scope: Scope | Unset = UNSET
    rules: Rules | Unset = UNSET
    options: Annotated[
        Json | Unset,
        doc("exclude_inspected_this_year, exclusion_per_visit, exclude_previous_inspectors, match_region, team_size, "
            "weighted, risk_weights"),
    ] = UNSET
    origin: Annotated[str | Unset, doc("`case` for a case-triggered task (个案检查)", enum=ORIGINS)] = UNSET
    reason: Annotated[str | Unset, doc("required for ad hoc and case-triggered tasks")] = UNSET
    name: Annotated[str | Unset, doc("the task's name by the naming rule (新乡市+县区+部门+时间+任务类型); generated when omitted")] = UNSET
    overlaps: Annotated[
        list[str] | Unset,
        doc("ids of the current random tasks this one overlaps (same department and items, a common month and "
            "scope): a random task overlapping any is refused (409) unless it names them all"),
    ] = UNSET
    overlap_reason: Annotated[str | Unset, doc("why the overlapping draw is needed; required with `overlaps`")] = UNSET


class Freeze(_In):
    quotas: Annotated[dict[str, int], doc("stratum -> quota, raising the rules' minimum")] = {}


class Commit(_In):
    entropy_source: Annotated[
        str,
        doc("the public source the draw's external entropy will come from, declared before the freeze; known "
            "kinds check the value's form (福彩3D, 排列3: three digits; 排列5: five; drand: 64 hex digits); '' for none "
            "(the draw then takes no external entropy)", example="福彩3D 2024年第059期开奖号码"),
    ] = ""


class ShareCommitment(_In):
    commitment: Annotated[str, doc("SHA-256 of the department's 32 secret random bytes, 64 lowercase hex digits")]


class ShareReveal(_In):
    share: Annotated[str, doc("the department's 32 secret bytes as 64 lowercase hex digits")]


class Draw(_In):
    external_entropy: Annotated[
        str, doc("the value published for the declared entropy source, e.g. 581 ('' when none was declared)")
    ] = ""
    entropy_source: Annotated[str, doc("the entropy source declared with the commitment, repeated")] = ""


class Designate(_In):
    targets: Annotated[list[str], doc("target ids named by the case")]


class Teams(_In):
    visit_date: Annotated[dt.date | Unset, doc("the visit date certificates must cover")] = UNSET


class Recusal(_In):
    inspector_id: Annotated[str, doc("the inspector recused")]
    reason: Annotated[str, doc("the declared conflict")]
    department: Annotated[str | Unset, doc("the inspector's department; default: inferred")] = UNSET


class Merge(_In):
    into: Annotated[uuid.UUID, doc("the assignment this visit joins")]
    reason: Annotated[str, doc("why the visits merge")]


# -- execution ------------------------------------------------------------------------------------------------------
class Findings(_In):
    inspected_on: Annotated[str, doc("the inspection date, not in the future", example="2024-05-20")]
    methods: Annotated[list[str], doc(f"inspection methods, among: {', '.join(INSPECTION_METHODS)}", example=["on_site"])]
    findings: Annotated[
        dict[str, Json],
        doc(f"item id -> {{result ({', '.join(RESULT_CODES)}), description, evidence, measures, confidential}}",
            example={"item-1": {"result": "no_problem", "description": ""}}),
    ]


class OnDate(_In):
    on: Date = None


class Approval(_In):
    approved_on: Date = None


class Publication(_In):
    published_on: Date = None


class Push(_In):
    state: Annotated[str, doc("the new push state", enum=PUSH_STATES)]
    on: Date = None
    channel: Annotated[str, doc("how it was pushed", enum=PUSH_CHANNELS)] = "data_push"
    reference: Annotated[str, doc("the receiving system's reference")] = ""
    reason: Annotated[str, doc("required for `failed`")] = ""


class PreVisit(_In):
    issued_on: Date = None
    visit_from: Date = None
    visit_to: Date = None


class Sending(_In):
    method: Annotated[str, doc("how it was sent", enum=SENDING_METHODS)]
    sent_on: Date = None
    recipient: Recipient = ""
    note: Note = ""


class Delivery(_In):
    method: Annotated[str, doc("how it was delivered (送达)", enum=SENDING_METHODS)]
    delivered_on: Date = None
    recipient: Recipient = ""
    note: Note = ""


class ResultIssue(_In):
    issued_on: Date = None


class Documents(_In):
    documents: Documents_
    note: Note = ""


class ReferralIn(_In):
    inspection_id: Annotated[str, doc("the inspection whose finding is referred")]
    item: Annotated[str, doc("the item id of the finding")]
    kind: Annotated[str, doc("where it goes", enum=REFERRAL_KINDS)]
    to: Annotated[str, doc("a department code, or the receiving organ")]
    reason: Why
    copy_to: Annotated[str, doc("the procuratorate (judicial referrals)")] = ""
    transferred_on: Date = None
    documents: Documents_ = []
    respond_by: Date = None
    outcome_by: Date = None


class Receipt(_In):
    on: Date = None
    reference: Annotated[str, doc("the receiving side's reference (回执)")] = ""


class Acceptance(_In):
    on: Date = None
    note: Note = ""


class Rejection(_In):
    reason: Why
    on: Date = None


class Outcome(_In):
    text: Annotated[str, doc("the outcome reported")]
    on: Date = None
    documents: Documents_ = []


class Extension(_In):
    deadline: Annotated[str, doc("the deadline moved", enum=DEADLINES)]
    new: Annotated[str, doc("the new date, YYYY-MM-DD")]
    reason: Why


class ClueIn(_In):
    source: Annotated[str, doc("where the clue came from", enum=CLUE_SOURCES)]
    department: Annotated[str, doc("the department acting on it")]
    target_id: Annotated[str, doc("the target concerned")]
    received_on: Annotated[str, doc("YYYY-MM-DD")]
    summary: Annotated[str, doc("what the clue says")]
    items: Annotated[list[str], doc("item ids of the case-triggered task")]
    reference: Annotated[str, doc("the clue's own reference (complaint number, alert id)")] = ""
    method: Annotated[str, doc("off-site method of a monitoring alert")] = ""
    evidence: Documents_ = []
    period: Period | Unset = UNSET


class FollowUpPlan(_In):
    period: Period
    department: Annotated[str | Unset, doc("default: yours")] = UNSET
    ratio: Annotated[str | Unset, doc("share of the pool, default 10%", example="10%")] = UNSET
    overlaps: Annotated[
        list[str] | Unset,
        doc("ids of the department's follow-up rounds whose periods share a month with this one: a round "
            "overlapping any is refused (409) unless it names them all"),
    ] = UNSET
    overlap_reason: Annotated[str | Unset, doc("why the overlapping follow-up draw is needed; required with "
                                                   "`overlaps`")] = UNSET
    entropy_source: Annotated[
        str,
        doc("the public source the draw's external entropy will come from, declared with the commitment; known "
            "kinds check the value's form (福彩3D, 排列3: three digits; 排列5: five; drand: 64 hex digits); '' for none "
            "(the draw then takes no external entropy)", example="福彩3D 2024年第150期开奖号码"),
    ] = ""


class Visit(_In):
    target_id: TargetId
    method: Annotated[str, doc("how the visit was made", enum=FOLLOW_UP_METHODS)]
    visited_on: Date = None
    opinions: Annotated[str, doc("the visitee's opinions (confidential)")] = ""
    problems: Annotated[str, doc("problems found on the visit")] = ""


class Escalation(_In):
    target_id: TargetId
    authority: Annotated[str, doc("the discipline inspection authority")]
    reason: Why
    on: Date = None


class EscalationOutcome(_In):
    target_id: TargetId
    outcome: Annotated[str, doc("what discipline inspection decided")]
    on: Date = None


class Feedback(_In):
    target_id: TargetId
    feedback: Annotated[str, doc("how the opinions and problems were handled (反馈)")]
    method: Annotated[str, doc("how the feedback was given", enum=FOLLOW_UP_METHODS)] = "letter"
    on: Date = None


class Schedule(_In):
    year: Annotated[int, doc("the year the schedule covers", example=2025)]
    holidays: Annotated[list[str], doc("holiday dates in `year`")]
    workdays: Annotated[list[str], doc("make-up workdays (weekends) in `year`")]
    source: Annotated[str, doc("where the schedule was published")] = ""


# -- examples of the main request bodies ----------------------------------------------------------------------------
EXAMPLES: dict[str, tuple[str, Json]] = {
    "plan": ("this year's plan of your department", {"year": 2024}),
    "configuration": ("a county's own joint-share goal", {"joint_share_goal": "50%", "reason": "县局2025年度目标调整"}),
    "entry": ("a quarterly entry", {
        "name": "一季度随机抽查", "items": ["<item id>", "<item id>"], "category": "general", "period": "2024Q1",
        "rules": [{"supervision_class": "key", "min_ratio": "25%"}, {"supervision_class": "general",
                                                                     "min_ratio": "5%", "min_per_inspector": 6}],
    }),
    "task": ("a joint task from a plan entry", {
        "plan_entry": "2024001", "participants": {"hj-amr": ["<item id>"]}, "options": {"team_size": 2},
    }),
    "findings": ("one item without problems", {
        "inspected_on": "2024-05-20", "methods": ["on_site"],
        "findings": {"<item id>": {"result": "no_problem", "description": "", "evidence": [], "measures": []}},
    }),
    "referral": ("refer a finding to another department", {
        "inspection_id": "<inspection id>", "item": "<item id>", "kind": "department", "to": "hj-amr",
        "reason": "涉嫌无照经营", "respond_by": "2024-06-30",
    }),
}
