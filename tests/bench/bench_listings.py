"""Every listing's latency on an idle server over the province data set (tests/bench/province.py).

    .venv/bin/python tests/bench/bench_listings.py [--database province] [--requests 200]

Starts the real server (``_support.py serve``, uvicorn, read models caught up by the generator) on the
database, then, one request at a time (an idle server: no other load from this bench), asks each listing
``--requests`` times and prints p50/p99/max in ms with the load average. Deep pages are reached through the
cursor (``next_cursor`` of page k as the ``cursor`` of page k+1, 200 rows a page, walked to beyond row 100,000
first), and by ``offset=500000`` for comparison. Listings whose read model the generator leaves empty (tasks,
visits, inbox, public results) are measured too, and reported as over an empty table.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests.support
import _support as S

from tests.support.accounts import stored_token


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--database", default="province")
    ap.add_argument("--server", default=os.environ.get(S.PG_ENV) or S.PG_DEFAULT)
    ap.add_argument("--requests", type=int, default=200)
    args = ap.parse_args()
    url = args.server.rsplit("/", 1)[0] + "/" + args.database
    secret = secrets.token_hex(32)
    engine = sa.create_engine(url)
    try:  # every actor is a known account: the tokens' accounts are stored first
        planner = stored_token(engine, secret, "pv-001", ["planner"], "bench:planner", 3600)
        auditor = stored_token(engine, secret, "pv-000", ["auditor"], "bench:auditor", 3600)
    finally:
        engine.dispose()
    with S.running_server("bench_listings", url, secret, timeout=600) as (port, _):
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=60) as c:
            h = {"Authorization": f"Bearer {planner}"}
            a = {"Authorization": f"Bearer {auditor}"}
            # a cursor deep in the listing: walk 100,000 rows by cursor (500 pages of 200)
            cursor, deepest = None, ""
            walk_started = time.perf_counter()
            for _ in range(500):
                page = c.get("/api/v1/targets", params={"limit": 200, **({"cursor": cursor} if cursor else {})},
                              headers=h).json()
                cursor = page["next_cursor"]
                if cursor is None:
                    break
                deepest = cursor
            walk = time.perf_counter() - walk_started
            code = S.credit_code(123_457)
            cases: dict[str, tuple[str, dict[str, str | int], dict[str, str]]] = {
                "targets page 1": ("/api/v1/targets", {}, h),
                "targets deep page (cursor at the walk's end)": ("/api/v1/targets", {"cursor": deepest}, h),
                "targets county filter": ("/api/v1/targets", {"county": "原阳县"}, h),
                "targets county + class": ("/api/v1/targets", {"county": "原阳县", "supervision_class": "key"}, h),
                "targets credit_code prefix (17 chars)": ("/api/v1/targets", {"credit_code": code[:17]}, h),
                "targets credit_code prefix (8 chars)": ("/api/v1/targets", {"credit_code": code[:8]}, h),
                "targets name part (3 chars, selective)": ("/api/v1/targets", {"name": "鑫源恒"}, h),
                "targets name part (4 chars)": ("/api/v1/targets", {"name": "华兴医药"}, h),
                "targets count=exact": ("/api/v1/targets", {"count": "exact"}, h),
                "targets offset=500000": ("/api/v1/targets", {"offset": 500_000}, h),
                "inspectors of a department": ("/api/v1/inspectors", {"department": "pv-001"}, h),
                "tasks": ("/api/v1/tasks", {}, h),
                "inbox": ("/api/v1/inbox", {}, h),
                "visits (inspections)": ("/api/v1/inspections", {}, h),
                "public results": ("/api/v1/public/results", {}, {}),
                "audit log page 1": ("/api/v1/audit/events", {"limit": 100}, a),
                "audit log deep page (after 4,000,000)": ("/api/v1/audit/events", {"after": 4_000_000, "limit": 100}, a),
            }
            rows = []
            for name, (path, params, headers) in cases.items():
                times = []
                status = None
                n = args.requests if "exact" not in name and "offset" not in name else max(args.requests // 20, 5)
                for _ in range(n):
                    started = time.perf_counter()
                    r = c.get(path, params=params, headers=headers)
                    times.append((time.perf_counter() - started) * 1000)
                    status = r.status_code
                rows.append([name, status, n, round(S.percentile(times, 50), 1), round(S.percentile(times, 99), 1),
                             round(max(times), 1)])
    S.print_table(f"listings over {args.database} (load average {os.getloadavg()[0]:.2f}; cursor walk of 100,000 "
                  f"rows: {walk:.1f} s)", ["listing", "status", "n", "p50 ms", "p99 ms", "max ms"], rows)


if __name__ == "__main__":
    main()
