"""Timers as a user sees them: deadlines that cancel a task, reminders, waits counted in working
days, weekly processes started by a timer, the `duban timers fire` command, and a worker that
survives a broken timer."""

from datetime import datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from engine import Engine, FixedClock
from engine import timers as worker
from engine.models import HumanTask, ProcessInstance, Timer
from engine.workdays import BEIJING
from tests.builders import bpmn, flow, user_task
from tests.conftest import START
from webui.cli import cli

ROLE = "办理人"
WEEKLY = '"R/2026-12-07T01:00:00+00:00/P7D"'  # every Monday 09:00 Beijing, from 2026-12-07
FIRST_MONDAY = datetime(2026, 12, 7, 9, 0, tzinfo=BEIJING)
WEEK = timedelta(weeks=1)


# ------------------------------------------------------------------ BPMN
def start_event(
    element: str = "start", outgoing: str = "f_start", timer: str = "", name: str = ""
) -> str:
    return (
        f'<bpmn:startEvent id="{element}" name="{name or element}">'
        f"<bpmn:outgoing>{outgoing}</bpmn:outgoing>{timer}</bpmn:startEvent>"
    )


def end_event(element: str, incoming: str) -> str:
    return (
        f'<bpmn:endEvent id="{element}"><bpmn:incoming>{incoming}</bpmn:incoming></bpmn:endEvent>'
    )


def timer(expression: str, kind: str = "timeDuration") -> str:
    definition = f"<bpmn:{kind}>{expression}</bpmn:{kind}>"
    return f"<bpmn:timerEventDefinition>{definition}</bpmn:timerEventDefinition>"


def boundary_timer(
    element: str,
    name: str,
    attached_to: str,
    outgoing: str,
    expression: str,
    interrupting: bool = True,
    kind: str = "timeDuration",
) -> str:
    return (
        f'<bpmn:boundaryEvent id="{element}" name="{name}" attachedToRef="{attached_to}" '
        f'cancelActivity="{str(interrupting).lower()}"><bpmn:outgoing>{outgoing}</bpmn:outgoing>'
        f"{timer(expression, kind)}</bpmn:boundaryEvent>"
    )


def script_task(element: str, incoming: str, outgoing: str, script: str) -> str:
    return (
        f'<bpmn:scriptTask id="{element}"><bpmn:incoming>{incoming}</bpmn:incoming>'
        f"<bpmn:outgoing>{outgoing}</bpmn:outgoing><bpmn:script>{script}</bpmn:script>"
        "</bpmn:scriptTask>"
    )


def deadline_process(
    expression: str = '"P2D"',
    interrupting: bool = True,
    script: str = "",
    kind: str = "timeDuration",
) -> str:
    """审核 with a boundary timer 超期, whose path runs `script` (if any) and then 督办."""
    timer_path = (
        flow("f_timer", "overdue", "note")
        + script_task("note", "f_timer", "f_noted", script)
        + flow("f_noted", "note", "escalate")
        if script
        else flow("f_noted", "overdue", "escalate")
    )
    body = (
        start_event()
        + user_task("review", "审核", "f_start", "f_done")
        + boundary_timer(
            "overdue",
            "超期",
            "review",
            "f_timer" if script else "f_noted",
            expression,
            interrupting,
            kind,
        )
        + user_task("escalate", "督办", "f_noted", "f_escalated")
        + end_event("end", "f_done")
        + end_event("end_escalated", "f_escalated")
        + flow("f_start", "start", "review")
        + flow("f_done", "review", "end")
        + flow("f_escalated", "escalate", "end_escalated")
        + timer_path
    )
    return bpmn("deadline", body, lanes={ROLE: ["review", "escalate"]}, name="限期审核")


