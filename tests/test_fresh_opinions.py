"""A stale opinion pre-filled on a signature (issue 12, bug 8): each approval's opinion starts
empty. An approval step's decision, reason and opinion fields are not pre-filled from another
step's submission; a step re-opened by 退回/撤回 shows its own earlier ones again."""

import html
import re

import pytest

from engine import Engine
from tests.county import (
    AGENDA,
    MEETING_RECORD,
    MINUTES,
    NOTICE,
    meeting_at_compile_agenda,
    open_step,
)
from webui import create_app

AGREED = {"decision": "approve", "remarks": "同意，按议程准备。"}
OPINION_FIELDS = ("decision", "reason", "remarks")


@pytest.fixture
def engine(county_engine: Engine) -> Engine:
    return county_engine


@pytest.fixture
def app(engine: Engine):
    return create_app(
        {"TESTING": True, "SECRET_KEY": "opinions", "WTF_CSRF_ENABLED": False}, engine=engine
    )


def _step(engine: Engine, instance_id: int, name: str, user: str, data: dict) -> None:
    engine.complete(open_step(engine, instance_id, name), data, user=user)


def _at_agenda_approval(engine: Engine) -> int:
    instance_id = meeting_at_compile_agenda(engine)
    _step(engine, instance_id, "compile_agenda", "staff", AGENDA)
    return instance_id


def _shown(engine: Engine, task_id: str) -> dict:
    data = engine.task(task_id, "director")["data"]
    return {key: data.get(key) for key in OPINION_FIELDS if data.get(key) not in (None, "")}


def _textarea(page: str, path: str) -> str:
    found = re.search(rf'<textarea id="f-{path}"[^>]*>(.*?)</textarea>', page, re.S)
    assert found, f"no text area for {path}"
    return html.unescape(found.group(1))


def test_the_signature_does_not_inherit_the_agenda_opinion(app, engine: Engine) -> None:
    instance_id = _at_agenda_approval(engine)
    _step(engine, instance_id, "approve_agenda", "director", AGREED)
    _step(engine, instance_id, "prepare_notice", "staff", NOTICE)
    _step(engine, instance_id, "record_meeting", "staff", MEETING_RECORD)
    _step(engine, instance_id, "draft_minutes", "staff", MINUTES)
    sign = open_step(engine, instance_id, "sign_minutes")

    assert _shown(engine, sign) == {}
    # what the minutes step wrote is still there to read and sign
    assert engine.task(sign, "director")["data"]["doc_title"] == MINUTES["doc_title"]

    client = app.test_client()
    client.post("/login", data={"username": "director", "password": "demo"})
    response = client.get(f"/tasks/{sign}")
    assert response.status_code == 200
    assert _textarea(response.get_data(as_text=True), "remarks") == ""

    # the director's own draft of this signature is restored, of course
    engine.save_task_draft(sign, {"remarks": "同意印发。"}, user="director")
    page = client.get(f"/tasks/{sign}").get_data(as_text=True)
    assert _textarea(page, "remarks") == "同意印发。"


def test_a_signature_without_remarks_does_not_keep_the_agenda_remarks(engine: Engine) -> None:
    """Not only the page: the process itself forgets the earlier approval's words. A director
    who signs with no remark leaves no remark in the instance's data (nor for its documents)."""
    instance_id = _at_agenda_approval(engine)
    _step(engine, instance_id, "approve_agenda", "director", AGREED)
    assert engine.instance(instance_id)["data"]["remarks"] == AGREED["remarks"]
    _step(engine, instance_id, "prepare_notice", "staff", NOTICE)
    _step(engine, instance_id, "record_meeting", "staff", MEETING_RECORD)
    _step(engine, instance_id, "draft_minutes", "staff", MINUTES)
    sign = open_step(engine, instance_id, "sign_minutes")
    engine.complete(sign, {"decision": "approve"}, user="director")

    detail = engine.instance(instance_id)
    assert detail["status"] in ("running", "completed")
    assert detail["data"]["remarks"] is None
    assert detail["data"]["doc_title"] == MINUTES["doc_title"]  # a document field stays
    signed = next(t for t in detail["tasks"] if t["id"] == sign)
    assert signed["state"] == "completed"


def test_a_second_round_of_approval_starts_empty_too(engine: Engine) -> None:
    instance_id = _at_agenda_approval(engine)
    returned = {"decision": "return", "reason": "议题不全，请补充征地事项"}
    _step(engine, instance_id, "approve_agenda", "director", returned)
    _step(engine, instance_id, "compile_agenda", "staff", AGENDA)  # the staff revised it

    assert _shown(engine, open_step(engine, instance_id, "approve_agenda")) == {}


@pytest.mark.parametrize("how", ["return", "withdraw"])
def test_a_reopened_approval_shows_its_own_earlier_opinion(engine: Engine, how: str) -> None:
    instance_id = _at_agenda_approval(engine)
    approval = open_step(engine, instance_id, "approve_agenda")
    engine.complete(approval, AGREED, user="director")
    if how == "return":  # the staff sends the agenda approval back from the notice
        notice = open_step(engine, instance_id, "prepare_notice")
        engine.return_task(notice, user="staff", reason="议程需主任再确认")
    else:  # the director takes the approval back before the notice is touched
        engine.withdraw(approval, user="director")

    assert _shown(engine, open_step(engine, instance_id, "approve_agenda")) == AGREED
