"""The pages in a real browser (Debian's Chromium driven by Playwright) against the real app on
loopback, with a fresh database loaded by the demo loader: people log in as the demo roles and
do the real work. Screenshots of the main pages land in artifacts/screenshots/."""

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from engine import Engine
from tests.browser import ROOT, open_page, serving, shot, sign_in
from tests.conftest import fresh_database
from webui.demo import load_demo


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """The demo county in a database nobody else uses, for the whole module (the demo load is
    the slow part)."""
    with fresh_database(tmp_path_factory.mktemp("ui")) as url:
        eng = Engine(url)
        eng.create_schema()
        for _line in load_demo(eng, ROOT / "processes", "demo"):
            pass
        yield eng
        eng.close()


@pytest.fixture(scope="module")
def base_url(engine: Engine) -> Iterator[str]:
    with serving(engine, "ui-tests") as url:
        yield url


@pytest.fixture
def page(browser: Browser, base_url: str) -> Iterator[Page]:
    with open_page(browser, base_url) as opened:
        yield opened


def open_task(page: Page, step: str, instance_id: int) -> None:
    """Open a step of an instance from the instance page's list of current steps."""
    page.goto(f"/instances/{instance_id}")
    page.locator("#open-h + .table-wrap").get_by_role("link", name=step).first.click()
    expect(page.locator("h1")).to_contain_text(step)


def open_from_inbox(page: Page, step: str, instance_title: str) -> None:
    """Open my task from the inbox, claiming it in one click if my unit may claim it."""
    page.goto("/inbox")
    row = page.locator("table.list tbody tr").filter(has_text=step).filter(has_text=instance_title)
    claim = row.first.get_by_role("button", name=re.compile("认领"))
    if claim.count():
        claim.click()
    else:
        row.first.get_by_role("link", name=step).click()
    expect(page.locator("h1")).to_contain_text(step)


def submitted(page: Page) -> None:
    expect(page.locator(".flash.ok")).to_contain_text("已提交")


# ---------------------------------------------------------------------- the meeting, end to end
REPORT = {
    "summary": "本季度专班各项工作按计划推进，重点项目完成年度投资的九成以上。",
    "next_plan": "抓好年底前项目收尾",
}


