"""Soak and chaos run: many processes on PostgreSQL and NATS under open-loop traffic while processes are killed.

    python -m tests.soak.run --minutes 30 --rate 200 --api 3 --workers 2

1. Creates a fresh schema on PostgreSQL (``--database-url``, else ``DUALRANDOM_TEST_DATABASE_URL``), starts its own
   ``nats-server`` (JetStream in the run's directory, a free port below 32768), ``--api`` x ``serve --role api``,
   ``--workers`` x ``serve --role worker`` and 2 x ``serve --role relay`` (one holds the lease, one stands by);
   creates the first admin and its token with the CLI and registers two departments.
2. Sends ``--rate`` requests/s, open loop (a request is sent when it is due, whether the earlier ones were answered
   or not; its latency counts from that moment), round-robin over the API processes: creates and PATCHes of
   targets, items and inspectors, listings, gets and the public results.
3. Every ``--kill-every`` seconds (+-50 %) kills -9 and restarts one of: an API process, a worker, the relay that
   holds the lease, nats-server (same port and store directory). Each round of four kills each kind once, in
   random order.
4. Afterwards (traffic stopped, every process running, the relays and then the workers stopped cleanly once they
   reached the head of the log) checks that the store, the JetStream stream (each event's messages exactly once by
   ``Nats-Msg-Id``, in log order per subject), a partner's durable consumer that read through the chaos, and the
   read models (each rebuilt from the log and compared row by row with the live one) agree to the event; and that
   no request got a 5xx or a connection error except while its API process was down.
5. Prints latency percentiles, counts, errors by kind, the kills and the checks; exits 1 on any failure.

Waits are for a condition with a deadline (a position, a lease, a port), never for a fixed duration; the only
sleeps pace the traffic and the kills. The run's directory (process logs, ``summary.json``) is kept on failure or
with ``--keep``; the schema is dropped unless ``--keep``. docs/operations.md, "Soak and chaos".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from services.infra.nats_embedded import EmbeddedNats, _die_with_parent, free_port
from tests.support.builders import a_target, an_inspector, an_item, credit_code
from tests.support.lean_http import LeanClient, TransportError
from tests.support.open_loop import open_loop

BIN = Path(sys.executable).parent / "dualrandom"
KINDS = ("api", "worker", "relay", "nats")
STREAM = "DUALRANDOM"
PARTNER = "soak-partner"
# the checkpoint signer publishes signed checkpoints on the stream too (not events of the store)
CHECKPOINT = "checkpoint:"
DEPARTMENTS = (
    {"code": "hj-eeb", "name": "新乡市生态环境局获嘉分局", "city": "新乡市", "county": "获嘉县", "kind": "ecology"},
    {"code": "hj-amr", "name": "获嘉县市场监督管理局", "city": "新乡市", "county": "获嘉县", "kind": "market"},
)
# (operation, weight): writes about a third of the traffic
OPERATIONS = (
    ("create_target", 12), ("create_item", 4), ("create_inspector", 4),
    ("patch_target", 8), ("patch_item", 3), ("patch_inspector", 3),
    ("list_target", 12), ("list_item", 6), ("list_inspector", 6),
    ("get_target", 14), ("get_item", 6), ("get_inspector", 6),
    ("public_results", 16),
)
PLURAL = {"target": "targets", "item": "items", "inspector": "inspectors"}
MAX_OUTSTANDING = 100  # requests in flight per API process, at most (the generator's cap and the servers' limit)


@dataclass
class Options:
    minutes: float = 30.0
    rate: float = 200.0
    api: int = 3
    workers: int = 2
    database_url: str = ""
    kill_every: float = 30.0
    seed: int | None = None
    keep: bool = False
    background_nice: int = 10
    catch_up_timeout: float = 300.0


@dataclass
class Child:
    """One ``dualrandom`` process, restartable; each start writes its own log file."""

    name: str
    args: list[str]
    env: dict[str, str]
    log_dir: Path
    port: int | None = None
    nice: int = 0  # added to the process's niceness at each start (workers and relays: --background-nice)
    incarnation: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def start(self) -> None:
        self.incarnation += 1
        self.log_path = self.log_dir / f"{self.name}.{self.incarnation}.log"
        die, nice = _die_with_parent(), self.nice

        def before_exec() -> None:
            if die is not None:
                die()
            if nice:
                os.nice(nice)

        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([str(BIN), *self.args], env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, preexec_fn=before_exec)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self, timeout: float = 45.0) -> int | None:
        """SIGTERM and wait (the drain is bounded at ~30 s); SIGKILL past ``timeout``. The exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log_events(self) -> list[dict[str, Any]]:
        """The JSON log lines of the current incarnation."""
        out: list[dict[str, Any]] = []
        if self.log_path is None or not self.log_path.exists():
            return out
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    out.append(json.loads(line))
        return out

    def tail(self, lines: int = 15) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


