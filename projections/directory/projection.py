"""Directory projection: one table per kind, columns derived from the kind's field spec.

Events are applied with the domain's own mutators (the aggregate is rehydrated from its row), so the
read model cannot drift from the aggregate's rules: decoded events mutate the aggregate themselves, and events
read in their stored form (``stored_topics``, every directory event whose mutation is the library's own) are
folded in by ``projections.decode.stored_step``, which calls the same ``__init__`` and decorated methods.
"""

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from typing import Any

import msgspec
import sqlalchemy as sa
from eventsourcing.domain import CanMutateAggregate, decorated_funcs
from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic, resolve_topic
from sqlalchemy.engine import Connection

from domain.directory import KINDS, DirectoryEntry
from projections.decode import stored_decoder, stored_step
from projections.runner import insert_tuples

metadata = sa.MetaData()
# Fields a listing searches by substring (LIKE '%...%', see queries.py): no B-tree index can serve that, so none;
# on PostgreSQL a trigram index does (``search_index_statements``).
TEXT_SEARCH = frozenset({"name", "address", "legal_basis", "organisation"})


def _column(f: Any) -> sa.Column[Any]:
    if f.kind == "bool":
        return sa.Column(f.name, sa.Boolean, index=True)
    if f.kind == "list":
        return sa.Column(f.name, sa.Text)  # "|a|b|": LIKE '%|a|%' finds a member on any database
    if f.kind == "date":
        return sa.Column(f.name, sa.String(10), index=True)
    if f.max_len > 300:
        return sa.Column(f.name, sa.Text)
    return sa.Column(f.name, sa.String(f.max_len), index=f.name not in TEXT_SEARCH)


