"""The `duban` command line, used as an operator would.

Init, users, deploy, start, tasks, complete, calendar.
"""

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from webui.cli import cli

MODELS = Path(__file__).resolve().parents[2] / "shared" / "bench-models"


@pytest.fixture
def duban(db_url: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DATABASE_URL", db_url)
    runner = CliRunner()

    def run(*args: str, ok: bool = True):
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    run("init")
    return run


@pytest.fixture
def models(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    shutil.copytree(MODELS, folder)
    return folder


def test_help_lists_every_command() -> None:
    output = CliRunner().invoke(cli, ["--help"]).output
    for name in (
        "init",
        "demo",
        "serve",
        "worker",
        "deploy",
        "timers",
        "user",
        "start",
        "tasks",
        "complete",
    ):
        assert name in output


def test_deploy_start_and_complete_through_the_cli(duban, models: Path) -> None:
    assert (
        "已创建用户 u1"
        in duban("user", "add", "u1", "--password", "pw12", "--role", "bench_team").output
    )
    first = duban("deploy", str(models)).output
    assert "two_user_tasks\tv1\t新版本" in first
    assert "two_user_tasks\tv1\t未变化" in duban("deploy", str(models)).output

    started = json.loads(duban("start", "two_user_tasks", "--as", "u1").output)
    assert started["status"] == "running"
    lines = duban("tasks", "--as", "u1").output.strip().splitlines()
    assert len(lines) == 1 and "Task A" in lines[0]
    task_id = lines[0].split("\t")[0]
    duban("complete", task_id, "--as", "u1", "--data", '{"field_a": "甲"}')
    assert "Task B" in duban("tasks", "--as", "u1").output


def test_errors_are_chinese_and_exit_non_zero(duban, models: Path) -> None:
    duban("deploy", str(models))
    result = duban("start", "no_such_process", ok=False)
    assert result.exit_code == 1
    assert "流程 no_such_process 不存在" in result.output
    bad = duban("start", "two_user_tasks", "--data", "[1, 2]", ok=False)
    assert bad.exit_code == 2 and "必须是 JSON 对象" in bad.output


def test_user_add_refuses_duplicates(duban) -> None:
    duban("user", "add", "u1", "--password", "pw12", "--role", "r")
    result = duban("user", "add", "u1", "--password", "pw12", "--role", "r", ok=False)
    assert result.exit_code == 1 and "已存在" in result.output


def test_calendar_corrections_change_deadlines(duban, db_url: str) -> None:
    from datetime import date

    from engine import Engine

    assert (
        "已设为休息日" in duban("calendar", "set", "2026-12-02", "--off", "--note", "测试").output
    )
    engine = Engine(db_url)
    assert engine.calendar().is_workday(date(2026, 12, 2)) is False
    engine.close()
    assert "2027 年" in duban("calendar", "check").output
