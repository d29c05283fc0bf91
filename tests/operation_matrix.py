"""Issue 12's operation matrix, the machinery: where the office's scenarios stop at a user task,
what each approval operation does there, and what must hold after it.

A *point* is a `complete` step of a scenario in processes/*.scenarios.yaml: a user task is open
and the scenario says who handles it and with what data. For each scenario the matrix runs it
once on a fresh copy of the demo county (engine/scenarios.py's runner, unchanged) and keeps a
copy of the database at every point it needs (a SQLite file, or on PostgreSQL the rows of every
table, see RowSnapshots). A case starts from its own copy of that snapshot, applies one
operation as the person who may use it, checks the invariants, then drives the instance on to
the scenario's end with the scenario's own data — steps sent back are done again with the data
the scenario gave them — and checks again: the instance ends as it does without the operation.

The invariants (`check_instance`):
1. no instance of the family is in `error`; each has its exact expected status;
2. every open human-task row belongs to a READY workflow task (and every READY user task has a
   row), is in the inbox of someone who may act on it, and nobody's inbox holds anything else;
3. (`check_history`) the history shows the operation, who did it and the reason/opinion given;
4. the tracked items (ledger rows) and the workflow data agree on lead unit, deadline, status.
"""

import os
import shutil
import tempfile
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import create_engine, select, text

from engine import Engine, EngineError, FixedClock, scenarios
from engine.bpmn import load_state
from engine.definitions import SpecCache
from engine.items import parse_deadline
from engine.models import (
    Base,
    Event,
    HumanTask,
    HumanTaskCandidate,
    ProcessInstance,
    TrackedItem,
    Unit,
    User,
)
from engine.queries import may_act_on
from engine.runtime import current_data

ROOT = Path(__file__).resolve().parents[1]
PROCESSES = ROOT / "processes"
NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core",
}
ADMIN = "admin"

# ======================================================================= the points (static)


@dataclass(frozen=True)
class UserTask:
    process: str
    element: str
    title: str
    return_targets: tuple[str, ...]


def _read_processes() -> tuple[dict[str, dict[str, UserTask]], dict[str, set[str]]]:
    """Each process's user tasks, and the processes each one starts (`start_process`)."""
    tasks: dict[str, dict[str, UserTask]] = {}
    starts: dict[str, set[str]] = {}
    for path in sorted(PROCESSES.glob("*.bpmn")):
        root = ET.parse(path).getroot()
        for process in root.iterfind("bpmn:process", NS):
            key = process.get("id", "")
            found = tasks.setdefault(key, {})
            for node in process.iter(f"{{{NS['bpmn']}}}userTask"):
                props = {
                    p.get("name"): p.get("value", "")
                    for p in node.iterfind(".//spiffworkflow:property", NS)
                }
                targets = tuple(
                    t.strip() for t in props.get("returnTargets", "").split(",") if t.strip()
                )
                element = node.get("id", "")
                found[element] = UserTask(key, element, node.get("name", element), targets)
            for param in process.iterfind(".//spiffworkflow:parameter[@id='process']", NS):
                starts.setdefault(key, set()).add(param.get("value", "").strip("'\""))
    return tasks, starts


USER_TASKS, STARTS = _read_processes()


def _family_processes(process: str) -> list[str]:
    """The process and every process it may start, nearest first."""
    order, frontier = [process], [process]
    while frontier:
        frontier = [p for f in frontier for p in sorted(STARTS.get(f, ())) if p not in order]
        order += frontier
    return order


def resolve(process: str, ref: str) -> UserTask:
    """The user task a scenario step names (id or Chinese name), in its process or a child's."""
    for candidate in _family_processes(process):
        for task in USER_TASKS.get(candidate, {}).values():
            if ref in (task.element, task.title):
                return task
    raise LookupError(f"{process}: no user task {ref!r}")


@dataclass(frozen=True)
class Point:
    scenario: scenarios.Scenario
    number: int  # the scenario's position in its file, from 1
    step: int  # the step's position in the scenario, from 1 (as `duban check` counts)
    task: UserTask
    user: str
    earlier: int  # how many steps were completed before this one
    remaining: int  # how many `complete`/`wait` steps follow
    again: bool  # the scenario completed this task before (a later round of a loop)

    @property
    def id(self) -> str:
        return f"{self.scenario.process}#{self.number}-step{self.step}-{self.task.element}"

    @property
    def where(self) -> str:
        return (
            f"{self.scenario.label}（{self.scenario.file}）第 {self.step} 步"
            f"「{self.task.title}」({self.task.process}.{self.task.element}) 办理人 {self.user}"
        )