def _table(md: sa.MetaData, kind: str, cls: type[DirectoryEntry], suffix: str) -> sa.Table:
    # Index names are generated from the table name (ix_rm_<kind><suffix>_<column>): a copy's differ.
    fields = [f for f in cls.SPEC.fields.values() if f.name not in {"department"}]
    return sa.Table(
        f"rm_{kind}{suffix}",
        md,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("owner", sa.String(32), index=True, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),  # last event applied
        sa.Column("first_position", sa.BigInteger, nullable=False, index=True),  # registration: listing order
        sa.Column("created_on", sa.String(40), nullable=False),
        sa.Column("modified_on", sa.String(40), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        *[_column(f) for f in fields],
    )


def _tables(md: sa.MetaData, suffix: str) -> dict[str, sa.Table]:
    return {kind: _table(md, kind, cls, suffix) for kind, cls in KINDS.items()}


def trigram_schema(conn: Connection) -> str | None:
    """The schema of PostgreSQL's pg_trgm extension, created (in ``public``) when missing and allowed; None when
    it is not available here (then name searches read every row of the kind: see docs/scale.md)."""
    find = sa.text("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
                   "WHERE e.extname = 'pg_trgm'")
    found = conn.execute(find).scalar()
    if found is None:
        try:
            with conn.begin_nested():
                conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"))
        except sa.exc.DBAPIError:  # not installed here, no privilege, or created at the same moment elsewhere
            pass
        found = conn.execute(find).scalar()
    return None if found is None else str(found)


def added_columns(conn: Connection, table: sa.Table) -> list[str]:
    """Add to a table created before a field existed (``town``, an item's ``applies_to_*``) the field's column
    (idempotent; nullable, so rows already there read as NULL until ``dualrandom projections rebuild directory``
    fills them from the log; the entries' ``data`` has every field either way). Returns the columns added."""
    present = {c["name"] for c in sa.inspect(conn).get_columns(table.name)}
    q = conn.dialect.identifier_preparer.quote
    added = []
    for column in table.columns:
        if column.name not in present:
            kind = column.type.compile(dialect=conn.dialect)
            conn.execute(sa.text(f"ALTER TABLE {q(table.name)} ADD COLUMN {q(column.name)} {kind}"))
            if column.index:
                conn.execute(sa.text(f"CREATE INDEX IF NOT EXISTS {q(f'ix_{table.name}_{column.name}')} "
                                     f"ON {q(table.name)} ({q(column.name)})"))
            added.append(column.name)
    return added


def search_index_statements(conn: Connection, table: sa.Table) -> list[str]:
    """The PostgreSQL indexes for the listings at province scale that ``table`` lacks, as ``CREATE INDEX``
    statements (none on SQLite), each of which can run in a transaction of its own: registration order per owner
    (a department's page) and per county (with and without a supervision class), credit-code prefixes compared
    byte-wise (the range queries.py asks), and a trigram GIN index per substring-searched field when pg_trgm is
    available (first: the longest to build)."""
    if conn.dialect.name != "postgresql":
        return []
    q = conn.dialect.identifier_preparer.quote
    t = table.name
    wanted = {f"ix_{t}_owner_first": "(owner, first_position)"}
    if "county" in table.c:
        # A county's page, alone or with a supervision class (a county bureau's usual listings): the matches in
        # registration order, so a rare or empty combination reads the county's rows at most, never every row
        # in registration order until enough match (2.2 s at 1,000,000 targets for a class the county lacks).
        wanted[f"ix_{t}_county_first"] = "(county, first_position)"
        if "supervision_class" in table.c:
            wanted[f"ix_{t}_county_class_first"] = "(county, supervision_class, first_position)"
    if "credit_code" in table.c:
        wanted[f"ix_{t}_credit_code_c"] = '((credit_code COLLATE "C"))'
    searched = sorted(c for c in TEXT_SEARCH if c in table.c)
    missing = [name for name in wanted if not _index_exists(conn, name)]
    missing_trgm = [c for c in searched if not _index_exists(conn, f"ix_{t}_{c}_trgm")]
    trgm = trigram_schema(conn) if missing_trgm else None
    statements = [] if trgm is None else [
        f"CREATE INDEX IF NOT EXISTS {q(f'ix_{t}_{column}_trgm')} ON {q(t)} USING gin ({q(column)} {q(trgm)}.gin_trgm_ops)"
        for column in missing_trgm
    ]
    return statements + [f"CREATE INDEX IF NOT EXISTS {q(name)} ON {q(t)} {wanted[name]}" for name in missing]


def _index_exists(conn: Connection, name: str) -> bool:
    """Whether the index ``name`` exists in the search path, read from the catalog: unlike ``CREATE INDEX IF NOT
    EXISTS``, which takes its table's SHARE lock before it looks, this locks nothing. A process starting beside a
    busy worker (the soak's relay did) would otherwise queue behind, and deadlock with, the worker's writes to the
    read models it had already locked in the same start-up transaction."""
    return conn.execute(sa.text("SELECT to_regclass(:name) IS NOT NULL"), {"name": name}).scalar() is True


TABLES: dict[str, sa.Table] = _tables(metadata, "")  # the live tables: what queries.py reads
_TOPICS = tuple(sorted({get_topic(cls).partition(":")[0] + ":" for cls in KINDS.values()}))


def _stored_topics() -> tuple[str, ...]:
    """The topics of the directory's event classes that ``stored_step`` can fold (no such topic begins another
    directory event's topic: the runner matches by prefix)."""
    classes = {v for kind in KINDS.values() for c in kind.__mro__ for v in vars(c).values()
               if isinstance(v, type) and issubclass(v, CanMutateAggregate)}
    classes |= {c for c in decorated_funcs if c.__module__ == DirectoryEntry.__module__}
    topics = {t for t in map(get_topic, classes) if t.startswith(_TOPICS)}
    foldable = tuple(sorted(t for t in topics if stored_step(resolve_topic(t)) is not None))
    clash = [(a, b) for a in foldable for b in topics if a != b and b.startswith(a)]
    assert not clash, f"a foldable topic begins another one: {clash}"
    return foldable


_STORED_TOPICS = _stored_topics()
_STEPS = {t: stored_step(resolve_topic(t)) for t in _STORED_TOPICS}
# Each topic's decoder builds only what its step reads, the timestamp and ``_meta``'s aggregate (stored_decoder).
_DECODERS = {t: stored_decoder(step) for t, step in _STEPS.items() if step is not None}
_DECODE = msgspec.json.Decoder().decode
_FROM_ISO = dt.datetime.fromisoformat


def encode_list(values: list[str]) -> str:
    return "|" + "|".join(values) + "|" if values else ""


class DirectoryProjection:
    """Keeps ``rm_<kind>`` tables in step with the directory aggregates."""

    name = "directory"
    metadata = metadata  # the live tables' (an instance with a suffix has its own)
    topics = _TOPICS  # the runner decodes and passes only these events (every directory aggregate's)
    stored_topics = _STORED_TOPICS  # ... and these in their stored form when it can (folded by _STEPS)
    rebuild_apart = True  # the largest read model: its copy is built in a process of its own
    fold_by_aggregate = True  # an entry's row depends on its own events alone: a copy is loaded by aggregate

    def ensure_indexes(self, conn: Connection) -> None:
        """The listing indexes (``search_index_statements``): ``ProjectionRunner.setup`` adds them to the live tables
        (also to tables created before they existed); ``finish_copies`` builds a rebuilt copy's from
        ``index_statements`` after its bulk load."""
        for statement in self.index_statements(conn):
            conn.execute(sa.text(statement))

    def index_statements(self, conn: Connection) -> list[str]:
        """What ``ensure_indexes`` runs, as statements that may each run in a transaction of its own (a rebuilt
        copy's are built side by side: ``ProjectionRunner.finish_copies``); missing columns are added first."""
        statements: list[str] = []
        for table in self.tables.values():
            added_columns(conn, table)
            statements += search_index_statements(conn, table)
        return statements

    def __init__(self, suffix: str = "") -> None:
        self.suffix = suffix
        if suffix:
            self.metadata = sa.MetaData()
            self.tables = _tables(self.metadata, suffix)
        else:
            self.metadata, self.tables = metadata, TABLES

    def apply_batch(self, conn: Connection, events: Sequence[tuple[int, Any]]) -> None:
        # Each entry's events of the batch, in log order, by kind; the first event's version says whether a row
        # can exist already (an entry's first event, version 1, makes its row: nothing to load for it).
        # An item is a decoded event, or (step, state, timestamp) of an event in its stored form. Entries are keyed
        # by the id's canonical text (the runner gives stored events' ids so on PostgreSQL; ``str`` of a UUID
        # otherwise): one UUID is made per entry, not per event, and the row takes the text as it is.
        by_kind: dict[str, dict[str, list[tuple[int, int, Any]]]] = {}
        for position, ev in events:
            if type(ev) is Notification:
                try:
                    state = _DECODERS[ev.topic](ev.state)
                except msgspec.ValidationError:  # a ``_meta`` that is not an object: decoded whole, judged below
                    state = _DECODE(ev.state)
                meta = state.get("_meta")
                stamp = state["timestamp"]
                if type(stamp) is not dict or stamp.get("_type_") != "datetime_iso":
                    raise ValueError(f"position {position}: the stored state has no timestamp")
                item: Any = (_STEPS[ev.topic], state, _FROM_ISO(stamp["_data_"]))
            else:
                meta = getattr(ev, "_meta", None)
                item = ev
            kind = meta.get("aggregate") if isinstance(meta, dict) else None
            if kind not in KINDS:
                continue
            entries = by_kind.get(kind)
            if entries is None:
                entries = by_kind[kind] = {}
            oid = ev.originator_id
            if type(oid) is not str:
                oid = str(oid)
            mine = entries.get(oid)
            if mine is None:
                entries[oid] = [(position, ev.originator_version, item)]
            else:
                mine.append((position, ev.originator_version, item))
        for kind, entries in by_kind.items():
            table = self.tables[kind]
            stored = [oid for oid, mine in entries.items() if mine[0][1] != 1]
            # One query per kind and batch, not one per entry.
            loaded = self._load_many(conn, kind, stored) if stored else {}
            inserts: list[tuple[Any, ...]] = []
            updates: list[dict[str, Any]] = []
            names = _ROW_NAMES[KINDS[kind]]
            for key, mine in entries.items():
                agg = loaded.get(key)
                new = agg is None
                oid = uuid.UUID(key) if agg is None else agg.id
                for _, version, item in mine:
                    if type(item) is tuple:
                        agg = item[0](agg, oid, version, item[1], item[2])
                    else:
                        agg = item.mutate(agg) or agg
                position = mine[-1][0]
                assert agg is not None  # mine holds at least one event
                if new:
                    inserts.append((*self._row(agg, position, key), mine[0][0]))
                else:
                    updates.append(dict(zip(names, self._row(agg, position, key), strict=True)))
            insert_tuples(conn, table, (*names, "first_position"), inserts)
            if updates:
                stmt = (
                    table.update()
                    .where(table.c.id == sa.bindparam("_id"))
                    .values({c.name: sa.bindparam(c.name) for c in table.columns if c.name not in {"id", "first_position"}})
                )
                conn.execute(stmt, [{**{k: v for k, v in r.items() if k != "id"}, "_id": r["id"]} for r in updates])

    def _load_many(self, conn: Connection, kind: str, keys: Sequence[str]) -> dict[str, DirectoryEntry]:
        """The stored entries of ``keys`` (ids' canonical text), by key."""
        table = self.tables[kind]
        cols = (table.c.id, table.c.version, table.c.created_on, table.c.modified_on, table.c.data)
        rows: list[Any] = []
        for i in range(0, len(keys), 5000):
            chunk = keys[i : i + 5000]
            if conn.dialect.name == "postgresql":  # one array parameter: the statement is the same for any count
                cond = table.c.id == sa.func.any(sa.cast(sa.literal(chunk, sa.ARRAY(sa.String)), sa.ARRAY(sa.String)))
            else:
                cond = table.c.id.in_(chunk)
            rows.extend(conn.execute(sa.select(*cols).where(cond)).all())
        cls = KINDS[kind]
        out: dict[str, DirectoryEntry] = {}
        for row in rows:
            agg = object.__new__(cls)
            agg.__dict__.update(
                _id=uuid.UUID(row.id),
                _version=row.version,
                _created_on=dt.datetime.fromisoformat(row.created_on),
                _modified_on=dt.datetime.fromisoformat(row.modified_on),
                _pending_events=[],
                data=json.loads(row.data),
            )
            out[str(row.id)] = agg
        return out

    @staticmethod
    def _row(agg: DirectoryEntry, position: int, key: str) -> tuple[Any, ...]:
        """The entry's row but ``first_position``, in the order of ``_ROW_NAMES`` (``key``: ``str(agg.id)``)."""
        data = agg.data
        get = data.get
        created, modified = agg.created_on, agg.modified_on
        created_text = created.isoformat()
        return (
            key, agg.department, agg.version, position, created_text,
            created_text if modified is created else modified.isoformat(), _encode(data),
            *[(encode_list(get(name) or []) if is_list else get(name)) for name, is_list in _COLUMNS[type(agg)]],
        )


_SORTED = msgspec.json.Encoder(order="sorted")


def _encode(data: dict[str, Any]) -> str:
    """The entry's fields as JSON text, keys sorted (a rebuild encodes every entry: msgspec, ~10x ``json``)."""
    return _SORTED.encode(data).decode("utf-8")
_COLUMNS: dict[type, list[tuple[str, bool]]] = {
    cls: [(f.name, f.kind == "list") for f in cls.SPEC.fields.values() if f.name != "department"]
    for cls in KINDS.values()
}
_ROW_NAMES: dict[type, tuple[str, ...]] = {  # the columns of ``_row``'s tuple
    cls: ("id", "owner", "version", "position", "created_on", "modified_on", "data", *(n for n, _ in columns))
    for cls, columns in _COLUMNS.items()
}
