"""`duban demo`: the demo county (processes/county.yaml) and the deployment of processes/."""

from collections.abc import Iterator
from pathlib import Path

import yaml

from engine import Engine


def load_demo(engine: Engine, processes: Path, password: str) -> Iterator[str]:
    county = yaml.safe_load((processes / "county.yaml").read_text(encoding="utf-8"))
    counts = engine.load_directory(county, password)
    yield (
        f"{county.get('county', '示范县')}：{counts['units']} 个单位，{counts['roles']} 个角色，"
        f"新增用户 {counts['users_added']} 个（已有用户保留原密码）"
    )
    if any(processes.rglob("*.bpmn")):
        for result in engine.deploy(processes, by="admin"):
            yield f"流程 {result.key} v{result.version}（{result.name}）"
    else:
        yield "processes/ 中还没有流程定义"
