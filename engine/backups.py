"""A backup of the whole database in one file, and restoring one (`duban backup`, `duban restore`).

SQLite: the online backup API (`sqlite3.Connection.backup`) copies a consistent snapshot while
servers and workers keep writing; the file is itself a SQLite database. PostgreSQL: `pg_dump
--format=custom`, restored by `pg_restore --clean --if-exists --single-transaction` (all or
nothing) into the database DATABASE_URL names; objects then belong to that URL's user
(`--no-owner --no-acl`). The client tools must be installed, at the server's major version or
newer. The password, if the URL has one, reaches them through PGPASSWORD, never the command
line. A backup is written beside its target and renamed into place only once complete.
"""

import os
import shutil
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from .errors import EngineError

SQLITE_HEADER = b"SQLite format 3\x00"
PG_DUMP_HEADER = b"PGDMP"  # pg_dump's custom format
INSTALL_HINT = (
    "请安装 PostgreSQL 客户端工具（Debian/Ubuntu：apt-get install postgresql-client），"
    "主版本不低于数据库服务器"
)


class BackupError(EngineError):
    code = "backup_failed"
    status = 400


def backup(database_url: str, target: Path) -> None:
    """Write a backup of the whole database to `target` (replaced if it exists)."""
    url = make_url(database_url)
    if not target.parent.is_dir():
        raise BackupError(f"备份文件所在的文件夹不存在：{target.parent}")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        if _is_postgres(url):
            _pg_dump(url, partial)
        else:
            _sqlite_backup(_sqlite_file(url, must_exist=True), target, partial)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def restore(database_url: str, source: Path) -> None:
    """Replace the whole content of the database with the backup in `source`."""
    url = make_url(database_url)
    if not source.is_file():
        raise BackupError(f"备份文件不存在：{source}")
    with source.open("rb") as file:
        header = file.read(len(SQLITE_HEADER))
    if header.startswith(PG_DUMP_HEADER):
        if not _is_postgres(url):
            raise BackupError("这是 PostgreSQL 数据库的备份（pg_dump），不能恢复到 SQLite 数据库")
        _pg_restore(url, source)
    elif header == SQLITE_HEADER:
        if _is_postgres(url):
            raise BackupError("这是 SQLite 数据库的备份，不能恢复到 PostgreSQL 数据库")
        _sqlite_restore(source, _sqlite_file(url, must_exist=False))
    else:
        raise BackupError(f"{source} 不是 duban backup 生成的备份文件")


# ------------------------------------------------------------------ SQLite
def _sqlite_file(url: URL, *, must_exist: bool) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("内存数据库无法备份或恢复")
    path = Path(url.database)
    if must_exist and not path.is_file():
        raise BackupError(f"数据库文件不存在：{path}")
    if not path.parent.is_dir():
        raise BackupError(f"数据库所在的文件夹不存在：{path.parent}")
    return path


def _sqlite_backup(database: Path, target: Path, partial: Path) -> None:
    if target.resolve() == database.resolve():
        raise BackupError("备份文件不能是数据库文件本身")
    with (
        closing(sqlite3.connect(database, timeout=30)) as source,
        closing(sqlite3.connect(partial)) as copy,
    ):
        source.backup(copy)  # a consistent snapshot, while others keep writing
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it


def _sqlite_restore(source: Path, database: Path) -> None:
    with closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as backup_db:
        try:
            (verdict,) = backup_db.execute("PRAGMA quick_check").fetchone()
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"备份文件已损坏：{exc}") from exc
        if verdict != "ok":
            raise BackupError(f"备份文件已损坏：{verdict}")
        with closing(sqlite3.connect(database, timeout=30)) as target:
            backup_db.backup(target)  # page by page: the database becomes the backup, whole


# ------------------------------------------------------------------ PostgreSQL
def _pg_dump(url: URL, partial: Path) -> None:
    _run_tool(
        "pg_dump",
        ["--format=custom", "--file", str(partial), "--dbname", _conninfo(url)],
        url,
        "备份失败",
    )


def _pg_restore(url: URL, source: Path) -> None:
    _run_tool(
        "pg_restore",
        [
            "--clean",
            "--if-exists",
            "--single-transaction",
            "--no-owner",
            "--no-acl",
            "--dbname",
            _conninfo(url),
            str(source),
        ],
        url,
        "恢复失败，数据库未做任何更改",
    )


def _run_tool(name: str, arguments: list[str], url: URL, failure: str) -> None:
    tool = shutil.which(name)
    if tool is None:
        raise BackupError(f"未找到 {name}：{INSTALL_HINT}")
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    done = subprocess.run([tool, *arguments], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        detail = done.stderr.strip()[-800:] or f"{name} 退出码 {done.returncode}"
        raise BackupError(f"{failure}：{detail}")


def _conninfo(url: URL) -> str:
    """The URL as libpq reads it, without the password (passed in PGPASSWORD)."""
    bare = url._replace(password=None)  # URL.set() reads None as "unchanged"
    return bare.set(drivername="postgresql").render_as_string(hide_password=False)


def _is_postgres(url: URL) -> bool:
    return url.get_backend_name() in ("postgresql", "postgres")