def test_a_meeting_from_start_to_the_ledger(page: Page, engine: Engine) -> None:
    title = "县指挥办主任会议（浏览器测试）"
    # staff starts a 主任会议 and fills in 议题征集, adding a repeatable row
    sign_in(page, "staff")
    page.goto("/start")
    card = page.locator("li.card").filter(has_text="主任会议").first
    card.get_by_label("标题").fill(title)
    card.get_by_role("button", name="发起").click()
    expect(page.locator("h1")).to_contain_text("议题征集")
    page.get_by_label("会议名称").fill(title)
    page.get_by_label("拟召开日期").fill("2027-01-08")
    topics = page.locator("fieldset.rows").filter(has_text="已征集议题")
    topics.locator("fieldset.row").nth(0).get_by_label("议题", exact=True).fill("研究典型村培育")
    topics.get_by_role("button", name=re.compile("添加")).click()
    topics.locator("fieldset.row").nth(1).get_by_label("议题", exact=True).fill("研究道路征地")
    page.get_by_role("button", name="提交").click()
    submitted(page)
    instance_id = _instance_titled(engine, title)

    # a liaison submits the work report in the browser; the other five through the engine
    sign_in(page, "unit_liaison")
    open_from_inbox(page, "工作情况汇报", title)
    page.get_by_label("工作情况").fill(REPORT["summary"])
    page.get_by_label("下步工作计划").fill(REPORT["next_plan"])
    page.get_by_role("button", name="提交").click()
    submitted(page)
    for liaison in ("fgj_liaison", "zjj_liaison", "sthjj_liaison", "jtysj_liaison", "czj_liaison"):
        _complete(engine, instance_id, "submit_report", liaison, REPORT)

    # staff compiles the agenda (rows with a select) and sends it up
    sign_in(page, "staff")
    open_task(page, "汇总议题", instance_id)
    agenda = page.locator("fieldset.rows").filter(has_text="会议议题").first
    rows = agenda.locator(".row-list > fieldset.row")
    for index in range(rows.count()):  # the step proposes rows from the reports; keep one
        if index:
            rows.nth(1).get_by_role("button", name="删除此项").click()
    first = rows.nth(0)
    first.get_by_label("议题", exact=True).fill("听取各工作专班重点任务推进情况汇报")
    first.get_by_role("radio", name="工作情况汇报").check()
    page.get_by_role("button", name="提交").click()
    submitted(page)

    # the director sees the agenda above the form and approves it with 同意
    sign_in(page, "director")
    open_task(page, "审定议题", instance_id)
    expect(page.locator("section.context")).to_contain_text("听取各工作专班重点任务推进情况汇报")
    page.get_by_label("审定意见").fill("同意，按议程准备。")
    page.get_by_role("button", name="同意").click()
    submitted(page)

    # staff: the notice through the engine, the meeting record in the browser (decision items)
    _complete(
        engine,
        instance_id,
        "prepare_notice",
        "staff",
        {"meeting_time": "2027-01-08T09:00:00+08:00", "location": "第一会议室", "host": "张建国"},
    )
    sign_in(page, "staff")
    open_task(page, "会议记录", instance_id)
    page.get_by_label("实际召开时间").fill("2027-01-08T09:00")
    page.get_by_label("出席人员", exact=True).select_option(["director", "deputy"])
    page.get_by_label("会议主要内容").fill("会议听取了各工作专班重点任务推进情况汇报并研究部署。")
    items = page.locator("fieldset.rows").filter(has_text="会议决定事项")
    item = items.locator(".row-list > fieldset.row").first
    item.get_by_label("事项内容").fill("浏览器测试：加快标准厂房建设")
    item.get_by_label("责任单位", exact=True).select_option(label="发改局")
    item.get_by_label("完成时限").fill("2027-03-31")
    shot(page, "task-form")
    page.get_by_role("button", name="提交").click()
    submitted(page)
    _complete(
        engine,
        instance_id,
        "draft_minutes",
        "staff",
        {
            "doc_kind": "会议纪要",
            "doc_title": "县指挥办主任会议纪要（浏览器测试）",
            "doc_body": "会议议定：加快产业园区标准厂房建设，按期完成主体工程。" * 2,
            "distribute_roles": ["主任"],
            "distribute_units": ["fgj"],
        },
    )

    # the director approves the minutes: each decision item starts a 督办事项
    sign_in(page, "director")
    open_task(page, "审签", instance_id)
    page.get_by_role("button", name="同意印发").click()
    submitted(page)

    # staff opens the new 督办事项 from the meeting's page; its 督办单 comes prefilled
    sign_in(page, "staff")
    page.goto(f"/instances/{instance_id}")
    expect(page.locator("#children-h")).to_contain_text("派生流程")
    expect(page.locator("#diagram")).to_have_attribute("data-ready", "true")
    expect(page.locator(".djs-element.state-done").first).to_be_attached()
    expect(page.locator("#docs-h + ul")).to_contain_text("纪要")  # the documents it produced
    shot(page, "meeting")
    page.get_by_role("link", name="浏览器测试：加快标准厂房建设").click()
    expect(page.locator(".facts")).to_contain_text("督办事项")
    child_url = page.url
    page.locator("#open-h + .table-wrap").get_by_role("link").first.click()
    expect(page.get_by_label("牵头单位", exact=True)).to_have_value("fgj")
    if not page.get_by_label("督办内容与工作要求").input_value():
        page.get_by_label("督办内容与工作要求").fill("按期完成产业园区标准厂房主体工程。")
    page.get_by_role("button", name="提交").click()
    submitted(page)

    # the decision item is in the ledger, and links back to its instance (and the meeting)
    page.goto("/ledger?unit=fgj")
    row = page.locator("table.ledger tbody tr").filter(has_text="浏览器测试：加快标准厂房建设")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("发改局")
    expect(row).to_contain_text("2027-03-31")
    row.get_by_role("link").first.click()
    assert page.url == child_url
    expect(page.locator(".facts")).to_contain_text("上级流程")


