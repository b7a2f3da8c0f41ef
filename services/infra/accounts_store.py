"""Account credentials and current state, one indexed look-up per authenticated request.

Written in the same command as the account's events (``services/usecases/accounts.py``), so a deactivation,
a removed role or a revoked token is refused by the next request of every process sharing the database: the
check reads this table, never a cache. Password and token hashes live here only, never in an event.

Passwords: scrypt (``hashlib.scrypt``, OpenSSL), a memory-hard KDF: n=2**15, r=8, p=1 (32 MiB, ~0.1 s), a
16-byte random salt, 32-byte key; stored as ``scrypt$n$r$p$salt_b64$key_b64``.
"""

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

metadata = sa.MetaData()

ACCOUNT = sa.Table(
    "account_auth", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("username", sa.String(100), nullable=False, unique=True),
    sa.Column("display_name", sa.String(100), nullable=False),
    sa.Column("department", sa.String(32), nullable=False),
    sa.Column("roles", sa.String(200), nullable=False),  # comma-separated
    sa.Column("inspector", sa.String(64), nullable=True),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=True),
    sa.Column("failed", sa.Integer, nullable=False, default=0),
    sa.Column("locked_until", sa.Float, nullable=False, default=0.0),
)
TOKEN = sa.Table(
    "account_token", metadata,
    sa.Column("id", sa.String(32), primary_key=True),  # the token's jti
    sa.Column("account_id", sa.String(36), nullable=False, index=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("session", sa.Boolean, nullable=False),
    sa.Column("issued_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("revoked", sa.Boolean, nullable=False, default=False),
)
SECURITY_LOG = sa.Table(
    "security_log", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("username", sa.String(100), nullable=False),
    sa.Column("account_id", sa.String(36), nullable=True),
    sa.Column("event", sa.String(40), nullable=False),  # login, logout, password_change, ...
    sa.Column("outcome", sa.String(40), nullable=False),  # ok, bad_password, unknown_user, locked, inactive
    sa.Column("source", sa.String(100), nullable=False),  # the client's address
)

N, R, P = 2**15, 8, 1
_MAXMEM = 64 * 1024 * 1024


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, maxmem=_MAXMEM, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${N}${R}${P}${b64(salt).decode()}${b64(key).decode()}"


def check_password(stored: str | None, password: str) -> bool:
    """Does ``password`` match ``stored``? (Hashes a dummy when there is none: same time either way.)"""
    if not stored:
        hash_password(password)
        return False
    _, n, r, p, salt, key = stored.split("$")
    got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                         maxmem=_MAXMEM, dklen=32)
    return hmac.compare_digest(got, base64.b64decode(key))


@dataclass(frozen=True)
class Principal:
    """An authenticated request's account, as stored now (not as the token claimed)."""

    account_id: str
    username: str
    display_name: str
    department: str
    roles: tuple[str, ...]
    inspector: str | None  # the inspector entry id the link resolves to (the link itself when unresolved)
    kind: str


def setup(engine: Engine) -> None:
    metadata.create_all(engine)


def principal(conn: Connection, token_id: str, now: float, inspectors: sa.Table) -> Principal | None:
    """The active account of a token not revoked and not expired, with its inspector link resolved to the
    entry id (by entry id, else staff id, in the account's department); None otherwise. One query by primary
    keys; a second, indexed, only for an account linked to an inspector."""
    a, t, i = ACCOUNT, TOKEN, inspectors
    row = conn.execute(
        sa.select(a.c.id, a.c.username, a.c.display_name, a.c.department, a.c.roles, a.c.inspector, a.c.kind)
        .select_from(t.join(a, a.c.id == t.c.account_id))
        .where(t.c.id == token_id, t.c.revoked.is_(False), t.c.expires_at > now, a.c.active.is_(True))
    ).first()
    if row is None:
        return None
    entry = None
    if row.inspector:
        entry = conn.execute(sa.select(i.c.id).where(i.c.id == row.inspector, i.c.owner == row.department)
                             .union_all(sa.select(i.c.id).where(i.c.staff_id == row.inspector,
                                                                 i.c.owner == row.department))
                             .limit(1)).scalar()
    return Principal(row.id, row.username, row.display_name, row.department, tuple(row.roles.split(",")),
                     entry or row.inspector, row.kind)


def account_row(conn: Connection, *, account_id: str | None = None, username: str | None = None) -> Any:
    q = sa.select(ACCOUNT)
    q = q.where(ACCOUNT.c.id == account_id) if account_id else q.where(ACCOUNT.c.username == username)
    return conn.execute(q).first()


def put_account(conn: Connection, values: dict[str, Any]) -> None:
    values = {**values, "roles": ",".join(values["roles"])} if "roles" in values else values
    if account_row(conn, account_id=values["id"]) is None:
        conn.execute(ACCOUNT.insert().values(failed=0, locked_until=0.0, **values))
    else:
        conn.execute(ACCOUNT.update().where(ACCOUNT.c.id == values["id"]).values(**values))


def log_security(conn: Connection, username: str, account_id: str | None, event: str, outcome: str,
                 source: str) -> None:
    conn.execute(SECURITY_LOG.insert().values(at=time.time(), username=username[:100], account_id=account_id,
                                              event=event, outcome=outcome, source=source[:100]))
