"""Commands racing on one instance: one wins, the other gets a Conflict, nothing is lost or doubled.

Runs on SQLite and, with DATABASE_URL pointing at PostgreSQL, on PostgreSQL (see conftest).
"""

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from engine import Conflict, Engine, FixedClock
from engine.models import Event, HumanTask, ProcessInstance, Timer
from engine.workdays import BEIJING
from tests.builders import bpmn, flow, user_task
from tests.conftest import ON_POSTGRES, START

ROLE = "办理人"
ROUNDS = 10
DUBAN = Path(sys.executable).with_name("duban")


def approval_process() -> str:
    """审核 (2-day deadline → 督办) → 复核."""
    body = (
        '<bpmn:startEvent id="start"><bpmn:outgoing>f_start</bpmn:outgoing></bpmn:startEvent>'
        + user_task("review", "审核", "f_start", "f_reviewed")
        + '<bpmn:boundaryEvent id="overdue" name="超期" attachedToRef="review" '
        'cancelActivity="true"><bpmn:outgoing>f_overdue</bpmn:outgoing>'
        '<bpmn:timerEventDefinition><bpmn:timeDuration>"P2D"</bpmn:timeDuration>'
        "</bpmn:timerEventDefinition></bpmn:boundaryEvent>"
        + user_task("recheck", "复核", "f_reviewed", "f_done")
        + user_task("escalate", "督办", "f_overdue", "f_escalated")
        + '<bpmn:endEvent id="end"><bpmn:incoming>f_done</bpmn:incoming>'
        "<bpmn:incoming>f_escalated</bpmn:incoming></bpmn:endEvent>"
        + flow("f_start", "start", "review")
        + flow("f_reviewed", "review", "recheck")
        + flow("f_overdue", "overdue", "escalate")
        + flow("f_done", "recheck", "end")
        + flow("f_escalated", "escalate", "end")
    )
    return bpmn("approval", body, lanes={ROLE: ["review", "recheck", "escalate"]}, name="审核")


@pytest.fixture
def people(engine: Engine, deploy) -> None:
    """alice and bob may both do every task; the review process is deployed."""
    for username in ("alice", "bob"):
        engine.add_user(username, "secret", roles=[ROLE])
    deploy({"approval.bpmn": approval_process()})


def race(*commands: Callable[[], object]) -> list[object]:
    """Run each command in its own thread, released together. A Conflict is an outcome;
    any other exception fails the test."""
    barrier = threading.Barrier(len(commands))

    def attempt(command: Callable[[], object]) -> object:
        barrier.wait(timeout=30)
        try:
            return command()
        except Conflict as exc:
            return exc

    with ThreadPoolExecutor(len(commands)) as pool:
        futures = [pool.submit(attempt, command) for command in commands]
        return [future.result(timeout=300) for future in futures]


def task_rows(engine: Engine, instance_id: int) -> list[tuple[str, str]]:
    with engine.read_session() as session:
        rows = session.scalars(
            select(HumanTask).where(HumanTask.instance_id == instance_id).order_by(HumanTask.name)
        )
        return [(row.name, row.state) for row in rows]


def open_task(engine: Engine, instance_id: int) -> str:
    with engine.read_session() as session:
        (task_id,) = session.scalars(
            select(HumanTask.id).where(
                HumanTask.instance_id == instance_id, HumanTask.state == "open"
            )
        )
        return task_id


def events(engine: Engine, kind: str, instance_id: int | None = None) -> int:
    query = select(func.count()).select_from(Event).where(Event.kind == kind)
    if instance_id is not None:
        query = query.where(Event.instance_id == instance_id)
    with engine.read_session() as session:
        return session.scalar(query)


def timer_of(engine: Engine, instance_id: int) -> Timer:
    with engine.read_session() as session:
        (row,) = session.scalars(select(Timer).where(Timer.instance_id == instance_id))
        return row


# -------------------------------------------------------- person vs person
@pytest.mark.parametrize("users", [("alice", "bob"), ("alice", "alice")], ids=["two", "same"])
def test_one_task_completed_twice_at_once_completes_once(engine, people, users):
    for _ in range(ROUNDS):
        instance_id = engine.start("approval")["id"]
        task_id = open_task(engine, instance_id)
        outcomes = race(*(partial(engine.complete, task_id, {}, user=user) for user in users))

        conflicts = [o for o in outcomes if isinstance(o, Conflict)]
        assert len(conflicts) == 1, outcomes
        assert "已办理" in conflicts[0].message
        assert events(engine, "task_completed", instance_id) == 1
        assert task_rows(engine, instance_id) == [("recheck", "open"), ("review", "completed")]


