"""Benchmark duban on the two reference models, through the engine API and over HTTP.

Run:  .venv/bin/python bench/run.py [--database-url URL] [--mode engine|http|both]
                                    [--models DIR] [--json PATH]

The models are the ones a competing system was measured on (`../shared/bench-models` from the
repository root): `two_user_tasks` (task_a → task_b) and `loop_user_task` (one user task `step`
repeated `rounds = 100` times). Both sit in the lane `bench_team`; the bench creates that role and
one user holding it, copies the models into a temporary folder and deploys them.

Every mode runs on a database of its own that nobody else uses: a new SQLite file in a temporary
directory, or a new database `duban_bench_<random>` created on the PostgreSQL server named by the
URL and dropped afterwards. Existing tables are never touched.

What is measured, per mode, one client, one call at a time. Each figure is the median and p95
(nearest rank) of the wall-clock milliseconds per call, plus the median CPU time this process
spent per call (client and server together in HTTP mode): wall well above CPU means waiting, on
the database server or for a CPU that other processes hold.

- start 1-200, start 201-400: `start("two_user_tasks")`, 200 calls each;
  each start opens task_a for the user.
- inbox first page: the user's open tasks, page 1 of 100, with 400 tasks open (50 calls).
- inbox all rows: the same list, all 400 rows in one call (`per_page=500`) (50 calls).
- complete: every open task completed until the inbox is empty: 400 × task_a (which opens
  task_b) and 400 × task_b (which ends the instance) = 800 calls. Task ids come from inbox
  pages fetched between the completions; those fetches are not timed.
- loop round: two `loop_user_task` instances, driven round by round (both instances each
  round); one sample is one completion of `step`. The ratio median(rounds 90-99) /
  median(rounds 1-10) shows whether a round gets dearer as the instance grows older.
- commit floor: one minimal write transaction on the same database through the engine's write
  session (UPDATE of one row in a one-row table the bench creates), 200 times. Every command
  pays at least this much, so each figure can be read against it.
- HTTP only, `GET /health`: the HTTP round trip plus one small read, the floor of every HTTP
  figure.

The engine mode calls `Engine` methods directly. The HTTP mode serves
`webui.create_app(...)` with werkzeug's threaded WSGI server on 127.0.0.1 (a free port, in a
background thread) and drives the JSON API with one keep-alive `httpx.Client`; timings are taken
on the client, so they include the request parsing, token check and JSON encoding. (werkzeug's
server closes the connection after every response, so each request still connects anew.)

Targets (SQLite, 2 cores, one client): start and complete under 8 ms median, inbox under 4 ms
median, loop ratio at most 1.1. Verdicts compare the median with the target.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import math
import os
import platform
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, text, update
from sqlalchemy import Engine as SqlEngine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ProgrammingError
from werkzeug.serving import WSGIRequestHandler, make_server

from engine import Engine
from webui.app import create_app

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODELS = REPO_ROOT.parent / "shared" / "bench-models"

USER, PASSWORD, ROLE = "bench", "bench-password", "bench_team"
TWO_TASKS, LOOP = "two_user_tasks", "loop_user_task"
FORM_DATA: dict[str, dict[str, str]] = {
    "task_a": {"field_a": "x"},
    "task_b": {"field_b": "y"},
    "step": {"field_step": "s"},
}

STARTS_PER_BATCH = 200
INBOX_CALLS = 50
PAGE_SIZE = 100
ALL_ROWS_PER_PAGE = 500  # the API's upper bound; 400 rows fit in one page
LOOP_INSTANCES = 2
LOOP_ROUNDS = 100  # `rounds = 100` in loop_user_task.bpmn
EARLY_ROUNDS = range(1, 11)  # rounds 1-10
LATE_ROUNDS = range(90, 100)  # rounds 90-99
COMMIT_SAMPLES = 200
HEALTH_SAMPLES = 200

START_TARGET_MS = 8.0
COMPLETE_TARGET_MS = 8.0
INBOX_TARGET_MS = 4.0
LOOP_RATIO_TARGET = 1.1
BUSY_LOAD = 0.25  # cores busy with other processes above which figures are flagged disturbed

T = TypeVar("T")


# ------------------------------------------------------------------ figures
@dataclass(frozen=True)
class Sample:
    """One call: wall-clock time, and CPU time of this whole process (client and server)."""

    wall_ms: float
    cpu_ms: float


@dataclass
class Figure:
    """Median and p95 (nearest rank) wall time of one operation's calls, and median CPU time."""

    operation: str
    n: int
    median_ms: float
    p95_ms: float
    cpu_median_ms: float
    target_ms: float | None = None

    @property
    def verdict(self) -> str:
        if self.target_ms is None:
            return ""
        return "ok" if self.median_ms < self.target_ms else "over"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict or None}


