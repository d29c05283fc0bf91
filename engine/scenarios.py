"""Designers' scenario tests: start, act as people, move the clock, expect.

The file format is documented in processes/README.md. Every scenario runs on its own copy of a
template database that already holds the directory and the deployed processes, so scenarios
cannot disturb each other and each costs one file copy (SQLite) or one `CREATE DATABASE …
TEMPLATE` (PostgreSQL).
"""

import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import yaml
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from .bpmn import running_at
from .clock import FixedClock
from .errors import EngineError
from .items import summary as item_summary
from .models import Event, HumanTask, Notification, ProcessInstance, TrackedItem, Unit, User
from .queries import may_act_on
from .status import InstanceStatus, TaskRowState
from .workdays import BEIJING

DEFAULT_START = datetime(2026, 12, 1, 9, 0, tzinfo=BEIJING)
SCENARIO_SUFFIX = ".scenarios.yaml"


class ScenarioFailed(Exception):
    """A step did not hold; the message says why, in Chinese."""


@dataclass(frozen=True)
class Scenario:
    file: str
    process: str
    name: str
    spec: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.process} · {self.name}"


@dataclass(frozen=True)
class Outcome:
    scenario: Scenario
    ok: bool
    step: int | None = None  # 1-based; 0 = the start
    message: str = ""