def weekly_process(cycle: str = WEEKLY, with_plain_start: bool = False, title: str = "周报") -> str:
    """周报, started by a timer cycle (and, if asked, also by hand through a plain start event)."""
    starts = {"weekly_start": ("f_weekly", timer(cycle, "timeCycle"), "每周一")}
    if with_plain_start:
        starts["manual_start"] = ("f_manual", "", "")
    body = "".join(
        start_event(element, outgoing, definition, name) + flow(outgoing, element, "report")
        for element, (outgoing, definition, name) in starts.items()
    )
    incoming = "".join(
        f"<bpmn:incoming>{flow_id}</bpmn:incoming>" for flow_id, *_ in starts.values()
    )
    body += (
        f'<bpmn:userTask id="report" name="{title}">{incoming}'
        "<bpmn:outgoing>f_done</bpmn:outgoing></bpmn:userTask>"
        + end_event("end", "f_done")
        + flow("f_done", "report", "end")
    )
    return bpmn("weekly", body, lanes={ROLE: ["report"]}, name="每周报告")


# --------------------------------------------------------------- reading
@pytest.fixture
def alice(engine: Engine) -> str:
    engine.add_user("alice", "secret", roles=[ROLE])
    return "alice"


def inbox(engine: Engine, user: str = "alice") -> list[str]:
    return [task["title"] for task in engine.tasks(user)["items"]]


def timers(engine: Engine, **where: object) -> list[Timer]:
    with engine.read_session() as session:
        query = select(Timer).filter_by(**where).order_by(Timer.id)
        return list(session.scalars(query))


def only_timer(engine: Engine, **where: object) -> Timer:
    rows = timers(engine, **where)
    assert len(rows) == 1, [(r.kind, r.element, r.state) for r in rows]
    return rows[0]


def task_states(engine: Engine, instance_id: int) -> dict[str, str]:
    with engine.read_session() as session:
        rows = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id))
        return {row.name: row.state for row in rows}


def history(engine: Engine, instance_id: int) -> list[str]:
    return [event["kind"] for event in engine.instance(instance_id)["history"]]


def fired_titles(engine: Engine, instance_id: int) -> list[str]:
    """What the instance history shows for each firing."""
    events = engine.instance(instance_id)["history"]
    return [event["task"] for event in events if event["kind"] == "timer_fired"]


def instances(engine: Engine) -> list[ProcessInstance]:
    with engine.read_session() as session:
        return list(session.scalars(select(ProcessInstance).order_by(ProcessInstance.id)))


def open_tasks(engine: Engine, instance_id: int) -> int:
    return list(task_states(engine, instance_id).values()).count("open")


# ------------------------------------------------------- boundary timers
def test_interrupting_deadline_cancels_the_task_and_escalates(engine, clock, deploy, alice):
    deploy({"deadline.bpmn": deadline_process('"P2D"')})
    instance_id = engine.start("deadline")["id"]
    row = only_timer(engine, instance_id=instance_id)
    assert (row.kind, row.state, row.due_at) == ("boundary", "waiting", START + timedelta(days=2))

    clock.advance(days=2, seconds=-1)
    assert engine.fire_due_timers() == 0
    assert inbox(engine) == ["审核"]

    clock.advance(seconds=1)  # exactly the due time counts as due
    assert engine.fire_due_timers() == 1
    assert inbox(engine) == ["督办"]
    assert task_states(engine, instance_id) == {"review": "cancelled", "escalate": "open"}
    assert fired_titles(engine, instance_id) == ["超期"]
    row = only_timer(engine, instance_id=instance_id)
    assert (row.state, row.fired_at, row.fire_count) == ("fired", clock.now(), 1)

    assert engine.fire_due_timers(clock.now() + timedelta(days=30)) == 0
    assert history(engine, instance_id).count("timer_fired") == 1