def _instance_titled(engine: Engine, title: str) -> int:
    started = engine.tasks("staff", box="started", per_page=500)["items"]
    return next(i["id"] for i in started if i["title"] == title)


def _complete(engine: Engine, instance_id: int, step: str, user: str, data: dict) -> None:
    detail = engine.instance(instance_id, user)
    for task in detail["tasks"]:
        if task["name"] == step and task["state"] == "open":
            candidates = engine.tasks(user, per_page=500)["items"]
            if any(t["id"] == task["id"] for t in candidates):
                engine.complete(task["id"], data, user=user)
                return
    raise AssertionError(f"{user} has no open {step} in instance {instance_id}")


# --------------------------------------------------------------------------- other demo roles
def test_a_liaison_reports_progress_and_a_validation_error_keeps_the_typed_data(
    page: Page,
) -> None:
    sign_in(page, "unit_liaison")
    expect(page.locator("header .me")).to_contain_text("农业农村局")
    open_from_inbox(page, "进度填报", "高标准农田建设")
    done = "二片区灌排渠道完成六成，三片区完成土地平整。"
    page.get_by_label("完成进度（%）").fill("200")
    page.get_by_label("本期完成情况").fill(done)
    page.get_by_role("button", name="提交").click()
    # refused next to the field, in Chinese, with everything typed still there
    error = page.locator("#f-progress-error")
    expect(error).to_contain_text("不能大于 100")
    expect(page.get_by_label("完成进度（%）")).to_have_value("200")
    expect(page.get_by_label("本期完成情况")).to_have_value(done)
    expect(page.get_by_label("完成进度（%）")).to_have_attribute("aria-invalid", "true")
    shot(page, "validation-error")
    page.get_by_label("完成进度（%）").fill("60")
    page.get_by_role("button", name="提交").click()
    submitted(page)
    page.goto("/ledger")
    row = page.locator("table.ledger tbody tr").filter(has_text="高标准农田建设")
    expect(row).to_contain_text("60%")
    expect(row).to_contain_text(done)


def test_an_overdue_item_shows_red_in_the_ledger_and_on_the_dashboard(page: Page) -> None:
    sign_in(page, "staff")
    page.goto("/ledger")
    page.get_by_label("亮灯").select_option("red")
    page.get_by_role("button", name="筛选").click()
    row = page.locator("table.ledger tbody tr").filter(has_text="农村公路提级改造")
    expect(row.locator(".light.red")).to_have_text("红灯")
    expect(page.locator("table.ledger tbody .light.green")).to_have_count(0)
    export = page.get_by_role("link", name="导出 Excel")
    expect(export).to_have_attribute("href", re.compile(r"/api/v1/items\?.*light=red.*format=xlsx"))
    shot(page, "ledger")
    page.goto("/dashboard")
    overdue = page.locator("#od-h + .table-wrap")
    expect(overdue).to_contain_text("农村公路提级改造")
    expect(page.locator("body")).to_have_attribute("data-charts-ready", "true")
    expect(page.locator("#chart-lights canvas")).to_be_attached()
    shot(page, "dashboard")


