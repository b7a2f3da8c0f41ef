"""What every use case shares: the ``Done`` it answers, UUID parsing, the clock, and a base holding the
Application, the read-model engine and the projection runner (load an aggregate, answer ``Done``, bring the
read models a command consults to the head of the log)."""

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, cast

from eventsourcing.domain import Aggregate
from sqlalchemy.engine import Engine

from domain.errors import FieldProblem, InvalidInputError
from projections.runner import ProjectionRunner
from services.application import DualRandom, NotFoundError

TASK_READ_MODELS = ("directory", "tasks")
"""What task commands and access decisions read: brought to the head of the log before they do."""
EXECUTION_READ_MODELS = ("directory", "tasks", "execution")

A = TypeVar("A", bound=Aggregate)


@dataclass(frozen=True)
class Done:
    """What a command stored: the aggregate id, its version, the last log position, and a summary."""

    id: str
    version: int
    position: int | None
    body: dict[str, Any]


def given(data: Mapping[str, Any], key: str) -> Any:
    """A request field as given (None when absent), for an aggregate command that validates it."""
    return data.get(key)


def parse_uuid(value: Any, field: str) -> uuid.UUID:
    """``value`` as a UUID; InvalidInputError on ``field`` when it is not one."""
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise InvalidInputError([FieldProblem(field, "format", "must be a UUID")]) from None


class Clock:
    """Today, as the execution steps see it (deadlines, overdue, default dates): tests pin ``today``."""

    def __init__(self) -> None:
        self.today: Callable[[], dt.date] = dt.date.today


class UseCase:
    """A base of the use cases: one transaction per command on the Application's store."""

    read_models: ClassVar[tuple[str, ...]] = TASK_READ_MODELS

    def __init__(self, app: DualRandom, engine: Engine, runner: ProjectionRunner) -> None:
        self.app = app
        self.engine = engine
        self.runner = runner

    def find(self, cls: type[A], agg_id: uuid.UUID) -> A | None:
        """The aggregate of class ``cls`` with this id, or None."""
        try:
            agg: object = self.app.repository.get(agg_id)
        except Exception:  # noqa: BLE001 - AggregateNotFoundError, or an id of another kind of stream
            return None
        return agg if isinstance(agg, cls) else None

    def load(self, cls: type[A], agg_id: uuid.UUID, kind: str) -> A:
        """The aggregate of class ``cls`` with this id; NotFoundError naming ``kind`` when there is none."""
        agg = self.find(cls, agg_id)
        if agg is None:
            raise NotFoundError(kind, str(agg_id))
        return agg

    def load_many(self, cls: type[A], ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, A]:
        """Aggregates of class ``cls`` replayed in batches (the Application's ``load_many``), by id."""
        return cast(dict[uuid.UUID, A], self.app.load_many(cls, ids))  # type: ignore[arg-type]

    def done(self, agg: Aggregate, position: int | None, **body: Any) -> Done:
        """The answer of a command that stored ``agg`` (up to ``position``), with a summary."""
        return Done(
            str(agg.id),
            agg.version,
            position,
            {"id": str(agg.id), "version": agg.version, "position": position, **body},
        )

    def fresh(self) -> None:
        """Bring the read models this use case consults to the head of the log, in this thread."""
        self.runner.catch_up_named(self.read_models)
