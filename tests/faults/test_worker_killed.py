"""Three timer workers, one killed (kill -9) in the middle of its run: every timer still fires,
and fires exactly once."""

import os
import signal
import subprocess
from contextlib import ExitStack, suppress
from datetime import datetime

from sqlalchemy import func, select, text

from engine.models import Event, HumanTask, Timer, WorkerHeartbeat
from engine.workdays import BEIJING
from tests.builders import bpmn, flow, user_task
from tests.conftest import ON_POSTGRES
from tests.faults.support import DUBAN, ROLE, wait_until

TIMERS = 90


def deadline_process() -> str:
    """审核, whose 2-day deadline cancels it and opens 督办."""
    body = (
        '<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
        + user_task("review", "审核", "f1", "f2")
        + '<bpmn:boundaryEvent id="overdue" name="超期" attachedToRef="review" '
        'cancelActivity="true"><bpmn:outgoing>f3</bpmn:outgoing>'
        '<bpmn:timerEventDefinition><bpmn:timeDuration>"P2D"</bpmn:timeDuration>'
        "</bpmn:timerEventDefinition></bpmn:boundaryEvent>"
        + user_task("escalate", "督办", "f3", "f4")
        + '<bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming>'
        "<bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>"
        + flow("f1", "start", "review")
        + flow("f2", "review", "end")
        + flow("f3", "overdue", "escalate")
        + flow("f4", "escalate", "end")
    )
    return bpmn("deadline", body, lanes={ROLE: ["review", "escalate"]}, name="审核")


def fired(engine) -> int:
    with engine.read_session() as session:
        return session.scalar(select(func.count()).select_from(Timer).where(Timer.state == "fired"))


def _let_start(engine, workers: list[subprocess.Popen]) -> None:
    """Wait (a while) until each worker has run a loop: on a loaded machine the others may fire
    every timer while one is still importing, and the SIGINT that stops a running worker cleanly
    would kill that one mid-import."""
    with suppress(AssertionError):
        wait_until(lambda: {w.pid for w in workers} <= running(engine), 60, "every worker to run")


def running(engine) -> set[int]:
    """The pids of the workers that wrote a heartbeat (they are past their start)."""
    with engine.read_session() as session:
        return set(session.scalars(select(WorkerHeartbeat.pid)))


def victim(engine) -> int:
    """Which worker to kill: on PostgreSQL one caught inside a transaction (each worker names
    its connections), elsewhere the first."""
    if not ON_POSTGRES:
        return 0
    query = text(
        "SELECT application_name FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name LIKE 'fault-worker-%' AND state IN ('active', 'idle in transaction')"
    )
    for _ in range(400):
        with engine.db.connect() as conn:
            busy = conn.execute(query).scalars().first()
        if busy:
            return int(busy.rsplit("-", 1)[1])
    return 0


def test_a_worker_killed_mid_run_leaves_every_timer_fired_once(
    engine, clock, deploy, db_url, tmp_path
):
    deploy({"deadline.bpmn": deadline_process()})
    clock.set(datetime(2020, 1, 6, 9, 0, tzinfo=BEIJING))  # workers use the real clock: long due
    for _ in range(TIMERS):
        engine.start("deadline")

    env = {**os.environ, "DATABASE_URL": db_url}
    logs = [tmp_path / f"worker{number}.log" for number in range(3)]
    with ExitStack() as files:
        workers = [
            subprocess.Popen(
                [str(DUBAN), "worker", "--interval", "0.2"],
                env={**env, "PGAPPNAME": f"fault-worker-{number}"},
                stdout=subprocess.DEVNULL,
                stderr=files.enter_context(log.open("wb")),
                start_new_session=True,
            )
            for number, log in enumerate(logs)
        ]
        try:
            wait_until(lambda: fired(engine) >= 10, 90, "the workers to start firing", 0.01)
            killed = workers[victim(engine)]
            os.killpg(killed.pid, signal.SIGKILL)  # in the middle of its run
            assert killed.wait(timeout=30) == -signal.SIGKILL
            left = TIMERS - fired(engine)
            wait_until(lambda: fired(engine) == TIMERS, 90, "the other workers to fire the rest")
        finally:
            _let_start(engine, [w for w in workers if w.poll() is None])
            for worker in workers:
                if worker.poll() is None:
                    worker.send_signal(signal.SIGINT)  # a worker's clean stop
                worker.wait(timeout=30)
    errors = [log.read_text(errors="replace") for log in logs]
    assert sorted(worker.returncode for worker in workers) == [-signal.SIGKILL, 0, 0], errors
    assert left > 0  # the kill came mid-run: the others fired what was left

    with engine.read_session() as session:
        rows = list(session.scalars(select(Timer)))
        kinds = session.execute(select(Event.kind, func.count()).group_by(Event.kind)).all()
        states = session.execute(
            select(HumanTask.name, HumanTask.state, func.count()).group_by(
                HumanTask.name, HumanTask.state
            )
        ).all()
    assert len(rows) == TIMERS
    assert {(row.state, row.fire_count) for row in rows} == {("fired", 1)}
    assert dict(kinds)["timer_fired"] == TIMERS
    assert "timer_failed" not in dict(kinds)
    assert sorted(states) == [("escalate", "open", TIMERS), ("review", "cancelled", TIMERS)]
