"""One connection per command (issue 12, bug 5: connection-pool starvation).

No engine command and no HTTP request takes a second pooled connection while it holds one.
The tests run on a pool of exactly one connection with no overflow and a short checkout
timeout, so a nested checkout fails within seconds (a `QueuePool limit … reached` error, an
HTTP 500) instead of starving the pool under load: a fresh engine whose working-day calendar was
never loaded, every route of /api/v1 walked as the demo county's people and the main pages, each
request with the calendar cache dropped first (as right after a restart), and the bookkeeping of
a bearer token's last use, which must never make a read wait for a lock. One more replays the
incident itself: 20 clients at once on a cold engine with a pool of 5.
"""

import io
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask, request
from openpyxl import Workbook
from sqlalchemy import select
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import QueuePool

from engine import Engine, FixedClock, scenarios
from engine.accounts import token_digest
from engine.db import WRITE_OPTION, make_engine
from engine.models import ApiToken
from office import Office
from tests.county import TOWN_ITEM
from webui import create_app

CHECKOUT_TIMEOUT = 2  # seconds a second checkout waits before failing
ONE_CONNECTION = {
    "poolclass": QueuePool,  # also for the SQLite file, so "one" is enforced there too
    "pool_size": 1,
    "max_overflow": 0,
    "pool_timeout": CHECKOUT_TIMEOUT,
}
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def one_connection_engine(url: str, clock: FixedClock) -> Engine:
    return Engine(db=make_engine(url, **ONE_CONNECTION), clock=clock)


@pytest.fixture
def county_url(county_template: scenarios.TemplateDatabase) -> Iterator[str]:
    """A fresh copy of the demo county (password `demo`), no instances yet."""
    with county_template.copy() as url:
        yield url


@pytest.fixture
def tight(county_url: str, clock: FixedClock) -> Iterator[Engine]:
    """An engine on the demo county with a pool of one connection; its calendar never loaded."""
    engine = one_connection_engine(county_url, clock)
    yield engine
    engine.close()


def test_the_pool_really_holds_one_connection(tight: Engine) -> None:
    with tight.db.connect():
        began = time.monotonic()
        with pytest.raises(PoolTimeout):
            tight.db.connect()
        assert time.monotonic() - began < CHECKOUT_TIMEOUT + 3
    with tight.db.connect():  # and it was given back
        pass


# --------------------------------------------------------------- cold calendar
def test_a_fresh_engine_runs_its_first_command_on_one_connection(tight: Engine) -> None:
    assert tight._calendar is None  # a restarted server: the calendar was never loaded
    started = tight.start("supervision_item", {"title": TOWN_ITEM["title"]}, user="staff")
    assert started["status"] == "running"
    assert tight.db.pool.checkedout() == 0


def test_every_read_and_command_loads_a_cold_calendar_on_its_own_connection(
    tight: Engine, clock: FixedClock
) -> None:
    def cold() -> Engine:
        tight.reload_calendar()
        return tight

    started = cold().start("supervision_item", {"title": TOWN_ITEM["title"]}, user="staff")
    task = cold().tasks("staff")["items"][0]
    assert cold().task(task["id"], "staff")["name"] == "draft"
    assert cold().instance(started["id"], "staff")["status"] == "running"
    cold().complete(task["id"], TOWN_ITEM, user="staff")
    approve = cold().tasks("deputy")["items"][0]
    assert [t["to"] for t in cold().return_targets(approve["id"], "deputy")]
    cold().complete(approve["id"], {"decision": "approve"}, user="deputy")
    assert cold().items("staff")["total"] == 1
    assert Office(cold()).dashboard("director")
    assert Office(cold()).period_report("2026-12", "director")
    assert cold().calendar_warnings() is not None
    assert cold().fire_due_timers(clock.now() + timedelta(days=20)) > 0  # the worker's loop
    cold().worker_heartbeat(name="pool-test")
    cold().set_calendar_day(date(2027, 1, 4), False, "调休", user="admin")
    assert cold().calendar().is_workday(date(2027, 1, 4)) is False
    assert tight.db.pool.checkedout() == 0


