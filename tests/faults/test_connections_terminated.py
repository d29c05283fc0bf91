"""A command that loses its connection before it commits runs once more on a fresh one, so
nobody sees an error, and nothing is done twice. On every database: a connection broken under
a command. On PostgreSQL also the server terminating connections under load (a failover, an
administrator's pg_terminate_backend, a pooler restarting) and a lost answer to COMMIT, which
only PostgreSQL can be asked about afterwards (txid_status)."""

import random
import threading
import time

import psycopg
import pytest
import requests
from sqlalchemy import create_engine, event, text

from tests.conftest import ON_POSTGRES
from tests.faults.support import (
    PROCESS,
    USERS,
    Server,
    assert_walkable,
    completions,
    prepare,
    task_states,
    wait_until,
)

IN_FLIGHT = 40  # stop once this many busy connections have been terminated …
SECONDS = 25  # … or after this long


class Killer:
    """Terminates every other connection to the database a few times a second — each sweep
    one incident, further apart than a command lasts, as a command is run at most twice — and
    counts those caught busy (`active` or `idle in transaction`: a request in flight)."""

    def __init__(self, db_url: str) -> None:
        self.db = create_engine(
            db_url.replace("postgresql://", "postgresql+psycopg://", 1),
            isolation_level="AUTOCOMMIT",
        )
        self.in_flight = 0
        self.terminated = 0
        self.stop = threading.Event()

    def run(self) -> None:
        terminate = text(
            "SELECT state FROM pg_stat_activity, pg_terminate_backend(pid) "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'"
        )
        with self.db.connect() as conn:
            while not self.stop.wait(random.uniform(0.25, 0.45)):
                states = conn.execute(terminate).scalars().all()
                self.terminated += len(states)
                self.in_flight += sum(s in ("active", "idle in transaction") for s in states)
        self.db.dispose()


