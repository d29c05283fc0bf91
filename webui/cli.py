"""`duban`: one command group; each command is a short function calling the engine."""

import importlib.util
import json
import os
import sys
import time
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from engine import Engine, EngineError, FixedClock
from engine.db import database_url
from engine.errors import DatabaseUnavailable

ROOT = Path(__file__).resolve().parent.parent  # the source checkout, when running from one


def shipped(folder: str) -> Path:
    """The project's FOLDER (`migrations`, `processes`): the data package duban_FOLDER that
    pyproject.toml maps it to, installed from a wheel (or, installed editable, the folder itself);
    failing that, the folder beside the source tree."""
    spec = importlib.util.find_spec(f"duban_{folder}")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return ROOT / folder


def processes_folder() -> Path:
    """What `duban demo` loads and `duban check` checks: DUBAN_PROCESSES, else the shipped
    processes/."""
    named = os.environ.get("DUBAN_PROCESSES")
    if named and not Path(named).is_dir():
        raise click.ClickException(f"DUBAN_PROCESSES 所指的文件夹不存在：{named}")
    return Path(named) if named else shipped("processes")


def _engine(now: datetime | None = None) -> Engine:
    """An engine for this command; its connections close when the command ends."""
    engine = Engine(database_url(), clock=FixedClock(now) if now else None)
    click.get_current_context().call_on_close(engine.close)
    return engine


def _fail(exc: EngineError) -> None:
    detail = {k: v for k, v in exc.detail.items() if v}
    click.echo(
        f"错误：{exc.message}" + (f" {json.dumps(detail, ensure_ascii=False)}" if detail else ""),
        err=True,
    )
    sys.exit(1)


def _json_option(value: str | None) -> dict[str, Any]:
    if not value:
        return {}
    try:
        data = json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"不是有效的 JSON：{exc}") from exc
    if not isinstance(data, dict):
        raise click.BadParameter("必须是 JSON 对象")
    return data


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EngineError as exc:
            _fail(exc)


@click.group(cls=_Group)
def cli() -> None:
    """督办 — 县指挥办工作流平台。数据库由环境变量 DATABASE_URL 指定（默认 sqlite:///duban.db）。"""


@cli.command()
def init() -> None:
    """Create or upgrade the database schema (Alembic migrations), and draw the session signing
    key every server process shares when DUBAN_SECRET_KEY is not set."""
    from alembic import command
    from alembic.config import Config

    config = Config()  # alembic.ini serves the `alembic` command in a checkout; nothing here
    config.set_main_option("script_location", str(shipped("migrations")))
    # Options are interpolated ("%(here)s"): a %-escaped password must reach env.py intact.
    config.set_main_option("sqlalchemy.url", database_url().replace("%", "%%"))
    command.upgrade(config, "head")
    _engine().secret_key()  # drawn once, kept in the database (used without DUBAN_SECRET_KEY)
    click.echo("数据库已就绪")


@cli.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--by", help="Username recorded as the deployer.")
def deploy(path: Path, by: str | None) -> None:
    """Validate and deploy a folder of BPMN, DMN and form files."""
    for result in _engine().deploy(path, by=by):
        state = "新版本" if result.created else "未变化"
        click.echo(f"{result.key}\tv{result.version}\t{state}\t{result.name}")


@cli.command()
@click.option("--password", default="demo", show_default=True, help="Password of demo users.")
def demo(password: str) -> None:
    """Load the demo county and deploy processes/ (DUBAN_PROCESSES names another folder)."""
    from .demo import load_demo

    init.callback()  # type: ignore[misc]
    for line in load_demo(_engine(), processes_folder(), password):
        click.echo(line)