def test_twenty_clients_at_once_right_after_a_restart(county_url: str, clock: FixedClock) -> None:
    """The incident: a restarted server (cold calendar) and 20 clients at once, on a pool of 5
    with no overflow. Each request holds at most one connection, so all of them are served."""
    setup = Engine(county_url, clock=clock)
    tokens = [setup.issue_token("staff")["token"] for _ in range(20)]  # last use not yet noted
    setup.close()
    engine = Engine(
        db=make_engine(
            county_url, poolclass=QueuePool, pool_size=5, max_overflow=0, pool_timeout=10
        ),
        clock=clock,
    )
    app = create_app({"TESTING": True, "SECRET_KEY": "pool"}, engine=engine)

    def client_request(n: int) -> int | str:
        auth = {"Authorization": f"Bearer {tokens[n]}"}
        try:
            if n % 2:
                return app.test_client().get("/api/v1/tasks", headers=auth).status_code
            start = {"process": "supervision_item", "data": {"title": f"事项{n}"}}
            return app.test_client().post("/api/v1/instances", json=start, headers=auth).status_code
        except Exception as exc:  # noqa: BLE001 — reported below with the others
            return f"{type(exc).__name__}: {exc}"

    try:
        with ThreadPoolExecutor(max_workers=20) as clients:
            answers = list(clients.map(client_request, range(20)))
        assert answers == [201 if n % 2 == 0 else 200 for n in range(20)]
        assert engine.db.pool.checkedout() == 0
    finally:
        engine.close()


# ----------------------------------------------------------------- token bookkeeping
def test_a_token_s_last_use_never_makes_a_read_wait_for_a_lock(
    tight: Engine, county_url: str
) -> None:
    """Another transaction holds the write lock (SQLite) or the token's row (PostgreSQL): a
    request with a token whose last use is due to be written still answers at once."""
    client = create_app({"TESTING": True, "SECRET_KEY": "pool"}, engine=tight).test_client()
    issued = client.post("/api/v1/auth/token", json={"username": "staff", "password": "demo"})
    token = issued.get_json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    other = make_engine(county_url)
    answers: list[Any] = []

    def ask() -> None:
        answers.append(client.get("/api/v1/auth/me", headers=auth))

    try:
        with other.execution_options(**{WRITE_OPTION: True}).connect() as conn, conn.begin():
            conn.execute(select(ApiToken.id).with_for_update())  # holds the lock
            asking = threading.Thread(target=ask)
            asking.start()
            asking.join(timeout=5)
            answered_at_once = not asking.is_alive()
        asking.join()
    finally:
        other.dispose()
    assert answered_at_once, "the token's bookkeeping waited for another transaction's lock"
    assert answers[0].status_code == 200 and answers[0].get_json()["username"] == "staff"

    assert last_use(tight, token) is None  # skipped while locked, not waited for
    assert client.get("/api/v1/auth/me", headers=auth).status_code == 200
    assert last_use(tight, token) == tight.clock.now()  # noted on the next request
    assert tight.db.pool.checkedout() == 0


def last_use(engine: Engine, token: str) -> Any:
    with engine.read_session() as session:
        query = select(ApiToken.last_used_at).where(ApiToken.token_hash == token_digest(token))
        return session.scalars(query).one()


