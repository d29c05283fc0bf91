"""The operations console in a real browser (Debian's Chromium driven by Playwright) against the
real app on loopback: the administrator retries an instance in error, reassigns a task and
deactivates a user, each with a reason. Screenshots land in artifacts/screenshots/."""

from collections.abc import Iterator
from datetime import timedelta

import pytest
from playwright.sync_api import Browser, Page, expect

from engine import Engine, FixedClock
from tests.browser import open_page, serving, shot, sign_in
from tests.conftest import START, fresh_database
from tests.test_console import ADMIN, HANDLER, flaky_script, two_steps


@pytest.fixture(scope="module")
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, clock: FixedClock) -> Iterator[Engine]:
    folder = tmp_path_factory.mktemp("console")
    with fresh_database(folder) as url:
        eng = Engine(url, clock=clock)
        eng.create_schema()
        eng.add_unit("农业农村局", code="agri")
        eng.add_user("alice", "pass1234", name="张三", roles=[HANDLER], unit="农业农村局")
        eng.add_user("bob", "pass1234", name="李四", roles=[HANDLER], unit="农业农村局")
        eng.add_user("admin", "pass1234", name="管理员", roles=[ADMIN])
        bundle = folder / "bundle"
        bundle.mkdir()
        (bundle / "report.bpmn").write_text(two_steps(), encoding="utf-8")
        (bundle / "flaky.bpmn").write_text(flaky_script(), encoding="utf-8")
        eng.deploy(bundle)
        yield eng
        eng.close()


@pytest.fixture(scope="module")
def base_url(engine: Engine) -> Iterator[str]:
    with serving(engine, "console-tests") as url:
        yield url


@pytest.fixture
def admin(browser: Browser, base_url: str) -> Iterator[Page]:
    with open_page(browser, base_url) as page:
        sign_in(page, "admin", "pass1234")
        yield page


def test_admin_retries_an_instance_in_error(
    admin: Page, base_url: str, engine: Engine, clock: FixedClock
) -> None:
    clock.set(START)  # the script fails on the first day
    failing = engine.start("flaky", user="alice")["id"]
    assert engine.instance(failing)["status"] == "error"
    admin.goto(f"{base_url}/console/errors")
    row = admin.get_by_role("row").filter(has_text=f"#{failing}")
    expect(row).to_contain_text("计算汇总")
    expect(row).to_contain_text("ZeroDivisionError")
    shot(admin, "console-errors", full_page=True)

    clock.set(START + timedelta(days=1))  # the script works from today on
    row.get_by_role("checkbox").check()
    admin.get_by_label("操作").select_option(label="重试")
    admin.get_by_label("原因").fill("上游数据已补齐")
    admin.get_by_role("button", name="执行").click()

    expect(admin.get_by_role("heading", level=2)).to_contain_text("成功 1 项，失败 0 项")
    shot(admin, "console-bulk-result", full_page=True)
    assert engine.instance(failing)["status"] == "running"
    admin.goto(f"{base_url}/console/errors")
    expect(admin.get_by_text("没有出错的流程实例。")).to_be_visible()
    events = engine.audit_events("admin", instance_id=failing, kind="instance_retried")["items"]
    assert events[0]["reason"] == "上游数据已补齐"


def test_admin_reassigns_a_task(admin: Page, base_url: str, engine: Engine) -> None:
    instance_id = engine.start("report", {"unit": "agri"}, user="alice")["id"]
    task = next(t for t in engine.tasks("alice")["items"] if t["instance_id"] == instance_id)
    engine.claim(task["id"], "alice")

    admin.goto(f"{base_url}/console/tasks")
    admin.get_by_label("实例编号").fill(str(instance_id))
    admin.get_by_role("button", name="筛选").click()
    admin.get_by_role("checkbox", name=f"（实例 #{instance_id}）").check()
    admin.get_by_label("改派给（用户名）").fill("bob")
    admin.get_by_label("改派原因").fill("张三出差")
    shot(admin, "console-tasks", full_page=True)
    admin.get_by_role("button", name="改派").click()

    expect(admin.get_by_role("heading", level=2)).to_contain_text("成功 1 项")
    expect(admin.get_by_role("row").filter(has_text="成功")).to_contain_text("bob")
    assert task["id"] in [t["id"] for t in engine.tasks("bob")["items"]]
    assert task["id"] not in [t["id"] for t in engine.tasks("alice")["items"]]
    event = engine.audit_events("admin", kind="task_reassigned")["items"][0]
    assert (event["reason"], event["detail"]["to"]) == ("张三出差", "bob")


def test_admin_deactivates_a_user_whose_task_goes_back_to_the_pool(
    admin: Page, base_url: str, engine: Engine
) -> None:
    engine.add_user("erin", "pass1234", name="钱七", roles=[HANDLER], unit="农业农村局")
    instance_id = engine.start("report", {"unit": "agri"}, user="erin")["id"]
    task = next(t for t in engine.tasks("erin")["items"] if t["instance_id"] == instance_id)
    engine.claim(task["id"], "erin")
    assert task["id"] not in [t["id"] for t in engine.tasks("alice")["items"]]

    admin.goto(f"{base_url}/console/directory/")
    row = admin.locator("tr[data-user='erin']")
    row.get_by_label("停用原因").fill("调离本单位")
    admin.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="停用 erin").click()

    expect(admin.locator(".flash")).to_contain_text("已停用用户 erin")
    expect(admin.locator(".flash")).to_contain_text("已退回单位待办池")
    shot(admin, "console-directory", full_page=True)
    expect(admin.locator("tr[data-user='erin']")).to_have_count(0)  # only active users shown
    admin.get_by_role("link", name="全部（含已停用）").click()
    expect(admin.locator("tr[data-user='erin']")).to_contain_text("已停用")

    assert engine.authenticate("erin", "pass1234") is None
    assert task["id"] in [t["id"] for t in engine.tasks("alice")["items"]]  # the unit's pool
    returned = engine.audit_events("admin", kind="task_returned_to_pool")["items"]
    assert (task["id"], "调离本单位") in [(e["task_id"], e["reason"]) for e in returned]


def test_admin_finds_the_deactivation_in_the_audit_and_sees_health(
    admin: Page, base_url: str, engine: Engine
) -> None:
    engine.add_user("dave", "pass1234", name="赵六", roles=[HANDLER], unit="农业农村局")
    engine.deactivate_user("dave", user="admin", reason="借调市里")
    engine.worker_heartbeat(name="worker-1", interval=2, fired=3)
    admin.goto(f"{base_url}/console/audit")
    admin.get_by_label("事件类型").select_option(value="user_deactivated")
    admin.get_by_role("button", name="查询").click()
    row = admin.get_by_role("row").filter(has_text="借调市里")
    expect(row).to_contain_text("停用用户")
    expect(row).to_contain_text("管理员")
    expect(row).to_contain_text("dave")
    shot(admin, "console-audit", full_page=True)

    admin.get_by_role("link", name="系统健康").click()
    expect(admin.get_by_role("row").filter(has_text="worker-1")).to_contain_text("存活")
    shot(admin, "console-health", full_page=True)
