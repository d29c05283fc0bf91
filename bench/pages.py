"""Server time of the people's pages on the demo county plus 10,000 extra tracked items.

Run:  .venv/bin/python bench/pages.py [--database-url URL] [--items 10000] [--calls 20]

A fresh database (as bench/run.py makes one: a new SQLite file, or a new PostgreSQL database
that is dropped afterwards) gets the demo county (`duban demo`), then `--items` extra tracked
items spread over the units, lights and statuses, each on one of the demo's instances. Each page
is then requested `--calls` times through Flask's test client (no network: the figure is the
server's own time, from routing to the rendered HTML) as the user who would open it, after one
warm-up request. The target is 100 ms per page (issue 6); this script prints figures and never
fails on them.
"""

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from run import fresh_database  # noqa: E402  (bench/run.py)

from engine import Engine  # noqa: E402
from engine.models import HumanTask, ProcessInstance, TrackedItem, Unit  # noqa: E402
from webui import create_app  # noqa: E402
from webui.demo import load_demo  # noqa: E402

TARGET_MS = 100.0
STATUSES = ("待签收", "办理中", "延期审批中", "已办结", "已销号")


def add_items(engine: Engine, count: int) -> None:
    """`count` extra ledger rows: a third overdue, some due soon, a fifth closed."""
    now = datetime.now(UTC)
    with engine.write_session() as session, session.begin():
        units = list(session.scalars(select(Unit.id)))
        # the meeting stays as the demo left it: its page is one of those measured
        instances = list(
            session.scalars(
                select(ProcessInstance.id).where(ProcessInstance.id != measured_instance(session))
            )
        )
        rows = []
        for i in range(count):
            closed = i % 5 == 0
            deadline = now + timedelta(days=(i % 90) - 30)
            rows.append(
                {
                    "kind": "督办事项" if i % 4 else "整改任务",
                    "key": f"bench-{i}",
                    "instance_id": instances[i % len(instances)],
                    "title": f"压测事项 {i:05d}",
                    "source": ("主任会议", "县领导交办", "专项督导")[i % 3],
                    "lead_unit_id": units[i % len(units)],
                    "cooperating_unit_ids": [],
                    "status": STATUSES[i % len(STATUSES)],
                    "deadline": deadline,
                    "original_deadline": deadline,
                    "report_cycle_days": 7,
                    "next_report_due": now + timedelta(days=(i % 14) - 7),
                    "progress": i % 101,
                    "last_progress": "按计划推进",
                    "extension_count": 0,
                    "overdue_count": int(deadline < now),
                    "closed_at": deadline - timedelta(days=1) if closed else None,
                    "attributes": {},
                    "created_at": now - timedelta(days=60),
                    "updated_at": now,
                }
            )
        session.execute(insert(TrackedItem), rows)


def measured_instance(session: Session) -> int | None:
    """The first instance with a step open (the demo's 主任会议)."""
    return session.scalar(select(func.min(HumanTask.instance_id)))


def pages(engine: Engine) -> list[tuple[str, str]]:
    """(user, path) for each page, with a task and an instance of that user's."""
    todo = engine.tasks("director")["items"]
    task = todo[0]["id"] if todo else None
    with engine.read_session() as session:
        instance = measured_instance(session)
    listed = [
        ("staff", "/inbox"),
        ("staff", "/inbox?box=done"),
        ("staff", "/inbox?box=started"),
        ("staff", "/start"),
        ("staff", "/ledger"),
        ("staff", "/ledger?light=red&closed=false"),
        ("unit_liaison", "/ledger"),
        ("director", "/dashboard"),
        ("hq", "/evaluation"),
        ("staff", "/messages"),
        ("staff", f"/instances/{instance}"),
        ("staff", f"/api/v1/instances/{instance}/diagram"),
    ]
    if task:
        listed.append(("director", f"/tasks/{task}"))
    return listed


def measure(engine: Engine, calls: int) -> list[tuple[str, str, float, float, int]]:
    app = create_app({"SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False}, engine=engine)
    clients = {}
    results = []
    for user, path in pages(engine):
        if user not in clients:
            client = app.test_client()
            response = client.post("/login", data={"username": user, "password": "demo"})
            if response.status_code != 302:
                raise SystemExit(f"{user} could not sign in: {response.status_code}")
            clients[user] = client
        client = clients[user]
        status = client.get(path).status_code  # warm-up: spec cache, templates
        samples = []
        for _ in range(calls):
            started = time.perf_counter()
            client.get(path).close()
            samples.append((time.perf_counter() - started) * 1000)
        samples.sort()
        p95 = samples[max(0, round(0.95 * len(samples)) - 1)]
        results.append((user, path, statistics.median(samples), p95, status))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    with fresh_database(args.database_url) as url:
        engine = Engine(url)
        engine.create_schema()
        started = time.perf_counter()
        for _line in load_demo(engine, ROOT / "processes", "demo"):
            pass
        add_items(engine, args.items)
        print(f"demo county + {args.items} items ready in {time.perf_counter() - started:.1f} s")
        print(f"database: {engine.db.url.get_backend_name()}; {args.calls} calls per page\n")
        print(f"{'page':46} {'user':13} {'median':>8} {'p95':>8}  status")
        for user, path, median, p95, status in measure(engine, args.calls):
            mark = "" if median <= TARGET_MS else f"  over {TARGET_MS:.0f} ms"
            print(f"{path:46} {user:13} {median:6.1f}ms {p95:6.1f}ms  {status}{mark}")
        engine.close()


if __name__ == "__main__":
    main()
