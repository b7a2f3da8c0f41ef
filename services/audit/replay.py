"""Rebuild the past: a read model as it stood at a log position or a time, into another database or schema."""

import datetime as dt
import json
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from projections.runner import ProjectionRunner, positions
from services.audit.log import iter_records
from services.infra.store import create_engine, safe_url


class ReplayError(Exception):
    """The replay cannot run as asked (the message says why)."""


@dataclass(frozen=True)
class ReplayResult:
    projection: str
    until: int
    events: int
    position: int
    into: str


def parse_time(text: str) -> dt.datetime:
    """An ISO 8601 time with a UTC offset (``2025-03-01T10:00:00+08:00`` or ``...Z``)."""
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time (e.g. 2025-03-01T10:00:00+08:00)") from None
    if when.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset: write e.g. {text}+08:00 or {text}Z")
    return when


def _event_time(state: bytes) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(json.loads(state)["timestamp"]["_data_"])
    except (ValueError, KeyError, TypeError):
        return None


def position_at_time(engine: Engine, events: sa.Table, when: dt.datetime) -> int:
    """The last position of the longest prefix of the log whose events were all made at or before ``when``.

    Positions are assigned in commit order (the store serialises writes), so an event made after ``when``
    was committed after it, and so was everything behind it: the prefix is what the log held at ``when``.
    """
    last = 0
    for position, _, _, _, state in iter_records(engine, events, page=5000):
        made = _event_time(state)
        if made is not None and made > when:
            break
        last = position
    return last


def resolve_until(engine: Engine, events: sa.Table, text: str) -> int:
    """``--until``: a log position (digits) or an ISO time."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    return position_at_time(engine, events, parse_time(text))


def _search_path_schema(url: str) -> str | None:
    options = make_url(url).query.get("options")
    if isinstance(options, tuple):
        options = " ".join(options)
    match = re.search(r"search_path\s*=\s*([A-Za-z_][A-Za-z0-9_]*)", urllib.parse.unquote(options or ""))
    return match.group(1) if match else None


def open_target(into: str) -> Engine:
    """An engine on the target database; a PostgreSQL schema named in the URL's search_path is created."""
    if not into.startswith(("sqlite://", "postgresql+psycopg://")):
        raise ReplayError("--into must start with sqlite:/// or postgresql+psycopg://")
    parsed = make_url(into)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        from pathlib import Path

        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(into, pool_size=2)
    schema = _search_path_schema(into) if parsed.get_backend_name() == "postgresql" else None
    if schema:
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    return engine


def replay(app: Any, store_url: str, projection: Any, into: str, until: int, *, replace: bool = False) -> ReplayResult:
    """Build ``projection`` from the events up to position ``until`` into the database at ``into``."""
    if make_url(into).render_as_string(hide_password=False) == make_url(store_url).render_as_string(hide_password=False):
        raise ReplayError("--into is the live database: replay into another database or schema")
    engine = open_target(into)
    try:
        runner = ProjectionRunner(app, engine, [projection], batch_size=2000)
        if replace:
            with engine.begin() as conn:
                projection.metadata.drop_all(conn)
                if sa.inspect(conn).has_table(positions.name):
                    conn.execute(positions.delete().where(positions.c.name == projection.name))
        runner.setup()
        current = runner.position(projection.name)
        if current > until:
            raise ReplayError(
                f"{safe_url(into)} already holds the {projection.name} read model at position {current}, after "
                f"{until}: use another database or --replace"
            )
        events = runner.catch_up(until=until)
        return ReplayResult(projection.name, until, events, runner.position(projection.name), safe_url(into))
    finally:
        engine.dispose()
