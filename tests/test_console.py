"""The operations console (role 系统管理员): instances in error and their repair, one or in bulk;
timers; the audit search; users, units and roles; the spreadsheet import; heartbeats, health
and /metrics. Engine first, then the same through the JSON API."""

import io
from collections.abc import Callable
from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest
import schemathesis
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from openpyxl import Workbook
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy import func, select

from engine import Conflict, Engine, FixedClock, Forbidden, InvalidData, NotFound
from engine import timers as timer_worker
from engine.models import HumanTask, HumanTaskCandidate, User
from tests.builders import bpmn, flow, user_task
from webui import create_app
from webui.api.openapi import FRAGMENTS, document
from webui.cli import cli

HANDLER = "经办人"
ADMIN = "系统管理员"
Deploy = Callable[..., Any]


def start_event(outgoing: str = "f1") -> str:
    return (
        f'<bpmn:startEvent id="start"><bpmn:outgoing>{outgoing}</bpmn:outgoing></bpmn:startEvent>'
    )


def end_event(incoming: str) -> str:
    return f'<bpmn:endEvent id="end"><bpmn:incoming>{incoming}</bpmn:incoming></bpmn:endEvent>'


def in_a_row(key: str, name: str, *steps: tuple[str, str]) -> str:
    """start → the (id, element) `steps` in order → end, all in the handlers' lane; the n-th
    step comes in on flow f<n> and goes out on f<n+1>."""
    ids = ["start", *(step_id for step_id, _element in steps), "end"]
    body = (
        start_event()
        + "".join(element for _step_id, element in steps)
        + end_event(f"f{len(steps) + 1}")
        + "".join(flow(f"f{n}", a, b) for n, (a, b) in enumerate(pairwise(ids), start=1))
    )
    return bpmn(key, body, lanes={HANDLER: ids}, name=name)


def two_steps() -> str:
    """填报 (by the handlers of the unit named by `unit`) → 审核 (handlers) → end."""
    return in_a_row(
        "report",
        "报送",
        ("fill", user_task("fill", "填报", "f1", "f2", unit="unit")),
        ("review", user_task("review", "审核", "f2", "f3")),
    )


def flaky_script() -> str:
    """A script step that fails on 2026-12-01 (the tests' first day) and works afterwards."""
    script = 'ok = 1 / (0 if today() == "2026-12-01" else 1)'
    compute = (
        '<bpmn:scriptTask id="compute" name="计算汇总"><bpmn:incoming>f1</bpmn:incoming>'
        f"<bpmn:outgoing>f2</bpmn:outgoing><bpmn:script>{script}</bpmn:script></bpmn:scriptTask>"
    )
    return in_a_row(
        "flaky", "汇总", ("compute", compute), ("check", user_task("check", "核对", "f2", "f3"))
    )


def waiting_a_day() -> str:
    """start → wait one day (timer) → 跟进 → end."""
    wait = (
        '<bpmn:intermediateCatchEvent id="wait" name="等待一天">'
        "<bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>"
        '<bpmn:timerEventDefinition><bpmn:timeDuration>"P1D"</bpmn:timeDuration>'
        "</bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>"
    )
    return in_a_row(
        "waiting", "等待", ("wait", wait), ("follow", user_task("follow", "跟进", "f2", "f3"))
    )


@pytest.fixture
def people(engine: Engine) -> None:
    engine.add_unit("农业农村局", code="agri")
    engine.add_unit("水利局", code="water")
    engine.add_user("alice", "pass1234", name="张三", roles=[HANDLER], unit="农业农村局")
    engine.add_user("bob", "pass1234", name="李四", roles=[HANDLER], unit="农业农村局")
    engine.add_user("wendy", "pass1234", name="王五", roles=[HANDLER], unit="水利局")
    engine.add_user("admin", "pass1234", name="管理员", roles=[ADMIN])


@pytest.fixture
def processes(deploy: Deploy, people: None) -> None:
    deploy(
        {
            "report.bpmn": two_steps(),
            "flaky.bpmn": flaky_script(),
            "waiting.bpmn": waiting_a_day(),
        }
    )


def task_of(engine: Engine, instance_id: int, state: str = "open") -> HumanTask:
    with engine.read_session() as session:
        rows = list(
            session.scalars(
                select(HumanTask).where(
                    HumanTask.instance_id == instance_id, HumanTask.state == state
                )
            )
        )
    assert len(rows) == 1, rows
    return rows[0]


def candidates(engine: Engine, task_id: str) -> set[str]:
    with engine.read_session() as session:
        return set(
            session.scalars(
                select(User.username)
                .join(HumanTaskCandidate, HumanTaskCandidate.user_id == User.id)
                .where(HumanTaskCandidate.task_id == task_id)
            )
        )


def kinds(engine: Engine, **filters: Any) -> list[str]:
    return [e["kind"] for e in engine.audit_events("admin", per_page=200, **filters)["items"]]


def broken(engine: Engine) -> int:
    started = engine.start("flaky", user="alice")
    assert started["status"] == "error"
    return started["id"]


