"""A province's directory on PostgreSQL: departments, inspectors and targets, made fast through the real code.

    .venv/bin/python tests/bench/province.py [--database province] [--targets 1000000] [--inspectors 10000]
        [--departments 100] [--update-rounds 0] [--no-catch-up]

What it writes, and how: every entry goes through ``DualRandom.import_entries`` (the real validation,
aggregates, event mapper and recorder), which stores a large import by ``COPY`` into the event store in one
transaction per kind (``services/infra/recorder.py``, ``COPY_MIN``); so the log holds exactly what a bureau's
imports would. Then the real projection runner catches every read model up from the log, as a server's cold
start does (the bulk path: a rebuild, see ``projections/README.md``; ``--no-catch-up`` leaves that to a server's
cold start or ``bench_rebuild.py --database``, to measure it). ``--update-rounds N`` re-imports the targets N times with
one field changed each time (N million update events on a million targets: the issue's 5 M events are
``--update-rounds 4``). Names vary (county, two words, industry), so that part searches are selective.

The database (default ``province`` on the server of DUALRANDOM_TEST_DATABASE_URL, else 127.0.0.1) is created
when missing and dropped first with ``--fresh``: it is nobody else's. Prints the time of each phase as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _support as S

from domain.access import SYSTEM
from services.application import CommandContext
from services.infra.settings import Settings
from services.runtime import Runtime

COUNTIES = [f"{c}县" for c in ("获嘉", "原阳", "延津", "封丘", "长垣", "卫辉", "辉县", "新乡", "修武", "武陟", "温县",
                                "博爱", "沁阳", "孟州", "滑县", "浚县", "淇县", "内黄", "汤阴", "林州", "安阳", "清丰",
                                "南乐", "范县", "台前", "濮阳", "兰考", "杞县", "通许", "尉氏")]
WORDS = ("华", "兴", "盛", "达", "鑫", "源", "恒", "泰", "丰", "宏", "隆", "昌", "瑞", "祥", "安", "康", "富", "金",
         "银", "宝", "广", "中", "豫", "新", "天", "龙", "凤", "德", "信", "诚", "和", "顺", "通", "远", "嘉", "润")
INDUSTRIES = ("化工", "造纸", "食品", "建材", "纺织", "机械", "医药", "电子", "印刷", "餐饮", "物流", "建筑")
KINDS = ("ecology", "market", "emergency", "natural_resources", "housing", "water")


def department_rows(n: int) -> Iterator[tuple[int, dict[str, str]]]:
    for i in range(n):
        yield i + 2, {"code": f"pv-{i:03d}", "name": f"{COUNTIES[i % len(COUNTIES)]}第{i}局", "city": "新乡市",
                      "county": COUNTIES[i % len(COUNTIES)], "kind": KINDS[i % len(KINDS)]}


def inspector_rows(n: int, departments: int) -> Iterator[tuple[int, dict[str, str]]]:
    for i in range(n):
        yield i + 2, {"department": f"pv-{i % departments:03d}", "staff_id": f"PV{i:06d}",
                      "name": f"{WORDS[i % 36]}{WORDS[(i // 36) % 36]}{WORDS[(i // 1296) % 36]}",
                      "certificate_no": f"豫执字{i:06d}", "certificate_expiry": "2029-12-31",
                      "specialties": ("大气;水" if i % 2 else "固废"), "region": COUNTIES[i % len(COUNTIES)]}


def target_row(n: int, round_: int = 0) -> dict[str, str]:
    county = COUNTIES[n % len(COUNTIES)]
    industry = INDUSTRIES[(n // 7) % len(INDUSTRIES)]
    return {
        "credit_code": S.credit_code(n),
        "name": f"{county}{WORDS[n % 36]}{WORDS[(n // 36) % 36]}{WORDS[(n // 1296) % 36]}{industry}有限公司{n}",
        "address": f"{county}工业园{n % 997}号" + (f"之{round_}" if round_ else ""),
        "county": county,
        "industry": industry,
        "supervision_class": ("general", "key", "special")[n % 3],
        "risk_class": "ABCD"[n % 4],
        "tags": "重点排污单位;涉VOCs" if n % 5 == 0 else "",
    }


def target_rows(n: int, round_: int = 0) -> Iterator[tuple[int, dict[str, str]]]:
    for i in range(n):
        yield i + 2, target_row(i + 1, round_)


def ensure_database(server: str, name: str, fresh: bool) -> str:
    admin = sa.create_engine(server.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if fresh:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is None:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return server.rsplit("/", 1)[0] + "/" + name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database", default="province")
    ap.add_argument("--server", default=os.environ.get(S.PG_ENV) or S.PG_DEFAULT,
                    help="a PostgreSQL URL on the server to use (its database name is replaced)")
    ap.add_argument("--fresh", action="store_true", help="drop the database first")
    ap.add_argument("--targets", type=int, default=1_000_000)
    ap.add_argument("--inspectors", type=int, default=10_000)
    ap.add_argument("--departments", type=int, default=100)
    ap.add_argument("--update-rounds", type=int, default=0)
    ap.add_argument("--no-catch-up", action="store_true")
    args = ap.parse_args()
    url = ensure_database(args.server, args.database, args.fresh)
    rt = Runtime(Settings(database_url=url, var_dir=Path("var/province"))).open(with_nats=False)
    ctx = CommandContext(SYSTEM)
    timings: dict[str, float] = {}

    def phase(name: str, kind: str, rows: Iterator[tuple[int, dict[str, str]]]) -> None:
        started = time.perf_counter()
        result = rt.app.import_entries(kind, rows, ctx)
        timings[name] = round(time.perf_counter() - started, 1)
        print(json.dumps({"phase": name, "seconds": timings[name], "events": result.events}), flush=True)

    phase("departments", "department", department_rows(args.departments))
    phase("inspectors", "inspector", inspector_rows(args.inspectors, args.departments))
    phase("targets", "target", target_rows(args.targets))
    for r in range(1, args.update_rounds + 1):
        phase(f"targets_update_{r}", "target", target_rows(args.targets, r))
    if not args.no_catch_up:
        started = time.perf_counter()
        rt.runner.catch_up()
        timings["catch_up"] = round(time.perf_counter() - started, 1)
        # What autovacuum does some time later (this machine's PostgreSQL runs with autovacuum off): the
        # listings need the statistics, and a capped count's index-only scan the visibility map (a county's
        # count: 15-40 ms through the heap, 0.2 ms from the index alone).
        started = time.perf_counter()
        with rt.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("VACUUM (ANALYZE)"))
        timings["vacuum_analyze"] = round(time.perf_counter() - started, 1)
    print(json.dumps({"database": url, "head": rt.runner.head(), "seconds": timings,
                      "load_average": os.getloadavg()}), flush=True)
    rt.close()


if __name__ == "__main__":
    main()