def _acts(step: dict[str, Any]) -> bool:
    return "complete" in step and not step.get("error")


def all_points() -> list[Point]:
    points = []
    numbers: Counter[str] = Counter()
    for scenario in scenarios.discover(PROCESSES):
        numbers[scenario.file] += 1
        steps = scenario.spec.get("steps") or []
        done: set[UserTask] = set()
        for index, step in enumerate(steps, start=1):
            if not _acts(step):
                continue
            task = resolve(scenario.process, str(step["complete"]))
            points.append(
                Point(
                    scenario,
                    numbers[scenario.file],
                    index,
                    task,
                    str(step["as"]),
                    sum(1 for s in steps[: index - 1] if _acts(s)),
                    sum(1 for s in steps[index:] if _acts(s) or "wait" in s),
                    task in done,
                )
            )
            done.add(task)
    return points


def default_points(points: list[Point]) -> list[Point]:
    """One point per user task of every process. Preferred: a point of the task's own
    process's scenarios; with an earlier step (so 退回, 撤回 and reset have somewhere to go);
    in the task's first round (a return reaches back within the current round of a loop only);
    then the one with the fewest steps after it (the shortest drive to the end)."""

    def rank(point: Point) -> tuple[bool, bool, bool, int]:
        own = point.scenario.process == point.task.process
        return (not own, point.earlier == 0, point.again, point.remaining)

    best: dict[UserTask, Point] = {}
    for point in points:
        if point.task not in best or rank(point) < rank(best[point.task]):
            best[point.task] = point
    # A scenario's points side by side: pytest-xdist hands out consecutive cases, so each
    # scenario's baseline run is mostly made by one worker only.
    return sorted(best.values(), key=lambda p: (p.scenario.file, p.number, p.step))


def operations(point: Point, *, full: bool = False) -> list[str]:
    """What the holder of the task (or, for 撤回, the one before; for 催办, the initiator or an
    earlier participant; for reset, an administrator) may do at `point`."""
    ops = []
    if point.earlier:
        ops += ["return:previous", "return:initiator"]
        ops += [f"return:{target}" for target in point.task.return_targets]
        ops += ["withdraw"]
    ops += ["transfer", "delegate", "add_signers:before", "add_signers:after", "urge", "cc"]
    if point.earlier:
        ops += ["reset:earliest", "reset:nearest"] if full else ["reset:earliest"]
    return ops


# ======================================================================= databases


class FileSnapshots:
    """SQLite: a snapshot is a copy of the database file; each case gets a copy of that."""

    def __init__(self, template: scenarios.TemplateDatabase) -> None:
        self._template = template
        self._workdir = Path(tempfile.mkdtemp(prefix="duban-matrix-"))

    def fresh(self) -> Any:
        """A fresh copy of the demo county, for a scenario's baseline run."""
        return self._template.copy()

    def take(self, engine: Engine) -> str:
        source = Path(engine.db.url.database or "")
        engine.db.dispose()  # the last connection to close checkpoints the WAL into the file
        target = self._workdir / f"snap_{uuid.uuid4().hex[:10]}.db"
        _copy_sqlite(source, target)
        return str(target)

    @contextmanager
    def copy(self, snapshot: str) -> Iterator[str]:
        target = self._workdir / f"run_{uuid.uuid4().hex[:10]}.db"
        _copy_sqlite(Path(snapshot), target)
        try:
            yield f"sqlite:///{target}"
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{target}{suffix}").unlink(missing_ok=True)

    def close(self) -> None:
        shutil.rmtree(self._workdir, ignore_errors=True)


def _copy_sqlite(source: Path, target: Path) -> None:
    shutil.copyfile(source, target)
    for suffix in ("-wal", "-shm"):
        if Path(f"{source}{suffix}").exists():
            shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")


@dataclass(frozen=True)
class Rows:
    """A PostgreSQL database's content: every table's rows and every sequence's position."""

    tables: dict[str, list[dict[str, Any]]]
    sequences: dict[str, tuple[int, bool]]


