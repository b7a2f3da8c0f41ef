"""Secret seeds between commitment and reveal, kept outside the log (the event records only their SHA-256).

One row per (owner, commitment): a task's rounds and a follow-up round keep each seed under the commitment it
hashes to, and the draw reveals the one whose commitment the aggregate recorded. A seed is never overwritten, so a
refused or concurrent second attempt (a double click on 'plan', two commits racing) cannot replace the seed of the
attempt that was recorded: the loser's row is an orphan that nothing reads and the draw removes.

Seeds written before this table (``draw_seeds`` by task and round, ``follow_up_seeds`` by round) are still read,
checked against the recorded commitment. Never logged, never answered.
"""

import hashlib
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

metadata = sa.MetaData()
committed_seeds = sa.Table(
    "committed_seeds", metadata,
    sa.Column("owner", sa.String(36), primary_key=True),  # the task's or the follow-up round's id
    sa.Column("commitment", sa.String(64), primary_key=True),  # hex SHA-256 of the seed
    sa.Column("seed", sa.String(64), nullable=False),  # 32 bytes, hex
)

Legacy = Callable[[Connection], str | None]
"""Reads a seed (hex) stored before ``committed_seeds`` (or None)."""


class SeedVault:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def setup(self) -> None:
        metadata.create_all(self.engine)

    def keep(self, owner: object, seed: bytes) -> str:
        """Store ``seed`` under its commitment (returned); an identical row already there is the same seed."""
        commitment = hashlib.sha256(seed).hexdigest()
        with self.engine.begin() as conn:
            found = conn.execute(sa.select(committed_seeds.c.seed).where(
                committed_seeds.c.owner == str(owner), committed_seeds.c.commitment == commitment)).scalar()
            if found is None:
                conn.execute(committed_seeds.insert().values(owner=str(owner), commitment=commitment, seed=seed.hex()))
        return commitment

    def seed(self, owner: object, commitment: str, legacy: Legacy | None = None) -> bytes | None:
        """The seed hashing to ``commitment`` kept for ``owner`` (or, before this table, by ``legacy``)."""
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(committed_seeds.c.seed).where(
                committed_seeds.c.owner == str(owner), committed_seeds.c.commitment == commitment)).scalar()
            if found is None and legacy is not None:
                found = legacy(conn)
        if found is None:
            return None
        seed = bytes.fromhex(found)
        return seed if hashlib.sha256(seed).hexdigest() == commitment else None

    def forget(self, owner: object, conn: Connection) -> None:
        """Remove every seed kept for ``owner`` (after its draw revealed the one that counted)."""
        conn.execute(committed_seeds.delete().where(committed_seeds.c.owner == str(owner)))