def test_non_interrupting_reminder_fires_once_and_keeps_the_task(engine, clock, deploy, alice):
    deploy(
        {"deadline.bpmn": deadline_process('"P1D"', interrupting=False, script="reminded = True")}
    )
    instance_id = engine.start("deadline")["id"]

    assert engine.fire_due_timers(START + timedelta(days=1)) == 1
    assert sorted(inbox(engine)) == sorted(["审核", "督办"])
    urge = next(t for t in engine.tasks("alice")["items"] if t["title"] == "督办")
    assert engine.task(urge["id"])["data"]["reminded"] is True
    assert only_timer(engine, instance_id=instance_id).state == "fired"

    assert engine.fire_due_timers(START + timedelta(days=5)) == 0
    assert sorted(inbox(engine)) == sorted(["审核", "督办"])
    review = next(t for t in engine.tasks("alice")["items"] if t["title"] == "审核")
    engine.complete(review["id"], {}, user="alice")
    assert inbox(engine) == ["督办"]
    assert task_states(engine, instance_id)["review"] == "completed"


def test_completing_the_task_in_time_cancels_its_timer(engine, clock, deploy, alice):
    deploy({"deadline.bpmn": deadline_process('"P2D"')})
    instance_id = engine.start("deadline")["id"]
    clock.advance(days=1)
    (task,) = engine.tasks("alice")["items"]
    engine.complete(task["id"], {}, user="alice")

    row = only_timer(engine, instance_id=instance_id)
    assert (row.state, row.fire_count, row.fired_at) == ("cancelled", 0, None)
    assert engine.fire_due_timers(START + timedelta(days=10)) == 0
    assert inbox(engine) == []
    assert engine.instance(instance_id)["status"] == "completed"
    assert "timer_fired" not in history(engine, instance_id)


def test_completing_after_the_deadline_before_the_worker_ran_is_not_a_firing(
    engine, clock, deploy, alice
):
    """The worker is late: the person's completion stands, and history must not claim that
    the deadline fired (the escalation never ran)."""
    deploy({"deadline.bpmn": deadline_process('"P2D"')})
    instance_id = engine.start("deadline")["id"]
    clock.advance(days=3)
    (task,) = engine.tasks("alice")["items"]
    engine.complete(task["id"], {}, user="alice")

    row = only_timer(engine, instance_id=instance_id)
    assert (row.state, row.fire_count) == ("cancelled", 0)
    assert "timer_fired" not in history(engine, instance_id)
    assert engine.fire_due_timers() == 0
    assert task_states(engine, instance_id) == {"review": "completed"}


def test_terminating_an_overdue_instance_cancels_its_timer(engine, clock, deploy, alice):
    deploy({"deadline.bpmn": deadline_process('"P2D"')})
    instance_id = engine.start("deadline")["id"]
    clock.advance(days=3)
    engine.terminate(instance_id, reason="事项已撤销")
    row = only_timer(engine, instance_id=instance_id)
    assert (row.state, row.fire_count) == ("cancelled", 0)
    assert "timer_fired" not in history(engine, instance_id)


def test_a_daily_reminder_cycle_fires_each_day_then_stops(engine, clock, deploy, alice):
    deploy({"deadline.bpmn": deadline_process('"R2/P1D"', False, "n = 1", "timeCycle")})
    instance_id = engine.start("deadline")["id"]
    for day in (1, 2):
        assert engine.fire_due_timers(START + timedelta(days=day)) == 1
        assert sorted(inbox(engine)) == sorted(["审核"] + ["督办"] * day)
    assert engine.fire_due_timers(START + timedelta(days=9)) == 0
    assert sorted(inbox(engine)) == sorted(["审核", "督办", "督办"])
    row = only_timer(engine, instance_id=instance_id)
    assert (row.state, row.fire_count) == ("fired", 2)
    assert fired_titles(engine, instance_id) == ["超期", "超期"]


