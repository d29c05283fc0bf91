"""The demo accounts (DESIGN.md) and the deployment of processes/."""

from collections.abc import Iterator
from pathlib import Path

from engine import Engine, InvalidData

UNITS = [
    ("县指挥部", "hq", "hq"),
    ("县指挥办", "office", "office"),
    ("农业农村局", "nyncj", "member_unit"),
    ("产业发展专班", "cyfzzb", "work_team"),
    ("城关镇", "cgz", "town"),
]

# username, display name, roles, unit code
DEMO_USERS = [
    ("admin", "系统管理员", ["系统管理员"], "office"),
    ("designer", "流程设计员", ["流程设计员"], "office"),
    ("director", "张建国", ["主任"], "office"),
    ("deputy", "李明华", ["常务副主任"], "office"),
    ("staff", "王晓燕", ["指挥办工作人员"], "office"),
    ("hq", "陈志远", ["县指挥部总指挥"], "hq"),
    ("team_lead", "刘海涛", ["牵头单位负责人"], "cyfzzb"),
    ("unit_liaison", "赵丽娟", ["联络员"], "nyncj"),
    ("unit_head", "孙立军", ["单位负责人"], "nyncj"),
    ("town_liaison", "周小红", ["联络员"], "cgz"),
    ("town_head", "吴国强", ["单位负责人"], "cgz"),
]


def load_demo(engine: Engine, processes: Path, password: str) -> Iterator[str]:
    for name, code, kind in UNITS:
        engine.add_unit(name, code=code, kind=kind)
    for username, display, roles, unit in DEMO_USERS:
        try:
            engine.add_user(username, password, name=display, roles=roles, unit=unit)
            yield f"用户 {username}（{display}）"
        except InvalidData:
            yield f"用户 {username} 已存在，保留原密码"
    if any(processes.rglob("*.bpmn")):
        for result in engine.deploy(processes, by="admin"):
            yield f"流程 {result.key} v{result.version}"
    else:
        yield "processes/ 中还没有流程定义"
