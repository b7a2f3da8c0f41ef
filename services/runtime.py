"""Wiring: the store, read models, projection runner, relay and (embedded) NATS of one process."""

import asyncio
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from domain.execution.evidence import EvidencePolicy
from projections.audit.projection import AuditProjection
from projections.directory.projection import DirectoryProjection
from projections.execution.projection import ExecutionProjection
from projections.runner import ProjectionRunner
from projections.tasks.projection import TaskBoardProjection
from services.application import DualRandom
from services.infra.evidence import DatabaseEvidenceStore, EvidenceStore
from services.infra.logging import get_logger
from services.infra.settings import Settings, SettingsError
from services.infra.store import check_database, create_engine, safe_url, setting_up
from services.rebuild import rebuild
from services.usecases.accounts import Accounts
from services.usecases.calendar import Calendar
from services.usecases.clues import Clues
from services.usecases.common import Clock
from services.usecases.configuration import Configurations
from services.usecases.evidence import Evidence
from services.usecases.follow_ups import FollowUps
from services.usecases.inspections import Inspections
from services.usecases.lookups import Lookups
from services.usecases.merges import Merges
from services.usecases.notices import Notices
from services.usecases.plans import Plans
from services.usecases.publicity import Publicity
from services.usecases.referrals import Referrals
from services.usecases.target_draws import TargetDraws
from services.usecases.task_opening import TaskOpening
from services.usecases.teams import Teams

log = get_logger(__name__)


def all_projections() -> list[Any]:
    return [DirectoryProjection(), AuditProjection(), TaskBoardProjection(), ExecutionProjection()]


async def check_nats(url: str, timeout: float = 5.0) -> None:
    """Connect once; SettingsError naming DUALRANDOM_NATS_URL when that fails."""
    import nats

    async def quiet(_: Exception) -> None:  # the one-line SettingsError says it; no traceback in the log
        return None

    try:
        nc = await asyncio.wait_for(
            nats.connect([u.strip() for u in url.split(",") if u.strip()], connect_timeout=timeout,
                         max_reconnect_attempts=1, reconnect_time_wait=0.1,
                         error_cb=quiet),
            timeout=timeout + 1,
        )
    except (TimeoutError, Exception) as exc:  # noqa: BLE001
        reason = str(exc) or type(exc).__name__
        raise SettingsError(f"DUALRANDOM_NATS_URL: cannot connect to {safe_url(url)}: {reason}") from None
    await nc.close()