# --------------------------------------------------------- person vs timer
def test_a_person_and_the_deadline_racing_end_consistently(engine, clock, people):
    winners = Counter()
    for _ in range(ROUNDS):
        clock.set(START)
        instance_id = engine.start("approval")["id"]
        task_id = open_task(engine, instance_id)
        clock.set(START + timedelta(days=2))  # both act at the due time
        completed, fired = race(
            partial(engine.complete, task_id, {}, user="alice"), engine.fire_due_timers
        )

        row = timer_of(engine, instance_id)
        if isinstance(completed, Conflict):  # the deadline won
            winners["timer"] += 1
            assert completed.message == "该任务已撤销"
            assert fired == 1
            assert task_rows(engine, instance_id) == [("escalate", "open"), ("review", "cancelled")]
            assert (row.state, row.fire_count) == ("fired", 1)
            assert events(engine, "timer_fired", instance_id) == 1
            assert events(engine, "task_completed", instance_id) == 0
        else:  # the person won
            winners["person"] += 1
            assert fired == 0
            assert task_rows(engine, instance_id) == [("recheck", "open"), ("review", "completed")]
            assert (row.state, row.fire_count) == ("cancelled", 0)
            assert events(engine, "timer_fired", instance_id) == 0
            assert events(engine, "task_completed", instance_id) == 1
        assert engine.fire_due_timers(START + timedelta(days=30)) == 0
    assert sum(winners.values()) == ROUNDS


# -------------------------------------------------------- worker processes
def test_two_worker_processes_fire_each_timer_once(engine, clock, people, db_url):
    # Workers run on the real clock, so the deadlines lie in the real past.
    clock.set(datetime(2020, 1, 6, 9, 0, tzinfo=BEIJING))
    instance_ids = [engine.start("approval")["id"] for _ in range(200)]

    env = {**os.environ, "DATABASE_URL": db_url}
    workers = [
        subprocess.Popen(
            [str(DUBAN), "worker", "--once"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [worker.communicate(timeout=600) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    reported = sum(int(out.split("触发定时器 ")[1].split()[0]) for out, _ in outputs if out)
    assert reported == 200

    with engine.read_session() as session:
        rows = list(session.scalars(select(Timer)))
    assert len(rows) == 200
    assert {(row.state, row.fire_count) for row in rows} == {("fired", 1)}
    assert events(engine, "timer_fired") == 200
    for instance_id in instance_ids:
        assert task_rows(engine, instance_id) == [("escalate", "open"), ("review", "cancelled")]
        assert events(engine, "task_created", instance_id) == 2


# ------------------------------------------------------ beside a long writer
def test_a_second_engine_works_beside_a_long_writer(engine, people, db_url):
    instance_ids = [engine.start("approval")["id"] for _ in range(5)]
    worker = Engine(db_url, clock=FixedClock(START + timedelta(days=2)))
    writing = threading.Event()

    def long_write() -> None:
        with engine.command() as (session, _ctx):
            session.execute(
                update(ProcessInstance)
                .where(ProcessInstance.id == instance_ids[0])
                .values(title="长事务")
            )
            writing.set()
            time.sleep(0.5)  # hold the write lock while the worker wants it

    try:
        with ThreadPoolExecutor(1) as pool:
            writer = pool.submit(long_write)
            assert writing.wait(timeout=30)
            assert len(worker.tasks("alice")["items"]) == 5  # readers never wait (WAL / MVCC)
            # SQLite: the worker waits for the write lock, then fires all five. PostgreSQL: it
            # skips the instance being written (no waiting on people) and fires it next poll.
            first = worker.fire_due_timers()
            writer.result(timeout=60)
            assert first + worker.fire_due_timers() == 5
            assert first == (4 if ON_POSTGRES else 5)

        def busy(eng: Engine, user: str) -> int:
            for _ in range(ROUNDS):
                instance_id = eng.start("approval")["id"]
                eng.complete(open_task(eng, instance_id), {}, user=user)
            return ROUNDS

        assert race(partial(busy, engine, "alice"), partial(busy, worker, "bob")) == [10, 10]
    finally:
        worker.db.dispose()

    assert engine.instance(instance_ids[0])["title"] == "长事务"
    assert all(
        task_rows(engine, i) == [("escalate", "open"), ("review", "cancelled")]
        for i in instance_ids
    )
    assert events(engine, "task_completed") == 2 * ROUNDS