def chained_deadlines() -> str:
    """审核 (1 day) → 督办 (1 day) → 上报: the second deadline starts when the first fires."""
    body = (
        start_event()
        + user_task("review", "审核", "f_start", "f_done")
        + boundary_timer("overdue", "超期", "review", "f_overdue", '"P1D"')
        + user_task("escalate", "督办", "f_overdue", "f_escalated")
        + boundary_timer("overdue_again", "再次超期", "escalate", "f_again", '"P1D"')
        + user_task("report", "上报", "f_again", "f_reported")
        + end_event("end", "f_done")
        + end_event("end_escalated", "f_escalated")
        + end_event("end_reported", "f_reported")
        + flow("f_start", "start", "review")
        + flow("f_done", "review", "end")
        + flow("f_overdue", "overdue", "escalate")
        + flow("f_escalated", "escalate", "end_escalated")
        + flow("f_again", "overdue_again", "report")
        + flow("f_reported", "report", "end_reported")
    )
    return bpmn("chained", body, lanes={ROLE: ["review", "escalate", "report"]})


def test_a_deadline_reached_on_the_timer_path_counts_from_the_firing(engine, deploy, alice):
    deploy({"chained.bpmn": chained_deadlines()})
    instance_id = engine.start("chained")["id"]
    first = START + timedelta(days=1)
    assert engine.fire_due_timers(first) == 1
    assert only_timer(engine, element="overdue_again").due_at == first + timedelta(days=1)
    assert engine.fire_due_timers(first + timedelta(days=1)) == 1  # exactly on time
    assert inbox(engine) == ["上报"]
    assert fired_titles(engine, instance_id) == ["超期", "再次超期"]


# ---------------------------------------------------- intermediate timer
def follow_up_process() -> str:
    body = (
        start_event()
        + (
            '<bpmn:intermediateCatchEvent id="wait" name="等三个工作日">'
            "<bpmn:incoming>f_start</bpmn:incoming><bpmn:outgoing>f_waited</bpmn:outgoing>"
            f"{timer('workdays_after(3)', 'timeDate')}</bpmn:intermediateCatchEvent>"
        )
        + user_task("call_back", "回访", "f_waited", "f_done")
        + end_event("end", "f_done")
        + flow("f_start", "start", "wait")
        + flow("f_waited", "wait", "call_back")
        + flow("f_done", "call_back", "end")
    )
    return bpmn("follow_up", body, lanes={ROLE: ["call_back"]})


@pytest.mark.parametrize(
    ("started", "due"),
    [
        pytest.param((2026, 12, 4), (2026, 12, 9), id="friday-to-wednesday"),
        # 国庆 2026: Oct 1–7 off, Saturday Oct 10 is a 调休 working day
        pytest.param((2026, 9, 30), (2026, 10, 10), id="over-national-day"),
    ],
)
def test_intermediate_timer_waits_working_days(engine, clock, deploy, alice, started, due):
    clock.set(datetime(*started, 9, 0, tzinfo=BEIJING))
    deploy({"follow_up.bpmn": follow_up_process()})
    instance_id = engine.start("follow_up")["id"]
    due_at = datetime(*due, 9, 0, tzinfo=BEIJING)
    row = only_timer(engine, instance_id=instance_id)
    assert (row.kind, row.due_at) == ("intermediate", due_at)

    assert engine.fire_due_timers(due_at - timedelta(minutes=1)) == 0
    assert inbox(engine) == []
    assert engine.fire_due_timers(due_at) == 1
    assert inbox(engine) == ["回访"]
    assert only_timer(engine, instance_id=instance_id).state == "fired"


# ------------------------------------------------------------ start timers
def test_weekly_timer_start_makes_one_instance_per_firing(engine, deploy, alice):
    deploy({"weekly.bpmn": weekly_process()})
    row = only_timer(engine, kind="start")
    assert (row.state, row.due_at, row.instance_id) == ("waiting", FIRST_MONDAY, None)
    assert instances(engine) == []

    for week in range(3):
        due = FIRST_MONDAY + week * WEEK
        assert engine.fire_due_timers(due - timedelta(seconds=1)) == 0
        assert engine.fire_due_timers(due) == 1
        assert only_timer(engine, kind="start").due_at == due + WEEK
    started = instances(engine)
    assert len(started) == 3
    assert [open_tasks(engine, i.id) for i in started] == [1, 1, 1]
    assert inbox(engine) == ["周报"] * 3
    assert [fired_titles(engine, i.id) for i in started] == [["每周一"]] * 3


