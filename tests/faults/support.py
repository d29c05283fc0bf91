"""What the fault tests share: a small two-step process, `duban serve` in a subprocess on a free
loopback port, an API client that records what every request got, and a TCP proxy that takes the
database away and brings it back."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import func, select

from engine import Engine
from engine.models import Event, HumanTask, ProcessInstance
from tests.builders import bpmn, flow, user_task

DUBAN = Path(sys.executable).with_name("duban")
ROLE = "办理人"
USERS = ("alice", "bob", "carol", "dave")
PASSWORD = "secret-faults"
PROCESS = "two_steps"


def two_steps_process() -> str:
    """受理 → 办结, both for anyone holding ROLE."""
    body = (
        '<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
        + user_task("accept", "受理", "f1", "f2")
        + user_task("finish", "办结", "f2", "f3")
        + '<bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>'
        + flow("f1", "start", "accept")
        + flow("f2", "accept", "finish")
        + flow("f3", "finish", "end")
    )
    return bpmn(PROCESS, body, lanes={ROLE: ["accept", "finish"]}, name="两步办理")


def prepare(engine: Engine, deploy: Any) -> None:
    """USERS may do every step of PROCESS, which is deployed."""
    for username in USERS:
        engine.add_user(username, PASSWORD, roles=[ROLE])
    deploy({f"{PROCESS}.bpmn": two_steps_process()})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition: Any, timeout: float, what: str, pause: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(pause)


# ------------------------------------------------------------------ the server
class Server:
    """`duban serve` in its own process group on a free loopback port; `kill()` is kill -9."""

    def __init__(self, db_url: str, log: Path) -> None:
        self.db_url = db_url
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        env = {**os.environ, "DATABASE_URL": self.db_url, "DUBAN_SECRET_KEY": "faults"}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(DUBAN), "serve", "--port", str(self.port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: kill -9 takes every thread with it
            )
        wait_until(self._answers, timeout, f"the server on {self.base}", pause=0.1)

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the server exited: {self.log.read_text(errors='replace')}")
        try:
            return requests.get(f"{self.base}/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def kill(self) -> None:
        """kill -9, whatever the server is doing."""
        assert self.process is not None
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()

    def token(self, username: str) -> str:
        answer = requests.post(
            f"{self.base}/api/v1/auth/token",
            json={"username": username, "password": PASSWORD},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()["token"]

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


# ------------------------------------------------------------------ the clients
class Tally:
    """What every request got, from every client thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.answers: Counter[tuple[str, int]] = Counter()  # (what, status) → how many
        self.acknowledged: list[str] = []  # task ids whose completion answered 200
        self.unanswered = 0  # the connection failed: outcome unknown to the client
        self.failures: list[str] = []  # 5xx bodies, for the assertion message

    def record(self, what: str, answer: requests.Response) -> None:
        with self.lock:
            self.answers[(what, answer.status_code)] += 1
            if answer.status_code >= 500:
                self.failures.append(f"{what} {answer.status_code} {answer.text[:300]}")

    def acknowledge(self, task_id: str) -> None:
        with self.lock:
            self.acknowledged.append(task_id)

    def lost(self) -> None:
        with self.lock:
            self.unanswered += 1

    def count(self, status: int) -> int:
        with self.lock:
            return sum(n for (_what, code), n in self.answers.items() if code == status)

    def server_errors(self) -> list[str]:
        with self.lock:
            return list(self.failures)


def complete_pool_tasks(base: str, token: str, tally: Tally, stop: threading.Event) -> None:
    """A person at work: list the inbox, complete one of its tasks, again — until `stop`. A
    refused connection (the server is down) is noted and tried again a moment later."""
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    while not stop.is_set():
        try:
            inbox = http.get(f"{base}/api/v1/tasks", params={"per_page": 20}, timeout=30)
            tally.record("inbox", inbox)
            items = inbox.json()["items"] if inbox.status_code == 200 else []
            if not items:
                time.sleep(0.05)
                continue
            task_id = items[int(time.monotonic() * 1000) % len(items)]["id"]
            done = http.post(
                f"{base}/api/v1/tasks/{task_id}/complete", json={"data": {}}, timeout=30
            )
            tally.record("complete", done)
            if done.status_code == 200:
                tally.acknowledge(task_id)
        except requests.RequestException:
            tally.lost()
            time.sleep(0.1)


@contextmanager
def clients(base: str, tokens: list[str], tally: Tally) -> Iterator[threading.Event]:
    stop = threading.Event()
    threads = [
        threading.Thread(target=complete_pool_tasks, args=(base, token, tally, stop), daemon=True)
        for token in tokens
    ]
    for thread in threads:
        thread.start()
    try:
        yield stop
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)


# ------------------------------------------------------------------ checks
def completions(engine: Engine) -> Counter[str]:
    """task id → how many `task_completed` events it has."""
    with engine.read_session() as session:
        return Counter(session.scalars(select(Event.task_id).where(Event.kind == "task_completed")))


def task_states(engine: Engine) -> dict[str, str]:
    with engine.read_session() as session:
        return {
            task_id: state
            for task_id, state in session.execute(select(HumanTask.id, HumanTask.state))
        }


def open_tasks(engine: Engine) -> int:
    with engine.read_session() as session:
        return session.scalar(
            select(func.count()).select_from(HumanTask).where(HumanTask.state == "open")
        )


def assert_walkable(engine: Engine, instance_ids: list[int]) -> None:
    """Every instance is consistent: completed, or running with exactly one open step that can
    be completed now — and then it runs to its end. Each step completed exactly once."""
    for instance_id in instance_ids:
        for _ in range(3):
            detail = engine.instance(instance_id)
            opened = [t for t in detail["tasks"] if t["state"] == "open"]
            if detail["status"] == "completed":
                assert opened == [], detail
                break
            assert detail["status"] == "running", detail
            assert len(opened) == 1, detail["tasks"]
            engine.complete(opened[0]["id"], {}, user=USERS[0])
        else:
            raise AssertionError(f"instance {instance_id} did not end: {detail}")
    with engine.read_session() as session:
        statuses = set(
            session.scalars(
                select(ProcessInstance.status).where(ProcessInstance.id.in_(instance_ids))
            )
        )
    assert statuses == {"completed"}
    counted = completions(engine)
    assert len(counted) == 2 * len(instance_ids)
    assert set(counted.values()) == {1}, {k: v for k, v in counted.items() if v != 1}


# ------------------------------------------------------------------ the database away
class TcpProxy:
    """127.0.0.1:port → upstream, which the test cuts (`stop`: every live connection reset,
    new ones refused) and restores (`start`), the way a database server goes away and back."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            doomed, self._sockets = self._sockets, set()
        for sock in doomed:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            try:
                server = socket.create_connection(self.upstream, timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets |= {client, server}
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> "TcpProxy":
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