class Person:
    """Starts an instance of their own, claims and completes 受理, claims 办结 and transfers it
    (转办) to a colleague, who completes it; reads the inbox and the instance between steps.
    Nobody else touches these instances: every answer must be a success."""

    def __init__(self, base: str, me: str, colleague: str) -> None:
        self.base, self.me, self.colleague = base, me, colleague
        self.answers: list[tuple[str, int, str]] = []
        self.instances: list[int] = []
        self.acknowledged: list[str] = []
        self.exceptions: list[str] = []

    def call(self, token: str, method: str, path: str, **kwargs) -> dict:
        answer = requests.request(
            method,
            f"{self.base}/api/v1{path}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
            **kwargs,
        )
        self.answers.append((f"{method} {path}", answer.status_code, answer.text[:300]))
        if answer.status_code >= 300:
            raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text[:300]}")
        return answer.json()

    def open_task(self, token: str, instance_id: int) -> str:
        detail = self.call(token, "GET", f"/instances/{instance_id}")
        (task_id,) = [t["id"] for t in detail["tasks"] if t["state"] == "open"]
        return task_id

    def work(self, mine: str, theirs: str, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                started = self.call(mine, "POST", "/instances", json={"process": PROCESS})
                self.instances.append(started["id"])
                accept = self.open_task(mine, started["id"])
                self.call(mine, "POST", f"/tasks/{accept}/claim")
                self.call(mine, "POST", f"/tasks/{accept}/complete", json={"data": {}})
                self.acknowledged.append(accept)
                finish = self.open_task(mine, started["id"])
                self.call(mine, "POST", f"/tasks/{finish}/claim")
                self.call(mine, "POST", f"/tasks/{finish}/transfer", json={"to": self.colleague})
                self.call(theirs, "POST", f"/tasks/{finish}/complete", json={"data": {}})
                self.acknowledged.append(finish)
                self.call(mine, "GET", "/tasks", params={"per_page": 5})
            except (RuntimeError, requests.RequestException, ValueError) as exc:
                self.exceptions.append(repr(exc))
                return


def _connections_terminated_under_load_are_retried_unseen(engine, deploy, db_url, tmp_path):
    prepare(engine, deploy)
    killer = Killer(db_url)
    with Server(db_url, tmp_path / "server.log") as server:
        server.start()
        tokens = {user: server.token(user) for user in USERS}
        people = [Person(server.base, me, USERS[(i + 1) % 4]) for i, me in enumerate(USERS)]
        stop = threading.Event()
        threads = [
            threading.Thread(target=p.work, args=(tokens[p.me], tokens[p.colleague], stop))
            for p in people
        ]
        for thread in threads:
            thread.start()
        killing = threading.Thread(target=killer.run)
        killing.start()
        started = time.monotonic()
        try:
            wait_until(
                lambda: (
                    killer.in_flight >= IN_FLIGHT
                    or time.monotonic() - started > SECONDS
                    or any(p.exceptions for p in people)
                ),
                SECONDS + 30,
                "the load to run",
            )
        finally:
            killer.stop.set()
            killing.join(timeout=30)
            stop.set()
            for thread in threads:
                thread.join(timeout=120)
        log = server.log.read_text(errors="replace")

    failures = [a for p in people for a in p.answers if a[1] >= 300]
    assert [e for p in people for e in p.exceptions] == [], (failures, log[-3000:])
    assert killer.in_flight >= 10, (killer.in_flight, killer.terminated)  # the test did bite
    requests_made = sum(len(p.answers) for p in people)
    assert requests_made > 100

    counted, states = completions(engine), task_states(engine)
    acknowledged = [t for p in people for t in p.acknowledged]
    for task_id in acknowledged:
        assert (states[task_id], counted[task_id]) == ("completed", 1), task_id
    assert_walkable(engine, [i for p in people for i in p.instances])
    assert "再试一次" in log or "retrying" in log  # the retries are logged


# ------------------------------------------------- the answer to COMMIT lost
def lose_the_answer_to_commit(engine, monkeypatch, *, server_commits: bool) -> list[str]:
    """The next COMMIT reaches the server (which commits it, or not), then the connection
    breaks before the answer arrives. Returns the log of COMMITs sent."""
    dialect = engine.db.dialect
    original = dialect.do_commit
    sent: list[str] = []

    def do_commit(pooled) -> None:
        if sent:
            sent.append("commit")
            return original(pooled)
        sent.append("lost")
        raw = pooled.dbapi_connection
        if server_commits:
            raw.commit()
        else:
            raw.rollback()
        raw.close()
        raise psycopg.OperationalError("consuming input failed: server closed the connection")

    monkeypatch.setattr(dialect, "do_commit", do_commit)
    return sent


def _a_lost_answer_to_commit_is_settled_by_asking_the_server(
    engine, deploy, monkeypatch, server_commits
):
    prepare(engine, deploy)
    instance_id = engine.start(PROCESS)["id"]
    (task_id,) = [t["id"] for t in engine.instance(instance_id)["tasks"] if t["state"] == "open"]

    sent = lose_the_answer_to_commit(engine, monkeypatch, server_commits=server_commits)
    answer = engine.complete(task_id, {}, user=USERS[0])

    assert answer["status"] == "running"  # the person sees their completion, not an error
    # committed: done, never sent again; aborted: nothing written, so run once more
    assert sent == (["lost"] if server_commits else ["lost", "commit"])
    assert completions(engine)[task_id] == 1
    assert task_states(engine)[task_id] == "completed"


if ON_POSTGRES:  # collected only where the server can terminate backends and report on COMMITs
    test_connections_terminated_under_load_are_retried_unseen = (
        _connections_terminated_under_load_are_retried_unseen
    )
    test_a_lost_answer_to_commit_is_settled_by_asking_the_server = pytest.mark.parametrize(
        "server_commits", [True, False], ids=["committed", "aborted"]
    )(_a_lost_answer_to_commit_is_settled_by_asking_the_server)


def break_the_connection_once(engine, monkeypatch, statement: str) -> list[str]:
    """The first `statement` this engine sends fails as a dropped connection would: the
    driver's own OperationalError, which the dialect takes for a disconnect. Returns what was
    broken."""
    broken: list[str] = []
    dialect = engine.db.dialect
    message = "server closed the connection unexpectedly"

    def before(conn, cursor, sql, params, context, executemany):
        if not broken and sql.lstrip().upper().startswith(statement):
            broken.append(statement)
            raise dialect.dbapi.OperationalError(message)

    is_disconnect = dialect.is_disconnect
    monkeypatch.setattr(
        dialect,
        "is_disconnect",
        lambda e, connection, cursor: message in str(e) or is_disconnect(e, connection, cursor),
    )
    event.listen(engine.db, "before_cursor_execute", before)
    return broken


@pytest.mark.parametrize("statement", ["UPDATE", "INSERT"])
def test_a_command_whose_connection_breaks_runs_once_more(engine, deploy, monkeypatch, statement):
    prepare(engine, deploy)
    instance_id = engine.start(PROCESS)["id"]
    (task_id,) = [t["id"] for t in engine.instance(instance_id)["tasks"] if t["state"] == "open"]

    broken = break_the_connection_once(engine, monkeypatch, statement)
    answer = engine.complete(task_id, {}, user=USERS[0])

    assert broken == [statement]  # the first attempt really lost its connection mid-command
    assert answer["status"] == "running"  # the person sees their completion, not an error
    assert completions(engine)[task_id] == 1
    assert task_states(engine)[task_id] == "completed"
    detail = engine.instance(instance_id)
    assert detail["status"] == "running"
    assert [t["name"] for t in detail["tasks"] if t["state"] == "open"] == ["finish"]