# ----------------------------------------------------------------- every API route
class Walk:
    """A test client that drops the calendar cache before each request, fails on any 5xx or
    pool timeout, checks that every connection went back, and notes which routes it used."""

    def __init__(self, app: Flask, engine: Engine) -> None:
        self.client = app.test_client()
        self.engine = engine
        self.tokens: dict[str, dict[str, str]] = {}
        self.used: set[tuple[str, str]] = set()

        @app.before_request
        def note_route() -> None:
            if request.url_rule is not None and request.url_rule.rule.startswith("/api/v1/"):
                path = re.sub(
                    r"<(?:[a-z]+:)?([a-z_]+)>",
                    r"{\1}",
                    request.url_rule.rule.removeprefix("/api/v1"),
                )
                self.used.add((request.method, path))

    def sign_in(self, *users: str) -> None:
        for user in users:
            sign_in = {"username": user, "password": "demo"}
            answer = self.call("POST", "/auth/token", expect=200, json=sign_in)
            self.tokens[user] = {"Authorization": f"Bearer {answer.get_json()['token']}"}

    def call(
        self, method: str, path: str, user: str | None = None, expect: int | None = None, **kw: Any
    ) -> Any:
        self.engine.reload_calendar()  # as right after a restart
        headers = self.tokens[user] if user else {}
        where = f"{method} {path} as {user or 'nobody'}"
        try:
            answer = self.client.open(f"/api/v1{path}", method=method, headers=headers, **kw)
        except Exception as exc:  # TESTING propagates what the app did not handle
            pytest.fail(f"{where}: {type(exc).__name__}: {exc}")
        body = answer.get_json(silent=True)
        assert answer.status_code < 500, f"{where}: {answer.status_code} {body}"
        assert self.engine.db.pool.checkedout() == 0, f"{where} kept a connection"
        if expect is not None:
            assert answer.status_code == expect, f"{where}: {answer.status_code} {body}"
        return answer

    def get(self, path: str, user: str | None = None, expect: int | None = 200, **kw: Any) -> Any:
        return self.call("GET", path, user, expect, **kw)

    def post(self, path: str, user: str, expect: int | None = 200, **kw: Any) -> Any:
        return self.call("POST", path, user, expect, **kw)

    def json(self, method: str, path: str, user: str, expect: int | None = 200, **kw: Any) -> Any:
        return self.call(method, path, user, expect, **kw).get_json()

    def inbox_task(self, user: str, instance_id: int, name: str | None = None) -> dict[str, Any]:
        items = self.json("GET", "/tasks?per_page=500", user)["items"]
        found = [
            t
            for t in items
            if t["instance_id"] == instance_id and (name is None or t["name"] == name)
        ]
        assert len(found) == 1, (user, instance_id, name, items)
        return found[0]

    def complete(self, user: str, task: dict[str, Any], data: dict[str, Any]) -> Any:
        if task["assignee"] is None:
            self.post(f"/tasks/{task['id']}/claim", user)
        return self.json("POST", f"/tasks/{task['id']}/complete", user, json={"data": data})


def documented_operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    """(METHOD, path) of every operation the served OpenAPI document lists."""
    found: set[tuple[str, str]] = set()
    for path, item in doc["paths"].items():
        if "$ref" in item:
            item = doc["components"]["pathItems"][item["$ref"].rsplit("/", 1)[-1]]
        found |= {(method.upper(), path) for method in item if method.upper() in METHODS}
    return found