class RowSnapshots:
    """PostgreSQL: creating and dropping a database per case costs more than the case itself
    (and each drop forces a checkpoint), so each worker keeps one scratch database, made from
    the county template once, and a snapshot is its content: restoring one deletes every row
    and inserts the snapshot's, foreign-key triggers off, and puts the sequences back."""

    def __init__(self, template: scenarios.TemplateDatabase) -> None:
        self._scratch = template.copy()
        self.url = self._scratch.__enter__()
        self._db = create_engine(self.url)
        self._tables = Base.metadata.sorted_tables
        self._interned: dict[str, list[dict[str, Any]]] = {}
        with self._db.connect() as conn:
            self._sequences = {
                table.name: name
                for table in self._tables
                for column in table.primary_key.columns
                if (
                    name := conn.scalar(
                        text("SELECT pg_get_serial_sequence(:t, :c)"),
                        {"t": f'"{table.name}"', "c": column.name},
                    )
                )
            }
        self._county = self._read()

    def fresh(self) -> Any:
        return self.copy(self._county)

    def take(self, engine: Engine) -> Rows:
        """`engine` works on the scratch database: its committed content is the snapshot."""
        assert engine.db.url.database == self._db.url.database
        return self._read()

    def _read(self) -> Rows:
        with self._db.connect() as conn:
            tables = {}
            for table in self._tables:
                rows = [dict(r._mapping) for r in conn.execute(select(table))]
                known = self._interned.setdefault(table.name, rows)  # most never change
                tables[table.name] = known if known == rows else rows
            sequences = {}
            for name in self._sequences.values():
                value, called = conn.execute(
                    text(f"SELECT last_value, is_called FROM {name}")
                ).one()
                sequences[name] = (int(value), bool(called))
        return Rows(tables, sequences)

    @contextmanager
    def copy(self, snapshot: Rows) -> Iterator[str]:
        with self._db.begin() as conn:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            for table in reversed(self._tables):
                conn.execute(table.delete())
            for table in self._tables:
                if snapshot.tables[table.name]:
                    conn.execute(table.insert(), snapshot.tables[table.name])
            for name, (value, called) in snapshot.sequences.items():
                conn.execute(
                    text("SELECT setval(:s, :v, :c)"), {"s": name, "v": value, "c": called}
                )
        yield self.url

    def close(self) -> None:
        self._db.dispose()
        self._scratch.__exit__(None, None, None)


# ======================================================================= the baseline runs


@dataclass(frozen=True)
class Done:
    """A step the scenario completed: what a re-opened step is done again with."""

    process: str
    element: str
    user: str
    data: dict[str, Any]
    opinion: str | None


@dataclass(frozen=True)
class Snapshot:
    database: Any  # a SQLite file's path, or a PostgreSQL database's rows (see RowSnapshots)
    now: datetime
    root: int
    started_at: datetime
    history: tuple[Done, ...]
    statuses: dict[int, str]  # every instance of the family, at the point
    inconsistent: str | None  # the invariants already failed here, before any operation


@dataclass
class Baseline:
    """A scenario run once without operations: its snapshots and how it ends."""

    snapshots: dict[int, Snapshot] = field(default_factory=dict)
    status: str = ""
    open_tasks: list[str] = field(default_factory=list)
    failed: str | None = None  # the scenario itself did not hold