def discover(folder: Path) -> list[Scenario]:
    found = []
    for path in sorted(folder.rglob(f"*{SCENARIO_SUFFIX}")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for spec in doc.get("scenarios", []):
            process = spec.get("process") or doc.get("process")
            found.append(Scenario(path.name, str(process), str(spec.get("name")), spec))
    return found


class ScenarioEngine(Protocol):
    """What a scenario drives: the `Engine` facade. Callers pass the class to build
    (`make_engine`), so this tooling module never imports the facade it sits above."""

    read_session: Any
    script_engine: Any

    def actor(self, *args: Any, **kwargs: Any) -> Any: ...
    def calendar(self, *args: Any, **kwargs: Any) -> Any: ...
    def close(self) -> None: ...
    def complete(self, *args: Any, **kwargs: Any) -> Any: ...
    def create_schema(self) -> None: ...
    def deploy(self, *args: Any, **kwargs: Any) -> Any: ...
    def fire_due_timers(self, *args: Any, **kwargs: Any) -> Any: ...
    def instance(self, *args: Any, **kwargs: Any) -> Any: ...
    def load_directory(self, *args: Any, **kwargs: Any) -> Any: ...
    def start(self, *args: Any, **kwargs: Any) -> Any: ...


EngineFactory = Callable[..., ScenarioEngine]


# ---------------------------------------------------------------- databases
class TemplateDatabase:
    """The directory and the processes, prepared once; a fresh copy per scenario."""

    def __init__(
        self,
        base_url: str | None,
        prepare: Callable[[ScenarioEngine], None],
        make_engine: EngineFactory,
    ) -> None:
        self._workdir = Path(tempfile.mkdtemp(prefix="duban-check-"))
        self._pg = make_url(base_url) if base_url and base_url.startswith("postgres") else None
        self._template = self._new_url("tmpl")
        engine = make_engine(self._template, clock=FixedClock(DEFAULT_START))
        engine.create_schema()
        prepare(engine)
        engine.close()

    def _new_url(self, tag: str) -> str:
        name = f"duban_check_{tag}_{uuid.uuid4().hex[:10]}"
        if self._pg is None:
            return f"sqlite:///{self._workdir / (name + '.db')}"
        self._admin(f'CREATE DATABASE "{name}"' if tag == "tmpl" else None)
        return self._pg.set(drivername="postgresql+psycopg", database=name).render_as_string(
            hide_password=False
        )

    def _admin(self, statement: str | None) -> None:
        if statement is None or self._pg is None:
            return
        admin = create_engine(
            self._pg.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            conn.execute(text(statement))
        admin.dispose()

    @contextmanager
    def copy(self) -> Iterator[str]:
        if self._pg is None:
            target = self._workdir / f"copy_{uuid.uuid4().hex[:10]}.db"
            shutil.copyfile(make_url(self._template).database or "", target)
            yield f"sqlite:///{target}"
            target.unlink(missing_ok=True)
            return
        name = f"duban_check_run_{uuid.uuid4().hex[:10]}"
        template = make_url(self._template).database
        self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        try:
            yield self._pg.set(drivername="postgresql+psycopg", database=name).render_as_string(
                hide_password=False
            )
        finally:
            self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        if self._pg is not None:
            self._admin(
                f'DROP DATABASE IF EXISTS "{make_url(self._template).database}" WITH (FORCE)'
            )
        shutil.rmtree(self._workdir, ignore_errors=True)


def prepare_with(
    folder: Path, directory: dict[str, Any], password: str
) -> Callable[[ScenarioEngine], None]:
    def prepare(engine: ScenarioEngine) -> None:
        engine.load_directory(directory, password)
        engine.deploy(folder)

    return prepare


# ------------------------------------------------------------------ running
def run(
    scenario: Scenario, url: str, make_engine: EngineFactory, now: datetime | None = None
) -> Outcome:
    """Run one scenario on the database at `url`, with an engine `make_engine(url, clock=…)`.

    With `now` (seeding live data, e.g. the demo), the scenario starts `ago` before `now`
    and the clock ends at `now`, so what it leaves in flight is current."""
    clock = FixedClock(_start_time(scenario.spec, now))
    engine = make_engine(url, clock=clock)
    runner = _Runner(engine, clock, scenario)
    try:
        runner.start(scenario.spec.get("start") or {})
        for index, step in enumerate(scenario.spec.get("steps") or [], start=1):
            runner.step_no = index
            runner.step(step)
        if now is not None and now > clock.now():
            runner.step({"wait": {"until": now.isoformat()}})
        return Outcome(scenario, True)
    except ScenarioFailed as failure:
        return Outcome(scenario, False, runner.step_no, str(failure))
    except EngineError as exc:
        return Outcome(scenario, False, runner.step_no, f"意外的错误：{exc.message}")
    finally:
        engine.close()


def _start_time(spec: dict[str, Any], now: datetime | None) -> datetime:
    if now is None:
        return datetime.fromisoformat(str(spec["at"])) if spec.get("at") else DEFAULT_START
    ago = spec.get("ago") or {}
    return now - timedelta(days=float(ago.get("days", 0)), hours=float(ago.get("hours", 0)))


class _Runner:
    def __init__(self, engine: ScenarioEngine, clock: FixedClock, scenario: Scenario) -> None:
        self.engine, self.clock, self.scenario = engine, clock, scenario
        self.root = 0
        self.step_no = 0
        self.started_at = clock.now()

    def start(self, spec: dict[str, Any]) -> None:
        started = self.engine.start(
            self.scenario.process,
            self._values(spec.get("data") or {}),
            user=spec.get("as"),
            title=spec.get("title"),
        )
        self.root = started["id"]

    def step(self, step: dict[str, Any]) -> None:
        if "complete" in step:
            self._complete(step)
        elif "wait" in step:
            self._wait(step["wait"])
        elif "expect" in step:
            self._expect(step["expect"])
        else:
            raise ScenarioFailed(f"无法识别的步骤：{step}")

    # ------------------------------------------------------------- actions
    def _complete(self, step: dict[str, Any]) -> None:
        expected_error = step.get("error")
        # A step expected to be refused may name someone who cannot act: let the engine say so.
        actor = None if expected_error else step.get("as")
        task = self._find_task(str(step["complete"]), actor, step.get("unit"))
        try:
            self.engine.complete(
                task.id,
                self._values(step.get("data") or {}),
                user=step.get("as"),
                opinion=step.get("opinion"),
            )
        except EngineError as exc:
            said = " ".join([exc.message, *map(str, (exc.detail.get("errors") or {}).values())])
            if expected_error and str(expected_error) in said:
                return
            raise ScenarioFailed(f"办理“{task.title}”被拒绝：{said}") from exc
        if expected_error:
            raise ScenarioFailed(f"办理“{task.title}”本应被拒绝（{expected_error}），却成功了")
        status = self.engine.instance(task.instance_id)["status"]
        if status == InstanceStatus.ERROR:
            raise ScenarioFailed(f"办理“{task.title}”后流程出错：{self._error(task.instance_id)}")

    def _find_task(self, ref: str, username: str | None, unit: str | None) -> HumanTask:
        with self.engine.read_session() as session:
            tasks = list(
                session.scalars(
                    select(HumanTask)
                    .where(
                        HumanTask.instance_id.in_(self._family(session)),
                        HumanTask.state == TaskRowState.OPEN,
                        (HumanTask.name == ref) | (HumanTask.title == ref),
                    )
                    .order_by(HumanTask.created_at)
                )
            )
            if unit:
                unit_row = session.scalars(select(Unit).where(Unit.code == unit)).first()
                tasks = [t for t in tasks if unit_row and t.unit_id == unit_row.id]
            if username:
                actor = self.engine.actor(session, username)
                tasks = [t for t in tasks if actor and may_act_on(session, t, actor)]
            if not tasks:
                raise ScenarioFailed(
                    f"没有{username or ''}可办理的任务“{ref}”；当前待办："
                    f"{self._open_titles(session) or '无'}"
                )
            return tasks[0]

    def _wait(self, spec: dict[str, Any]) -> None:
        now = self.clock.now()
        if "until" in spec:
            target = datetime.fromisoformat(str(spec["until"]))
        elif "workdays" in spec:
            target = self.engine.calendar().add_workdays(
                now.astimezone(BEIJING), int(spec["workdays"])
            )
        else:
            target = now + timedelta(
                days=float(spec.get("days", 0)), hours=float(spec.get("hours", 0))
            )
        if target < now:
            raise ScenarioFailed("时间不能倒流")
        self.clock.set(target)
        self.engine.fire_due_timers(target)

    # --------------------------------------------------------- expectations
    def _expect(self, expected: dict[str, Any]) -> None:
        checks: dict[str, Callable[[Any], None]] = {
            "status": self._expect_status,
            "tasks": self._expect_tasks,
            "data": self._expect_data,
            "item": self._expect_item,
            "children": self._expect_children,
            "instances": self._expect_instances,
            "notifications": self._expect_notifications,
            "events": self._expect_events,
        }
        for key, value in expected.items():
            if key not in checks:
                raise ScenarioFailed(f"无法识别的期望：{key}")
            checks[key](value)

    def _expect_status(self, status: str) -> None:
        actual = self.engine.instance(self.root)["status"]
        if actual != status:
            extra = f"（{self._error(self.root)}）" if actual == InstanceStatus.ERROR else ""
            raise ScenarioFailed(f"流程状态应为 {status}，实际为 {actual}{extra}")

    def _expect_tasks(self, names: list[str]) -> None:
        with self.engine.read_session() as session:
            open_tasks = [(t.name, t.title) for t in self._open_tasks(session)]
            titles = self._open_titles(session)
        unmatched = list(open_tasks)
        for name in names:
            match = next((t for t in unmatched if name in t), None)
            if match is None:
                raise ScenarioFailed(f"应有待办“{name}”；当前待办：{titles or '无'}")
            unmatched.remove(match)
        if unmatched:
            raise ScenarioFailed(f"待办应为 {names}；当前待办：{titles}")

    def _expect_data(self, subset: dict[str, Any]) -> None:
        data = self.engine.instance(self.root)["data"]
        for key, value in subset.items():
            if data.get(key) != value:
                raise ScenarioFailed(f"数据 {key} 应为 {value!r}，实际为 {data.get(key)!r}")

    def _expect_item(self, subset: dict[str, Any]) -> None:
        with self.engine.read_session() as session:
            item = session.scalars(
                select(TrackedItem)
                .where(TrackedItem.instance_id == self.root)
                .order_by(TrackedItem.id)
            ).first()
            if item is None:
                raise ScenarioFailed("本流程还没有台账记录")
            units = dict(session.execute(select(Unit.id, Unit.name)).all())
            actual = item_summary(item, units, self.clock.now(), self.engine.calendar(session))
        for key, value in subset.items():
            if actual.get(key) != value:
                raise ScenarioFailed(f"台账 {key} 应为 {value!r}，实际为 {actual.get(key)!r}")

    def _expect_children(self, counts: dict[str, int]) -> None:
        with self.engine.read_session() as session:
            family = self._family(session) - {self.root}
            self._count_instances(session, counts, ProcessInstance.id.in_(family), "下级流程")

    def _expect_instances(self, counts: dict[str, int]) -> None:
        with self.engine.read_session() as session:
            self._count_instances(
                session, counts, ProcessInstance.started_at >= self.started_at, "流程实例"
            )

    def _count_instances(
        self, session: Any, counts: dict[str, int], where: Any, label: str
    ) -> None:
        for process, expected in counts.items():
            actual = (
                session.scalar(
                    select(func.count())
                    .select_from(ProcessInstance)
                    .where(where, ProcessInstance.process_key == process)
                )
                or 0
            )
            if actual != expected:
                raise ScenarioFailed(f"{label} {process} 应有 {expected} 个，实际 {actual} 个")

    def _expect_notifications(self, wanted: dict[str, list[str]]) -> None:
        with self.engine.read_session() as session:
            for username, parts in wanted.items():
                titles = list(
                    session.scalars(
                        select(Notification.title)
                        .join(User, User.id == Notification.user_id)
                        .where(User.username == username)
                    )
                )
                for part in parts:
                    if not any(part in title for title in titles):
                        raise ScenarioFailed(
                            f"{username} 应收到含“{part}”的消息；实际收到：{titles or '无'}"
                        )

    def _expect_events(self, kinds: list[str]) -> None:
        with self.engine.read_session() as session:
            present = set(
                session.scalars(
                    select(Event.kind).where(Event.instance_id.in_(self._family(session)))
                )
            )
        missing = [kind for kind in kinds if kind not in present]
        if missing:
            raise ScenarioFailed(f"流程记录中缺少事件：{missing}")

    # --------------------------------------------------------------- helpers
    def _values(self, value: Any) -> Any:
        """Data values written `=expression` are computed with the script helpers at the
        scenario's own time, e.g. `=workdays_after(3)` or `=days_after(-5)[:10]`."""
        if isinstance(value, dict):
            return {key: self._values(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._values(item) for item in value]
        if isinstance(value, str) and value.startswith("="):
            with running_at(self.clock):
                return self.engine.script_engine.environment.evaluate(value[1:], {})
        return value

    def _family(self, session: Any) -> set[int]:
        family, frontier = {self.root}, {self.root}
        while frontier:
            frontier = (
                set(
                    session.scalars(
                        select(ProcessInstance.id).where(
                            ProcessInstance.parent_instance_id.in_(frontier)
                        )
                    )
                )
                - family
            )
            family |= frontier
        return family

    def _open_tasks(self, session: Any) -> list[HumanTask]:
        return list(
            session.scalars(
                select(HumanTask)
                .where(
                    HumanTask.instance_id.in_(self._family(session)),
                    HumanTask.state == TaskRowState.OPEN,
                )
                .order_by(HumanTask.created_at)
            )
        )

    def _open_titles(self, session: Any) -> str:
        return "、".join(f"{t.title}({t.name})" for t in self._open_tasks(session))

    def _error(self, instance_id: int) -> str:
        return str(self.engine.instance(instance_id).get("error") or "")


def report_line(outcome: Outcome) -> str:
    if outcome.ok:
        return f"✓ {outcome.scenario.label}"
    where = "启动" if outcome.step == 0 else f"第 {outcome.step} 步"
    return f"✗ {outcome.scenario.label}（{outcome.scenario.file}）{where}失败：{outcome.message}"
