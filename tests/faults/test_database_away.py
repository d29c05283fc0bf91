"""The database away (stopped, unreachable, its disk unmounted) and back: pages say so in Chinese
with a 503, the API answers 503 `database_unavailable`, /health answers 503, workers back off
with growing pauses instead of crashing — and everything resumes, without a restart, once the
database is back.

PostgreSQL is reached through a TCP proxy the test stops (every live connection cut, new ones
refused) and starts again; a SQLite file is made unreachable by moving its folder away."""

import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from engine import Engine
from engine.workdays import BEIJING
from tests.conftest import ON_POSTGRES, fresh_database
from tests.faults.support import (
    DUBAN,
    PASSWORD,
    PROCESS,
    TcpProxy,
    prepare,
    wait_until,
)
from tests.faults.test_worker_killed import deadline_process, fired
from webui import create_app
from webui.api.openapi import document

UNAVAILABLE = "数据库暂时无法连接"


class Away:
    """The database as the application reaches it (`url`), which `leave()` makes unreachable
    and `come_back()` restores."""

    def __init__(self, db_url: str, folder: Path) -> None:
        self.direct = db_url
        self.folder = folder
        self.proxy: TcpProxy | None = None
        if ON_POSTGRES:
            parsed = make_url(db_url)
            self.proxy = TcpProxy((parsed.host or "127.0.0.1", parsed.port or 5432))
            self.proxy.start()
            self.url = parsed.set(port=self.proxy.port).render_as_string(hide_password=False)
        else:
            self.url = db_url
        self.apps: list[Engine] = []  # engines whose pooled SQLite connections must be dropped

    def leave(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()
            return
        for engine in self.apps:  # an open SQLite file stays readable; new opens fail
            engine.db.dispose()
        self.folder.rename(self.folder.with_name("away"))

    def come_back(self) -> None:
        if self.proxy is not None:
            self.proxy.start()
            return
        self.folder.with_name("away").rename(self.folder)

    def close(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()
        elif not self.folder.exists():
            self.come_back()


@pytest.fixture
def db_url(tmp_path: Path) -> Iterator[str]:
    """A SQLite file in a folder of its own (moved away by the tests), or a fresh PostgreSQL
    database."""
    (tmp_path / "data").mkdir()
    with fresh_database(tmp_path / "data") as url:
        yield url


@pytest.fixture
def away(db_url: str, tmp_path: Path) -> Iterator[Away]:
    database = Away(db_url, tmp_path / "data")
    yield database
    database.close()


def test_pages_api_and_health_answer_503_and_resume_without_a_restart(engine, deploy, away):
    prepare(engine, deploy)
    task_id = next(
        t["id"]
        for t in engine.instance(engine.start(PROCESS)["id"])["tasks"]
        if t["state"] == "open"
    )
    served = Engine(away.url)
    away.apps.append(served)
    app = create_app({"SECRET_KEY": "away", "WTF_CSRF_ENABLED": False}, engine=served)
    api, pages = app.test_client(), app.test_client()
    token = api.post("/api/v1/auth/token", json={"username": "alice", "password": PASSWORD})
    bearer = {"Authorization": f"Bearer {token.get_json()['token']}"}
    assert pages.post("/login", data={"username": "alice", "password": PASSWORD}).status_code == 302

    def answers() -> dict[str, tuple[int, str]]:
        got = {
            "health": api.get("/health"),
            "inbox api": api.get("/api/v1/tasks", headers=bearer),
            "task api": api.get(f"/api/v1/tasks/{task_id}", headers=bearer),
            "inbox page": pages.get("/inbox"),
            "task page": pages.get(f"/tasks/{task_id}"),
        }
        return {name: (r.status_code, r.get_data(as_text=True)) for name, r in got.items()}

    assert {name: status for name, (status, _) in answers().items()} == dict.fromkeys(
        ("health", "inbox api", "task api", "inbox page", "task page"), 200
    )

    away.leave()
    down = answers()
    assert {name: status for name, (status, _) in down.items()} == dict.fromkeys(down, 503), down
    assert '"status":"error"' in down["health"][1].replace(" ", "")
    for name in ("inbox api", "task api"):
        body = json.loads(down[name][1])
        assert body["error"] == "database_unavailable" and UNAVAILABLE in body["message"], name
    for name in ("inbox page", "task page"):
        assert UNAVAILABLE in down[name][1] and "<html" in down[name][1].lower(), name
    completing = api.post(f"/api/v1/tasks/{task_id}/complete", json={"data": {}}, headers=bearer)
    assert completing.status_code == 503
    assert completing.get_json()["error"] == "database_unavailable"
    assert completing.headers.get("Retry-After")

    away.come_back()  # no restart: the same application, the same engine
    assert {name: status for name, (status, _) in answers().items()} == dict.fromkeys(down, 200)
    done = api.post(f"/api/v1/tasks/{task_id}/complete", json={"data": {}}, headers=bearer)
    assert done.status_code == 200, done.get_json()
    served.close()


def test_the_api_document_names_503() -> None:
    responses = document()["paths"]["/tasks/{task_id}/complete"]["post"]["responses"]
    assert responses["503"] == {"$ref": "#/components/responses/Unavailable"}
    assert "503" in document()["info"]["description"]


PAUSE = re.compile(r"数据库暂时无法连接.*?(\d+(?:\.\d+)?) 秒后重试")


def test_a_worker_backs_off_while_the_database_is_away_and_resumes(
    engine, clock, deploy, away, tmp_path
):
    deploy({"deadline.bpmn": deadline_process()})
    clock.set(datetime(2020, 1, 6, 9, 0, tzinfo=BEIJING))  # the worker's real clock: long due
    for _ in range(3):
        engine.start("deadline")
    away.leave()

    log = tmp_path / "worker.log"
    with log.open("wb") as output:
        worker = subprocess.Popen(
            [str(DUBAN), "worker", "--interval", "0.1"],
            env={**os.environ, "DATABASE_URL": away.url},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until(
                lambda: len(PAUSE.findall(log.read_text())) >= 4 or worker.poll() is not None,
                60,
                "the worker to back off",
            )
            assert worker.poll() is None, log.read_text()  # still running: it did not crash
            pauses = [float(p) for p in PAUSE.findall(log.read_text())]
            assert pauses == sorted(pauses) and pauses[-1] > pauses[0], pauses  # growing

            away.come_back()
            wait_until(lambda: fired(engine) == 3, 60, "the worker to resume", pause=0.1)
            wait_until(lambda: "数据库已恢复连接" in log.read_text(), 30, "the worker's notice")
        finally:
            if worker.poll() is None:
                worker.send_signal(signal.SIGINT)
            worker.wait(timeout=30)
    assert worker.returncode == 0, log.read_text()
