"""Accounts, logins, sessions and tokens: every command both records the account's event and updates the
credential/state table (``services/infra/accounts_store.py``) that authenticates the next request."""

import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from domain import accounts as rules
from domain.access import Actor
from domain.accounts import Account
from domain.errors import FieldProblem, InvalidInputError, PermissionDeniedError
from domain.values import Role
from projections.directory import queries as directory_queries
from projections.directory.projection import TABLES as DIRECTORY_TABLES
from projections.runner import ProjectionRunner
from services.api.auth import issue_token
from services.application import CommandContext, ConflictError, DualRandom, NotFoundError
from services.infra import accounts_store as store
from services.infra.metrics import METRICS
from services.usecases.lookups import Lookups

FAILURES_BEFORE_LOCK = 5  # consecutive failed logins, then the account is locked for LOCK_SECONDS
LOCK_SECONDS = 15 * 60
SLOW_AFTER = 3  # from the 3rd consecutive failure on, each next attempt waits 2**(failures-3) seconds


INT4_MAX = 2**31 - 1  # the security log's id column


class LoginRefused(Exception):
    """Wrong username or password, an inactive or a locked account (the message does not say which)."""

    def __init__(self, retry_after: int = 0) -> None:
        super().__init__("unknown username or wrong password, or the account is locked or inactive")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Issued:
    token: str
    token_id: str
    expires_at: int
    account: dict[str, Any]


def _require_admin(actor: Actor) -> None:
    if not actor.has(Role.ADMIN):
        raise PermissionDeniedError(f"only an admin manages accounts (role {actor.role!r} may not)")


def describe(agg: Account) -> dict[str, Any]:
    return {
        "id": str(agg.id), "username": agg.username, "display_name": agg.display_name,
        "department": agg.department, "roles": list(agg.roles), "inspector": agg.inspector, "kind": agg.kind,
        "active": agg.active, "version": agg.version,
        "tokens": [{"id": k, "name": v} for k, v in sorted(agg.tokens.items())],
    }