def xlsx(rows: list[list[Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# ------------------------------------------------------------ instances in error
def test_instances_in_error_show_message_and_failed_step_and_filter(
    engine: Engine, clock: FixedClock, processes: None
) -> None:
    first = broken(engine)
    clock.advance(hours=2)
    second = broken(engine)
    engine.start("report", {"unit": "agri"}, user="alice")  # running: not listed

    listed = engine.error_instances("admin")
    assert [i["id"] for i in listed["items"]] == [second, first]
    item = listed["items"][0]
    assert item["failed_step"] == "计算汇总" and "ZeroDivisionError" in item["error"]
    assert (item["process"], item["process_name"], item["started_by"]) == ("flaky", "汇总", "alice")

    assert engine.error_instances("admin", process="report")["total"] == 0
    later = (clock.now() - timedelta(hours=1)).isoformat()
    assert [i["id"] for i in engine.error_instances("admin", since=later)["items"]] == [second]
    assert [i["id"] for i in engine.error_instances("admin", until=later)["items"]] == [first]
    with pytest.raises(InvalidData):
        engine.error_instances("admin", since="昨天")
    with pytest.raises(Forbidden, match="系统管理员"):
        engine.error_instances("alice")


def test_bulk_retry_goes_on_past_failures_and_answers_per_id(
    engine: Engine, clock: FixedClock, processes: None
) -> None:
    failing = broken(engine)
    running = engine.start("report", {"unit": "agri"}, user="alice")["id"]
    clock.advance(days=1)  # the script works from today on

    result = engine.bulk("retry", [failing, running, 9999], user="admin", reason="脚本已修复")

    assert (result["done"], result["failed"]) == (1, 2)
    by_id = {r["id"]: r for r in result["results"]}
    assert by_id[failing]["ok"] and by_id[failing]["status"] == "running"
    assert not by_id[running]["ok"] and "出错" in by_id[running]["message"]
    assert by_id[9999]["error"] == "not_found"
    assert engine.instance(failing)["status"] == "running"  # kept despite the other failures
    assert task_of(engine, failing).title == "核对"
    assert "instance_retried" in kinds(engine, instance_id=failing)
    bulk = engine.audit_events("admin", kind="bulk_operation")["items"][0]
    assert bulk["reason"] == "脚本已修复" and bulk["detail"]["done"] == [failing]


def test_a_retry_that_fails_again_is_reported_as_failed(engine: Engine, processes: None) -> None:
    failing = broken(engine)
    result = engine.bulk("retry", [failing], user="admin", reason="再试一次")
    assert result["failed"] == 1 and "ZeroDivisionError" in result["results"][0]["message"]
    assert engine.instance(failing)["status"] == "error"


def test_bulk_suspend_resume_and_terminate_each_with_a_reason(
    engine: Engine, processes: None
) -> None:
    ids = [engine.start("report", {"unit": "agri"}, user="alice")["id"] for _ in range(2)]

    assert engine.bulk("suspend", ids, user="admin", reason="数据核查")["done"] == 2
    assert {engine.instance(i)["status"] for i in ids} == {"suspended"}
    suspended = engine.error_instances("admin", status="suspended")["items"]
    assert sorted(i["id"] for i in suspended) == ids and suspended[0]["failed_step"] is None
    assert engine.error_instances("admin")["total"] == 0
    with pytest.raises(InvalidData):
        engine.error_instances("admin", status="completed")
    again = engine.bulk("suspend", ids, user="admin", reason="数据核查")
    assert again["failed"] == 2 and all("suspended" in r["message"] for r in again["results"])

    assert engine.bulk("resume", ids[:1], user="admin", reason="核查完毕")["done"] == 1
    assert engine.instance(ids[0])["status"] == "running"

    assert engine.bulk("terminate", ids, user="admin", reason="重复发起")["done"] == 2
    assert {engine.instance(i)["status"] for i in ids} == {"terminated"}
    events = engine.audit_events("admin", kind="instance_terminated")["items"]
    assert {e["reason"] for e in events} == {"重复发起"} and len(events) == 2


def test_reset_to_an_earlier_step_one_or_in_bulk(engine: Engine, processes: None) -> None:
    instance_id = engine.start("report", {"unit": "agri"}, user="alice")["id"]
    engine.complete(task_of(engine, instance_id).id, {}, user="alice")
    assert task_of(engine, instance_id).name == "review"

    assert engine.reset_targets(instance_id, "admin") == [{"element": "fill", "title": "填报"}]
    result = engine.bulk("reset", [instance_id], user="admin", reason="填报有误", to="fill")

    assert result["done"] == 1 and result["results"][0]["reset_to"] == "填报"
    assert task_of(engine, instance_id).name == "fill"
    assert "instance_reset" in kinds(engine, instance_id=instance_id)
    wrong = engine.bulk("reset", [instance_id], user="admin", reason="再试", to="nowhere")
    assert wrong["failed"] == 1 and "找不到" in wrong["results"][0]["message"]


def test_reassign_tasks_in_bulk(engine: Engine, processes: None) -> None:
    ids = [engine.start("report", {"unit": "agri"}, user="alice")["id"] for _ in range(2)]
    tasks = [task_of(engine, i).id for i in ids]

    result = engine.bulk(
        "reassign", [*tasks, "no-such-task"], user="admin", reason="出差", to="wendy"
    )

    assert (result["done"], result["failed"]) == (2, 1)
    assert sorted(t["instance_id"] for t in engine.tasks("wendy")["items"]) == ids
    listed = engine.console_tasks("admin", assignee="wendy")
    assert {t["id"] for t in listed["items"]} == set(tasks)


def test_an_unexpected_failure_on_one_item_leaves_the_others_done(
    engine: Engine, processes: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [engine.start("report", {"unit": "agri"}, user="alice")["id"] for _ in range(2)]
    real_suspend = engine.suspend

    def suspend(instance_id: int, **kwargs: Any) -> None:
        if instance_id == ids[0]:
            raise RuntimeError("boom")
        real_suspend(instance_id, **kwargs)

    monkeypatch.setattr(engine, "suspend", suspend)
    result = engine.bulk("suspend", ids, user="admin", reason="核查")
    assert [r["ok"] for r in result["results"]] == [False, True]
    assert "系统内部错误" in result["results"][0]["message"]
    assert engine.instance(ids[1])["status"] == "suspended"


@pytest.mark.parametrize(
    ("action", "ids", "reason", "to", "field"),
    [
        ("retry", [1], "", None, "reason"),
        ("retry", [1], "   ", None, "reason"),
        ("retry", [], "原因", None, "ids"),
        ("retry", ["x"], "原因", None, "ids"),
        ("explode", [1], "原因", None, "action"),
        ("reset", [1], "原因", None, "to"),
        ("reassign", ["t"], "原因", "", "to"),
    ],
)
def test_bulk_refuses_bad_requests_before_doing_anything(
    engine: Engine, processes: None, action: str, ids: list, reason: str, to: Any, field: str
) -> None:
    with pytest.raises(InvalidData) as refused:
        engine.bulk(action, ids, user="admin", reason=reason, to=to)
    assert field in refused.value.errors


def test_only_an_admin_may_repair(engine: Engine, processes: None) -> None:
    failing = broken(engine)
    with pytest.raises(Forbidden):
        engine.bulk("retry", [failing], user="alice", reason="我来试试")
    assert engine.instance(failing)["status"] == "error"
    for call in (
        lambda: engine.console_tasks("alice"),
        lambda: engine.timers_overview("alice"),
        lambda: engine.audit_events("alice"),
        lambda: engine.directory_overview("alice"),
        lambda: engine.reset_targets(failing, "alice"),
        lambda: engine.retry_timer(1, user="alice", reason="x"),
        lambda: engine.create_user({"username": "x1"}, user="bob"),
        lambda: engine.deactivate_user("bob", user="alice", reason="x"),
        lambda: engine.import_users(b"", user="alice"),
        lambda: engine.create_unit({"name": "新单位"}, user="alice"),
        lambda: engine.create_role({"name": "新角色"}, user="alice"),
    ):
        with pytest.raises(Forbidden):
            call()


# ------------------------------------------------------------------------ timers
def test_timers_due_next_in_order(engine: Engine, clock: FixedClock, processes: None) -> None:
    first = engine.start("waiting", user="alice")["id"]
    clock.advance(hours=1)
    second = engine.start("waiting", user="alice")["id"]
    view = engine.timers_overview("admin")
    assert [t["instance_id"] for t in view["due_next"]] == [first, second]
    assert view["due_next"][0]["element"] == "wait" and view["due_next"][0]["overdue_seconds"] == 0
    assert view["queue_depth"] == 0 and view["late"] == [] and view["failed"] == []


def test_a_late_firing_is_listed_with_how_late(
    engine: Engine, clock: FixedClock, processes: None
) -> None:
    instance_id = engine.start("waiting", user="alice")["id"]
    due = clock.now() + timedelta(days=1)
    clock.set(due + timedelta(hours=2, minutes=5))
    assert engine.timers_overview("admin")["queue_depth"] == 1
    assert engine.health()["queue_depth"] == 1

    assert engine.fire_due_timers() == 1

    view = engine.timers_overview("admin")
    assert view["queue_depth"] == 0
    [late] = view["late"]
    assert (late["instance_id"], late["step"]) == (instance_id, "等待一天")
    assert late["late_seconds"] == 2 * 3600 + 300 and late["late"] == "2 小时 5 分"
    assert engine.timers_overview("admin", late_after=3 * 3600)["late"] == []


def test_a_failed_firing_is_listed_and_can_be_retried(
    engine: Engine, clock: FixedClock, processes: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance_id = engine.start("waiting", user="alice")["id"]
    clock.advance(days=1)

    def broken_store(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("存储暂不可用")

    with monkeypatch.context() as patch:
        patch.setattr(timer_worker, "load_run_nowait", broken_store)
        assert engine.fire_due_timers() == 0
    [failed] = engine.timers_overview("admin")["failed"]
    assert failed["instance_id"] == instance_id and "存储暂不可用" in failed["error"]
    with pytest.raises(InvalidData):
        engine.retry_timer(failed["id"], user="admin", reason=" ")

    engine.retry_timer(failed["id"], user="admin", reason="存储已恢复")

    with pytest.raises(Conflict, match="失败"):
        engine.retry_timer(failed["id"], user="admin", reason="再来")
    with pytest.raises(NotFound):
        engine.retry_timer(999, user="admin", reason="再来")
    assert engine.fire_due_timers() == 1
    assert task_of(engine, instance_id).title == "跟进"
    assert {"timer_failed", "timer_retried", "timer_fired"} <= set(
        kinds(engine, instance_id=instance_id)
    )


# ------------------------------------------------------------------------- audit
def test_audit_search_by_user_unit_process_instance_kind_and_time(
    engine: Engine, clock: FixedClock, processes: None
) -> None:
    report = engine.start("report", {"unit": "agri"}, user="alice")["id"]
    clock.advance(hours=1)
    engine.claim(task_of(engine, report).id, "bob")
    failing = broken(engine)

    assert set(kinds(engine, username="bob")) == {"task_claimed"}
    assert "instance_started" in kinds(engine, unit="农业农村局")
    assert kinds(engine, unit="water") == []
    assert set(kinds(engine, process="flaky")) >= {"instance_started", "instance_error"}
    assert "task_claimed" not in kinds(engine, process="flaky")
    assert set(kinds(engine, instance_id=report)) >= {"instance_started", "task_claimed"}
    assert kinds(engine, kind="instance_error") == ["instance_error"]
    assert "instance_started" not in kinds(engine, kind=["task_claimed", "instance_error"])
    since = clock.now().isoformat()
    assert "instance_error" in kinds(engine, since=since)
    assert all(e["at"] >= since for e in engine.audit_events("admin", since=since)["items"])
    assert "user_added" not in kinds(engine, since=since)
    assert kinds(engine, until="2026-11-30") == []  # a bare date ends with that day

    page = engine.audit_events("admin", page=2, per_page=2)
    assert page["page"] == 2 and len(page["items"]) == 2 and page["total"] > 4
    event = engine.audit_events("admin", instance_id=failing, kind="instance_error")["items"][0]
    assert event["process"] == "flaky" and event["task_title"] == "计算汇总"
    with pytest.raises(InvalidData):
        engine.audit_events("admin", instance_id="abc")


# ------------------------------------------------------- users, units and roles
def test_create_edit_and_reactivate_a_user(engine: Engine, processes: None) -> None:
    created = engine.create_user(
        {
            "username": "zhao",
            "name": "赵六",
            "password": "pw123456",
            "unit": "water",
            "roles": [HANDLER],
        },
        user="admin",
    )
    assert created == {
        "id": created["id"],
        "username": "zhao",
        "name": "赵六",
        "unit": "水利局",
        "roles": [HANDLER],
        "active": True,
    }
    assert engine.authenticate("zhao", "pw123456")["name"] == "赵六"

    changed = engine.update_user("zhao", {"unit": "agri", "name": "赵老六"}, user="admin")
    assert (changed["unit"], changed["name"]) == ("农业农村局", "赵老六")
    engine.update_user("zhao", {"password": "newpass"}, user="admin")
    assert engine.authenticate("zhao", "newpass") is not None
    event = engine.audit_events("admin", kind="user_changed")["items"][0]
    assert event["data_change"]["password"] == {"from": "***", "to": "***"}
    assert "newpass" not in str(engine.audit_events("admin", per_page=200))

    engine.deactivate_user("zhao", user="admin", reason="调离")
    assert engine.authenticate("zhao", "newpass") is None
    engine.activate_user("zhao", user="admin", reason="调回")
    assert engine.authenticate("zhao", "newpass") is not None


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"username": "", "password": "pw1234"}, "username"),
        ({"username": "alice", "password": "pw1234"}, "username"),
        ({"username": "有 空格", "password": "pw1234"}, "username"),
        ({"username": "new1", "password": "pw"}, "password"),
        ({"username": "new1", "password": "pw1234", "unit": "无此单位"}, "unit"),
        ({"username": "new1", "password": "pw1234", "roles": ["无此角色"]}, "roles"),
    ],
)
def test_a_wrong_new_user_is_refused_with_the_field(
    engine: Engine, processes: None, fields: dict, field: str
) -> None:
    with pytest.raises(InvalidData) as refused:
        engine.create_user(fields, user="admin")
    assert field in refused.value.errors


def test_deactivating_a_user_returns_their_tasks_to_the_units_pool(
    engine: Engine, processes: None
) -> None:
    instance_id = engine.start("report", {"unit": "agri"}, user="alice")["id"]
    task = task_of(engine, instance_id)
    assert candidates(engine, task.id) == {"alice", "bob"}
    engine.claim(task.id, "alice")
    assert engine.tasks("bob")["total"] == 0

    result = engine.deactivate_user("alice", user="admin", reason="调离本单位")

    assert result["active"] is False
    assert [t["id"] for t in result["tasks_returned"]] == [task.id]
    assert task_of(engine, instance_id).assignee_id is None
    assert candidates(engine, task.id) == {"bob"}
    assert [t["id"] for t in engine.tasks("bob")["items"]] == [task.id]
    assert engine.authenticate("alice", "pass1234") is None
    with pytest.raises(Forbidden, match="停用"):
        engine.tasks("alice")
    returned = engine.audit_events("admin", kind="task_returned_to_pool")["items"][0]
    assert returned["task_id"] == task.id and returned["reason"] == "调离本单位"
    assert returned["actor"] == "admin" and returned["detail"]["from"] == "alice"
    assert "user_deactivated" in kinds(engine, username="admin")
    notified = engine.notifications("bob")["items"][0]
    assert "退回待办池" in notified["title"]

    second = engine.start("report", {"unit": "agri"}, user="bob")["id"]
    unclaimed = task_of(engine, second).id
    assert candidates(engine, unclaimed) == {"bob"}
    engine.create_user({"username": "carol", "password": "pw1234", "unit": "agri"}, user="admin")
    engine.update_user("carol", {"roles": [HANDLER]}, user="admin")
    engine.deactivate_user("bob", user="admin", reason="借调")
    # bob was the last one in both pools: they are refilled from today's holders of the role
    assert candidates(engine, unclaimed) == {"carol"} == candidates(engine, task.id)
    assert engine.console_tasks("admin", unclaimable=True)["total"] == 0

    with pytest.raises(Conflict, match="已停用"):
        engine.deactivate_user("alice", user="admin", reason="再次")
    with pytest.raises(Conflict, match="自己"):
        engine.deactivate_user("admin", user="admin", reason="误操作")
    with pytest.raises(InvalidData):
        engine.deactivate_user("bob", user="admin", reason="")
    with pytest.raises(NotFound):
        engine.deactivate_user("nobody", user="admin", reason="无")


def test_a_task_nobody_else_can_take_is_flagged_for_reassignment(
    engine: Engine, processes: None
) -> None:
    instance_id = engine.start("report", {"unit": "water"}, user="wendy")["id"]
    task = task_of(engine, instance_id)
    engine.claim(task.id, "wendy")

    engine.deactivate_user("wendy", user="admin", reason="离职")

    assert candidates(engine, task.id) == set()
    [unclaimable] = engine.console_tasks("admin", unclaimable=True)["items"]
    assert unclaimable["id"] == task.id and unclaimable["unit"] == "水利局"
    event = engine.audit_events("admin", kind="task_returned_to_pool")["items"][0]
    assert "请改派" in event["reason"]


def test_units_and_roles_are_created_and_edited(engine: Engine, processes: None) -> None:
    unit = engine.create_unit({"name": "教育局", "code": "edu", "kind": "member"}, user="admin")
    assert unit == {
        "id": unit["id"],
        "code": "edu",
        "name": "教育局",
        "kind": "member",
        "parent": None,
    }
    child = engine.create_unit({"name": "教研室", "parent": "edu"}, user="admin")
    assert child["parent"] == "教育局" and child["code"] == "教研室"
    with pytest.raises(InvalidData) as clash:
        engine.create_unit({"name": "教育局"}, user="admin")
    assert "name" in clash.value.errors
    with pytest.raises(InvalidData, match="下级"):
        engine.update_unit("edu", {"parent": "教研室"}, user="admin")
    renamed = engine.update_unit("edu", {"name": "县教育局"}, user="admin")
    assert renamed["name"] == "县教育局"
    with pytest.raises(NotFound):
        engine.update_unit("nowhere", {"name": "x"}, user="admin")

    role = engine.create_role({"name": "督查员", "sees_all": True}, user="admin")
    assert (role["name"], role["sees_all"]) == ("督查员", True)
    engine.update_role("督查员", {"sees_all": False, "description": "只看本单位"}, user="admin")
    engine.update_user("bob", {"roles": [HANDLER, "督查员"]}, user="admin")
    overview = engine.directory_overview("admin")
    roles = {r["name"]: r for r in overview["roles"]}
    assert roles["督查员"]["members"] == 1 and roles["督查员"]["sees_all"] is False
    assert {"教育局", "教研室"} & {u["name"] for u in overview["units"]} == {"教研室"}
    with pytest.raises(InvalidData, match="泳道"):
        engine.update_role("督查员", {"name": "督察员"}, user="admin")
    assert {"unit_added", "unit_changed", "role_added", "role_changed"} <= set(kinds(engine))


# -------------------------------------------------------------------- import
HEADER = ["用户名", "姓名", "单位", "角色", "密码"]


def test_import_users_from_a_spreadsheet(engine: Engine, processes: None) -> None:
    content = xlsx(
        [
            HEADER,
            ["sun", "孙七", "农业农村局", "经办人", "pw123456"],
            ["zhou", "周八", "water", "经办人、系统管理员", 12345678],
            [None, None, None, None, None],
        ]
    )
    result = engine.import_users(content, user="admin")
    assert result["imported"] == 2
    by_name = {u["username"]: u for u in result["users"]}
    assert by_name["zhou"]["roles"] == [HANDLER, ADMIN] and by_name["zhou"]["unit"] == "水利局"
    assert engine.authenticate("zhou", "12345678") is not None
    assert "users_imported" in kinds(engine)


def test_a_spreadsheet_with_a_bad_row_imports_nobody(engine: Engine, processes: None) -> None:
    content = xlsx(
        [
            HEADER,
            ["sun", "孙七", "农业农村局", "经办人", "pw123456"],
            ["alice", "重名", "农业农村局", "经办人", "pw123456"],
            ["qian", "钱九", "不存在的局", "经办人", "pw123456"],
            ["sun", "又是孙七", "农业农村局", "经办人", "pw123456"],
            ["li", "李十", "农业农村局", "管理员", "pw"],
        ]
    )
    with pytest.raises(InvalidData) as refused:
        engine.import_users(content, user="admin")

    errors = refused.value.errors
    assert set(errors) == {"row3", "row4", "row5", "row6"}
    assert errors["row3"] == "第 3 行：用户名“alice”已存在"
    assert "不存在的局" in errors["row4"] and "第 2 行重复" in errors["row5"]
    assert "密码" in errors["row6"]
    assert "未导入任何用户" in refused.value.message
    with engine.read_session() as session:
        assert session.scalar(select(func.count()).select_from(User)) == 4
    assert "users_imported" not in kinds(engine)


@pytest.mark.parametrize(
    "content",
    [b"not a spreadsheet", xlsx([["用户名", "密码"], ["x1", "pw1234"]]), xlsx([HEADER])],
)
def test_an_unusable_file_is_refused_in_chinese(
    engine: Engine, processes: None, content: bytes
) -> None:
    with pytest.raises(InvalidData) as refused:
        engine.import_users(content, user="admin")
    assert refused.value.errors["file"]


# ------------------------------------------------------------ workers and health
def test_heartbeats_tell_which_workers_are_alive(
    engine: Engine, clock: FixedClock, processes: None
) -> None:
    assert engine.health()["workers_alive"] == 0
    assert "没有存活" in engine.health()["problems"][0]
    engine.worker_heartbeat(name="host-a:1", interval=2, fired=3)
    engine.worker_heartbeat(name="host-a:1", interval=2, fired=1)
    engine.worker_heartbeat(name="host-b:2", interval=2)
    clock.advance(seconds=30)
    engine.worker_heartbeat(name="host-b:2", interval=2)
    clock.advance(seconds=45)

    health = engine.health()
    workers = {w["name"]: w for w in health["workers"]}
    assert workers["host-a:1"]["alive"] is False and workers["host-b:2"]["alive"] is True
    assert (workers["host-a:1"]["loops"], workers["host-a:1"]["fired_total"]) == (2, 4)
    assert health["workers_alive"] == 1 and health["database"] == "ok"

    engine.worker_heartbeat(name="host-b:2", interval=2, stopping=True)
    assert engine.health()["workers_alive"] == 0


def test_health_counts_instances_tasks_and_timers(engine: Engine, processes: None) -> None:
    broken(engine)
    engine.start("report", {"unit": "agri"}, user="alice")
    engine.start("waiting", user="alice")
    health = engine.health()
    assert health["instances"] == {"error": 1, "running": 2}
    assert health["open_tasks"] == 1 and health["timers"] == {"waiting": 1}
    assert health["status"] == "warning" and any("出错" in p for p in health["problems"])


# ------------------------------------------------------------------- JSON API
@pytest.fixture
def client(engine: Engine, processes: None):
    app = create_app({"TESTING": True, "SECRET_KEY": "test"}, engine=engine)
    return app.test_client()


def bearer(client: Any, username: str) -> dict[str, str]:
    response = client.post(
        "/api/v1/auth/token", json={"username": username, "password": "pass1234"}
    )
    assert response.status_code == 200, response.get_json()
    return {"Authorization": f"Bearer {response.get_json()['token']}"}


ADMIN_GETS = [
    "/api/v1/console/errors",
    "/api/v1/console/tasks",
    "/api/v1/console/timers",
    "/api/v1/audit",
    "/api/v1/console/directory",
    "/api/v1/console/health",
]


def test_api_refuses_non_admins_and_audits_the_refusal(engine: Engine, client: Any) -> None:
    alice = bearer(client, "alice")
    for path in ADMIN_GETS:
        response = client.get(path, headers=alice)
        assert response.status_code == 403, path
        assert response.get_json()["error"] == "forbidden"
    response = client.post(
        "/api/v1/console/bulk",
        json={"action": "terminate", "ids": [1], "reason": "试试"},
        headers=alice,
    )
    assert response.status_code == 403
    assert client.post("/api/v1/users", json={"username": "x1"}, headers=alice).status_code == 403
    assert client.get("/api/v1/console/errors").status_code == 401
    denied = engine.audit_events("admin", kind="access_denied", username="alice")
    assert denied["total"] == len(ADMIN_GETS) + 2


def test_api_error_list_and_bulk_retry(engine: Engine, clock: FixedClock, client: Any) -> None:
    admin = bearer(client, "admin")
    failing = broken(engine)
    listed = client.get("/api/v1/console/errors?process=flaky", headers=admin).get_json()
    assert [i["id"] for i in listed["items"]] == [failing]
    assert listed["items"][0]["failed_step"] == "计算汇总"
    bad = client.get("/api/v1/console/errors?since=someday", headers=admin)
    assert bad.status_code == 422 and "since" in bad.get_json()["errors"]

    clock.advance(days=1)
    admin = bearer(client, "admin")  # a new day, a new token
    response = client.post(
        "/api/v1/console/bulk",
        json={"action": "retry", "ids": [failing, 4242], "reason": "已修复"},
        headers=admin,
    )
    assert response.status_code == 200
    body = response.get_json()
    assert (body["done"], body["failed"]) == (1, 1)
    assert engine.instance(failing)["status"] == "running"
    no_reason = client.post(
        "/api/v1/console/bulk", json={"action": "retry", "ids": [failing]}, headers=admin
    )
    assert no_reason.status_code == 422 and "reason" in no_reason.get_json()["errors"]
    assert client.post("/api/v1/console/bulk", data="x", headers=admin).status_code == 400


def test_api_reset_targets_timers_and_audit(engine: Engine, client: Any) -> None:
    admin = bearer(client, "admin")
    report = engine.start("report", {"unit": "agri"}, user="alice")["id"]
    engine.complete(task_of(engine, report).id, {}, user="alice")
    engine.start("waiting", user="alice")

    targets = client.get(f"/api/v1/console/instances/{report}/reset-targets", headers=admin)
    assert targets.get_json() == [{"element": "fill", "title": "填报"}]
    assert (
        client.get("/api/v1/console/instances/999/reset-targets", headers=admin).status_code == 404
    )
    timers = client.get("/api/v1/console/timers?late_after=0", headers=admin).get_json()
    assert len(timers["due_next"]) == 1 and timers["queue_depth"] == 0
    assert client.get("/api/v1/console/timers?late_after=-3", headers=admin).status_code == 422
    retry = client.post("/api/v1/console/timers/1/retry", json={"reason": "试"}, headers=admin)
    assert retry.status_code == 409

    events = client.get(
        f"/api/v1/audit?instance_id={report}&kind=task_completed&kind=instance_started",
        headers=admin,
    ).get_json()
    assert {e["kind"] for e in events["items"]} == {"task_completed", "instance_started"}
    assert client.get("/api/v1/audit?page=x", headers=admin).status_code == 422


def test_api_user_unit_and_role_administration(engine: Engine, client: Any) -> None:
    admin = bearer(client, "admin")
    created = client.post(
        "/api/v1/users",
        json={"username": "zhao", "password": "pw123456", "unit": "agri", "roles": [HANDLER]},
        headers=admin,
    )
    assert created.status_code == 201 and created.get_json()["unit"] == "农业农村局"
    clash = client.post(
        "/api/v1/users", json={"username": "zhao", "password": "pw1234"}, headers=admin
    )
    assert clash.status_code == 422 and "username" in clash.get_json()["errors"]
    patched = client.patch("/api/v1/users/zhao", json={"name": "赵六"}, headers=admin)
    assert patched.get_json()["name"] == "赵六"
    assert (
        client.patch("/api/v1/users/nobody", json={"name": "x"}, headers=admin).status_code == 404
    )

    instance_id = engine.start("report", {"unit": "agri"}, user="zhao")["id"]
    engine.claim(task_of(engine, instance_id).id, "zhao")
    gone = client.post("/api/v1/users/zhao/deactivate", json={"reason": "调离"}, headers=admin)
    assert gone.status_code == 200 and len(gone.get_json()["tasks_returned"]) == 1
    again = client.post("/api/v1/users/zhao/deactivate", json={"reason": "调离"}, headers=admin)
    assert again.status_code == 409
    back = client.post("/api/v1/users/zhao/activate", json={"reason": "调回"}, headers=admin)
    assert back.get_json()["active"] is True

    unit = client.post("/api/v1/units", json={"name": "教育局", "code": "edu"}, headers=admin)
    assert unit.status_code == 201
    renamed = client.patch("/api/v1/units/edu", json={"name": "县教育局"}, headers=admin)
    assert renamed.get_json()["name"] == "县教育局"
    role = client.post("/api/v1/roles", json={"name": "督查员", "sees_all": True}, headers=admin)
    assert role.status_code == 201 and role.get_json()["sees_all"] is True
    changed = client.patch("/api/v1/roles/督查员", json={"sees_all": False}, headers=admin)
    assert changed.get_json()["sees_all"] is False
    directory = client.get("/api/v1/console/directory", headers=admin).get_json()
    assert "县教育局" in {u["name"] for u in directory["units"]}


def test_api_spreadsheet_import_all_or_nothing(engine: Engine, client: Any) -> None:
    admin = bearer(client, "admin")
    bad = xlsx([HEADER, ["sun", "孙七", "agri", HANDLER, "pw1234"], ["x", "", "", "", "pw1234"]])
    response = client.post(
        "/api/v1/users/import",
        data={"file": (io.BytesIO(bad), "users.xlsx")},
        headers=admin,
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert response.get_json()["errors"] == {
        "row3": "第 3 行：用户名“x”只能包含字母、数字、下划线、点和连字符"
    }
    assert engine.authenticate("sun", "pw1234") is None

    good = xlsx([HEADER, ["sun", "孙七", "agri", HANDLER, "pw1234"]])
    response = client.post(
        "/api/v1/users/import",
        data={"file": (io.BytesIO(good), "users.xlsx")},
        headers=admin,
        content_type="multipart/form-data",
    )
    assert response.status_code == 201 and response.get_json()["imported"] == 1
    missing = client.post("/api/v1/users/import", data={}, headers=admin)
    assert missing.status_code == 422 and "file" in missing.get_json()["errors"]


def test_health_and_prometheus_metrics(engine: Engine, processes: None) -> None:
    broken(engine)
    engine.worker_heartbeat(name="w1", interval=2, fired=1)
    app = create_app({"TESTING": True, "SECRET_KEY": "t", "METRICS_TOKEN": "s3cret"}, engine=engine)
    client = app.test_client()
    health = client.get("/health").get_json()
    assert (health["status"], health["workers_alive"], health["queue_depth"]) == ("ok", 1, 0)
    admin = bearer(client, "admin")
    detail = client.get("/api/v1/console/health", headers=admin).get_json()
    assert detail["instances"] == {"error": 1} and detail["workers"][0]["name"] == "w1"

    assert client.get("/metrics").status_code == 401  # neither the token nor an admin
    response = client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert response.status_code == 200 and response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert 'duban_instances{status="error"} 1.0' in text
    assert "duban_workers_alive 1.0" in text and "duban_database_up 1.0" in text
    assert "duban_timer_queue_depth 0.0" in text


def test_metrics_can_require_a_token(engine: Engine, processes: None) -> None:
    app = create_app({"TESTING": True, "SECRET_KEY": "t", "METRICS_TOKEN": "s3cret"}, engine=engine)
    client = app.test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer s3cret"}).status_code == 200


# ------------------------------------------------------------------------ pages
@pytest.fixture
def pages(engine: Engine, processes: None):
    app = create_app(
        {"TESTING": True, "SECRET_KEY": "test", "WTF_CSRF_ENABLED": False}, engine=engine
    )
    return app.test_client()


def sign_in(pages: Any, username: str) -> None:
    response = pages.post("/login", data={"username": username, "password": "pass1234"})
    assert response.status_code == 302


CONSOLE_PAGES = {
    "/console/errors": "异常实例",
    "/console/tasks": "待办改派",
    "/console/timers": "即将到期",
    "/console/directory/": "从表格导入用户",
    "/console/audit": "审计记录",
    "/console/health": "定时器工作进程",
}


def test_console_pages_are_for_admins_only(engine: Engine, pages: Any) -> None:
    broken(engine)
    sign_in(pages, "alice")
    for path in CONSOLE_PAGES:
        response = pages.get(path)
        assert response.status_code == 403, path
        assert "系统管理员" in response.get_data(as_text=True)
    sign_in(pages, "admin")
    for path, text in CONSOLE_PAGES.items():
        response = pages.get(path)
        assert response.status_code == 200, path
        assert text in response.get_data(as_text=True), path
    assert "计算汇总" in pages.get("/console/errors").get_data(as_text=True)


def test_bulk_page_shows_each_outcome(engine: Engine, pages: Any) -> None:
    failing = broken(engine)
    running = engine.start("report", {"unit": "agri"}, user="alice")["id"]
    sign_in(pages, "admin")
    response = pages.post(
        "/console/bulk",
        data={
            "action": "suspend",
            "ids": [str(failing)],
            "typed_ids": f"{running}，777",
            "reason": "核查",
        },
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "成功 1 项，失败 2 项" in page
    assert engine.instance(running)["status"] == "suspended"
    refused = pages.post("/console/bulk", data={"action": "suspend", "ids": [str(running)]})
    assert refused.status_code == 302
    assert "请填写原因" in pages.get(refused.headers["Location"]).get_data(as_text=True)


def test_import_page_reports_each_bad_row(engine: Engine, pages: Any) -> None:
    sign_in(pages, "admin")
    content = xlsx([HEADER, ["sun", "孙七", "无此单位", HANDLER, "pw1234"]])
    response = pages.post(
        "/console/directory/import",
        data={"file": (io.BytesIO(content), "users.xlsx")},
        content_type="multipart/form-data",
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "未导入任何用户" in page and "第 2 行：单位“无此单位”不存在" in page


def test_the_worker_command_writes_a_heartbeat(
    engine: Engine, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    result = CliRunner().invoke(cli, ["worker", "--once"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    [worker] = engine.health()["workers"]
    assert worker["loops"] == 1 and worker["stopped"]  # --once: ran, then exited


def test_reset_page_offers_earlier_steps(engine: Engine, pages: Any) -> None:
    instance_id = engine.start("report", {"unit": "agri"}, user="alice")["id"]
    engine.complete(task_of(engine, instance_id).id, {}, user="alice")
    sign_in(pages, "admin")
    form = pages.get(f"/console/instances/{instance_id}/reset").get_data(as_text=True)
    assert '<option value="fill">填报</option>' in form
    done = pages.post(
        "/console/bulk",
        data={"action": "reset", "ids": str(instance_id), "to": "fill", "reason": "退回重填"},
    )
    assert "已重置到：填报" in done.get_data(as_text=True)
    assert task_of(engine, instance_id).name == "fill"


def test_timer_page_requeues_a_failed_timer(
    engine: Engine, clock: FixedClock, pages: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine.start("waiting", user="alice")
    clock.advance(days=1)
    with monkeypatch.context() as patch:
        patch.setattr(timer_worker, "load_run_nowait", lambda *a, **k: 1 / 0)
        engine.fire_due_timers()
    sign_in(pages, "admin")
    page = pages.get("/console/timers").get_data(as_text=True)
    assert "ZeroDivisionError" in page and "重新触发" in page
    timer_id = engine.timers_overview("admin")["failed"][0]["id"]
    response = pages.post(f"/console/timers/{timer_id}/retry", data={"reason": "已排除故障"})
    assert response.status_code == 302
    assert "已重新排队" in pages.get("/console/timers").get_data(as_text=True)
    assert engine.timers_overview("admin")["queue_depth"] == 1


# ------------------------------------------------------- fuzzing, as the admin
def _console_operations() -> list[str]:

    paths = yaml.safe_load((FRAGMENTS / "console.yaml").read_text(encoding="utf-8"))["paths"]
    return sorted(f"{method.upper()} {path}" for path, ops in paths.items() for method in ops)


@pytest.mark.parametrize("label", _console_operations())
def test_fuzzed_console_requests_get_documented_answers(
    label: str, engine: Engine, client: Any
) -> None:
    """schemathesis, as 系统管理员: never a 5xx, always an answer the document describes.
    (A valid-looking request may still be refused by a business rule — a duplicate username,
    an unknown unit — so the "schema-valid data is accepted" check is left out.)"""

    broken(engine)
    engine.start("waiting", user="alice")
    token = bearer(client, "admin")["Authorization"]
    schema = schemathesis.openapi.from_dict(document())
    operation = next(op.ok() for op in schema.get_all_operations() if op.ok().label == label)
    app = client.application
    schema.app = app

    @given(case=operation.as_strategy())
    @settings(
        max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
    )
    def answer_as_documented(case: Any) -> None:
        case.call_and_validate(
            app=app,
            headers={"Authorization": token},
            excluded_checks=[positive_data_acceptance],
        )

    answer_as_documented()
