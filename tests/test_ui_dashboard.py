"""The dashboard's figures (engine/dashboard.py) from known tracked items and open steps."""

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from engine import Engine, Forbidden, InvalidData
from engine.models import TrackedItem, Unit
from engine.workdays import BEIJING
from office import Office
from tests.builders import bpmn, flow, user_task
from tests.conftest import START


@pytest.fixture
def instance_id(engine: Engine, deploy) -> int:
    county = {
        "roles": [{"name": "主任", "sees_all": True}, {"name": "办事员"}],
        "units": [{"code": "nyncj", "name": "农业农村局"}, {"code": "dtz", "name": "东塘镇"}],
        "users": [
            {"username": "leader", "name": "张建国", "roles": ["主任"]},
            {"username": "clerk", "name": "王晓燕", "roles": ["办事员"], "unit": "nyncj"},
        ],
    }
    engine.load_directory(county, "pw12")
    body = (
        '<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
        + user_task("approve", "审批", "f1", "f2")
        + '<bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>'
        + flow("f1", "start", "approve")
        + flow("f2", "approve", "end")
    )
    deploy({"p.bpmn": bpmn("p", body, {"主任": ["start", "approve"]})})
    return engine.start("p", {}, user="leader", title="待审批的事项")["id"]


def _item(engine: Engine, instance_id: int, key: str, unit: str, **fields) -> None:
    with engine.write_session() as session, session.begin():
        unit_id = session.scalar(select(Unit.id).where(Unit.code == unit))
        session.add(
            TrackedItem(
                instance_id=instance_id,
                kind=fields.pop("kind", "督办事项"),
                key=key,
                title=key,
                lead_unit_id=unit_id,
                cooperating_unit_ids=[],
                attributes={},
                created_at=START,
                updated_at=START,
                **fields,
            )
        )


def test_lights_rates_lists_and_who_is_waiting(engine: Engine, instance_id: int) -> None:
    day = timedelta(days=1)
    _item(engine, instance_id, "超期一", "nyncj", deadline=START - day)
    _item(engine, instance_id, "超期二", "dtz", deadline=START - 2 * day)
    _item(engine, instance_id, "快到期", "dtz", deadline=START + day)
    _item(engine, instance_id, "不急", "nyncj", deadline=START + 30 * day)
    _item(engine, instance_id, "按期办结", "nyncj", deadline=START + day, closed_at=START)
    _item(engine, instance_id, "逾期办结", "dtz", deadline=START - 3 * day, closed_at=START)
    _item(engine, instance_id, "上月办结", "dtz", deadline=START, closed_at=START - 5 * day)
    _item(engine, instance_id, "整改", "dtz", kind="整改任务", deadline=START + 9 * day)
    figures = Office(engine).dashboard("leader")
    assert figures["lights_by_unit"] == [
        {"unit": "东塘镇", "red": 1, "yellow": 1, "green": 1, "total": 3},
        {"unit": "农业农村局", "red": 1, "yellow": 0, "green": 1, "total": 2},
    ]
    assert [i["title"] for i in figures["overdue"]["items"]] == ["超期二", "超期一"]
    assert figures["month"] == {"month": "2026-12", "closed": 2, "on_time": 1, "rate": 0.5}
    assert [i["title"] for i in figures["open_rectifications"]["items"]] == ["整改"]
    waiting = figures["waiting_on_leaders"]
    assert [(w["title"], w["instance_title"]) for w in waiting] == [("审批", "待审批的事项")]


def test_only_roles_that_see_everything_open_the_dashboard(engine: Engine, instance_id) -> None:
    with pytest.raises(Forbidden):
        Office(engine).dashboard("clerk")


def test_the_ledger_light_filter_agrees_with_each_items_light(
    engine: Engine, instance_id: int
) -> None:
    """Items without a deadline or a report cycle are green in the filter too (NULL-safe SQL)."""
    day = timedelta(days=1)
    _item(engine, instance_id, "超期", "nyncj", deadline=START - day)
    _item(engine, instance_id, "临期", "nyncj", deadline=START + day)
    _item(engine, instance_id, "漏报无期限", "nyncj", next_report_due=START - day)
    _item(engine, instance_id, "无期限", "nyncj")
    _item(engine, instance_id, "远期", "nyncj", deadline=START + 60 * day)
    _item(engine, instance_id, "已销号", "nyncj", deadline=START - day, closed_at=START - day)
    every = {i["title"]: i["light"] for i in engine.items(per_page=100)["items"]}
    assert every == {
        "超期": "red",
        "临期": "yellow",
        "漏报无期限": "yellow",
        "无期限": "green",
        "远期": "green",
        "已销号": "green",
    }
    for colour in ("red", "yellow", "green"):
        filtered = {i["title"] for i in engine.items(light=colour, per_page=100)["items"]}
        assert filtered == {title for title, light in every.items() if light == colour}, colour


def test_the_ledger_filters_by_the_period_its_items_are_due(
    engine: Engine, instance_id: int
) -> None:
    _item(
        engine, instance_id, "三月到期", "nyncj", deadline=datetime(2027, 3, 31, 18, tzinfo=BEIJING)
    )
    _item(
        engine, instance_id, "四月到期", "nyncj", deadline=datetime(2027, 4, 1, 9, tzinfo=BEIJING)
    )
    _item(engine, instance_id, "无期限", "nyncj")
    titles = lambda period: {i["title"] for i in engine.items(period=period)["items"]}  # noqa: E731
    assert titles("2027-03") == {"三月到期"}
    assert titles("2027") == {"三月到期", "四月到期"}
    assert titles("2026-12") == set()
    with pytest.raises(InvalidData) as refused:
        engine.items(period="2027-13")
    assert refused.value.errors == {"period": "格式应为 YYYY 或 YYYY-MM"}