@dataclass
class LoopFigures:
    """Per-round medians over all loop instances, and the late/early ratio."""

    round_medians_ms: dict[int, float]
    early_median_ms: float
    late_median_ms: float
    early_cpu_ms: float  # the same windows in CPU time, which other processes disturb less
    late_cpu_ms: float

    @property
    def ratio(self) -> float:
        return self.late_median_ms / self.early_median_ms

    @property
    def cpu_ratio(self) -> float:
        return self.late_cpu_ms / self.early_cpu_ms

    @property
    def verdict(self) -> str:
        return "ok" if self.ratio <= LOOP_RATIO_TARGET else "over"

    def as_dict(self) -> dict[str, Any]:
        return {
            "rounds_1_10_median_ms": self.early_median_ms,
            "rounds_90_99_median_ms": self.late_median_ms,
            "ratio": self.ratio,
            "cpu_ratio": self.cpu_ratio,
            "target_ratio": LOOP_RATIO_TARGET,
            "verdict": self.verdict,
            "round_medians_ms": {str(k): v for k, v in self.round_medians_ms.items()},
        }


@dataclass
class ModeResult:
    mode: str
    database: str
    figures: list[Figure] = field(default_factory=list)
    loop: LoopFigures | None = None
    seconds: float = 0.0
    other_load: float | None = None  # cores kept busy by other processes meanwhile

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "database": self.database,
            "seconds": self.seconds,
            "other_load_cores": self.other_load,
            "operations": [f.as_dict() for f in self.figures],
            "loop": self.loop.as_dict() if self.loop else None,
        }


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(0.95 * len(ordered)) - 1, 0)]


def figure(operation: str, samples: list[Sample], target_ms: float | None = None) -> Figure:
    wall = [sample.wall_ms for sample in samples]
    cpu = statistics.median(sample.cpu_ms for sample in samples)
    return Figure(operation, len(samples), statistics.median(wall), p95(wall), cpu, target_ms)


def timed(call: Callable[[], T]) -> tuple[T, Sample]:
    """The call's result and how long it took."""
    wall, cpu = time.perf_counter_ns(), time.process_time_ns()
    result = call()
    return result, Sample(
        (time.perf_counter_ns() - wall) / 1e6, (time.process_time_ns() - cpu) / 1e6
    )


# ------------------------------------------------------------------ clients
class Client(Protocol):
    """The three operations the scenario needs, as the user `bench`."""

    def start(self, process: str) -> dict[str, Any]: ...

    def tasks(self, page: int, per_page: int) -> dict[str, Any]: ...

    def complete(self, task_id: str, data: dict[str, Any]) -> dict[str, Any]: ...


class EngineClient:
    """Calls the `Engine` facade in-process."""

    def __init__(self, engine: Engine, user: str) -> None:
        self.engine, self.user = engine, user

    def start(self, process: str) -> dict[str, Any]:
        return self.engine.start(process, {}, user=self.user)

    def tasks(self, page: int, per_page: int) -> dict[str, Any]:
        return self.engine.tasks(self.user, page=page, per_page=per_page)

    def complete(self, task_id: str, data: dict[str, Any]) -> dict[str, Any]:
        return self.engine.complete(task_id, data, user=self.user)


