"""The demo county (processes/county.yaml) with every process deployed, and API sign-in helpers."""

from pathlib import Path

import yaml
from flask.testing import FlaskClient

from engine import Engine

ROOT = Path(__file__).resolve().parents[1]
PROCESSES = ROOT / "processes"


# A 督办事项 led by 城关镇 (cgz), whose liaison is `town_liaison`: the draft form as staff fills it.
TOWN_ITEM = {
    "title": "城关镇人居环境整治",
    "source": "主任会议决定事项",
    "content": "年底前完成12个村的垃圾分类设施建设。",
    "lead_unit": "cgz",
    "deadline": "2027-03-31",
    "report_cycle_days": 7,
}


def load_county(engine: Engine, password: str = "demo") -> None:
    county = yaml.safe_load((PROCESSES / "county.yaml").read_text(encoding="utf-8"))
    engine.load_directory(county, password)
    engine.deploy(PROCESSES, by="admin")


def token(client: FlaskClient, username: str, password: str = "demo") -> dict[str, str]:
    response = client.post("/api/v1/auth/token", json={"username": username, "password": password})
    assert response.status_code == 200, response.get_json()
    return {"Authorization": f"Bearer {response.get_json()['token']}"}


# ------------------------------------------------ walking a 主任会议 (director_meeting)
MEETING = {
    "meeting_title": "2026年第四季度县指挥办主任会议",
    "planned_date": "2026-12-15",
    "office_topics": [{"title": "研究典型镇培育工作推进情况", "proposer": "县指挥部"}],
}
MEETING_REPORT = {"summary": "本季度各项工作按计划推进。"}
MEETING_LIAISONS = (
    "fgj_liaison",
    "zjj_liaison",
    "unit_liaison",
    "sthjj_liaison",
    "jtysj_liaison",
    "czj_liaison",
)
AGENDA = {"agenda": [{"title": "听取各工作专班本季度工作情况汇报", "category": "工作情况汇报"}]}
NOTICE = {
    "meeting_time": "2026-12-15T09:00:00+08:00",
    "location": "县委办第一会议室",
    "host": "主任 张建国",
}
MEETING_RECORD = {
    "actual_time": "2026-12-15T09:00:00+08:00",
    "attendees": ["director", "deputy"],
    "summary": "会议听取了各工作专班本季度工作情况汇报。",
    "decision_items": [],
}
MINUTES = {
    "doc_kind": "会议纪要",
    "doc_title": "2026年第四季度县指挥办主任会议纪要",
    "doc_body": "2026年12月15日，县指挥办主任主持召开第四季度主任会议，议定事项如下……",
    "distribute_roles": ["主任", "常务副主任", "副主任"],
    "distribute_units": ["fgj"],
}


def open_step(engine: Engine, instance_id: int, name: str) -> str:
    """The id of the one open task of step `name` (BPMN element id) in the instance."""
    found = [
        t["id"]
        for t in engine.instance(instance_id)["tasks"]
        if t["name"] == name and t["state"] == "open"
    ]
    assert len(found) == 1, (name, engine.instance(instance_id)["tasks"])
    return found[0]


def meeting_at_compile_agenda(engine: Engine) -> int:
    """A 主任会议 started by `staff`, every report in: 汇总议题 waits in the staff pool."""
    instance_id = engine.start("director_meeting", user="staff")["id"]
    engine.complete(open_step(engine, instance_id, "prepare"), MEETING, user="staff")
    for liaison in MEETING_LIAISONS:
        mine = [
            t["id"]
            for t in engine.tasks(liaison)["items"]
            if t["instance_id"] == instance_id and t["name"] == "submit_report"
        ]
        engine.complete(mine[0], MEETING_REPORT, user=liaison)
    open_step(engine, instance_id, "compile_agenda")
    return instance_id