def _xlsx(rows: list[list[Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_every_api_route_uses_one_connection_at_a_time(tight: Engine) -> None:
    app = create_app({"TESTING": True, "SECRET_KEY": "pool"}, engine=tight)
    walk = Walk(app, tight)
    documented = walk.get("/openapi.json").get_json()
    walk.sign_in("staff", "deputy", "deputy2", "director", "hq", "town_liaison")
    walk.sign_in("admin", "designer")

    # -------------------------------------------------------------- who, what, whom
    assert walk.json("GET", "/auth/me", "staff")["username"] == "staff"
    assert "supervision_item" in {p["key"] for p in walk.json("GET", "/processes", "staff")}
    walk.get("/units?kind=town", "staff")
    walk.get("/users?q=deputy", "staff")
    walk.get("/roles", "staff")
    walk.get("/auth/sign-in-failures", "staff")

    # -------------------------------------------------- a supervision item, drafted
    started = walk.post(
        "/instances", "staff", 201, json={"process": "supervision_item", "data": {}}
    ).get_json()
    item = started["id"]
    walk.get("/instances?process=supervision_item", "staff")
    walk.get(f"/instances/{item}", "staff")
    walk.get(f"/instances/{item}/diagram", "staff")
    draft = walk.inbox_task("staff", item, "draft")
    walk.get(f"/tasks/{draft['id']}", "staff")
    walk.post(f"/tasks/{draft['id']}/claim", "staff")
    walk.post(f"/tasks/{draft['id']}/unclaim", "staff")
    walk.post(f"/tasks/{draft['id']}/claim", "staff")
    walk.call("PUT", f"/tasks/{draft['id']}/draft", "staff", 200, json={"data": TOWN_ITEM})
    walk.get(f"/tasks/{draft['id']}/draft", "staff")
    walk.call("DELETE", f"/tasks/{draft['id']}/draft", "staff", 200)
    uploaded = walk.post(
        f"/tasks/{draft['id']}/attachments",
        "staff",
        201,
        data={"file": (io.BytesIO(PDF), "立项依据.pdf")},
        content_type="multipart/form-data",
    ).get_json()
    walk.get(f"/attachments/{uploaded['id']}", "staff")
    walk.complete("staff", draft, TOWN_ITEM)

    # ---------------------------------------- 撤回, 催办, 退回, 抄送, 转办, 改派, 委派, 加签
    walk.post(f"/tasks/{draft['id']}/withdraw", "staff", json={"opinion": "补充材料"})
    draft = walk.inbox_task("staff", item, "draft")
    walk.complete("staff", draft, TOWN_ITEM)
    approve = walk.inbox_task("deputy", item, "approve")
    walk.post(f"/tasks/{approve['id']}/urge", "staff", json={"message": "请尽快审批"})
    walk.get(f"/tasks/{approve['id']}/return-targets", "deputy")
    walk.post(f"/tasks/{approve['id']}/return", "deputy", json={"reason": "请写明完成时限"})
    walk.complete("staff", walk.inbox_task("staff", item, "draft"), TOWN_ITEM)
    approve = walk.inbox_task("deputy", item, "approve")
    walk.post(f"/tasks/{approve['id']}/claim", "deputy")
    walk.post(f"/tasks/{approve['id']}/cc", "deputy", json={"users": ["hq"], "opinion": "请阅"})
    copies = walk.json("GET", "/tasks?box=cc", "hq")["items"]
    walk.post(f"/cc/{copies[0]['id']}/read", "hq")
    walk.get(f"/tasks/{approve['id']}/transfer-candidates", "deputy")
    walk.post(f"/tasks/{approve['id']}/transfer", "deputy", json={"to": "deputy2"})
    walk.post(
        f"/tasks/{approve['id']}/reassign", "admin", json={"to": "deputy", "reason": "回到分管"}
    )
    walk.post(f"/tasks/{approve['id']}/delegate", "deputy", json={"to": "deputy2"})
    walk.complete("deputy2", walk.inbox_task("deputy2", item, "approve"), {"decision": "approve"})
    approve = walk.inbox_task("deputy", item, "approve")
    walk.post(
        f"/tasks/{approve['id']}/add-signers",
        "deputy",
        json={"users": ["director"], "before": True, "opinion": "请主任把关"},
    )
    walk.complete("director", walk.inbox_task("director", item), {"decision": "approve"})
    walk.complete("deputy", walk.inbox_task("deputy", item, "approve"), {"decision": "approve"})

    # ------------------------------------- documents, ledger, reports, dashboard, messages
    documents = walk.json("GET", f"/instances/{item}/documents", "staff")
    walk.get(f"/documents/{documents['items'][0]['id']}", "staff")
    walk.get(f"/instances/{item}/scores.xlsx", "staff", 404)
    walk.get("/items", "town_liaison")
    walk.get("/items?format=xlsx", "staff")
    walk.get("/rectifications.xlsx", "staff")
    walk.get("/reports/monthly?period=2026-12", "director")
    walk.get("/dashboard", "director")
    walk.get("/notifications", "town_liaison")
    walk.post("/notifications/read", "town_liaison", json={})

    # ------------------------------------------------------ the administrator's fixes
    walk.post(f"/instances/{item}/suspend", "admin", json={"reason": "暂缓"})
    walk.post(f"/instances/{item}/resume", "admin", json={"reason": "继续"})
    walk.post(f"/instances/{item}/retry", "admin", 409, json={"reason": "不在出错状态"})
    targets = walk.json("GET", f"/console/instances/{item}/reset-targets", "admin")
    walk.post(
        f"/instances/{item}/reset",
        "admin",
        json={"to": targets[0]["element"], "reason": "重新办理"},
    )
    for action in ("suspend", "resume"):
        walk.post(
            "/console/bulk", "admin", json={"action": action, "ids": [item], "reason": "批量"}
        )
    walk.get("/console/errors", "admin")
    walk.get("/console/tasks", "admin")
    waiting = walk.json("GET", "/console/timers", "admin")["due_next"][0]  # not failed: 409
    walk.post(f"/console/timers/{waiting['id']}/retry", "admin", 409, json={"reason": "重试"})
    walk.get("/audit?kind=instance_started", "admin")
    walk.get("/console/directory", "admin")
    walk.get("/console/health", "admin")
    walk.post(
        "/users",
        "admin",
        201,
        json={
            "username": "zhao",
            "name": "赵六",
            "unit": "office",
            "roles": ["指挥办工作人员"],
            "password": "pw123456",
        },
    )
    walk.call("PATCH", "/users/zhao", "admin", 200, json={"name": "赵六六"})
    walk.post("/users/zhao/deactivate", "admin", json={"reason": "调离"})
    walk.post("/users/zhao/activate", "admin", json={"reason": "调回"})
    walk.post("/users/zhao/sign-out", "admin", json={"reason": "设备遗失"})
    sheet = _xlsx(
        [
            ["用户名", "姓名", "单位", "角色", "密码"],
            ["sun", "孙七", "office", "指挥办工作人员", "pw123456"],
        ]
    )
    walk.post(
        "/users/import",
        "admin",
        201,
        data={"file": (io.BytesIO(sheet), "users.xlsx")},
        content_type="multipart/form-data",
    )
    walk.post("/units", "admin", 201, json={"name": "教育局", "code": "edu"})
    walk.call("PATCH", "/units/edu", "admin", 200, json={"name": "县教育局"})
    walk.post("/roles", "admin", 201, json={"name": "督查员", "sees_all": True})
    walk.call("PATCH", "/roles/督查员", "admin", 200, json={"sees_all": False})

    # ----------------------------------------------------------------- the designer
    brief = walk.post(
        "/instances", "staff", 201, json={"process": "information_brief", "data": {}}
    ).get_json()["id"]
    base = "/designer/processes/information_brief"
    walk.get("/designer/processes", "designer")
    walk.get("/designer/roles", "designer")
    walk.get(base, "designer")
    walk.get(f"{base}/versions/1", "designer")
    files = walk.json("GET", f"{base}/draft", "designer")["files"]
    bpmn_name = next(name for name in files if name.endswith(".bpmn"))
    files[bpmn_name] += "\n<!-- 第二版 -->\n"
    walk.call("PUT", f"{base}/draft", "designer", 200, json={"files": files})
    assert walk.json("POST", f"{base}/draft/check", "designer")["ok"]
    walk.post(f"{base}/draft/deploy", "designer", 201)
    walk.get(f"{base}/diff?old=1&new=2", "designer")
    walk.get(f"{base}/migration", "designer")
    walk.post("/designer/migrations", "designer", json={"instances": [brief], "reason": "升级"})
    walk.call("PUT", f"{base}/draft", "designer", 200, json={"files": files})
    walk.call("DELETE", f"{base}/draft", "designer", 204)

    # ------------------------------------------------------------------- the end
    walk.post(f"/instances/{brief}/terminate", "admin", json={"reason": "测试结束"})
    walk.call("DELETE", "/auth/token", "staff", 204)

    assert documented_operations(documented) - walk.used == set(), "routes the walk missed"


# ------------------------------------------------------------------------- the pages
def test_the_pages_use_one_connection_at_a_time(tight: Engine) -> None:
    """The people's pages, the console and the designer call several engine functions per
    request, one after the other: never one inside another."""
    app = create_app(
        {"TESTING": True, "SECRET_KEY": "pool", "WTF_CSRF_ENABLED": False}, engine=tight
    )
    item = tight.start("supervision_item", {"title": TOWN_ITEM["title"]}, user="staff")["id"]
    draft = tight.tasks("staff")["items"][0]["id"]
    pages = {
        "staff": ["/", "/inbox", "/start", f"/tasks/{draft}", f"/instances/{item}", "/ledger"],
        "director": ["/dashboard", "/messages", "/bulletins", "/evaluation"],
        "admin": [
            "/console/",
            "/console/errors",
            "/console/tasks",
            "/console/timers",
            "/console/audit",
            "/console/health",
            "/console/directory/",
            "/console/directory/users/staff",
        ],
        "designer": ["/designer", "/designer/supervision_item"],
    }
    for user, paths in pages.items():
        client = app.test_client()
        tight.reload_calendar()
        signed_in = client.post("/login", data={"username": user, "password": "demo"})
        assert signed_in.status_code == 302, f"sign-in of {user}: {signed_in.status_code}"
        for path in paths:
            tight.reload_calendar()  # as right after a restart
            answer = client.get(path)
            assert answer.status_code < 400, f"GET {path} as {user}: {answer.status_code}"
            assert tight.db.pool.checkedout() == 0, f"GET {path} as {user} kept a connection"
    for path in ("/health", "/metrics"):
        tight.reload_calendar()
        assert app.test_client().get(path).status_code < 500, path
