"""`duban demo`: the demo county (processes/county.yaml), the deployment of processes/, and the
instances processes/demo.yaml leaves in flight so a newcomer sees a living system at once."""

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import yaml
from sqlalchemy import func, select

from engine import Engine, scenarios
from engine.models import ProcessInstance


def load_demo(engine: Engine, processes: Path, password: str) -> Iterator[str]:
    county = yaml.safe_load((processes / "county.yaml").read_text(encoding="utf-8"))
    counts = engine.load_directory(county, password)
    yield (
        f"{county.get('county', '示范县')}：{counts['units']} 个单位，{counts['roles']} 个角色，"
        f"新增用户 {counts['users_added']} 个（已有用户保留原密码）"
    )
    if not any(processes.rglob("*.bpmn")):
        yield "processes/ 中还没有流程定义"
        return
    for result in engine.deploy(processes, by="admin"):
        yield f"流程 {result.key} v{result.version}（{result.name}）"
    yield from _in_flight(engine, processes / "demo.yaml")


def _in_flight(engine: Engine, demo_file: Path) -> Iterator[str]:
    with engine.read_session() as session:  # closed before yielding: a connection is not held
        started = session.scalar(select(func.count()).select_from(ProcessInstance))
    if started:
        yield "已有流程实例，不再生成演示数据"
        return
    if not demo_file.exists():
        return
    doc = yaml.safe_load(demo_file.read_text(encoding="utf-8")) or {}
    now = datetime.now(UTC)
    url = engine.db.url.render_as_string(hide_password=False)
    for spec in doc.get("scenarios", []):
        scenario = scenarios.Scenario(demo_file.name, spec["process"], spec["name"], spec)
        outcome = scenarios.run(scenario, url, Engine, now=now)
        yield ("演示：" if outcome.ok else "演示数据生成失败：") + (
            scenario.label if outcome.ok else scenarios.report_line(outcome)
        )