class Accounts:
    def __init__(self, app: DualRandom, engine: Engine, runner: ProjectionRunner, lookups: Lookups,
                 secret: str) -> None:
        self.app = app
        self.engine = engine
        self.runner = runner
        self.lookups = lookups
        self.secret = secret
        self._reader = _reader(engine)
        self.slow_seconds = 1.0  # the first wait after SLOW_AFTER failures (doubling); tests lengthen it

    def setup(self) -> None:
        store.setup(self.engine)

    # -- reading -------------------------------------------------------------------------------------------
    def _load(self, ident: str) -> Account:
        agg: Any
        try:
            agg = self.app.repository.get(uuid.UUID(ident))
        except Exception:  # noqa: BLE001 - not a UUID, not found, another kind of stream
            agg = None
        if not isinstance(agg, Account):
            raise NotFoundError("account", ident)
        return agg

    def get(self, actor: Actor, ident: str) -> dict[str, Any]:
        if ident != actor.subject:
            _require_admin(actor)
        return describe(self._load(ident))

    def list_all(self, actor: Actor) -> list[dict[str, Any]]:
        _require_admin(actor)
        with self.engine.connect() as conn:
            ids = [r.id for r in conn.execute(store.ACCOUNT.select().order_by(store.ACCOUNT.c.username))]
        return [describe(self._load(i)) for i in ids]

    def find(self, username: str) -> Account | None:
        with self.engine.connect() as conn:
            row = store.account_row(conn, username=username)
        return self._load(row.id) if row else None

    def names(self, ids: Iterable[Any]) -> dict[str, str]:
        """Account id -> display name, of the ids that are accounts."""
        wanted = {i for i in ids if isinstance(i, str)}
        if not wanted:
            return {}
        a = store.ACCOUNT
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(a.c.id, a.c.display_name).where(a.c.id.in_(wanted)))
            return {r.id: r.display_name for r in rows}

    def with_actor_names(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each event's ``meta.actor_name``: the account's display name, or, for an actor recorded before
        accounts existed (a token subject, ``cli:<login>``, ``system``), the recorded actor itself."""
        metas: list[dict[str, Any]] = [e["meta"] for e in events if isinstance(e.get("meta"), dict)]
        names = self.names(m.get("actor") for m in metas)
        for m in metas:
            actor = m.get("actor")
            m["actor_name"] = names.get(actor, actor) if isinstance(actor, str) else actor
        return events

    def security_log(self, actor: Actor, limit: int = 100, before: int | None = None) -> list[dict[str, Any]]:
        if not (actor.has(Role.ADMIN) or actor.has(Role.AUDITOR)):
            raise PermissionDeniedError("only auditors and admins read the security log")
        t = store.SECURITY_LOG
        q = t.select().order_by(t.c.id.desc()).limit(limit)
        if before is not None and before <= INT4_MAX:  # ids are 32-bit integers: a larger bound keeps every entry
            q = q.where(t.c.id < before)
        with self.engine.connect() as conn:
            return [
                {"id": r.id, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r.at)), "username": r.username,
                 "account_id": r.account_id, "event": r.event, "outcome": r.outcome, "source": r.source}
                for r in conn.execute(q)
            ]

    # -- commands ------------------------------------------------------------------------------------------
    def _state(self, agg: Account, **extra: Any) -> dict[str, Any]:
        return {"id": str(agg.id), "username": agg.username, "display_name": agg.display_name,
                "department": agg.department, "roles": agg.roles, "inspector": agg.inspector, "kind": agg.kind,
                "active": agg.active, **extra}

    def _check_department(self, code: str) -> None:
        self.runner.catch_up_named(("directory",))
        self.lookups.department(code, "department")

    def _check_inspector(self, department: str, inspector: str | None) -> None:
        """An inspector link names an entry of the account's department's inspector directory, as it is now (by
        entry id or staff id); else 422 ``inspector`` / ``unknown_inspector``."""
        if inspector is None:
            return
        self.runner.catch_up_named(("directory",))
        with self.engine.connect() as conn:
            found = directory_queries.inspector_entries(conn, department, inspector)
        if not found:
            raise InvalidInputError([FieldProblem(
                "inspector", "unknown_inspector",
                f"no inspector of department {department} has the entry id or staff id {inspector!r} "
                "(GET /api/v1/inspectors?department=...)")])

    def create(self, ctx: CommandContext, data: dict[str, Any], password: str | None = None, *,
               check_department: bool = True, admin_check: bool = True) -> dict[str, Any]:
        """A new account (``department`` must be in the directory); ConflictError when the username is taken."""
        if admin_check:
            _require_admin(ctx.actor)
        values = rules.validate_new(data)
        if password is not None:
            rules.check_password(password)
        if check_department:
            self._check_department(values["department"])
        self._check_inspector(values["department"], values["inspector"])
        reason = rules.check_reason(data.get("reason") or "account created")
        agg = Account(**values, reason=reason)
        if password is not None:
            agg.password_set(by_admin=True)
        with self.engine.connect() as conn:
            if store.account_row(conn, username=values["username"]) is not None:
                raise ConflictError(f"the username {values['username']!r} is taken; nothing was stored")
        self.app.record(ctx, "account.create", agg)
        with self.engine.begin() as conn:
            extra = {"password_hash": store.hash_password(password)} if password is not None else {}
            store.put_account(conn, self._state(agg, **extra))
        return describe(agg)

    def change(self, ctx: CommandContext, ident: str, data: dict[str, Any]) -> dict[str, Any]:
        _require_admin(ctx.actor)
        agg = self._load(ident)
        if "department" in data and isinstance(data["department"], str):
            self._check_department(data["department"])
        known = {k: v for k, v in data.items() if k in {"roles", "department", "display_name", "inspector"}}
        changes = agg.change(known, data.get("reason") or "")
        if "inspector" in changes or "department" in changes:  # the link must name the department's inspector
            self._check_inspector(agg.department, agg.inspector)
        if changes:
            self.app.record(ctx, "account.change", agg)
            with self.engine.begin() as conn:
                store.put_account(conn, self._state(agg))
            store.accounts_changed()
            if "roles" in changes:
                METRICS.inc("dualrandom_account_role_changes_total")
        return describe(agg)

    def set_active(self, ctx: CommandContext, ident: str, active: bool, reason: Any) -> dict[str, Any]:
        _require_admin(ctx.actor)
        agg = self._load(ident)
        if not active and str(agg.id) == ctx.actor.subject:
            raise InvalidInputError([FieldProblem("id", "self", "an admin cannot deactivate their own account")])
        done = agg.reactivate(reason) if active else agg.deactivate(reason)
        if done:
            self.app.record(ctx, "account.reactivate" if active else "account.deactivate", agg)
            with self.engine.begin() as conn:
                store.put_account(conn, self._state(agg))
            store.accounts_changed()
        return describe(agg)

    def set_password(self, ctx: CommandContext, ident: str, password: Any, current: Any = None,
                     source: str = "") -> None:
        """An admin resets anyone's password; a person changes their own (with their current password)."""
        own = ident == ctx.actor.subject
        if not own:
            _require_admin(ctx.actor)
        new = rules.check_password(password)
        agg = self._load(ident)
        if own:
            with self.engine.connect() as conn:
                row = store.account_row(conn, account_id=ident)
            if not isinstance(current, str) or not store.check_password(row.password_hash if row else None, current):
                raise InvalidInputError([FieldProblem("current_password", "mismatch", "is not the current password")])
        agg.password_set(by_admin=not own)
        self.app.record(ctx, "account.password", agg)
        with self.engine.begin() as conn:
            store.put_account(conn, {"id": ident, "password_hash": store.hash_password(new), "failed": 0,
                                     "locked_until": 0.0})
            store.log_security(conn, agg.username, ident, "password_reset" if not own else "password_change",
                               "ok", source)

    def issue(self, ctx: CommandContext, ident: str, name: str, ttl_seconds: int, *, session: bool = False,
              admin_check: bool = True) -> Issued:
        """A named token for the account: its secret is shown once, only its id is stored (the token is
        signed; its id is checked on every request)."""
        if admin_check and not (session and ident == ctx.actor.subject):
            _require_admin(ctx.actor)
        agg = self._load(ident)
        if not agg.active:
            raise InvalidInputError([FieldProblem("id", "inactive", "the account is deactivated")])
        token_id = secrets.token_hex(16)
        now = time.time()
        expires = int(now) + ttl_seconds
        agg.token_issued(token_id=token_id, name=name, expires_at=expires, session=session)
        self.app.record(ctx, "account.token", agg)
        with self.engine.begin() as conn:
            conn.execute(store.TOKEN.insert().values(id=token_id, account_id=ident, name=name[:100],
                                                     session=session, issued_at=now, expires_at=float(expires),
                                                     revoked=False))
        token = issue_token(self.secret, agg.department, list(agg.roles), ident, ttl_seconds, token_id=token_id)
        return Issued(token, token_id, expires, describe(agg))

    def revoke(self, ctx: CommandContext, ident: str, token_id: str, reason: str = "revoked") -> bool:
        agg = self._load(ident)
        if ident != ctx.actor.subject:
            _require_admin(ctx.actor)
        with self.engine.begin() as conn:
            done = conn.execute(store.TOKEN.update().where(
                store.TOKEN.c.id == token_id, store.TOKEN.c.account_id == ident, store.TOKEN.c.revoked.is_(False)
            ).values(revoked=True)).rowcount
        if done:
            store.accounts_changed()  # refused from this process's next request (others: the trigger's notification)
        if agg.revoke(token_id, rules.check_reason(reason)):
            self.app.record(ctx, "account.revoke", agg)
        if done:
            METRICS.inc("dualrandom_token_revocations_total")
        return bool(done)

    # -- logging in ----------------------------------------------------------------------------------------
    def login(self, username: str, password: str, source: str, ttl_seconds: int) -> Issued:
        now = time.time()
        with self.engine.connect() as conn:
            row = store.account_row(conn, username=username) if isinstance(username, str) else None
        if row is not None and row.locked_until > now:
            self._failed(row, username, "locked", source, count=False)
            raise LoginRefused(int(row.locked_until - now) + 1)
        ok = store.check_password(row.password_hash if row is not None else None, password)
        if row is None or not ok or not row.active:
            outcome = "unknown_user" if row is None else ("bad_password" if not ok else "inactive")
            self._failed(row, username, outcome, source, count=row is not None and not ok)
            raise LoginRefused()
        with self.engine.begin() as conn:
            store.put_account(conn, {"id": row.id, "failed": 0, "locked_until": 0.0})
            store.log_security(conn, username, row.id, "login", "ok", source)
        METRICS.inc("dualrandom_logins_total", outcome="ok")
        ctx = CommandContext(Actor(row.id, row.department, tuple(row.roles.split(",")), name=row.display_name))
        return self.issue(ctx, row.id, "session", ttl_seconds, session=True)

    def _failed(self, row: Any, username: str, outcome: str, source: str, *, count: bool) -> None:
        METRICS.inc("dualrandom_logins_total", outcome="failed")
        with self.engine.begin() as conn:
            store.log_security(conn, username if isinstance(username, str) else "", row.id if row else None,
                               "login", outcome, source)
            if count and row is not None:
                failed = row.failed + 1
                lock = 0.0
                if failed >= FAILURES_BEFORE_LOCK:
                    lock = time.time() + LOCK_SECONDS
                    METRICS.inc("dualrandom_lockouts_total")
                    store.log_security(conn, row.username, row.id, "lockout", "locked", source)
                elif failed >= SLOW_AFTER:
                    lock = time.time() + self.slow_seconds * 2 ** (failed - SLOW_AFTER)
                store.put_account(conn, {"id": row.id, "failed": failed, "locked_until": lock})

    def logout(self, actor: Actor, token_id: str, source: str) -> None:
        ctx = CommandContext(actor)
        self.revoke(ctx, actor.subject, token_id, "logged out")
        with self.engine.begin() as conn:
            store.log_security(conn, actor.name or actor.subject, actor.subject, "logout", "ok", source)

    def authenticate(self, token_id: str) -> store.Principal | None:
        """The token's account as stored now (one round trip on PostgreSQL: an autocommit read without a
        pre-ping; a connection the server dropped is replaced and the read retried once)."""
        for attempt in (1, 2):
            try:
                with self._reader.connect() as conn:
                    return store.principal(conn, token_id, time.time(), DIRECTORY_TABLES["inspector"])
            except sa.exc.DBAPIError as exc:
                if attempt == 2 or not exc.connection_invalidated:
                    raise
        return None

    def close(self) -> None:
        if self._reader is not self.engine:
            self._reader.dispose()


def _reader(engine: Engine) -> Engine:
    """The engine of the per-request look-up: on PostgreSQL its own small pool in autocommit mode without a
    pre-ping (the main pool pings, begins and rolls back: four round trips for one read); on SQLite the engine."""
    if engine.dialect.name != "postgresql":
        return engine
    return sa.create_engine(engine.url, isolation_level="AUTOCOMMIT", pool_size=5, max_overflow=10,
                            pool_pre_ping=False)
