"""The freeze is witnessed before the seed is revealed: one gate for every random draw (a task's target draw, a
follow-up round's draw).

The pool of a draw is fixed by one event (a task's ``PoolFrozen``, a follow-up round's ``Planned``) while the
seed is still secret. The draw waits (409 ``checkpoint``, Retry-After) until a signed checkpoint covering that
event was published to partners on ``dualrandom.audit.checkpoints``: from then on the pool is in a history the
partners hold, and a server operator who knows the seed can no longer change it unseen. Setting
``DUALRANDOM_DRAW_CHECKPOINT_GATE=false`` (where no partner watches) turns the gate off for every draw.
"""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from domain.tasks.task import DrawNotReadyError
from projections.runner import ProjectionRunner
from services.application import DualRandom
from services.infra.logging import get_logger

log = get_logger(__name__)


class WitnessGate:
    """Asks for a checkpoint when a pool is fixed, and refuses a draw until one covering it was published."""

    def __init__(self, app: DualRandom, engine: Engine, runner: ProjectionRunner) -> None:
        self.app = app
        self.engine = engine
        self.runner = runner
        self.enabled = True  # Settings.draw_checkpoint_gate (the runtime sets it)
        self.checkpointer: Any = None  # services.audit.checkpoints.Checkpointer (the runtime sets it)

    def event_position(self, originator_id: Any, topic_prefix: str) -> int | None:
        """The log position of the newest event of ``originator_id`` whose topic starts with ``topic_prefix``."""
        recorder: Any = self.app.recorder
        table = recorder.events_record_cls.__table__
        with self.engine.connect() as conn:
            position = conn.execute(
                sa.select(sa.func.max(table.c.id)).where(
                    table.c.originator_id == originator_id, table.c.topic.like(topic_prefix + "%")
                )
            ).scalar()
        return None if position is None else int(position)

    def ask_for_checkpoint(self) -> None:
        """Bring the audit tree to the head of the log and sign it now, so that the checkpointer publishes a
        checkpoint covering what was just recorded at its next tick, not an interval later."""
        if self.checkpointer is None:
            return
        self.runner.catch_up_named(["audit"])
        self.checkpointer.checkpoint()

    def pool_fixed(self) -> None:
        """Called once the event fixing a pool is recorded: ask for its checkpoint now (never fails the step:
        the event is recorded, and the checkpointer signs at its next tick anyway)."""
        if not self.enabled:
            return
        try:
            self.ask_for_checkpoint()
        except Exception as exc:  # noqa: BLE001 - the checkpointer retries at its tick
            log.warning("freeze_checkpoint_not_signed", error=str(exc) or type(exc).__name__)

    def require_published(self, position: int, what: str = "the freeze") -> None:
        """409 (Retry-After) until a signed checkpoint covering log ``position`` was published to partners."""
        if not self.enabled:
            return
        from services.audit.checkpoints import published_covering

        with self.engine.connect() as conn:
            covering = published_covering(conn, position)
        if covering is not None:
            return
        publishes = bool(getattr(self.checkpointer, "nats_url", ""))
        self.ask_for_checkpoint()
        interval = int(getattr(self.checkpointer, "interval", 10) or 10)
        raise DrawNotReadyError(
            f"{what} (log position {position}) is not yet witnessed: the draw waits until a signed checkpoint "
            "covering it has been published to partners on dualrandom.audit.checkpoints"
            + ("" if publishes else "; this server publishes none (no NATS): set DUALRANDOM_NATS_URL, or "
               "DUALRANDOM_DRAW_CHECKPOINT_GATE=false where no partner watches"),
            "checkpoint",
            retry_after=interval,
        )
