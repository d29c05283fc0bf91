"""`duban backup` / `duban restore`: a backup taken while a 督办事项 is under way, restored into a
fresh database, carries the item on to its end there; missing files and tools are said in
Chinese."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from engine import Engine
from tests.conftest import ON_POSTGRES, fresh_database
from tests.test_trust import REPORT, item_in_progress, item_of, open_task
from webui.cli import cli


def duban(database_url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env={"DATABASE_URL": database_url})
    return result.exit_code, result.output


def test_a_restored_backup_carries_an_item_under_way_to_its_end(
    county_engine: Engine, clock, tmp_path: Path
) -> None:
    engine = county_engine
    iid = item_in_progress(engine)  # a 城关镇 item at the liaison's weekly 进度填报
    report = open_task(engine, "town_liaison", iid, "report_progress")
    engine.complete(report["id"], dict(REPORT), user="town_liaison")
    before = item_of(engine, iid)
    file = tmp_path / "duban.backup"

    code, output = duban(engine.db.url.render_as_string(hide_password=False), "backup", str(file))
    assert (code, output.strip()) == (0, f"已备份到 {file}")
    assert file.stat().st_size > 0

    (tmp_path / "restored").mkdir()
    with fresh_database(tmp_path / "restored") as target:
        code, output = duban(target, "restore", str(file), "--yes")
        assert code == 0, output
        restored = Engine(target, clock=clock)
        try:
            assert restored.instance(iid, "admin")["status"] == "running"
            assert item_of(restored, iid) == before
            walk_to_the_end(restored, iid)
            assert restored.instance(iid, "admin")["status"] == "completed"
            assert item_of(restored, iid)["status"] == "已销号"
        finally:
            restored.close()
    assert item_of(engine, iid)["status"] == before["status"]  # the original is untouched


def walk_to_the_end(engine: Engine, iid: int) -> None:
    """The liaison reports completion and applies to close; the office verifies (销号)."""
    steps = (
        ("town_liaison", "report_progress", {**REPORT, "progress": 100, "next_action": "complete"}),
        (
            "town_liaison",
            "apply_completion",
            {
                "completion_summary": "12个村的垃圾分类设施全部建成。",
                "evidence": [{"name": "验收意见.pdf"}],
            },
        ),
        ("staff", "verify", {"decision": "approve", "closure_note": "佐证齐全，予以销号。"}),
    )
    for user, step, data in steps:
        task = open_task(engine, user, iid, step)
        engine.claim(task["id"], user)
        engine.complete(task["id"], data, user=user)


def test_a_missing_backup_file_is_named(db_url: str, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.backup"
    code, output = duban(db_url, "restore", str(missing), "--yes")
    assert code == 1 and f"备份文件不存在：{missing}" in output
    code, output = duban(db_url, "backup", str(tmp_path / "no-such-folder" / "x.backup"))
    assert code == 1 and "备份文件所在的文件夹不存在" in output


def test_a_file_that_is_not_a_backup_is_refused(db_url: str, tmp_path: Path) -> None:
    wrong = tmp_path / "notes.txt"
    wrong.write_text("这不是备份", encoding="utf-8")
    code, output = duban(db_url, "restore", str(wrong), "--yes")
    assert code == 1 and "不是 duban backup 生成的备份文件" in output


@pytest.mark.parametrize("command", ["backup", "restore"])
def test_missing_postgresql_tools_are_named(command, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no pg_dump, no pg_restore
    dump = tmp_path / "duban.backup"
    dump.write_bytes(b"PGDMP" + bytes(100))
    arguments = [command, str(dump)] + (["--yes"] if command == "restore" else [])
    code, output = duban("postgresql://duban@127.0.0.1:9/duban", *arguments)
    tool = "pg_dump" if command == "backup" else "pg_restore"
    assert code == 1
    assert f"未找到 {tool}" in output and "postgresql-client" in output


def test_restore_asks_before_overwriting(db_url: str, tmp_path: Path) -> None:
    file = tmp_path / "duban.backup"
    file.write_bytes(b"PGDMP" if ON_POSTGRES else b"SQLite format 3\x00")
    result = CliRunner().invoke(
        cli, ["restore", str(file)], env={"DATABASE_URL": db_url}, input="n\n"
    )
    assert result.exit_code == 1 and "覆盖数据库" in result.output and "Aborted" in result.output
