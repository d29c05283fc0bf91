"""Database engine and sessions.

SQLite (WAL, busy timeout, immediate write transactions) or PostgreSQL.
"""

import os
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_URL = "sqlite:///duban.db"
WRITE_OPTION = "duban_write"


def database_url() -> str:
    return os.environ.get("DATABASE_URL") or DEFAULT_URL


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    url = url or database_url()
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if "connect_timeout" not in url:  # a server that stops answering: 503 in seconds, no hang
        kwargs["connect_args"] = {"connect_timeout": 10, **kwargs.get("connect_args", {})}
    return create_engine(url, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    """WAL lets readers and one writer share the file; BEGIN IMMEDIATE serializes writers up front,
    so a command never fails half-way with a lock upgrade error."""

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(WRITE_OPTION)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def is_sqlite(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "sqlite"


def session_factories(engine: Engine) -> tuple[sessionmaker[Session], sessionmaker[Session]]:
    """A (read, write) pair. Write sessions take SQLite's write lock at BEGIN."""
    read = sessionmaker(engine, expire_on_commit=False)
    write = sessionmaker(engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False)
    return read, write