@cli.command()
@click.argument(
    "path", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option("-k", "pattern", help="Only scenarios whose process or name contains this.")
def check(path: Path | None, pattern: str | None) -> None:
    """Validate PATH (default: processes/, or DUBAN_PROCESSES) and run its scenario files
    (*.scenarios.yaml) before a deploy."""
    import yaml

    from engine import scenarios

    path = path or processes_folder()
    county = yaml.safe_load((path / "county.yaml").read_text(encoding="utf-8"))
    selected = [s for s in scenarios.discover(path) if not pattern or pattern in s.label]
    if not selected:
        click.echo("没有找到场景文件（*.scenarios.yaml）", err=True)
        sys.exit(1)
    url = database_url()
    template = scenarios.TemplateDatabase(
        url if url.startswith("postgres") else None,
        scenarios.prepare_with(path, county, "check"),
        Engine,
    )
    failed = 0
    try:
        for scenario in selected:
            with template.copy() as copy_url:
                outcome = scenarios.run(scenario, copy_url, Engine)
            failed += not outcome.ok
            click.echo(scenarios.report_line(outcome))
    finally:
        template.close()
    click.echo(f"共 {len(selected)} 个场景，通过 {len(selected) - failed} 个，失败 {failed} 个")
    sys.exit(1 if failed else 0)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """Run the web server (for production, use gunicorn; see README)."""
    from .app import create_app
    from .security import QuietRequestHandler

    create_app().run(host=host, port=port, threaded=True, request_handler=QuietRequestHandler)


@cli.command()
@click.option("--interval", default=2.0, show_default=True, help="Seconds between polls.")
@click.option("--once", is_flag=True, help="Fire what is due now, then exit.")
def worker(interval: float, once: bool) -> None:
    """Fire due timers; run any number of workers side by side. Each loop writes a heartbeat
    (the console's health page shows which workers are alive); once an hour, uploads never
    submitted with a form are cleaned up (`duban attachments clean`). While the database cannot
    be reached the worker waits, twice as long each time (up to a minute), says so, and resumes
    by itself."""
    engine = _engine()
    name = None
    cleaned_at: float | None = None
    pause: float | None = None  # the back-off while the database is away
    try:
        while True:
            try:
                fired = engine.fire_due_timers()
                name = engine.worker_heartbeat(
                    name=name, interval=interval, fired=fired, stopping=once
                )
                if fired:
                    click.echo(f"{_stamp()} 触发定时器 {fired} 个")
                if cleaned_at is None or time.monotonic() - cleaned_at >= CLEANUP_SECONDS:
                    cleaned_at = time.monotonic()
                    _clean_attachments(engine)
            except DatabaseUnavailable:
                if once:
                    raise
                pause = _back_off(pause, interval)
                continue
            if pause is not None:
                click.echo(f"{_stamp()} 数据库已恢复连接", err=True)
                pause = None
            if once:
                return
            time.sleep(interval)
    except KeyboardInterrupt:
        if name:
            with suppress(DatabaseUnavailable):
                engine.worker_heartbeat(name=name, interval=interval, stopping=True)


CLEANUP_SECONDS = 3600
BACK_OFF_LIMIT = 60.0


def _back_off(pause: float | None, interval: float) -> float:
    """Sleep while the database is away: the poll interval, then twice as long each time."""
    pause = min(BACK_OFF_LIMIT, pause * 2 if pause else max(interval, 0.1))
    click.echo(f"{_stamp()} 数据库暂时无法连接，{pause:g} 秒后重试", err=True)
    time.sleep(pause)
    return pause


def _stamp() -> str:
    return datetime.now().isoformat(timespec="seconds")


def _clean_attachments(engine: Engine, days: int | None = None, quiet: bool = True) -> None:
    removed = engine.remove_unused_attachments(**({"days": days} if days is not None else {}))
    if removed or not quiet:
        click.echo(
            f"{datetime.now().isoformat(timespec='seconds')} 清理未随表单提交的附件 {removed} 个"
        )


@cli.group()
def attachments() -> None:
    """Attachment housekeeping."""


@attachments.command("clean")
@click.option(
    "--days",
    type=click.IntRange(min=1),
    help="Remove unsubmitted uploads older than this (default 7) whose task has ended.",
)
def attachments_clean(days: int | None) -> None:
    """Remove uploads no submitted form named, once their task has ended (the worker does this
    hourly)."""
    _clean_attachments(_engine(), days, quiet=False)


@cli.group()
def timers() -> None:
    """Timer operations."""


@timers.command("fire")
@click.option(
    "--now", "now", required=True, help="ISO date-time with offset, e.g. 2027-01-04T09:00+08:00"
)
def timers_fire(now: str) -> None:
    """Fire every timer due at NOW (tests, simulation, operations)."""
    try:
        at = datetime.fromisoformat(now)
    except ValueError as exc:
        raise click.BadParameter(f"不是有效的时间：{now}") from exc
    if at.tzinfo is None:
        raise click.BadParameter("时间必须带时区，例如 +08:00")
    click.echo(f"已触发定时器 {_engine(at).fire_due_timers(at)} 个")


@cli.group()
def user() -> None:
    """Users."""


@user.command("add")
@click.argument("username")
@click.option("--password", required=True)
@click.option("--role", "roles", multiple=True, required=True, help="Repeat for several roles.")
@click.option("--unit", help="Unit code, name or id.")
@click.option("--name", help="Display name (Chinese).")
def user_add(
    username: str, password: str, roles: tuple[str, ...], unit: str | None, name: str | None
) -> None:
    """Add a user with one or more roles."""
    created = _engine().add_user(username, password, name=name, roles=list(roles), unit=unit)
    click.echo(f"已创建用户 {created['username']}（{'、'.join(created['roles'])}）")


@cli.command()
@click.argument("process")
@click.option("--data", help="Initial data as a JSON object.")
@click.option("--as", "as_user", help="Start as this user.")
def start(process: str, data: str | None, as_user: str | None) -> None:
    """Start an instance of PROCESS."""
    started = _engine().start(process, _json_option(data), user=as_user)
    click.echo(json.dumps(started, ensure_ascii=False))


@cli.command()
@click.option("--as", "as_user", required=True, help="Whose inbox.")
def tasks(as_user: str) -> None:
    """List a user's open tasks."""
    for task in _engine().tasks(as_user, per_page=500)["items"]:
        click.echo(
            f"{task['id']}\t{task['instance_id']}\t{task['process']}\t{task['title']}"
            f"\t{task['due_at'] or '-'}\t{task['light']}"
        )


@cli.command()
@click.argument("task_id")
@click.option("--data", help="Form data as a JSON object.")
@click.option("--as", "as_user", help="Complete as this user.")
@click.option("--opinion", help="审批意见.")
def complete(task_id: str, data: str | None, as_user: str | None, opinion: str | None) -> None:
    """Complete a task with form data."""
    result = _engine().complete(task_id, _json_option(data), user=as_user, opinion=opinion)
    click.echo(json.dumps(result, ensure_ascii=False))


@cli.command()
@click.argument("instance_id", type=int)
def show(instance_id: int) -> None:
    """Show an instance: status, data, tasks and history."""
    click.echo(json.dumps(_engine().instance(instance_id), ensure_ascii=False, indent=2))


@cli.group()
def calendar() -> None:
    """Working-day calendar corrections (法定节假日、调休)."""


@calendar.command("set")
@click.argument("day", type=click.DateTime(formats=["%Y-%m-%d"]))
@click.option("--workday/--off", required=True, help="A working day, or a day off.")
@click.option("--note", help="Why, e.g. 国务院办公厅通知.")
def calendar_set(day: datetime, workday: bool, note: str | None) -> None:
    """Mark DAY as a working day or a day off."""
    _engine().set_calendar_day(day.date(), workday, note)
    click.echo(f"{day.date().isoformat()} 已设为{'工作日' if workday else '休息日'}")


@calendar.command("check")
def calendar_check() -> None:
    """Warn when this or next year's official schedule is missing."""
    warnings = _engine().calendar_warnings()
    for line in warnings or ["今明两年的节假日安排均已收录"]:
        click.echo(line)


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def backup(file: Path) -> None:
    """Write a backup of the whole database to FILE, while servers and workers keep running
    (SQLite: the online backup API; PostgreSQL: pg_dump, custom format)."""
    from engine import backups

    backups.backup(database_url(), file)
    click.echo(f"已备份到 {file}")


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def restore(file: Path, yes: bool) -> None:
    """Replace the whole database with the backup in FILE (made by `duban backup`). Stop the
    servers and workers first; afterwards run `duban init` if the backup is from an older
    version."""
    from sqlalchemy.engine import make_url

    from engine import backups

    if not yes:
        shown = make_url(database_url()).render_as_string(hide_password=True)
        click.confirm(f"将用 {file} 覆盖数据库 {shown} 的全部内容，确定继续吗？", abort=True)
    backups.restore(database_url(), file)
    click.echo(f"已从 {file} 恢复数据库")