def test_a_worker_back_after_five_weeks_starts_one_instance(engine, deploy, alice):
    deploy({"weekly.bpmn": weekly_process()})
    assert engine.fire_due_timers(FIRST_MONDAY) == 1
    back = FIRST_MONDAY + 5 * WEEK + timedelta(days=3)  # down, missed five Mondays
    assert engine.fire_due_timers(back) == 1
    assert len(instances(engine)) == 2
    row = only_timer(engine, kind="start")
    assert (row.state, row.due_at, row.fire_count) == ("waiting", FIRST_MONDAY + 6 * WEEK, 2)
    assert row.due_at > back
    assert engine.fire_due_timers(back) == 0


def test_bounded_cycle_stops_after_its_repetitions(engine, deploy, alice):
    deploy({"weekly.bpmn": weekly_process('"R2/2026-12-07T01:00:00+00:00/P7D"')})
    assert engine.fire_due_timers(FIRST_MONDAY) == 1
    assert engine.fire_due_timers(FIRST_MONDAY + WEEK) == 1
    assert engine.fire_due_timers(FIRST_MONDAY + 10 * WEEK) == 0
    assert len(instances(engine)) == 2
    row = only_timer(engine, kind="start")
    assert (row.state, row.fire_count) == ("fired", 2)


def test_manual_start_of_a_process_with_a_timer_start_runs_no_timer_branch(engine, deploy, alice):
    deploy({"weekly.bpmn": weekly_process(with_plain_start=True)})
    instance_id = engine.start("weekly")["id"]
    assert inbox(engine) == ["周报"]
    assert open_tasks(engine, instance_id) == 1
    assert timers(engine, instance_id=instance_id) == []
    only_timer(engine, kind="start")  # the schedule itself is untouched

    assert engine.fire_due_timers(FIRST_MONDAY) == 1
    assert len(instances(engine)) == 2
    assert open_tasks(engine, instance_id) == 1
    assert inbox(engine) == ["周报", "周报"]


def test_redeploying_a_changed_cycle_reschedules(engine, clock, deploy, alice):
    deploy({"weekly.bpmn": weekly_process()})
    assert engine.fire_due_timers(FIRST_MONDAY) == 1
    clock.set(FIRST_MONDAY + timedelta(hours=1))
    kept = only_timer(engine, kind="start")

    assert deploy({"weekly.bpmn": weekly_process()})[0].created is False
    assert only_timer(engine, kind="start", state="waiting").id == kept.id
    assert only_timer(engine, kind="start").due_at == FIRST_MONDAY + WEEK

    deploy({"weekly.bpmn": weekly_process(title="每周报告")})  # new version, same schedule
    row = only_timer(engine, kind="start")
    assert (row.id, row.due_at) == (kept.id, FIRST_MONDAY + WEEK)

    tuesdays = '"R/2026-12-08T01:00:00+00:00/P7D"'
    assert deploy({"weekly.bpmn": weekly_process(tuesdays)})[0].version == 3
    assert timers(engine, id=kept.id)[0].state == "cancelled"
    new = only_timer(engine, kind="start", state="waiting")
    assert new.due_at == datetime(2026, 12, 8, 9, 0, tzinfo=BEIJING)
    assert engine.fire_due_timers(FIRST_MONDAY + WEEK) == 1  # 12-08, and never the old Monday
    assert len(instances(engine)) == 2


# -------------------------------------------------------------------- CLI
def test_cli_fires_due_timers_at_the_given_time(engine, deploy, alice, db_url, monkeypatch):
    deploy({"deadline.bpmn": deadline_process('"P2D"')})
    engine.start("deadline")
    engine.start("deadline")
    monkeypatch.setenv("DATABASE_URL", db_url)
    runner = CliRunner()

    early = runner.invoke(cli, ["timers", "fire", "--now", "2026-12-02T09:00:00+08:00"])
    assert (early.exit_code, early.output.strip()) == (0, "已触发定时器 0 个")
    result = runner.invoke(cli, ["timers", "fire", "--now", "2026-12-10T09:00:00+08:00"])
    assert (result.exit_code, result.output.strip()) == (0, "已触发定时器 2 个")
    assert inbox(engine) == ["督办", "督办"]