class Matrix:
    """Per test worker: the county template, the snapshots and the scenario baselines."""

    def __init__(self, template: scenarios.TemplateDatabase, wanted: dict[str, set[int]]):
        self.snapshots = RowSnapshots(template) if pg_url() else FileSnapshots(template)
        self.specs = SpecCache()  # versions are identical in every copy of the template
        self._wanted: dict[str, set[int]] = wanted
        self._baselines: dict[str, Baseline] = {}

    def engine(self, url: str, clock: FixedClock) -> Engine:
        engine = Engine(url, clock=clock)
        engine.specs = self.specs
        return engine

    def baseline(self, scenario: scenarios.Scenario) -> Baseline:
        key = f"{scenario.file}::{scenario.name}"
        if key not in self._baselines:
            try:
                self._baselines[key] = self._run(scenario, self._wanted.get(key, set()))
            except AssertionError as failure:  # said once per case, run once per worker
                self._baselines[key] = Baseline(failed=str(failure))
        if self._baselines[key].failed:
            raise AssertionError(self._baselines[key].failed)
        return self._baselines[key]

    def _run(self, scenario: scenarios.Scenario, wanted: set[int]) -> Baseline:
        baseline = Baseline()
        with self.snapshots.fresh() as url:
            start = scenarios._start_time(scenario.spec, None)
            clock = FixedClock(start)
            engine = self.engine(url, clock)
            runner = scenarios._Runner(engine, clock, scenario)
            history: list[Done] = []
            try:
                runner.start(scenario.spec.get("start") or {})
                for index, step in enumerate(scenario.spec.get("steps") or [], start=1):
                    runner.step_no = index
                    if index in wanted:
                        baseline.snapshots[index] = self._snapshot(engine, runner, history)
                    if _acts(step):
                        row = runner._find_task(str(step["complete"]), step["as"], step.get("unit"))
                        history.append(
                            Done(
                                row.process_key,
                                row.name,
                                str(step["as"]),
                                runner._values(step.get("data") or {}),
                                step.get("opinion"),
                            )
                        )
                    runner.step(step)
                baseline.status = engine.instance_summary(runner.root)["status"]
                baseline.open_tasks = open_elements(engine, runner.root)
            except (scenarios.ScenarioFailed, EngineError) as failure:
                raise AssertionError(
                    f"场景本身未通过：{scenario.label} 第 {runner.step_no} 步：{failure}"
                ) from failure
            finally:
                engine.close()
        return baseline

    def _snapshot(self, engine: Engine, runner: Any, history: list[Done]) -> Snapshot:
        family = family_of(engine, runner.root)
        statuses = {iid: engine.instance_summary(iid)["status"] for iid in family}
        try:
            check_instance(engine, runner.root, statuses)
            inconsistent = None
        except AssertionError as failure:
            inconsistent = str(failure)
        database = self.snapshots.take(engine)
        return Snapshot(
            database,
            runner.clock.now(),
            runner.root,
            runner.started_at,
            tuple(history),
            statuses,
            inconsistent,
        )

    @contextmanager
    def at(self, point: Point) -> Iterator["Driver"]:
        baseline = self.baseline(point.scenario)
        snapshot = baseline.snapshots[point.step]
        with self.snapshots.copy(snapshot.database) as url:
            clock = FixedClock(snapshot.now)
            engine = self.engine(url, clock)
            try:
                yield Driver(engine, clock, point, snapshot, baseline)
            finally:
                engine.close()

    def close(self) -> None:
        self.snapshots.close()


def wanted_snapshots(points: list[Point]) -> dict[str, set[int]]:
    wanted: dict[str, set[int]] = {}
    for point in points:
        key = f"{point.scenario.file}::{point.scenario.name}"
        wanted.setdefault(key, set()).add(point.step)
    return wanted


def pg_url() -> str | None:
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith("postgres") else None


# ======================================================================= reading the instance


def family_of(engine: Engine, root: int) -> list[int]:
    with engine.read_session() as session:
        family, frontier = [root], [root]
        while frontier:
            frontier = list(
                session.scalars(
                    select(ProcessInstance.id)
                    .where(ProcessInstance.parent_instance_id.in_(frontier))
                    .order_by(ProcessInstance.id)
                )
            )
            family += [i for i in frontier if i not in family]
        return family


def open_elements(engine: Engine, instance_id: int) -> list[str]:
    with engine.read_session() as session:
        return sorted(
            session.scalars(
                select(HumanTask.name).where(
                    HumanTask.instance_id == instance_id,
                    HumanTask.state.in_(("open", "waiting")),
                    HumanTask.kind == "task",
                )
            )
        )


