"""A database connection lost in the middle of an engine call: the call runs once more.

Every public method of `Engine` is a *call*: a command (one transaction, sometimes several) or a
read. If the connection it used is lost — the server restarted, a failover, an administrator's
`pg_terminate_backend`, a pooler recycling connections — before the call committed anything,
the call runs once more from its start, on a fresh connection (the pool pings a connection
before lending it). Nothing of the lost attempt was written, and a command re-reads everything
it acts on — the instance under its lock, the instance's revision, the task's state — so
running it again is exactly running it for the first time: the person sees no error, and
nothing is done twice.

A call never runs again once it has committed something. A connection lost during COMMIT
itself leaves open whether the server committed: on PostgreSQL the engine noted the
transaction's id just before sending COMMIT and now asks the server (`txid_status`): committed —
the command is done and answers as usual (`committed_after_all`, from `Engine.command`);
aborted — nothing was written and the call runs again; unknown — it does not. A call whose
database could not be reached at all (connection refused, timed out, the SQLite file gone), an
unknown outcome and a second lost connection raise `DatabaseUnavailable` (HTTP 503
"数据库暂时无法连接，请稍后再试"); workers back off and try again (see `duban worker`).

The retry is one rule for every call, not a list of idempotent commands: it needs only that a
method has no effect outside the database before its commit (true of every engine command: they
write rows, nothing else) and changes its arguments, if at all, the same way each time (an
attachment reference gets its stored name and size). Calls nest — a command reading
through another public method — and only the outermost runs again. How a failure came about is
noted by SQLAlchemy events on the engine (`watch`), not read from the exception, so a lost
connection that a handler caught and turned into another error (an instance error, an
`OperationFailed`) still counts as one.
"""

import inspect
import logging
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from sqlalchemy import Engine as SqlEngine
from sqlalchemy import event, text
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DBAPIError

from .errors import DatabaseUnavailable

LOG = logging.getLogger(__name__)

T = TypeVar("T")

# set on an SQLAlchemy error raised while opening a connection (see `_on_error`)
UNREACHABLE = "duban_database_unreachable"


@dataclass
class _Call:
    """What happened to the database during one call."""

    commits: int = 0  # COMMITs sent that may have written something: the call must not rerun
    commit_xid: str | None = None  # PostgreSQL: the transaction id of the last of them
    lost: int = 0  # live connections that broke under a statement
    unreachable: int = 0  # connections that could not be opened


_call: ContextVar[_Call | None] = ContextVar("duban_database_call", default=None)


def watch(db: SqlEngine) -> None:
    """Note, for the call running in this context, each COMMIT sent and each connection failure
    on `db` (once per SQLAlchemy engine)."""
    if not event.contains(db, "commit", _on_commit):
        event.listen(db, "commit", _on_commit)
        event.listen(db, "handle_error", _on_error)


def _on_commit(connection: Any) -> None:
    """Just before COMMIT. On PostgreSQL, note the transaction's id (none: it wrote nothing), to
    ask the server later whether it committed, should the answer to COMMIT be lost."""
    call = _call.get()
    if call is None:
        return
    call.commit_xid = None
    if connection.dialect.name != "postgresql":
        call.commits += 1
        return
    raw = connection.connection.dbapi_connection
    try:
        with raw.cursor() as cursor:
            cursor.execute("SELECT txid_current_if_assigned()::text")
            (xid,) = cursor.fetchone()
    except Exception:  # noqa: BLE001 — a dead connection: the COMMIT fails too, nothing written
        if not (getattr(raw, "closed", False) or getattr(raw, "broken", False)):
            call.commits += 1  # not the connection: count it, to be safe
        return
    if xid is not None:
        call.commits += 1
        call.commit_xid = xid


def _on_error(context: ExceptionContext) -> None:
    if context.is_pre_ping:  # a dead pooled connection, replaced before anything used it
        return
    call = _call.get()
    if context.connection is None:  # the connection could not even be opened
        if context.sqlalchemy_exception is not None:
            setattr(context.sqlalchemy_exception, UNREACHABLE, True)
        if call is not None:
            call.unreachable += 1
    elif context.is_disconnect and call is not None:
        call.lost += 1


def committed_after_all(db: SqlEngine) -> bool:
    """After the connection was lost while committing: did the server commit? True — the
    command is done. False — it certainly did not (the call may then run again), or nobody can
    tell (it will not)."""
    call = _call.get()
    if call is None or call.commit_xid is None or not call.lost:
        return False
    xid, call.commit_xid = call.commit_xid, None
    for _ in range(40):  # a terminated server process may still be ending the transaction
        try:
            with db.connect() as connection:
                status = connection.execute(
                    text("SELECT txid_status(CAST(:xid AS bigint))"), {"xid": xid}
                ).scalar()
        except DBAPIError:
            return False
        if status == "committed":
            LOG.warning("the answer to COMMIT was lost, but transaction %s committed", xid)
            return True
        if status != "in progress":  # aborted (or forgotten long ago): nothing was written
            if status == "aborted":
                call.commits -= 1
            return False
        time.sleep(0.025)
    return False


def connection_failures() -> int:
    """How many connections the running call has lost or failed to open so far (0 outside a
    call). Code that catches broad exceptions compares it before and after, so that it never
    records a lost connection as its own failure."""
    call = _call.get()
    return call.lost + call.unreachable if call is not None else 0


def is_connection_error(exc: BaseException) -> bool:
    """Whether `exc` (or an exception it was raised from) is a lost or unobtainable database
    connection — for errors raised outside an engine call."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DatabaseUnavailable):
            return True
        if isinstance(current, DBAPIError) and (
            current.connection_invalidated or getattr(current, UNREACHABLE, False)
        ):
            return True
        current = current.__cause__ or current.__context__
    return False


def retried(method: Callable[..., T]) -> Callable[..., T]:
    """Run `method` as one call: once more if it lost its connection before committing."""

    @wraps(method)
    def call(*args: Any, **kwargs: Any) -> T:
        if _call.get() is not None:  # inside another call: that one decides
            return method(*args, **kwargs)
        for attempt in (1, 2):
            state = _Call()
            token = _call.set(state)
            try:
                return method(*args, **kwargs)
            except Exception as exc:
                if not (state.lost or state.unreachable):
                    raise
                if attempt == 1 and state.lost and not state.unreachable and not state.commits:
                    LOG.warning(
                        "%s: database connection lost before commit, retrying once (%s)",
                        method.__qualname__,
                        _first_line(exc),
                    )
                    continue
                raise DatabaseUnavailable() from exc
            finally:
                _call.reset(token)
        raise AssertionError("unreachable")  # pragma: no cover

    return call


def retried_calls(cls: type[T]) -> type[T]:
    """Make every public method of `cls` (its own and its mixins') a call (see `retried`).
    Context managers (`command`) are left alone: their caller's method is the call."""
    for name in dir(cls):
        if name.startswith("_"):
            continue
        found = inspect.getattr_static(cls, name)
        if not inspect.isfunction(found):
            continue
        if inspect.isgeneratorfunction(getattr(found, "__wrapped__", None)):
            continue
        setattr(cls, name, retried(found))
    return cls


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