def test_cli_refuses_a_time_without_offset(engine, db_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", db_url)
    result = CliRunner().invoke(cli, ["timers", "fire", "--now", "2026-12-10T09:00:00"])
    assert result.exit_code == 2
    assert "时间必须带时区" in result.output


# ------------------------------------------------------------- robustness
def test_a_failing_timer_is_marked_and_the_worker_goes_on(
    engine, clock, deploy, alice, monkeypatch
):
    deploy({"deadline.bpmn": deadline_process('"P2D"')})
    broken = engine.start("deadline")["id"]
    healthy = engine.start("deadline")["id"]
    real = worker.load_run_nowait

    def load_run_nowait(session, instance_id, specs, ctx):
        if instance_id == broken:
            raise RuntimeError("磁盘坏了")
        return real(session, instance_id, specs, ctx)

    monkeypatch.setattr(worker, "load_run_nowait", load_run_nowait)
    assert engine.fire_due_timers(START + timedelta(days=3)) == 1

    failed = only_timer(engine, instance_id=broken)
    assert failed.state == "failed"
    assert "磁盘坏了" in failed.last_error
    (event,) = [e for e in engine.instance(broken)["history"] if e["kind"] == "timer_failed"]
    assert datetime.fromisoformat(event["at"]) == START + timedelta(days=3)
    assert task_states(engine, broken) == {"review": "open"}
    assert only_timer(engine, instance_id=healthy).state == "fired"
    assert task_states(engine, healthy) == {"review": "cancelled", "escalate": "open"}
    assert engine.fire_due_timers(START + timedelta(days=4)) == 0  # not retried in a loop


def test_a_suspended_instance_fires_nothing_until_resumed(engine, clock, deploy, alice):
    deploy({"deadline.bpmn": deadline_process('"P2D"')})
    instance_id = engine.start("deadline")["id"]
    engine.suspend(instance_id, reason="等待上级批示")

    clock.advance(days=3)
    assert engine.fire_due_timers() == 0
    assert only_timer(engine, instance_id=instance_id).state == "waiting"
    assert task_states(engine, instance_id) == {"review": "open"}

    engine.resume(instance_id, reason="批示已到")
    engine.fire_due_timers()
    assert task_states(engine, instance_id) == {"review": "cancelled", "escalate": "open"}
    row = only_timer(engine, instance_id=instance_id)
    assert (row.state, row.fire_count) == ("fired", 1)
    assert history(engine, instance_id).count("timer_fired") == 1


def test_a_script_error_on_the_timer_path_fires_once_and_stops(engine, clock, deploy, alice):
    deploy({"deadline.bpmn": deadline_process('"P2D"', script="level = missing_value + 1")})
    instance_id = engine.start("deadline")["id"]

    assert engine.fire_due_timers(START + timedelta(days=2)) == 1
    detail = engine.instance(instance_id)
    assert detail["status"] == "error"
    assert "missing_value" in detail["error"]
    row = only_timer(engine, instance_id=instance_id)
    assert (row.state, row.fire_count) == ("fired", 1)
    assert engine.fire_due_timers(START + timedelta(days=9)) == 0
    assert timers(engine, state="waiting") == []


def test_timers_fire_on_a_second_engine_with_its_own_clock(engine, deploy, alice, db_url):
    """A worker is another process with another clock: it sees the rows, not our memory."""
    deploy({"deadline.bpmn": deadline_process('"P2D"')})
    instance_id = engine.start("deadline")["id"]
    worker = Engine(db_url, clock=FixedClock(START + timedelta(days=2)))
    try:
        assert worker.fire_due_timers() == 1
    finally:
        worker.db.dispose()
    assert task_states(engine, instance_id) == {"review": "cancelled", "escalate": "open"}