def _usernames(session: Any, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(session.execute(select(User.id, User.username).where(User.id.in_(ids))).all())


def _state_of(engine: Engine, session: Any, instance: ProcessInstance) -> Any:
    version = engine.specs.get(session, instance.process_version_id)
    return load_state(instance.state, version.spec, version.subprocess_specs)


# ======================================================================= the invariants


def check_instance(
    engine: Engine, root: int, statuses: dict[int, str], also: Iterable[str] = ()
) -> None:
    """(1), (2) and (4) on `root` and every instance it started; `statuses` gives the exact
    status expected of some of them (the others must be running or completed); `also` names
    people (those an operation concerned) whose inboxes are checked whatever they hold."""
    family = family_of(engine, root)
    with engine.read_session() as session:
        instances = {i: session.get(ProcessInstance, i) for i in family}
        workflows = {
            iid: _state_of(engine, session, instance)
            for iid, instance in instances.items()
            if instance is not None
            and (instance.status != "completed" or instance.process_key in LEDGERS)
        }
    for iid, instance in instances.items():
        assert instance is not None
        expected = statuses.get(iid)
        allowed = {expected} if expected else {"running", "completed"}
        assert instance.status in allowed, (
            f"实例 {iid}（{instance.process_key}）状态为 {instance.status}，应为 "
            f"{'/'.join(sorted(allowed))}：{instance.error_message or ''}"
        )
    ready = {
        str(t.id)
        for workflow in workflows.values()
        for t in workflow.get_tasks(state=TaskState.READY, manual=True)
    }
    _check_inboxes(engine, family, ready, set(also))
    for iid, instance in instances.items():
        assert instance is not None
        workflow = workflows.get(iid)
        _check_ledger(engine, instance, current_data(workflow) if workflow else {})


def _check_inboxes(engine: Engine, family: list[int], ready: set[str], also: set[str]) -> None:
    """Open rows ↔ READY user tasks; each open row in the inbox of whoever may act on it, and
    nothing else in the inboxes looked at. An inbox lists open rows only, so a row open while
    its step is not (or the other way round) would put a dead task in, or keep a live one
    out of, every inbox."""
    with engine.read_session() as session:
        rows = list(session.scalars(select(HumanTask).where(HumanTask.instance_id.in_(family))))
        open_rows = [r for r in rows if r.state == "open"]
        candidates: dict[str, set[int]] = {}
        for task_id, user_id in session.execute(
            select(HumanTaskCandidate.task_id, HumanTaskCandidate.user_id).where(
                HumanTaskCandidate.task_id.in_([r.id for r in open_rows])
            )
        ):
            candidates.setdefault(task_id, set()).add(user_id)
        people = {r.assignee_id for r in open_rows if r.assignee_id} | {
            u for users in candidates.values() for u in users
        }
        names = _usernames(session, people)
        names.update(
            session.execute(select(User.id, User.username).where(User.username.in_(also))).all()
        )
    live = {r.id for r in rows if r.kind == "task" and r.state in ("open", "waiting")}
    by_id = {r.id: r for r in rows}
    assert live == ready, (
        "待办记录与流程中待办理的步骤不一致："
        f"多出 {[_label(by_id[i]) for i in live - ready]}，缺少 {sorted(ready - live)}"
    )
    for row in open_rows:
        if row.kind == "sign":
            parent = by_id.get(row.parent_task_id or "")
            assert parent is not None and parent.state == "waiting", (
                f"加签任务 {_label(row)} 所属步骤不在等待加签状态"
            )
    open_ids = {r.id for r in open_rows}
    inboxes: dict[int, set[str]] = {}
    for user_id, username in names.items():
        if username in also:
            items = engine.tasks(username, per_page=500)["items"]
            inboxes[user_id] = {t["id"] for t in items if t["instance_id"] in family}
            for task_id in inboxes[user_id]:
                row = by_id[task_id]
                mine = row.assignee_id == user_id or (
                    row.assignee_id is None and user_id in candidates.get(row.id, set())
                )
                assert row.state == "open" and mine, (
                    f"{username} 的待办里有不该有的任务：{_label(row)}"
                )
    for row in open_rows:
        who = sorted({row.assignee_id} if row.assignee_id else candidates.get(row.id, set()))
        assert who, f"在办任务 {_label(row)} 没有办理人也没有候选人"
        holder = next((u for u in who if u in inboxes), who[0])  # one inbox per person
        if holder not in inboxes:
            items = engine.tasks(names[holder], per_page=500)["items"]
            inboxes[holder] = {t["id"] for t in items if t["instance_id"] in family}
            stray = inboxes[holder] - open_ids
            assert not stray, (
                f"{names[holder]} 的待办里有不在办的任务：{[_label(by_id[i]) for i in stray]}"
            )
        assert row.id in inboxes[holder], (
            f"在办任务 {_label(row)} 不在可办理人 {names[holder]} 的待办里"
        )


def _label(row: HumanTask) -> str:
    return f"{row.title}({row.name}, {row.kind}, {row.state}, 实例 {row.instance_id})"


@dataclass(frozen=True)
class Ledger:
    """Where a process keeps, in its data, what it wrote to its tracked items."""

    lead: str | None  # data field holding the lead unit's code
    results: tuple[str, ...]  # record_item result variables, newest stage first

    def deadline(self, data: dict[str, Any], key: str) -> Any:
        if "task_list" in data and key:  # problem_rectification: one item per task of the list
            return next(
                (t.get("deadline") for t in data["task_list"] if str(t.get("seq")) == key), None
            )
        return data.get("deadline")


LEDGERS = {
    "supervision_item": Ledger("lead_unit", ("item",)),
    "problem_rectification": Ledger(
        "unit", ("closed_records", "progress_records", "started_records", "task_records")
    ),
    "information_brief": Ledger(None, ("archive_record",)),
}


def _check_ledger(engine: Engine, instance: ProcessInstance, data: dict[str, Any]) -> None:
    iid = instance.id
    with engine.read_session() as session:
        rows = session.execute(
            select(TrackedItem, Unit.code)
            .outerjoin(Unit, Unit.id == TrackedItem.lead_unit_id)
            .where(TrackedItem.instance_id == iid)
            .order_by(TrackedItem.id)
        ).all()
    process = instance.process_key
    ledger = LEDGERS.get(process)
    if ledger is None:
        assert not rows, f"{process} 不应有台账记录"
        return
    recorded = _recorded_statuses(data, ledger)
    ids = {item.id for item, _code in rows}
    missing = set(recorded) - ids
    assert not missing, f"实例 {iid} 的流程数据记着台账 {sorted(missing)}，台账里却没有"
    for item, code in rows:
        where = f"实例 {iid}（{process}）台账「{item.title}」(key={item.key!r})"
        if ledger.lead and data.get(ledger.lead):
            assert code == data[ledger.lead], (
                f"{where} 牵头单位为 {code}，流程数据为 {data[ledger.lead]}"
            )
        wanted = ledger.deadline(data, item.key)
        if wanted:
            assert item.deadline == parse_deadline(wanted), (
                f"{where} 办结时限为 {item.deadline}，流程数据为 {wanted}"
            )
        if item.id in recorded:
            assert item.status == recorded[item.id], (
                f"{where} 状态为 {item.status}，流程数据记录的状态为 {recorded[item.id]}"
            )


def _recorded_statuses(data: dict[str, Any], ledger: Ledger) -> dict[int, str]:
    """item id → the status the workflow last wrote, by the newest stage that wrote it."""
    found: dict[int, str] = {}
    for variable in ledger.results:
        value = data.get(variable)
        for result in value if isinstance(value, list) else [value]:
            if isinstance(result, dict) and "id" in result and "status" in result:
                found.setdefault(int(result["id"]), str(result["status"]))
    return found


EVENTS = {
    "return": "task_returned",
    "withdraw": "task_withdrawn",
    "transfer": "task_transferred",
    "delegate": "task_delegated",
    "add_signers": "signers_added",
    "urge": "task_urged",
    "cc": "instance_copied",
    "reset": "instance_reset",
}


def check_history(engine: Engine, iid: int, op: str, actor: str, reason: str) -> dict:
    """(3): the instance's history shows the operation, who did it and the reason given."""
    kind = EVENTS[op.split(":")[0]]
    history = engine.instance(iid)["history"]
    found = [e for e in history if e["kind"] == kind and e["reason"] == reason]
    assert found, f"历史记录中没有 {kind}（原因“{reason}”）：{[e['kind'] for e in history]}"
    assert found[-1]["actor"] == actor, (
        f"历史记录中 {kind} 的操作人为 {found[-1]['actor']}，应为 {actor}"
    )
    return found[-1]


# ======================================================================= driving


class Stuck(AssertionError):
    pass


@dataclass
class Driver:
    """One case: an engine on a fresh copy at the point, and the scenario's data to go on."""

    engine: Engine
    clock: FixedClock
    point: Point
    snapshot: Snapshot
    baseline: Baseline
    stand_in: dict[str, str] = field(default_factory=dict)  # holder → who now acts for them
    history: list[Done] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.runner = scenarios._Runner(self.engine, self.clock, self.point.scenario)
        self.runner.root = self.snapshot.root
        self.runner.started_at = self.snapshot.started_at
        self.history = list(self.snapshot.history)

    # ------------------------------------------------------------------ where we stand
    @property
    def steps(self) -> list[dict[str, Any]]:
        return self.point.scenario.spec.get("steps") or []

    @property
    def step(self) -> dict[str, Any]:
        return self.steps[self.point.step - 1]

    def data(self) -> dict[str, Any]:
        return self.runner._values(self.step.get("data") or {})

    def task(self) -> HumanTask:
        """The open task of the point, as the scenario's runner finds it for its holder."""
        return self.runner._find_task(
            str(self.step["complete"]), self.point.user, self.step.get("unit")
        )

    def family(self) -> list[int]:
        return family_of(self.engine, self.snapshot.root)

    def rows(self, *states: str) -> list[HumanTask]:
        with self.engine.read_session() as session:
            return list(
                session.scalars(
                    select(HumanTask)
                    .where(
                        HumanTask.instance_id.in_(self.runner._family(session)),
                        HumanTask.state.in_(states or ("open",)),
                    )
                    .order_by(HumanTask.created_at, HumanTask.id)
                )
            )

    def may_act(self, row: HumanTask, username: str) -> bool:
        with self.engine.read_session() as session:
            actor = self.engine.actor(session, username)
            return actor is not None and may_act_on(session, row, actor)

    def username(self, user_id: int | None) -> str | None:
        if user_id is None:
            return None
        with self.engine.read_session() as session:
            return session.scalar(select(User.username).where(User.id == user_id))

    def fingerprint(self) -> tuple[Any, ...]:
        """What a refused operation must leave exactly as it was."""
        with self.engine.read_session() as session:
            family = self.runner._family(session)
            instances = session.execute(
                select(ProcessInstance.id, ProcessInstance.revision, ProcessInstance.status)
                .where(ProcessInstance.id.in_(family))
                .order_by(ProcessInstance.id)
            ).all()
            rows = session.execute(
                select(HumanTask.id, HumanTask.state, HumanTask.assignee_id)
                .where(HumanTask.instance_id.in_(family))
                .order_by(HumanTask.id)
            ).all()
        return tuple(instances), tuple(rows)

    # ------------------------------------------------------------------ people
    def same_unit(self, holder: str) -> list[str]:
        with self.engine.read_session() as session:
            me = self.engine.actor(session, holder)
            assert me is not None
            return sorted(
                session.scalars(
                    select(User.username).where(
                        User.unit_id == me.unit_id, User.id != me.id, User.active.is_(True)
                    )
                )
            )

    # ------------------------------------------------------------------ checks
    def check(self, statuses: dict[int, str] | None = None, also: Iterable[str] = ()) -> None:
        check_instance(self.engine, self.snapshot.root, statuses or {}, also)

    def check_reopened(self, instance_id: int, element: str) -> None:
        """A step sent back is open again for the person (each person, for a 会签) who did it
        before — or, when nobody is named, for its candidates."""
        rows = [
            r
            for r in self.rows("open")
            if r.instance_id == instance_id and r.name == element and r.kind == "task"
        ]
        assert rows, f"「{element}」没有重新打开"
        for row in rows:
            did = {
                d.user for d in self.history if (d.process, d.element) == (row.process_key, element)
            }
            did |= {self.stand_in[u] for u in did if u in self.stand_in}
            holder = self.username(row.assignee_id)
            assert holder is None or holder in did, (
                f"重新打开的「{row.title}」交给了 {holder}，此前办理的是 {sorted(did)}"
            )

    # ------------------------------------------------------------------ driving on
    def drive(self, start: int) -> None:
        """Run the scenario's steps from `start` (1-based) to its end, doing again whatever
        was sent back, then finish what the scenario had finished."""
        for index, step in enumerate(self.steps[start - 1 :], start=start):
            self.runner.step_no = index
            if "wait" in step:
                self.runner.step(step)
                self._no_error(f"第 {index} 步（等待）")
            elif _acts(step):
                self._complete_step(index, step)
        self._finish()

    def _complete_step(self, index: int, step: dict[str, Any]) -> None:
        ref, user = str(step["complete"]), str(step["as"])
        data = self.runner._values(step.get("data") or {})
        for _ in range(60):
            self._sign_all()
            found = self._row_for(ref, user, step.get("unit"))
            if found is not None:
                row, actor = found
                self._complete_row(row, actor, data, step.get("opinion"), f"第 {index} 步")
                self.history.append(Done(row.process_key, row.name, user, data, None))
                return
            self._catch_up(f"第 {index} 步「{ref}」（{user}）")
        raise Stuck(f"第 {index} 步「{ref}」始终没有 {user} 可办理的任务")

    def _row_for(self, ref: str, user: str, unit: str | None) -> tuple[HumanTask, str] | None:
        rows = [r for r in self.rows("open") if r.kind == "task" and ref in (r.name, r.title)]
        if unit:
            with self.engine.read_session() as session:
                unit_id = session.scalar(select(Unit.id).where(Unit.code == unit))
            rows = [r for r in rows if r.unit_id == unit_id]
        for who in (user, self.stand_in.get(user)):
            if who:
                mine = [r for r in rows if self.may_act(r, who)]
                if mine:
                    return mine[0], who
        if len(rows) == 1 and rows[0].assignee_id:  # re-opened for whoever did it before
            return rows[0], str(self.username(rows[0].assignee_id))
        return None

    def _complete_row(
        self, row: HumanTask, actor: str, data: dict[str, Any], opinion: str | None, where: str
    ) -> None:
        """Complete `row` as `actor`; a delegated task comes back to its owner, who completes
        it again."""
        for _ in range(3):
            self.engine.complete(row.id, data, user=actor, opinion=opinion)
            self._no_error(f"{where}：{actor} 办理「{row.title}」")
            with self.engine.read_session() as session:
                fresh = session.get(HumanTask, row.id)
                assert fresh is not None
                if fresh.state != "open":
                    return
                actor = str(self.username(fresh.assignee_id))
        raise AssertionError(f"{where}：「{row.title}」办理三次仍未结束")

    def _sign_all(self) -> None:
        for row in self.rows("open"):
            if row.kind == "sign":
                signer = str(self.username(row.assignee_id))
                self.engine.complete(row.id, {}, user=signer, opinion="同意（矩阵加签）")
                self._no_error(f"{signer} 加签")

    def _catch_up(self, waiting_for: str) -> None:
        """Do again the earliest open step the scenario did before, with its data."""
        for row in self.rows("open"):
            if row.kind != "task":
                continue
            done = self._done_for(row)
            if done is not None:
                entry, actor = done
                self._complete_row(row, actor, entry.data, entry.opinion, f"重办（{waiting_for}）")
                self.history.append(entry)
                return
        open_now = [_label(r) for r in self.rows("open", "waiting")]
        raise Stuck(f"等待{waiting_for}时无法继续：在办 {open_now}，没有可重办的步骤")

    def _done_for(self, row: HumanTask) -> tuple[Done, str] | None:
        entries = [d for d in self.history if (d.process, d.element) == (row.process_key, row.name)]
        for entry in reversed(entries):
            for who in (entry.user, self.stand_in.get(entry.user)):
                if who and self.may_act(row, who):
                    return entry, who
        if entries and row.assignee_id:
            return entries[-1], str(self.username(row.assignee_id))
        return None

    def _finish(self) -> None:
        """Steps sent back that the scenario had finished before the point are done again."""
        for _ in range(60):
            self._sign_all()
            now = open_elements(self.engine, self.snapshot.root)
            extra = Counter(now) - Counter(self.baseline.open_tasks)
            rows = [
                r
                for r in self.rows("open")
                if r.kind == "task" and r.instance_id == self.snapshot.root and r.name in extra
            ]
            done = next(((r, d) for r in rows if (d := self._done_for(r))), None)
            if done is None:
                return
            row, (entry, actor) = done
            self._complete_row(row, actor, entry.data, entry.opinion, "收尾重办")

    def _no_error(self, where: str) -> None:
        for iid in self.family():
            summary = self.engine.instance_summary(iid)
            assert summary["status"] != "error", (
                f"{where}后实例 {iid}（{summary['process']}）出错：{summary.get('error')}"
            )

    def expect_end(self) -> None:
        """The instance ends as the scenario ends without the operation."""
        self.check({self.snapshot.root: self.baseline.status})
        assert open_elements(self.engine, self.snapshot.root) == self.baseline.open_tasks, (
            f"走完场景后在办步骤为 {open_elements(self.engine, self.snapshot.root)}，"
            f"不做该操作时为 {self.baseline.open_tasks}"
        )


def last_completed(driver: Driver) -> tuple[str, str] | None:
    """The step completed last before the point (its row id and completer), from the audit
    trail: every completion happens at the scenario's same instant, event ids order them."""
    with driver.engine.read_session() as session:
        family = driver.runner._family(session)
        found = session.execute(
            select(Event.task_id, User.username)
            .join(User, User.id == Event.actor_id)
            .join(HumanTask, HumanTask.id == Event.task_id)
            .where(
                Event.instance_id.in_(family),
                Event.kind == "task_completed",
                HumanTask.kind == "task",
            )
            .order_by(Event.id.desc())
            .limit(1)
        ).first()
    return (str(found[0]), str(found[1])) if found else None


def refusal(exc: EngineError) -> str:
    return " ".join([exc.message, *map(str, (exc.detail.get("errors") or {}).values())])
