"""Authenticated HTTP create with the account checks vs the same request on the token-only path, and login.

    .venv/bin/python tests/bench/bench_auth.py [--database-url URL | --sqlite] [--requests 600] [--rounds 5]
        [--block 50] [--loop uvloop|asyncio] [--logins 15]

One run, one database (a SQLite file or a fresh PostgreSQL schema, dropped afterwards), one in-process app
(``create_app(runtime, background=False)``, litestar's TestClient: the ASGI stack without sockets, one client,
on uvloop by default as ``dualrandom serve`` runs):

- ``accounts``: POST /api/v1/targets with a bearer token of an account; every request verifies the token and
  looks its id and account up in the credential store (one indexed query: revoked? active? current roles?).
- ``token-only``: the same requests with the look-up replaced by the token's own claims (what the server did
  before accounts: no database read to authenticate).

Each round sends ``--requests`` requests on each path, in blocks of ``--block`` that alternate (accounts,
token-only, token-only, accounts, ...), so that a change of load on the shared machine falls on both alike. Each
round's ratio is accounts creates/s / token-only creates/s; RATIO is the median of the rounds' ratios (goal >=
0.9). Then ``--logins`` logins: p50 of POST /api/v1/session (the KDF is deliberately slow) with its parameters.
The load average is printed at the start, after each round and at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests.support
import _support as S
from litestar.testing import TestClient

from domain.access import SYSTEM
from services.api.app import create_app
from services.application import CommandContext
from services.infra import accounts_store as store
from services.infra.settings import Settings
from services.runtime import Runtime
from tests.support.accounts import stored_token


def _round(client: TestClient, headers: dict[str, str], first: int, n: int) -> float:
    started = time.perf_counter()
    for i in range(first, first + n):
        body = {"credit_code": S.credit_code(i), "name": f"获嘉县示例企业{i}有限公司", "county": "获嘉县",
                "industry": "化工", "supervision_class": "general", "risk_class": "B"}
        r = client.post("/api/v1/targets", json=body, headers=headers)
        if r.status_code != 201:
            raise SystemExit(f"create answered {r.status_code}: {r.text[:300]}")
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url")
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--requests", type=int, default=600, help="per path and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--block", type=int, default=50, help="requests in a row on one path, then the other")
    parser.add_argument("--logins", type=int, default=15)
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop",
                        help="the app's event loop (uvloop: what `dualrandom serve` runs, uvicorn's default)")
    args = parser.parse_args()
    print(f"loadavg at start: {[round(x, 2) for x in os.getloadavg()]}", flush=True)
    db = S.fresh_sqlite() if args.sqlite else S.fresh_pg_schema(args.database_url or S.default_pg_url())
    with db as url, __import__("tempfile").TemporaryDirectory() as tmp:
        settings = replace(Settings(var_dir=Path(tmp), relay_enabled=False, session_cookie_secure=False),
                           database_url=url).with_secret()
        runtime = Runtime(settings).open(with_nats=False)
        try:
            token = stored_token(runtime.engine, settings.secret_key, "hj-eeb", ["planner"], None, 3600)  # no link
            headers = {"Authorization": f"Bearer {token}"}
            claimed = runtime.accounts.authenticate(
                __import__("services.api.auth", fromlist=["verify"]).verify(settings.secret_key, token)[1])

            async def token_only(_: str) -> Any:
                return claimed  # the token's claims, no database read (the path before accounts)

            accounts: list[float] = []
            tokens: list[float] = []
            ratios: list[float] = []
            n = 1_000_000
            app = create_app(runtime, background=False)
            real = app.state.principals
            with TestClient(app, backend_options={"use_uvloop": args.loop == "uvloop"}) as client:
                _round(client, headers, n, 100)  # warm-up
                n += 100
                block = min(args.block, args.requests)
                for r in range(args.rounds):
                    spent = {"accounts": 0.0, "token-only": 0.0}
                    for b in range(args.requests // block):  # blocks alternate, the first of each pair too
                        for mode in (("accounts", "token-only") if b % 2 == 0 else ("token-only", "accounts")):
                            app.state.principals = real if mode == "accounts" else token_only
                            spent[mode] += block / _round(client, headers, n, block)
                            n += block
                    app.state.principals = real
                    done = args.requests // block * block
                    accounts.append(done / spent["accounts"])
                    tokens.append(done / spent["token-only"])
                    ratios.append(accounts[-1] / tokens[-1])
                    print(f"round {r + 1}: accounts {accounts[-1]:,.0f}/s, token-only {tokens[-1]:,.0f}/s, "
                          f"ratio {ratios[-1]:.2f}, loadavg {os.getloadavg()[0]:.2f}", flush=True)
                password = "bench passphrase " + os.urandom(6).hex()
                runtime.accounts.create(CommandContext(SYSTEM), {
                    "username": "bench-login", "display_name": "bench", "department": "hj-eeb",
                    "roles": ["planner"]}, password, check_department=False)
                logins = []
                for _ in range(args.logins):
                    started = time.perf_counter()
                    answer = client.post("/api/v1/session", json={"username": "bench-login", "password": password})
                    logins.append(time.perf_counter() - started)
                    if answer.status_code != 201:
                        raise SystemExit(f"login answered {answer.status_code}: {answer.text[:300]}")
                    client.cookies.clear()
        finally:
            runtime.close()
    a, t = statistics.median(accounts), statistics.median(tokens)
    backend = "sqlite" if args.sqlite else "postgresql"
    print(f"{backend} ({args.loop}): accounts {a:,.0f}/s, token-only {t:,.0f}/s (medians of {args.rounds} rounds of "
          f"{args.requests} each); RATIO {statistics.median(ratios):.2f} (median of the rounds' ratios: "
          f"{', '.join(f'{x:.2f}' for x in ratios)}; goal >= 0.9)")
    print(f"login p50 {statistics.median(logins) * 1000:.0f} ms over {args.logins} (scrypt n={store.N}, "
          f"r={store.R}, p={store.P}: {128 * store.N * store.R // 2**20} MiB)")
    print(f"loadavg at end: {[round(x, 2) for x in os.getloadavg()]}")


if __name__ == "__main__":
    main()