class HttpClient:
    """Calls the JSON API with one keep-alive connection and a bearer token."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http
        token = self._json(http.post("/api/v1/auth/token", json=_credentials()), 200)["token"]
        http.headers["Authorization"] = f"Bearer {token}"

    def start(self, process: str) -> dict[str, Any]:
        response = self.http.post("/api/v1/instances", json={"process": process, "data": {}})
        return self._json(response, 201)

    def tasks(self, page: int, per_page: int) -> dict[str, Any]:
        params = {"page": page, "per_page": per_page}
        return self._json(self.http.get("/api/v1/tasks", params=params), 200)

    def complete(self, task_id: str, data: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(f"/api/v1/tasks/{task_id}/complete", json={"data": data})
        return self._json(response, 200)

    def health(self) -> dict[str, Any]:
        return self._json(self.http.get("/health"), 200)

    @staticmethod
    def _json(response: httpx.Response, expected: int) -> dict[str, Any]:
        if response.status_code != expected:
            raise RuntimeError(
                f"{response.request.method} {response.request.url.path} → "
                f"{response.status_code}: {response.text[:300]}"
            )
        return response.json()


def _credentials() -> dict[str, str]:
    return {"username": USER, "password": PASSWORD}


# ----------------------------------------------------------------- scenario
def start_batch(client: Client, process: str, count: int) -> list[Sample]:
    samples = []
    for _ in range(count):
        started, sample = timed(lambda: client.start(process))
        _expect(started["status"] == "running", f"instance not running: {started}")
        samples.append(sample)
    return samples


def list_inbox(client: Client, per_page: int, items: int, total: int) -> list[Sample]:
    samples = []
    for _ in range(INBOX_CALLS):
        page, sample = timed(lambda: client.tasks(1, per_page))
        _expect(
            len(page["items"]) == items and page["total"] == total,
            f"inbox: expected {items} of {total}, got {len(page['items'])} of {page['total']}",
        )
        samples.append(sample)
    return samples


def complete_all(client: Client, expected: int) -> list[Sample]:
    """Complete whatever the inbox shows until it is empty; exactly `expected` completions."""
    samples: list[Sample] = []
    for _ in range(expected // PAGE_SIZE + 10):  # bounded: each pass empties a page
        page = client.tasks(1, PAGE_SIZE)["items"]
        if not page:
            break
        for task in page:
            data = FORM_DATA[task["name"]]
            _, sample = timed(functools.partial(client.complete, task["id"], data))
            samples.append(sample)
    _expect(len(samples) == expected, f"completed {len(samples)} tasks, expected {expected}")
    _expect(client.tasks(1, PAGE_SIZE)["total"] == 0, "inbox not empty after completing all")
    return samples


def run_loops(client: Client) -> dict[int, list[Sample]]:
    """Per round, the completion times of `step` in every loop instance."""
    instances = [client.start(LOOP)["id"] for _ in range(LOOP_INSTANCES)]
    rounds: dict[int, list[Sample]] = {}
    for round_no in range(1, LOOP_ROUNDS + 1):
        open_steps = {t["instance_id"]: t["id"] for t in client.tasks(1, PAGE_SIZE)["items"]}
        _expect(set(open_steps) == set(instances), f"round {round_no}: open steps {open_steps}")
        for instance_id in instances:
            step = functools.partial(client.complete, open_steps[instance_id], FORM_DATA["step"])
            done, sample = timed(step)
            last = round_no == LOOP_ROUNDS
            _expect(done["status"] == ("completed" if last else "running"), f"round: {done}")
            rounds.setdefault(round_no, []).append(sample)
    return rounds


def loop_figures(rounds: dict[int, list[Sample]]) -> LoopFigures:
    def window(numbers: range, cpu: bool = False) -> float:
        samples = [sample for n in numbers for sample in rounds[n]]
        return statistics.median(s.cpu_ms if cpu else s.wall_ms for s in samples)

    medians = {n: statistics.median(s.wall_ms for s in samples) for n, samples in rounds.items()}
    return LoopFigures(
        medians,
        window(EARLY_ROUNDS),
        window(LATE_ROUNDS),
        window(EARLY_ROUNDS, cpu=True),
        window(LATE_ROUNDS, cpu=True),
    )


def run_scenario(client: Client) -> tuple[list[Figure], LoopFigures]:
    first = start_batch(client, TWO_TASKS, STARTS_PER_BATCH)
    second = start_batch(client, TWO_TASKS, STARTS_PER_BATCH)
    open_tasks = 2 * STARTS_PER_BATCH
    inbox_page = list_inbox(client, PAGE_SIZE, PAGE_SIZE, open_tasks)
    inbox_all = list_inbox(client, ALL_ROWS_PER_PAGE, open_tasks, open_tasks)
    completions = complete_all(client, 2 * open_tasks)
    rounds = run_loops(client)
    figures = [
        figure(f"start 1-{STARTS_PER_BATCH}", first, START_TARGET_MS),
        figure(f"start {STARTS_PER_BATCH + 1}-{open_tasks}", second, START_TARGET_MS),
        figure(f"inbox first {PAGE_SIZE} of {open_tasks}", inbox_page, INBOX_TARGET_MS),
        figure(f"inbox all {open_tasks} rows", inbox_all, INBOX_TARGET_MS),
        figure(f"complete ({2 * open_tasks} tasks)", completions, COMPLETE_TARGET_MS),
        figure(
            f"loop round ({LOOP_INSTANCES}x{LOOP_ROUNDS})",
            [sample for samples in rounds.values() for sample in samples],
            COMPLETE_TARGET_MS,
        ),
    ]
    return figures, loop_figures(rounds)


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise RuntimeError(f"benchmark scenario went wrong: {message}")


# ------------------------------------------------------------------- floors
def commit_floor(engine: Engine) -> list[Sample]:
    """One UPDATE of one row in a write session, committed: what every command pays at least."""
    probe = Table(
        "bench_commit_probe",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("n", Integer, nullable=False),
    )
    probe.create(engine.db)
    with engine.write_session() as session, session.begin():
        session.execute(probe.insert().values(id=1, n=0))
    bump = update(probe).where(probe.c.id == 1).values(n=probe.c.n + 1)

    def one_commit() -> None:
        with engine.write_session() as session, session.begin():
            session.execute(bump)

    return [timed(one_commit)[1] for _ in range(COMMIT_SAMPLES)]


def health_floor(client: HttpClient) -> list[Sample]:
    return [timed(client.health)[1] for _ in range(HEALTH_SAMPLES)]


# ---------------------------------------------------------------- databases
@contextmanager
def fresh_database(url: str | None) -> Iterator[str]:
    """A database nobody else uses, removed afterwards. For SQLite, a given URL only chooses
    the directory; on a server, a new database is created next to the one the URL names."""
    if url is None or url.startswith("sqlite"):
        with _fresh_sqlite(url) as fresh:
            yield fresh
    else:
        with _fresh_server_database(url) as fresh:
            yield fresh


@contextmanager
def _fresh_sqlite(url: str | None) -> Iterator[str]:
    parent = None
    if url is not None:
        database = make_url(url).database
        if database in (None, "", ":memory:"):
            raise SystemExit("the bench needs a SQLite file, not an in-memory database")
        parent = Path(database).resolve().parent
    folder = Path(tempfile.mkdtemp(prefix="duban-bench-db-", dir=parent))
    try:
        yield f"sqlite:///{folder / 'bench.db'}"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _fresh_server_database(url: str) -> Iterator[str]:
    base = _driver_url(url)
    name = f"duban_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield base.set(database=name).render_as_string(hide_password=False)
        finally:
            _drop_database(admin, name)
    finally:
        admin.dispose()


def _drop_database(admin: SqlEngine, name: str) -> None:
    """Drop the bench's own database; WITH (FORCE) needs PostgreSQL 13, plain DROP otherwise."""
    with admin.connect() as conn:
        try:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        except ProgrammingError:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))


