"""`duban demo` on a fresh database: the county, the processes, and a living system.

processes/demo.yaml leaves instances in flight as of now: a meeting awaiting the director's
sign-off of its minutes, 督办事项 green / yellow / red and one closed, a rectification under
way, an evaluation awaiting HQ approval. A second run keeps what is there.
"""

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import func, select

from engine import Engine
from engine.items import light
from engine.models import HumanTask, ProcessInstance, TrackedItem, Unit, User
from webui.cli import cli

DEMO_FILE = Path(__file__).resolve().parents[1] / "processes" / "demo.yaml"
FAILED = "演示数据生成失败"


@pytest.fixture
def demo(db_url: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DATABASE_URL", db_url)
    runner = CliRunner()

    def run() -> list[str]:
        result = runner.invoke(cli, ["demo", "--password", "pw"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        assert not [line for line in lines if FAILED in line], result.output
        return lines

    return run


def test_demo_leaves_a_living_system(demo, db_url: str) -> None:
    lines = demo()
    scenarios = yaml.safe_load(DEMO_FILE.read_text(encoding="utf-8"))["scenarios"]
    assert len([line for line in lines if line.startswith("演示：")]) == len(scenarios), lines
    assert any(line.startswith("示范县：") for line in lines)

    engine = Engine(db_url)
    try:
        # a meeting awaiting the director's sign-off of its minutes
        assert ("director_meeting", "sign_minutes") in _todo(engine, "director")
        _check_ledger(engine)
        _check_rectification(engine)
        # an evaluation awaiting HQ approval
        assert ("annual_evaluation", "hq_approve") in _todo(engine, "hq")

        # a second run keeps what is there
        before = _instances(engine)
        again = demo()
        assert "已有流程实例，不再生成演示数据" in again
        assert not [line for line in again if line.startswith("演示：")]
        assert _instances(engine) == before

        assert engine.authenticate("admin", "pw") is not None
        assert engine.authenticate("admin", "demo") is None
    finally:
        engine.close()


def _todo(engine: Engine, username: str) -> list[tuple[str, str]]:
    return [(t["process"], t["name"]) for t in engine.tasks(username)["items"]]


def _instances(engine: Engine) -> int:
    with engine.read_session() as session:
        return session.scalar(select(func.count()).select_from(ProcessInstance)) or 0


def _check_ledger(engine: Engine) -> None:
    """督办事项: at least two green, a yellow, a red and a closed one, led by units and towns."""
    now = datetime.now(UTC)
    with engine.read_session() as session:
        rows = session.execute(
            select(TrackedItem, Unit.kind)
            .join(Unit, Unit.id == TrackedItem.lead_unit_id)
            .where(TrackedItem.kind == "督办事项")
        ).all()
        open_lights = Counter(
            light(item, now, engine.calendar()) for item, _ in rows if item.closed_at is None
        )
        closed = [item.status for item, _ in rows if item.closed_at is not None]
        lead_kinds = Counter(kind for _, kind in rows)
        lead_units = {item.lead_unit_id for item, _ in rows}
    assert open_lights["green"] >= 2, open_lights
    assert open_lights["yellow"] >= 1, open_lights
    assert open_lights["red"] >= 1, open_lights
    assert closed and set(closed) == {"已销号"}, closed
    assert lead_kinds["member_unit"] >= 2 and lead_kinds["town"] >= 2, lead_kinds
    assert len(lead_units) >= 5, lead_units


def _check_rectification(engine: Engine) -> None:
    """A problem_rectification instance is running, its unit's 整改落实 task open."""
    with engine.read_session() as session:
        instance_id = session.scalar(
            select(ProcessInstance.id).where(
                ProcessInstance.process_key == "problem_rectification",
                ProcessInstance.status == "running",
            )
        )
        assert instance_id is not None
        task = session.scalars(
            select(HumanTask).where(
                HumanTask.instance_id == instance_id,
                HumanTask.state == "open",
                HumanTask.name == "implement",
            )
        ).first()
        assert task is not None and task.unit_id is not None
        unit_users = list(
            session.scalars(select(User.username).where(User.unit_id == task.unit_id))
        )
    assert any(
        (t["process"], t["name"], t["instance_id"])
        == ("problem_rectification", "implement", instance_id)
        for username in unit_users
        for t in engine.tasks(username)["items"]
    ), unit_users