@dataclass
class Outcome:
    op: str
    api: int
    due: float  # when the request was due (latency counts from here: no coordinated omission)
    sent: float
    done: float
    status: int | None  # None: no HTTP answer
    error: str = ""  # the transport error's class name


@dataclass
class State:
    options: Options
    rng: random.Random
    t0: float = field(default_factory=time.monotonic)
    outcomes: list[Outcome] = field(default_factory=list)
    kills: list[dict[str, Any]] = field(default_factory=list)
    down: dict[int, list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))
    known: dict[str, list[str]] = field(default_factory=lambda: {"target": [], "item": [], "inspector": []})
    failures: list[str] = field(default_factory=list)
    not_sent: int = 0
    not_sent_at: list[float] = field(default_factory=list)  # when each unsent request was due
    loop_lag: list[tuple[float, float]] = field(default_factory=list)  # (when, ms): the generator's own stalls
    partner_seen: Counter[str] = field(default_factory=Counter)
    partner_errors: Counter[str] = field(default_factory=Counter)
    counter: int = 0

    def now(self) -> float:
        return time.monotonic() - self.t0

    def say(self, message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S', time.gmtime())}Z +{self.now():7.1f}s] {message}", flush=True)


# -- set-up ------------------------------------------------------------------------------------------
def schema_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


def create_schema(base: str) -> str:
    schema = f"soak_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    return schema


def drop_schema(base: str, schema: str) -> None:
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    engine.dispose()


def run_cli(args: list[str], env: dict[str, str], stdin: str | None = None) -> str:
    done = subprocess.run([str(BIN), *args], env=env, capture_output=True, text=True, timeout=120, input=stdin)
    if done.returncode != 0:
        raise RuntimeError(f"dualrandom {' '.join(args[:2])} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


async def until(what: str, check: Any, timeout: float, poll: float = 0.1) -> Any:
    """Poll ``check()`` (sync or async) until it returns a true value; RuntimeError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(poll)


async def answers(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as c:
            return (await c.get(url + "/health")).status_code == 200
    except httpx.HTTPError:
        return False


def lease_holder(relays: list[Child]) -> Child | None:
    """The running relay whose current incarnation acquired the relay lease and has not lost it."""
    for child in relays:
        if not child.alive:
            continue
        held = False
        for line in child.log_events():
            if line.get("lease") == "relay":
                if line.get("event") == "lease_acquired":
                    held = True
                elif line.get("event") in {"lease_lost", "lease_released"}:
                    held = False
        if held:
            return child
    return None


# -- traffic -----------------------------------------------------------------------------------------
class Traffic:
    def __init__(self, state: State, urls: list[str], token: str) -> None:
        self.state = state
        self.urls = urls
        self.headers = {"Authorization": f"Bearer {token}"}
        self.clients = [self._client(u) for u in urls]
        self.ops = [op for op, _ in OPERATIONS]
        self.weights = [w for _, w in OPERATIONS]
        # At most this many requests in flight per API process (its client's connections): a request due while
        # they are all busy is not sent and counted (``not_sent``), so the generator never queues without bound.
        self.max_outstanding = MAX_OUTSTANDING

    @staticmethod
    def _client(url: str) -> LeanClient:
        # not httpx: its pool's per-request scans took up to 90 % of a core under this load (tests/support/lean_http.py)
        return LeanClient(url, timeout=30)

    def renew(self, api: int) -> LeanClient:
        """A fresh client for a restarted process (the old one's pooled connections went with the old one)."""
        old, self.clients[api] = self.clients[api], self._client(self.urls[api])
        return old

    async def close(self) -> None:
        for c in self.clients:
            await c.aclose()

    def _request(self, op: str) -> tuple[str, str, dict[str, Any] | None, dict[str, Any] | None, str]:
        """(effective op, method, json, params, path)."""
        s = self.state
        s.counter += 1
        n = s.counter
        verb, _, kind = op.partition("_")
        if verb in {"patch", "get"} and not s.known.get(kind):
            verb, op = "create", f"create_{kind}"
        if op == "public_results":
            return op, "GET", None, {"q": "获嘉", "limit": 20}, "/api/v1/public/results"
        path = f"/api/v1/{PLURAL[kind]}"
        department = s.rng.choice(DEPARTMENTS)["code"]
        if verb == "create":
            body = {"target": lambda: a_target(credit_code=credit_code(s.rng.randrange(10**12)),
                                               name=f"获嘉县示例{n}号有限公司"),
                    "item": lambda: an_item(department=department, code=f"SOAK-{n}"),
                    "inspector": lambda: an_inspector(department=department, staff_id=f"SOAK{n}")}[kind]()
            return op, "POST", body, None, path
        if verb == "list":
            return op, "GET", None, {"limit": 20}, path
        entry = s.rng.choice(s.known[kind])
        if verb == "get":
            return op, "GET", None, None, f"{path}/{entry}"
        change = {"target": {"address": f"获嘉县亢村镇工业园{n}号"}, "item": {"name": f"水污染防治监督检查{n}"},
                  "inspector": {"region": f"亢村镇{n}"}}[kind]
        return op, "PATCH", change, None, f"{path}/{entry}"

    async def one(self, due: float, api: int) -> None:
        s = self.state
        op = s.rng.choices(self.ops, self.weights)[0]
        op, method, body, params, path = self._request(op)
        client = self.clients[api]
        sent = s.now()
        status: int | None = None
        error = ""
        try:
            r = await client.request(method, path, json=body, params=params, headers=self.headers)
            status = r.status_code
            if status == 201 and op.startswith("create_"):
                s.known[op.removeprefix("create_")].append(r.json()["id"])
            if not (200 <= status < 300):
                error = r.text[:300]
        except TransportError as exc:
            error = type(exc).__name__
        s.outcomes.append(Outcome(op, api, due, sent, s.now(), status, error))

    async def run(self, seconds: float) -> None:
        s = self.state

        def unsent(due: float) -> None:
            s.not_sent += 1
            s.not_sent_at.append(due)

        await open_loop(s.options.rate, seconds, len(self.urls), self.max_outstanding,
                        lambda api, due: self.one(due, api), unsent, s.now)


# -- chaos -------------------------------------------------------------------------------------------
class Chaos:
    def __init__(self, state: State, apis: list[Child], workers: list[Child], relays: list[Child],
                 nats_server: EmbeddedNats, traffic: Traffic) -> None:
        self.state, self.apis, self.workers, self.relays = state, apis, workers, relays
        self.nats, self.traffic = nats_server, traffic
        self.old_clients: list[LeanClient] = []

    def _log(self, kind: str, name: str, pid: int | None, **extra: Any) -> dict[str, Any]:
        entry = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "t": round(self.state.now(), 2),
                 "kind": kind, "process": name, "pid": pid, **extra}
        self.state.kills.append(entry)
        self.state.say(f"kill -9 {kind} {name} (pid {pid})")
        return entry

    async def kill(self, kind: str) -> None:
        s = self.state
        if kind == "api":
            i = s.rng.randrange(len(self.apis))
            child = self.apis[i]
            down_from = s.now()
            entry = self._log(kind, child.name, child.proc.pid if child.proc else None)
            child.kill9()
            self.old_clients.append(self.traffic.renew(i))
            child.start()
            url = f"http://127.0.0.1:{child.port}"
            await until(f"{child.name} to answer again", lambda: answers(url), 60)
            s.down[i].append((down_from, s.now()))
            entry["back_after_s"] = round(s.now() - down_from, 2)
        elif kind == "worker":
            child = s.rng.choice(self.workers)
            entry = self._log(kind, child.name, child.proc.pid if child.proc else None)
            child.kill9()
            child.start()
        elif kind == "relay":
            holder = await until("a relay to hold the lease", lambda: lease_holder(self.relays), 60)
            killed_at = s.now()
            entry = self._log(kind, holder.name, holder.proc.pid if holder.proc else None, lease_holder=True)
            holder.kill9()
            holder.start()
            taker = await until("a standby relay to take the lease over", lambda: lease_holder(self.relays), 60)
            entry["taken_over_by"] = taker.name
            entry["takeover_s"] = round(s.now() - killed_at, 2)
        else:
            entry = self._log(kind, "nats-server", self.nats.pid)
            assert self.nats.pid is not None
            os.kill(self.nats.pid, signal.SIGKILL)
            await until("nats-server to die", lambda: not self.nats.running, 10, poll=0.01)
            await asyncio.to_thread(self.nats.start, 30)
            entry["restarted_on_port"] = self.nats.port

    def check_children(self) -> None:
        for child in [*self.apis, *self.workers, *self.relays]:
            if not child.alive:
                self.state.failures.append(f"{child.name} exited on its own (status {child.proc.returncode if child.proc else None}):\n{child.tail()}")
                child.start()

    async def run(self, seconds: float) -> None:
        s = self.state
        end = s.now() + seconds
        order: list[str] = []
        await asyncio.sleep(min(5.0, s.options.kill_every / 2))  # pacing: the first kill once traffic flows
        while s.now() < end:
            self.check_children()
            if not order:
                order = list(KINDS)
                s.rng.shuffle(order)
            await self.kill(order.pop(0))
            pause = s.options.kill_every * s.rng.uniform(0.5, 1.5)
            if s.now() + pause >= end:
                break
            await asyncio.sleep(pause)  # pacing between kills
        self.check_children()


# -- partner -----------------------------------------------------------------------------------------
async def partner(state: State, url: str, stop: asyncio.Event) -> None:
    """A partner's durable pull consumer on every subject, reading through the chaos; acks each message."""
    import nats

    async def on_error(exc: Exception) -> None:
        state.partner_errors[type(exc).__name__] += 1

    nc = await nats.connect(url, max_reconnect_attempts=-1, reconnect_time_wait=0.2, error_cb=on_error)
    try:
        js = nc.jetstream(timeout=5)
        sub = await js.pull_subscribe("dualrandom.>", durable=PARTNER, stream=STREAM)
        while not stop.is_set():
            try:
                msgs = await sub.fetch(500, timeout=1)
            except Exception as exc:  # noqa: BLE001 - a timeout or the server away: fetch again
                if type(exc).__name__ != "TimeoutError":
                    state.partner_errors[type(exc).__name__] += 1
                    await asyncio.sleep(0.2)  # back off while nats-server restarts
                continue
            for m in msgs:
                state.partner_seen[(m.headers or {}).get("Nats-Msg-Id", "")] += 1
                try:
                    await m.ack()
                except Exception as exc:  # noqa: BLE001 - redelivered later, de-duplicated by id
                    state.partner_errors[f"ack:{type(exc).__name__}"] += 1
    finally:
        await nc.close()


async def read_stream(url: str) -> list[tuple[int, str, dict[str, str]]]:
    """Every message of the stream: (stream sequence, subject, headers)."""
    import nats

    nc = await nats.connect(url)
    try:
        js = nc.jetstream(timeout=10)
        info = await js.stream_info(STREAM)
        total = info.state.messages
        sub = await js.pull_subscribe("dualrandom.>", durable=None, stream=STREAM)
        out: list[tuple[int, str, dict[str, str]]] = []
        deadline = time.monotonic() + 120
        while len(out) < total and time.monotonic() < deadline:
            try:
                msgs = await sub.fetch(min(1000, total - len(out)), timeout=2)
            except nats.errors.TimeoutError:
                continue
            for m in msgs:
                out.append((m.metadata.sequence.stream, m.subject, dict(m.headers or {})))
                await m.ack()
        await sub.unsubscribe()
        return sorted(out)
    finally:
        await nc.close()


# -- checks ------------------------------------------------------------------------------------------
def expected_messages(db_url: str, env: dict[str, str]) -> tuple[int, int, dict[str, tuple[str, int]], Any]:
    """(head, number of events, {Nats-Msg-Id: (subject, position)}, runtime) from the store itself."""
    from services.infra.relay import Relay
    from services.infra.settings import Settings
    from services.runtime import Runtime

    settings = replace(Settings.from_env(env), projections_in_process=False)
    rt = Runtime(settings).open(with_nats=False)
    relay = Relay(rt.app, rt.engine, "nats://unused", stream=STREAM, deployment=settings.deployment, batch_size=2000)
    out: dict[str, tuple[str, int]] = {}
    start, events = 0, 0
    while True:
        _, count, messages = relay._read(start)
        if count == 0:
            break
        events += count
        for m in messages:
            out[m.headers["Nats-Msg-Id"]] = (m.subject, m.position)
            start = max(start, m.position)
        start = max(start, max((m.position for m in messages), default=start))
        if not messages:  # a batch of events without messages cannot happen (a contract per event), but move on
            break
    return rt.runner.head(), events, out, rt


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def explained(state: State, o: Outcome) -> bool:
    """Did the request overlap a time its API process was down (killed, not yet answering again)?"""
    return any(o.sent <= end and o.done >= start for start, end in state.down.get(o.api, []))


def judge_requests(state: State) -> dict[str, Any]:
    by_status: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    unexplained: list[Outcome] = []
    for o in state.outcomes:
        key = str(o.status) if o.status is not None else f"connection:{o.error}"
        by_status[key] += 1
        if o.status is not None and 200 <= o.status < 300:
            continue
        kind = "5xx" if (o.status or 0) >= 500 else "4xx" if o.status else "connection"
        errors[f"{kind}:{o.op}:{o.status or o.error}"] += 1
        if kind == "4xx" and o.status == 409:
            continue  # a concurrent PATCH of the same entry: refused as documented, nothing changed
        if kind == "4xx" or not explained(state, o):
            unexplained.append(o)
    for o in unexplained[:10]:
        state.failures.append(f"request {o.op} to api-{o.api} at +{o.sent:.2f}s: {o.status or ''} {o.error[:200]}"
                              " (its process was up)")
    if state.not_sent:
        state.failures.append(f"{state.not_sent} requests not sent when due: their API process had 100 requests "
                              "in flight (the servers did not keep up with the rate)")
    if len(unexplained) > 10:
        state.failures.append(f"... and {len(unexplained) - 10} more failed requests")
    latencies = [(o.done - o.due) * 1000 for o in state.outcomes if o.status is not None]
    return {"requests": len(state.outcomes), "not_sent": state.not_sent, "by_status": dict(sorted(by_status.items())),
            "errors": dict(sorted(errors.items())), "unexplained": len(unexplained),
            "p50_ms": round(percentile(latencies, 50), 1), "p99_ms": round(percentile(latencies, 99), 1),
            "max_ms": round(max(latencies, default=float("nan")), 1), "worst_windows": worst_windows(state)}


WINDOW_S = 10
LAG_TICK_S = 0.05


async def watch_loop_lag(state: State, seconds: float) -> None:
    """How late the generator's own event loop wakes up (a 50 ms sleep that took longer): a request's latency
    counts from when it was due, so a starved generator (its process shares the cores) looks like a slow server.
    The report puts each window's worst lag beside its p99."""
    end = state.now() + seconds
    while state.now() < end:
        before = state.now()
        await asyncio.sleep(LAG_TICK_S)
        late = (state.now() - before - LAG_TICK_S) * 1000
        if late > 20:
            state.loop_lag.append((before, late))


def worst_windows(state: State, n: int = 5) -> list[dict[str, Any]]:
    """The ``n`` 10-second windows (by when requests were due) with the highest p99, each with its unsent
    requests and the last kill before its end: where a run's tail comes from, kills or something else."""
    by_window: dict[int, list[float]] = defaultdict(list)
    for o in state.outcomes:
        if o.status is not None:
            by_window[int(o.due // WINDOW_S)].append((o.done - o.due) * 1000)
    unsent = Counter(int(t // WINDOW_S) for t in state.not_sent_at)
    lag: dict[int, float] = defaultdict(float)
    for at, ms in state.loop_lag:
        lag[int(at // WINDOW_S)] = max(lag[int(at // WINDOW_S)], ms)
    rows = []
    for w in set(by_window) | set(unsent):
        start, end = w * WINDOW_S, (w + 1) * WINDOW_S
        kill = max((k for k in state.kills if k["t"] < end), key=lambda k: k["t"], default=None)
        rows.append({"from_s": start, "p99_ms": round(percentile(by_window.get(w, []), 99), 1),
                     "answered": len(by_window.get(w, [])), "not_sent": unsent.get(w, 0),
                     "generator_lag_ms": round(lag.get(w, 0.0), 1),
                     "last_kill": f"{kill['kind']} at +{kill['t']:.1f}s" if kill else None})
    rows.sort(key=lambda r: (r["not_sent"], r["p99_ms"] if r["p99_ms"] == r["p99_ms"] else 0), reverse=True)
    return rows[:n]


def check_agreement(state: State, head: int, events: int, expected: dict[str, tuple[str, int]],
                    stream: list[tuple[int, str, dict[str, str]]], rt: Any, relay_position: int) -> dict[str, Any]:
    from tests.support.projections import assert_rebuild_equals_live

    fail = state.failures.append
    checks: dict[str, Any] = {"head": head, "events": events, "messages_expected": len(expected)}
    if relay_position != head:
        fail(f"relay position {relay_position} != head of the log {head}")
    checkpoints = Counter(h.get("Nats-Msg-Id", "") for _, _, h in stream
                          if h.get("Nats-Msg-Id", "").startswith(CHECKPOINT))
    stream = [m for m in stream if not m[2].get("Nats-Msg-Id", "").startswith(CHECKPOINT)]
    checks["checkpoint_messages"] = len(checkpoints)
    if any(c > 1 for c in checkpoints.values()):
        fail(f"stream: checkpoints published twice: {[i for i, c in checkpoints.items() if c > 1][:3]}")
    ids = Counter(h.get("Nats-Msg-Id", "") for _, _, h in stream)
    dups = [i for i, c in ids.items() if c > 1]
    missing = set(expected) - set(ids)
    extra = set(ids) - set(expected)
    checks.update(stream_messages=len(stream), stream_duplicates=len(dups), stream_missing=len(missing),
                  stream_extra=len(extra))
    if dups or missing or extra or len(stream) != len(expected):
        fail(f"stream: {len(stream)} messages for {len(expected)} expected; duplicates {dups[:3]}, missing "
             f"{sorted(missing)[:3]}, not in the store {sorted(extra)[:3]}")
    wrong_subject = [i for _, subj, h in stream if (i := h.get("Nats-Msg-Id", "")) in expected
                     and expected[i][0] != subj]
    if wrong_subject:
        fail(f"stream: {len(wrong_subject)} messages on the wrong subject, e.g. {wrong_subject[:3]}")
    last: dict[str, int] = {}
    disorder = 0
    for _, subj, h in stream:  # stream order
        pos = int(h.get("ce-position", "0"))
        if pos <= last.get(subj, 0):
            disorder += 1
        last[subj] = pos
    checks["stream_out_of_order"] = disorder
    if disorder:
        fail(f"stream: {disorder} messages not in log order within their subject")
    seen = {i for i in state.partner_seen if not i.startswith(CHECKPOINT)}
    if set(checkpoints) - set(state.partner_seen):
        fail(f"partner: checkpoints missing: {sorted(set(checkpoints) - set(state.partner_seen))[:3]}")
    redelivered = sum(c - 1 for c in state.partner_seen.values())
    checks.update(partner_messages=len(seen), partner_redelivered=redelivered,
                  partner_errors=dict(state.partner_errors))
    if seen != set(expected):
        fail(f"partner: {len(seen)} distinct messages for {len(expected)}; missing "
             f"{sorted(set(expected) - seen)[:3]}, unknown {sorted(seen - set(expected))[:3]}")
    positions = rt.runner.positions()
    checks["read_model_positions"] = sorted(set(positions.values()))
    behind = {n: p for n, p in positions.items() if p != head}
    if behind:
        fail(f"read models not at the head {head}: {behind}")
    rebuilt: dict[str, int] = {}
    for name in sorted(positions):
        try:
            rebuilt[name] = assert_rebuild_equals_live(rt, name)
        except AssertionError as exc:
            fail(f"read model {name}: {exc}")
    checks["read_models_rebuilt_equal"] = len(rebuilt)
    return checks


# -- the run -----------------------------------------------------------------------------------------
async def soak(options: Options, work: Path) -> dict[str, Any]:
    if options.seed is None:
        options = replace(options, seed=random.SystemRandom().randrange(2**32))
    state = State(options, random.Random(options.seed))
    say = state.say
    schema = create_schema(options.database_url)
    db_url = schema_url(options.database_url, schema)
    logs = work / "logs"
    logs.mkdir(parents=True)
    nats_server = EmbeddedNats(port=free_port(), store_dir=work / "nats")
    nats_server.start(timeout=30)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUALRANDOM_")}
    env.update({
        "DUALRANDOM_DATABASE_URL": db_url, "DUALRANDOM_NATS_URL": nats_server.url,
        "DUALRANDOM_SECRET_KEY": secrets.token_urlsafe(48), "DUALRANDOM_VAR_DIR": str(work / "var"),
        "DUALRANDOM_LOG_FORMAT": "json", "DUALRANDOM_PUBLIC_RATE_PER_MINUTE": "0",
        "DUALRANDOM_DRAW_CHECKPOINT_GATE": "false",
        # the servers take what the generator may send them (Traffic.max_outstanding in flight per process), as a
        # deployment sizes the limit to its clients (docs/scale.md): a queue after a kill shows as latency here
        "DUALRANDOM_MAX_IN_FLIGHT": str(MAX_OUTSTANDING),
    })
    say(f"seed {options.seed}, schema {schema}, nats-server {nats_server.url}, work directory {work}")
    children: list[Child] = []
    traffic: Traffic | None = None
    stop_partner = asyncio.Event()
    partner_task: asyncio.Task[None] | None = None
    rt = None
    summary: dict[str, Any] = {"options": {k: v for k, v in vars(options).items() if k != "database_url"},
                               "schema": schema, "work": str(work)}
    try:
        # the first CLI call creates the tables, before the processes start side by side
        run_cli(["accounts", "create-admin", "--username", "soak-admin", "--display-name", "压测管理员",
                 "--department", "hj-eeb", "--password-stdin"], env, stdin="a long soak admin passphrase\n")
        token = run_cli(["token", "issue", "--username", "soak-admin", "--ttl", "24h"], env).strip()
        # the background roles yield the CPU to the API processes (docs/operations.md: a host they share)
        nice = options.background_nice
        relays = [Child(f"relay-{i}", ["serve", "--role", "relay"], env, logs, nice=nice) for i in range(2)]
        workers = [Child(f"worker-{i}", ["serve", "--role", "worker"], env, logs, nice=nice)
                   for i in range(options.workers)]
        apis = [Child(f"api-{i}", ["serve", "--role", "api", "--port", str(port)], env, logs, port=port)
                for i, port in enumerate(free_port() for _ in range(options.api))]
        children = [*relays, *workers, *apis]
        for child in children:
            child.start()
        urls = [f"http://127.0.0.1:{c.port}" for c in apis]
        for url in urls:
            await until(f"{url} to answer", lambda url=url: answers(url), 60)
        await until("a relay to hold the lease", lambda: lease_holder(relays), 60)
        async with httpx.AsyncClient(base_url=urls[0], headers={"Authorization": f"Bearer {token}"},
                                     timeout=30) as c:
            for dept in DEPARTMENTS:
                r = await c.post("/api/v1/departments", json=dept)
                if r.status_code != 201:
                    raise RuntimeError(f"registering {dept['code']}: {r.status_code} {r.text}")
            position = r.json()["position"]
            r = await c.get("/api/v1/departments", params={"min_position": position})
            if r.status_code != 200:
                raise RuntimeError(f"departments not projected: {r.status_code} {r.text}")
        await until("the relay to create the stream", lambda: stream_exists(nats_server.url), 60, poll=0.2)
        partner_task = asyncio.create_task(partner(state, nats_server.url, stop_partner))
        say(f"{len(apis)} api, {len(workers)} workers, 2 relays up; traffic at {options.rate:g}/s for "
            f"{options.minutes:g} min")
        traffic = Traffic(state, urls, token)
        chaos = Chaos(state, apis, workers, relays, nats_server, traffic)
        seconds = options.minutes * 60
        # the last kill ends a few seconds before the traffic does
        lag = asyncio.create_task(watch_loop_lag(state, seconds))
        await asyncio.gather(traffic.run(seconds), chaos.run(max(1.0, seconds - min(10.0, seconds / 6))))
        await lag
        say(f"traffic stopped: {len(state.outcomes)} requests; {len(state.kills)} kills")
        for old in chaos.old_clients:
            await old.aclose()
        chaos.check_children()

        # -- quiesce: the relays publish up to the head, stop; the workers project up to it, stop -------------
        from services.infra.settings import Settings
        from services.runtime import Runtime

        rt = Runtime(replace(Settings.from_env(env), projections_in_process=False)).open(with_nats=False)
        head = rt.runner.head()
        engine = rt.engine

        def relay_pos() -> int:
            with engine.connect() as conn:
                return int(conn.execute(sa.text("SELECT position FROM relay_position WHERE name = :n"),
                                        {"n": STREAM}).scalar() or 0)

        await until(f"the relay to publish up to {head}", lambda: relay_pos() >= head, options.catch_up_timeout, 0.2)
        for child in relays:
            if child.stop() not in (0, None):
                state.failures.append(f"{child.name} did not stop cleanly: {child.proc.returncode if child.proc else ''}\n{child.tail()}")
        head = rt.runner.head()  # the signer may have recorded a checkpoint meanwhile
        await until(f"the read models to reach {head}",
                    lambda: min(rt.runner.positions().values()) >= head, options.catch_up_timeout, 0.2)
        for child in [*apis, *workers]:
            if child.stop() not in (0, None):
                state.failures.append(f"{child.name} did not stop cleanly: {child.proc.returncode if child.proc else ''}\n{child.tail()}")
        head, events, expected, rt2 = expected_messages(db_url, env)
        rt.close()
        rt = rt2
        say(f"store: {events} events up to position {head}, {len(expected)} messages expected")
        stream = await read_stream(nats_server.url)
        everything = set(expected) | {h.get("Nats-Msg-Id", "") for _, _, h in stream}
        await until("the partner to read every message", lambda: everything <= set(state.partner_seen),
                    options.catch_up_timeout, 0.2)
        stop_partner.set()
        await partner_task
        partner_task = None
        summary["requests"] = judge_requests(state)
        summary["checks"] = check_agreement(state, head, events, expected, stream, rt, relay_pos())
    except Exception as exc:  # noqa: BLE001 - reported as a failure with the logs kept
        state.failures.append(f"{type(exc).__name__}: {exc}")
        if "requests" not in summary and state.outcomes:
            summary["requests"] = judge_requests(state)
    finally:
        stop_partner.set()
        if partner_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(partner_task, 10)
        if traffic is not None:
            await traffic.close()
        for child in children:
            child.stop(timeout=5)
        nats_server.stop()
        if rt is not None:
            rt.close()
        if not options.keep:
            drop_schema(options.database_url, schema)
    summary["kills"] = state.kills
    summary["kills_by_kind"] = dict(Counter(k["kind"] for k in state.kills))
    summary["failures"] = state.failures
    (work / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    return summary


async def stream_exists(url: str) -> bool:
    import nats

    try:
        nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
    except Exception:  # noqa: BLE001
        return False
    try:
        await nc.jetstream(timeout=2).stream_info(STREAM)
        return True
    except Exception:  # noqa: BLE001 - not there yet
        return False
    finally:
        await nc.close()


def report(summary: dict[str, Any]) -> str:
    r = summary.get("requests", {})
    lines = [
        "== soak summary ==",
        f"requests: {r.get('requests', 0)} (not sent: {r.get('not_sent', 0)}); latency p50 {r.get('p50_ms')} ms, "
        f"p99 {r.get('p99_ms')} ms, max {r.get('max_ms')} ms",
        f"by status: {r.get('by_status', {})}",
        f"errors by kind: {r.get('errors', {})}",
        "worst 10-second windows (by when due): " + "; ".join(
            f"+{w['from_s']}s p99 {w['p99_ms']} ms, {w['answered']} answered, {w['not_sent']} not sent, generator "
            f"late by up to {w.get('generator_lag_ms', 0)} ms, last kill "
            f"{w['last_kill']}" for w in r.get("worst_windows", [])),
        f"kills: {summary.get('kills_by_kind', {})}",
    ]
    lines += [f"  {k['at']} +{k['t']}s {k['kind']} {k['process']} pid {k['pid']}"
              + "".join(f" {a}={k[a]}" for a in ("back_after_s", "taken_over_by", "takeover_s") if a in k)
              for k in summary.get("kills", [])]
    lines.append(f"checks: {summary.get('checks', {})}")
    lines.append(f"load average: {os.getloadavg()}")
    failures = summary.get("failures", [])
    lines.append("RESULT: " + ("PASS" if not failures else f"FAIL ({len(failures)})"))
    lines += [f"  - {f}" for f in failures]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.soak.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=30.0, help="traffic duration (default 30)")
    p.add_argument("--rate", type=float, default=200.0, help="requests per second, open loop (default 200)")
    p.add_argument("--api", type=int, default=3, help="serve --role api processes (default 3)")
    p.add_argument("--workers", type=int, default=2, help="serve --role worker processes (default 2)")
    p.add_argument("--database-url", default=os.environ.get("DUALRANDOM_TEST_DATABASE_URL", ""),
                   help="PostgreSQL (postgresql+psycopg://...); a fresh schema is made in it "
                   "(default DUALRANDOM_TEST_DATABASE_URL)")
    p.add_argument("--kill-every", type=float, default=30.0, help="mean seconds between kills (default 30)")
    p.add_argument("--seed", type=int, default=None, help="random seed (operations, kill order)")
    p.add_argument("--keep", action="store_true", help="keep the schema and the work directory")
    p.add_argument("--background-nice", type=int, default=10,
                   help="niceness added to the workers and relays (default 10; 0: as the API processes)")
    a = p.parse_args(argv)
    if not a.database_url.startswith("postgresql+psycopg://"):
        p.error("--database-url (or DUALRANDOM_TEST_DATABASE_URL) must be a postgresql+psycopg:// URL")
    if a.api < 1 or a.workers < 1 or a.rate <= 0 or a.minutes <= 0:
        p.error("--api and --workers at least 1, --rate and --minutes above 0")
    options = Options(minutes=a.minutes, rate=a.rate, api=a.api, workers=a.workers, database_url=a.database_url,
                      kill_every=a.kill_every, seed=a.seed, keep=a.keep, background_nice=a.background_nice)
    summary = run(options)
    print(report(summary), flush=True)
    return 1 if summary["failures"] else 0


def run(options: Options) -> dict[str, Any]:
    """One soak run; the summary (``failures`` empty when it passed). The work directory is removed when it
    passed, unless ``options.keep``."""
    work = Path(tempfile.mkdtemp(prefix="dualrandom-soak-"))
    try:
        import uvloop  # installed with uvicorn[standard]: a cheaper loop leaves more CPU for the servers

        factory: Any = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        summary = runner.run(soak(options, work))
    if not summary["failures"] and not options.keep:
        shutil.rmtree(work, ignore_errors=True)
    return summary


if __name__ == "__main__":
    sys.exit(main())