def _driver_url(url: str) -> URL:
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url.removeprefix(prefix)
    return make_url(url)


def describe_database(engine: Engine) -> str:
    dialect = engine.db.dialect
    version = ".".join(str(part) for part in dialect.server_version_info or ())
    return f"{dialect.name} {version}".strip()


# -------------------------------------------------------------------- modes
def prepare(engine: Engine, models: Path) -> None:
    """Schema, the role and its one user, and the models deployed from a private copy."""
    engine.create_schema()
    engine.add_user(USER, PASSWORD, roles=[ROLE])
    with tempfile.TemporaryDirectory(prefix="duban-bench-models-") as folder:
        for source in sorted(models.iterdir()):
            if source.suffix in (".bpmn", ".json"):
                shutil.copy2(source, folder)
        deployed = {result.key for result in engine.deploy(folder)}
    _expect({TWO_TASKS, LOOP} <= deployed, f"deployed {sorted(deployed)}")


class _KeepAliveHandler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # werkzeug writes headers and body separately; without this, Nagle's algorithm holds
        # the body back on a kept-alive connection until the client's delayed ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@contextmanager
def serve(engine: Engine) -> Iterator[str]:
    """The web app on a free loopback port, served from a background thread until the block ends."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no per-request log lines
    app = create_app({"TESTING": False}, engine=engine)
    # HTTP/1.1 keeps connections alive, as gunicorn's gthread workers in production do;
    # werkzeug's default HTTP/1.0 handler would open a TCP connection per request.
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_KeepAliveHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def run_mode(mode: str, url: str | None, models: Path) -> ModeResult:
    began, busy_before, own_before = time.perf_counter(), _busy_cpu_seconds(), time.process_time()
    with fresh_database(url) as fresh:
        engine = Engine(fresh)
        try:
            prepare(engine, models)
            result = ModeResult(mode, describe_database(engine))
            floor = figure("commit floor (1-row UPDATE)", commit_floor(engine))
            if mode == "engine":
                figures, loop = run_scenario(EngineClient(engine, USER))
                result.figures = [*figures, floor]
            else:
                with serve(engine) as base_url, httpx.Client(base_url=base_url, timeout=60) as http:
                    client = HttpClient(http)
                    health = figure("GET /health (HTTP + 1 read)", health_floor(client))
                    figures, loop = run_scenario(client)
                result.figures = [*figures, floor, health]
            result.loop = loop
        finally:
            engine.db.dispose()
    result.seconds = time.perf_counter() - began
    busy_after = _busy_cpu_seconds()
    if busy_before is not None and busy_after is not None:
        others = (busy_after - busy_before) - (time.process_time() - own_before)
        result.other_load = max(others, 0.0) / result.seconds
    return result


def _busy_cpu_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy (Linux /proc/stat), or None elsewhere."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------- output
def report(result: ModeResult) -> str:
    lines = [f"== {result.mode} mode on {result.database} ({result.seconds:.0f} s)"]
    if result.other_load is not None:
        lines.append(_disturbance(result.other_load, result.database.startswith("sqlite")))
    header = (
        f"{'operation':<30} {'n':>5} {'median ms':>10} {'p95 ms':>9} {'cpu ms':>7} "
        f"{'target':>7}  verdict"
    )
    lines += [header, "-" * len(header)]
    for f in result.figures:
        target = f"< {f.target_ms:g}" if f.target_ms is not None else ""
        lines.append(
            f"{f.operation:<30} {f.n:>5} {f.median_ms:>10.2f} {f.p95_ms:>9.2f} "
            f"{f.cpu_median_ms:>7.2f} {target:>7}  {f.verdict}".rstrip()
        )
    if result.loop:
        loop = result.loop
        lines += [
            "",
            _round_line("rounds 1-10 ", loop, EARLY_ROUNDS),
            _round_line("rounds 90-99", loop, LATE_ROUNDS),
            f"loop ratio (median 90-99 / median 1-10): {loop.ratio:.3f}"
            f"  target <= {LOOP_RATIO_TARGET}  {loop.verdict}",
            f"  the same in CPU time: {loop.late_cpu_ms:.2f} / {loop.early_cpu_ms:.2f}"
            f" = {loop.cpu_ratio:.3f}",
        ]
    return "\n".join(lines)


def _disturbance(other_load: float, sqlite: bool) -> str:
    """How busy other processes kept the CPUs; a database server on this machine counts too."""
    who = "other processes" if sqlite else "other processes (the database server included)"
    line = f"   {who} kept {other_load:.2f} of {os.cpu_count()} cores busy"
    if sqlite and other_load > BUSY_LOAD:
        line += "; figures are disturbed, run again on a quiet machine"
    return line


def _round_line(label: str, loop: LoopFigures, numbers: range) -> str:
    medians = " ".join(f"{loop.round_medians_ms[n]:.2f}" for n in numbers)
    window = loop.early_median_ms if numbers == EARLY_ROUNDS else loop.late_median_ms
    return f"{label} per-round medians ms: {medians}  (window median {window:.2f})"


def environment() -> dict[str, Any]:
    from importlib.metadata import version

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "sqlalchemy": version("sqlalchemy"),
        "spiffworkflow": version("spiffworkflow"),
        "flask": version("flask"),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


# ---------------------------------------------------------------------- cli
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="SQLite file (its directory is used) or a server to create a temporary database on; "
        "default DATABASE_URL, else a temporary SQLite file",
    )
    parser.add_argument("--mode", choices=("engine", "http", "both"), default="both")
    parser.add_argument("--models", type=Path, default=DEFAULT_MODELS)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.models.is_dir():
        raise SystemExit(f"models folder not found: {args.models}")
    modes = ("engine", "http") if args.mode == "both" else (args.mode,)
    env = environment()
    print(
        f"duban bench: python {env['python']}, SQLAlchemy {env['sqlalchemy']}, "
        f"SpiffWorkflow {env['spiffworkflow']}, {env['cpus']} CPUs",
        flush=True,
    )
    results = []
    for mode in modes:
        result = run_mode(mode, args.database_url, args.models)
        results.append(result)
        print(f"\n{report(result)}", flush=True)
    if args.json:
        document = {"environment": env, "modes": [r.as_dict() for r in results]}
        args.json.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