def test_the_hq_leader_approves_the_evaluation_results(page: Page, engine: Engine) -> None:
    sign_in(page, "hq")
    page.get_by_role("link", name="考核结果审定").click()
    table = page.locator("table.results")
    expect(table).to_contain_text("城关镇")
    expect(table).to_contain_text("优秀")
    expect(table.get_by_role("link", name="城关镇的督办台账")).to_be_visible()
    shot(page, "evaluation")
    # returning needs a reason: refused in place, nothing decided
    page.get_by_role("button", name="退回").click()
    expect(page.locator(".review .field-error")).to_contain_text("退回原因")
    page.get_by_label("批示意见（选填）").fill("同意，全县通报，对优秀单位予以表扬。")
    page.get_by_role("button", name="同意").click()
    expect(page.locator(".flash.ok")).to_contain_text("审定同意")
    expect(page.locator(".empty")).to_contain_text("没有待您审定")
    opinions = [o for o in _evaluation_opinions(engine) if o["actor"] == "hq"]
    assert [o["kind"] for o in opinions] == ["approve"]


def _evaluation_opinions(engine: Engine) -> list[dict]:
    started = [
        i
        for i in engine.tasks("staff", box="started", per_page=500)["items"]
        if i["process"] == "annual_evaluation"
    ]
    found = []
    for instance in started:
        found += engine.instance(instance["id"], "staff")["opinions"]
    return found


def test_header_messages_and_claiming_from_the_inbox(page: Page) -> None:
    sign_in(page, "director")
    header = page.locator("header.top")
    expect(header).to_contain_text("张建国")
    expect(header).to_contain_text("县指挥办")
    expect(header).to_contain_text("主任")
    badge = header.locator(".badge")
    unread = int(badge.inner_text()) if badge.count() else 0
    page.get_by_role("link", name=re.compile("^消息")).click()
    expect(page.locator("h1")).to_contain_text("消息")
    if unread:
        page.get_by_role("button", name="全部标为已读").click()
        expect(page.locator("header.top .badge")).to_have_count(0)


def test_main_pages_at_desktop_and_phone_width(page: Page) -> None:
    sign_in(page, "staff")
    for path, name in (
        ("/inbox", "inbox"),
        ("/start", "start"),
        ("/inbox?box=started", "started"),
        ("/messages", "messages"),
    ):
        page.goto(path)
        expect(page.locator("h1")).to_be_visible()
        shot(page, name)
    page.goto("/inbox?box=started")
    page.locator("table.list tbody a").filter(has_text="高标准农田建设").first.click()
    expect(page.locator("#diagram")).to_have_attribute("data-ready", "true")
    expect(page.locator(".djs-element.state-current")).not_to_have_count(0)
    shot(page, "instance")
    # keyboard: the skip link is the first stop and leads to the content
    page.keyboard.press("Tab")
    expect(page.locator("a.skip")).to_be_focused()
    # phone width: no horizontal scrolling of the page itself
    page.set_viewport_size({"width": 390, "height": 844})
    for path in ("/inbox", "/ledger", "/start", "/messages", "/dashboard"):
        page.goto(path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} scrolls sideways on a phone ({width}px)"
    shot(page, "phone-dashboard")
    page.goto("/login?next=/inbox")
    page.context.clear_cookies()
    page.goto("/login")
    page.set_viewport_size({"width": 1366, "height": 768})
    shot(page, "login")


UNLABELLED = """() => Array.from(document.querySelectorAll('main :is(input, select, textarea)'))
  .filter(el => el.type !== 'hidden' && !el.closest('template'))
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
  .map(el => el.name || el.id)"""


def test_every_field_has_a_label_and_a_draft_survives_a_reload(page: Page) -> None:
    sign_in(page, "town_liaison")
    open_from_inbox(page, "进度填报", "典型村培育")
    assert page.evaluate(UNLABELLED) == []
    typed = "两村村庄规划通过评审，正在拆除危旧房。"
    page.get_by_label("本期完成情况").fill(typed)
    expect(page.locator(".draft-status")).to_contain_text("草稿已自动保存", timeout=15000)
    page.reload()
    expect(page.locator(".notice[role=status]")).to_contain_text("已恢复您")
    expect(page.get_by_label("本期完成情况")).to_have_value(typed)
    for path in ("/ledger", "/start", "/inbox"):
        page.goto(path)
        assert page.evaluate(UNLABELLED) == [], path
