"""Two people on one task (issue 12, bug 6): when a colleague of the same pool claims a task
someone else has open, that person's submission and every other action say who holds the task
(HTTP 409), the typed content comes back on the page, and the task stays visible to them."""

import html
from collections.abc import Callable

import pytest

from engine import Conflict, Engine
from tests.county import meeting_at_compile_agenda, open_step, token
from webui import create_app

HELD = "该任务已被王晓燕认领"  # `staff` is 王晓燕 in the demo county's directory


@pytest.fixture
def engine(county_engine: Engine) -> Engine:
    return county_engine


@pytest.fixture
def app(engine: Engine):
    return create_app(
        {"TESTING": True, "SECRET_KEY": "claimed", "WTF_CSRF_ENABLED": False}, engine=engine
    )


def _pool_task_claimed_by_staff(engine: Engine) -> tuple[int, str]:
    """汇总议题 of a 主任会议, a task of the 指挥办工作人员 pool: dcz_staff opens it, then
    staff claims it."""
    instance_id = meeting_at_compile_agenda(engine)
    task_id = open_step(engine, instance_id, "compile_agenda")
    assert engine.task(task_id, "dcz_staff")["assignee"] is None  # dcz_staff has it open
    engine.claim(task_id, "staff")
    return instance_id, task_id


def test_a_colleagues_claim_answers_409_naming_the_claimer(app, engine: Engine) -> None:
    instance_id, task_id = _pool_task_claimed_by_staff(engine)
    revision = engine.task(task_id, "staff")["instance_revision"]
    agenda = {"agenda": [{"title": "听取各专班汇报", "category": "工作情况汇报"}]}

    client = app.test_client()
    response = client.post(
        f"/api/v1/tasks/{task_id}/complete",
        json={"data": agenda, "opinion": "请审定"},
        headers=token(client, "dcz_staff"),
    )
    assert response.status_code == 409, response.get_json()
    assert response.get_json() == {"error": "conflict", "message": HELD}

    actions: dict[str, Callable[[], object]] = {
        "complete": lambda: engine.complete(task_id, agenda, user="dcz_staff"),
        "claim": lambda: engine.claim(task_id, "dcz_staff"),
        "unclaim": lambda: engine.unclaim(task_id, "dcz_staff"),
        "return": lambda: engine.return_task(task_id, user="dcz_staff", reason="议题不全"),
        "transfer": lambda: engine.transfer(task_id, "zhz_lead", user="dcz_staff"),
        "draft": lambda: engine.save_task_draft(task_id, agenda, user="dcz_staff"),
    }
    for name, action in actions.items():
        with pytest.raises(Conflict) as refused:
            action()
        assert refused.value.message == HELD, name

    # the former candidate still sees the task (read-only) and who holds it; nothing changed
    seen = engine.task(task_id, "dcz_staff")
    assert (seen["state"], seen["assignee"]) == ("open", "staff")
    assert engine.instance(instance_id)["revision"] == revision
    engine.complete(task_id, agenda, user="staff")  # the claimer still can


def test_the_page_keeps_what_was_typed_and_says_who_claimed_it(app, engine: Engine) -> None:
    instance_id = meeting_at_compile_agenda(engine)
    task_id = open_step(engine, instance_id, "compile_agenda")
    client = app.test_client()
    assert client.post("/login", data={"username": "dcz_staff", "password": "demo"}).status_code
    opened = client.get(f"/tasks/{task_id}")
    assert opened.status_code == 200 and 'name="agenda_note"' in opened.get_data(as_text=True)

    engine.claim(task_id, "staff")  # meanwhile, 王晓燕 claims it
    typed = {
        "agenda.0.title": "研究产业园区配套道路征地协调事项",
        "agenda.0.category": "跨区域跨部门事项",
        "agenda_note": "请主任重点审定第一项议题",
        "_opinion": "已与各专班核对",
    }
    response = client.post(f"/tasks/{task_id}", data=typed)
    page = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 409, page[:500]
    assert HELD in page and "您无权查看该任务" not in page
    for value in typed.values():
        assert value in page, value
    assert '"primary">提交</button>' not in page and "data-draft-url" not in page  # no resend

    # the page's autosave is told too, so the typing person learns it early
    autosave = client.post(
        f"/tasks/{task_id}/draft", data=typed, headers={"X-Requested-With": "fetch"}
    )
    assert autosave.status_code == 409 and autosave.get_json()["message"] == HELD

    # opening it again: the task is still shown, with who holds it, not a 403
    again = client.get(f"/tasks/{task_id}")
    assert again.status_code == 200 and HELD in again.get_data(as_text=True)


def test_the_autosave_says_who_claimed_it_while_still_typing(browser, engine: Engine) -> None:
    """In Chromium: dcz_staff is typing when staff claims the task; the draft line says so."""
    from playwright.sync_api import expect

    from tests.browser import open_page, serving, sign_in

    instance_id = meeting_at_compile_agenda(engine)
    task_id = open_step(engine, instance_id, "compile_agenda")
    with serving(engine, "claimed") as url, open_page(browser, url) as page:
        sign_in(page, "dcz_staff", then=f"/tasks/{task_id}")
        engine.claim(task_id, "staff")
        page.get_by_label("议题说明").fill("请主任重点审定第一项议题")
        expect(page.locator(".draft-status")).to_contain_text(HELD, timeout=15000)