@dataclass
class Runtime:
    """Everything a server process holds; ``open()`` checks settings and fails with one clear line."""

    settings: Settings
    app: DualRandom = field(init=False)
    engine: Engine = field(init=False)
    runner: ProjectionRunner = field(init=False)
    # the use cases, one object per area (services/usecases), and what they share
    clock: Clock = field(init=False)
    lookups: Lookups = field(init=False)
    configurations: Configurations = field(init=False)
    plans: Plans = field(init=False)
    task_opening: TaskOpening = field(init=False)
    target_draws: TargetDraws = field(init=False)
    merges: Merges = field(init=False)
    teams: Teams = field(init=False)
    calendar: Calendar = field(init=False)
    evidence: Evidence = field(init=False)
    inspections: Inspections = field(init=False)
    notices: Notices = field(init=False)
    publicity: Publicity = field(init=False)
    referrals: Referrals = field(init=False)
    clues: Clues = field(init=False)
    follow_ups: FollowUps = field(init=False)
    accounts: Accounts = field(init=False)
    nats_url: str = field(init=False, default="")
    relay: Any = field(init=False, default=None)
    checkpointer: Any = field(init=False, default=None)  # services.audit.checkpoints.Checkpointer
    _nats: Any = field(init=False, default=None)
    _stop: threading.Event = field(init=False, default_factory=threading.Event)
    _threads: list[threading.Thread] = field(init=False, default_factory=list)

    def open(self, *, with_nats: bool = True) -> "Runtime":
        """Connect and set up: tables, read models, the relay and the signer's state, one process at a time
        (``setting_up``: processes started together on a new schema raced to create the same tables)."""
        url = self.settings.effective_database_url
        check_database(url)
        nats = with_nats and self.settings.relay_enabled
        try:
            if nats:
                self._reach_nats()  # before the setup lock: no other process waits on NATS's answer
            with setting_up(url):
                self._open(url, nats)
        except BaseException:
            self._stop_embedded_nats()
            raise
        return self

    def _open(self, url: str, with_nats: bool) -> None:
        """Everything that creates or alters tables, under the setup lock (``with_nats``: NATS was reached, and
        the relay's position table is set up too)."""
        self.app = DualRandom(url)
        self.engine = create_engine(url, self.settings.db_pool_size)
        self.runner = ProjectionRunner(self.app, self.engine, all_projections(),
                                       bulk_lag=self.settings.projections_bulk_lag)
        runner_ = self.runner
        # A read model far behind is rebuilt as `dualrandom projections rebuild` does it (two processes on PostgreSQL).
        runner_.bulk = lambda names: rebuild(runner_, url, names)
        self.runner.setup()
        app, engine, runner = self.app, self.engine, self.runner
        self.clock = clock = Clock()
        self.lookups = lookups = Lookups(engine)
        self.configurations = configurations = Configurations(app, engine, runner)
        self.plans = Plans(app, engine, runner, lookups, configurations)
        self.task_opening = TaskOpening(app, engine, runner, lookups)
        self.merges = Merges(app, engine, runner)
        self.target_draws = TargetDraws(app, engine, runner, self.merges)
        self.target_draws.setup()
        self.teams = Teams(app, engine, runner, lookups)
        self.calendar = Calendar(app, engine, runner, self.settings.publication_working_days)
        policy = EvidencePolicy(max_bytes=min(self.settings.max_upload_bytes, EvidencePolicy().max_bytes))
        if engine.dialect.name == "postgresql":  # several processes, maybe several hosts: the bytes in the database
            shared = DatabaseEvidenceStore(engine, Path(self.settings.var_dir) / "evidence-staging", policy)
            shared.setup()
            store: EvidenceStore = shared
        else:
            store = EvidenceStore(Path(self.settings.var_dir) / "evidence", policy)
        self.evidence = evidence = Evidence(store, engine, runner)
        evidence.setup()
        self.inspections = Inspections(
            app, engine, runner, lookups=lookups, evidence=evidence, calendar=self.calendar, clock=clock,
            configurations=configurations,
        )
        self.notices = Notices(app, engine, runner, lookups=lookups, evidence=evidence, clock=clock)
        self.publicity = Publicity(engine, clock)
        self.referrals = Referrals(app, engine, runner, lookups=lookups, evidence=evidence, clock=clock)
        self.clues = Clues(app, engine, runner, lookups=lookups, task_opening=self.task_opening, clock=clock)
        self.follow_ups = FollowUps(app, engine, runner, clock)
        self.follow_ups.setup()
        self.accounts = Accounts(app, engine, runner, lookups, self.settings.secret_key)
        self.accounts.setup()
        if with_nats:
            from services.infra.relay import Relay

            self.relay = Relay(
                self.app, self.engine, self.nats_url, stream=self.settings.nats_stream,
                deployment=self.settings.deployment, replicas=getattr(self.settings, "nats_replicas", None),
            )
        self._open_checkpointer()
        gate = self.target_draws.gate  # one gate for every draw: targets and follow-up rounds
        gate.checkpointer = self.checkpointer
        gate.enabled = self.settings.draw_checkpoint_gate
        self.follow_ups.gate = gate

    def _open_checkpointer(self) -> None:
        from services.audit.checkpoints import Checkpointer
        from services.audit.keys import load_signer

        self.checkpointer = Checkpointer(
            self.engine, load_signer(self.settings), nats_url=self.nats_url, stream=self.settings.nats_stream,
            deployment=self.settings.deployment, var_dir=self.settings.var_dir,
        )
        from services.audit.witness import WitnessPublicKey

        try:
            self.checkpointer.witness_keys = [WitnessPublicKey.parse(k) for k in self.settings.audit_witness_keys]
        except ValueError as exc:
            raise SettingsError(f"DUALRANDOM_AUDIT_WITNESS_KEYS: {exc}") from None
        from services.audit.keys import PublicKey

        try:
            previous = tuple(PublicKey.parse(k, "") for k in self.settings.audit_previous_keys)
        except ValueError as exc:
            raise SettingsError(f"DUALRANDOM_AUDIT_PREVIOUS_KEYS: {exc}") from None
        if any(not k.name for k in previous):
            raise SettingsError("DUALRANDOM_AUDIT_PREVIOUS_KEYS: give vkeys (name+id+key), as `audit key` prints")
        self.checkpointer.previous_keys = previous
        self.checkpointer.setup()

    def _reach_nats(self) -> None:
        """The NATS URL (the embedded server started when none is set), checked by connecting once."""
        if self.settings.nats_url:
            self.nats_url = self.settings.nats_url
        else:
            from services.infra.nats_embedded import EmbeddedNats, embedded_nats_port, write_embedded_url

            port = self.settings.nats_embedded_port or embedded_nats_port()
            self._nats = EmbeddedNats(port=port, store_dir=self.settings.var_dir / "nats")
            try:
                self._nats.start()
            except Exception as exc:  # noqa: BLE001
                raise SettingsError(
                    f"DUALRANDOM_NATS_EMBEDDED_PORT: embedded nats-server did not start on port "
                    f"{port}: {str(exc).splitlines()[0] if str(exc) else exc}"
                ) from None
            self.nats_url = self._nats.url
            write_embedded_url(self.settings.var_dir, self.nats_url)
        asyncio.run(check_nats(self.nats_url))

    def _stop_embedded_nats(self) -> None:
        if self._nats is not None:
            self._nats.stop()
            self._nats = None

    def singletons(self, stop: asyncio.Event) -> list[Coroutine[Any, Any, None]]:
        """The roles of which one process at a time is active, each behind its lease: the relay (when NATS is
        on) and the checkpoint signer. Run them on an event loop until ``stop``; a process that does not get a
        lease waits as a standby and takes over within seconds of the holder's death."""
        from services.infra.lease import Lease, hold

        url, var_dir = self.settings.effective_database_url, Path(self.settings.var_dir)
        roles = []
        if self.relay is not None:
            roles.append(hold(Lease(url, "relay", var_dir), self.relay.run, stop))
        if self.checkpointer is not None:
            roles.append(hold(Lease(url, "signer", var_dir), self.checkpointer.run, stop))
        return roles

    def start_projections(self) -> None:
        """Run the projection loop in a daemon thread of this process."""
        t = threading.Thread(target=self.runner.run_forever, args=(self._stop,), name="projections", daemon=True)
        t.start()
        self._threads.append(t)

    def stop_projections(self) -> None:
        """Stop the projection loops ``start_projections`` started (tests: a process whose read models another
        process keeps, as ``serve --role api``)."""
        self._stop.set()
        if hasattr(self, "runner"):  # (an open that failed before the set-up: NATS not reached)
            self.runner.wake()
        for t in self._threads:
            t.join(timeout=10)
        self._threads.clear()
        self._stop = threading.Event()

    def after_write(self) -> None:
        """A command committed: let the projections and the relay look now rather than at their next poll."""
        self.runner.wake()
        if self.relay is not None:
            self.relay.wake()

    def close(self) -> None:
        if hasattr(self, "accounts"):
            self.accounts.close()
        if hasattr(self, "target_draws"):
            self.target_draws.close()
        self._stop.set()
        if hasattr(self, "runner"):  # (an open that failed before the set-up: NATS not reached)
            self.runner.wake()
        for t in self._threads:
            t.join(timeout=10)
        self._threads.clear()
        self._stop_embedded_nats()
        if hasattr(self, "engine"):
            self.engine.dispose()
        if hasattr(self, "app"):
            self.app.close()
