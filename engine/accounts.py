"""Signing in: password checks with throttling, revocable page sessions, bearer tokens stored
only as hashes, and the installation's shared settings.

Throttling never locks an account: it slows down a client address. Failed sign-ins are counted
per (client address, name typed there) and per client address over every name (`PER_NAME`,
`PER_ADDRESS`); past a count's free attempts each further failure makes that address wait
twice as long as the last time before trying again, up to a ceiling. A stranger guessing
someone's password from elsewhere therefore never stops the owner from signing in at once
from their own address. Names that do not exist are counted alike (nothing is revealed); a
success clears its name's count at that address (the address-wide count only fades with time).

Page sessions carry the user's `session_version` from the moment they were signed; raising it
(`end_sessions`) ends every one of them at their next request.
"""

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from .errors import NotSignedIn, SignInLocked
from .models import ApiToken, Event, Setting, SignInThrottle, User
from .workdays import BEIJING


@dataclass(frozen=True)
class Backoff:
    free: int  # failures before the first wait (the `free`-th failure starts it)
    first: timedelta  # the first wait; each further failure doubles it
    longest: timedelta  # ... up to this
    forget: timedelta  # a count with no failure for this long starts again from zero


# One name tried from one address: the owner mistyping, or someone guessing their password.
PER_NAME = Backoff(5, timedelta(minutes=1), timedelta(hours=1), timedelta(hours=24))
# Every name tried from one address (password spraying); generous, as an office behind one
# NAT address shares it.
PER_ADDRESS = Backoff(20, timedelta(seconds=30), timedelta(minutes=15), timedelta(hours=1))
UNKNOWN_ADDRESS = "unknown"
TOKEN_LIFETIME = timedelta(hours=12)
LOG = logging.getLogger(__name__)


# ------------------------------------------------------------------ throttling
def client_address(address: str | None) -> str:
    return (address or UNKNOWN_ADDRESS)[:64]


def check_throttle(session: Session, username: str, address: str, now: datetime) -> None:
    """SignInLocked (429, `retry_after`) while this address waits, for this name or for all."""
    rows = session.scalars(
        select(SignInThrottle).where(
            SignInThrottle.address == address,
            or_(
                and_(SignInThrottle.scope == "name", SignInThrottle.username == username),
                SignInThrottle.scope == "address",
            ),
        )
    ).all()
    until = max((r.wait_until for r in rows if r.wait_until and r.wait_until > now), default=None)
    if until is not None:
        at = until.astimezone(BEIJING).strftime("%H:%M:%S")
        raise SignInLocked(
            f"登录尝试过于频繁，请于 {at} 后再试",
            retry_after=max(1, int((until - now).total_seconds()) + 1),
        )


def record_failure(
    session: Session, username: str, address: str, now: datetime
) -> timedelta | None:
    """Count a failure for this name and for the whole address; the wait it starts, if any."""
    waits = [
        _count_failure(_throttle_row(session, address, "name", username), PER_NAME, now),
        _count_failure(_throttle_row(session, address, "address", ""), PER_ADDRESS, now),
    ]
    # Counts of this address nobody has failed for a day are gone for good.
    session.execute(
        delete(SignInThrottle).where(
            SignInThrottle.address == address,
            SignInThrottle.last_failure_at < now - PER_NAME.forget,
        )
    )
    started = [wait for wait in waits if wait]
    return max(started) if started else None


def record_success(session: Session, username: str, address: str) -> None:
    session.execute(
        delete(SignInThrottle).where(
            SignInThrottle.address == address,
            SignInThrottle.scope == "name",
            SignInThrottle.username == username,
        )
    )


def _throttle_row(session: Session, address: str, scope: str, username: str) -> SignInThrottle:
    """The count, created if missing (two first failures at once create it once) and locked."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    key = {"address": address, "scope": scope, "username": username}
    session.execute(insert(SignInThrottle).values(**key, failures=0).on_conflict_do_nothing())
    return session.scalars(
        select(SignInThrottle)
        .where(*(getattr(SignInThrottle, name) == value for name, value in key.items()))
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def _count_failure(row: SignInThrottle, backoff: Backoff, now: datetime) -> timedelta | None:
    if row.last_failure_at is not None and now - row.last_failure_at > backoff.forget:
        row.failures = 0
    row.failures += 1
    row.last_failure_at = now
    beyond = row.failures - backoff.free
    if beyond < 0:
        return None
    wait = min(backoff.first * 2 ** min(beyond, 20), backoff.longest)
    row.wait_until = now + wait
    return wait


# -------------------------------------------------------------- page sessions
def end_sessions(session: Session, user: User, now: datetime, *, tokens: bool) -> int:
    """End every page session of `user` at its next request; with `tokens`, revoke their live
    API tokens too, for good. How many tokens were revoked."""
    session.execute(
        update(User)
        .where(User.id == user.id)
        .values(session_version=User.session_version + 1)
        .execution_options(synchronize_session="fetch")
    )
    return revoke_live_tokens(session, user.id, now) if tokens else 0


def revoke_live_tokens(session: Session, user_id: int, now: datetime) -> int:
    result = session.execute(
        update(ApiToken)
        .where(
            ApiToken.user_id == user_id,
            ApiToken.revoked_at.is_(None),
            ApiToken.expires_at > now,
        )
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def failed_sign_ins(
    session: Session, user_id: int, *, after_id: int = 0, limit: int = 20
) -> list[dict[str, Any]]:
    """Failed sign-ins on this account (newest first), from the audit trail."""
    rows = session.scalars(
        select(Event)
        .where(Event.actor_id == user_id, Event.kind == "sign_in_failed", Event.id > after_id)
        .order_by(Event.id.desc())
        .limit(limit)
    )
    return [
        {
            "at": row.at.isoformat(),
            "address": (row.detail or {}).get("address"),
            "via": (row.detail or {}).get("via"),
        }
        for row in rows
    ]


def sign_in_ids(session: Session, user_id: int, limit: int = 2) -> list[int]:
    """The ids of this user's latest `signed_in` events, newest first."""
    return list(
        session.scalars(
            select(Event.id)
            .where(Event.actor_id == user_id, Event.kind == "signed_in")
            .order_by(Event.id.desc())
            .limit(limit)
        )
    )


# ------------------------------------------------------------------ settings
def setting(session: Session, name: str, make: Any = None) -> str | None:
    """A shared setting; when missing and `make` is given, `make()` is stored (the first of
    several processes doing this at once wins, and all of them answer its value)."""
    value = session.scalar(select(Setting.value).where(Setting.name == name))
    if value is not None or make is None:
        return value
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(insert(Setting).values(name=name, value=make()).on_conflict_do_nothing())
    return session.scalar(select(Setting.value).where(Setting.name == name))


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(
    session: Session, user: User, now: datetime, lifetime: timedelta, label: str | None
) -> tuple[str, ApiToken]:
    token = secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user.id,
        token_hash=token_digest(token),
        label=label,
        created_at=now,
        expires_at=now + lifetime,
    )
    session.add(row)
    session.flush()
    return token, row


def note_use(session: Session, token_id: int, now: datetime) -> None:
    """Write a token's last use in the caller's own (reading) session and commit, as best effort:
    on PostgreSQL a row someone else has locked is skipped; on SQLite, while another connection
    writes, the upgrade to a write fails at once (no busy wait from inside a read). Skipped or
    failed, the use is noted on a later request."""
    free = select(ApiToken.id).where(ApiToken.id == token_id).with_for_update(skip_locked=True)
    try:
        session.execute(update(ApiToken).where(ApiToken.id.in_(free)).values(last_used_at=now))
        session.commit()
    except OperationalError as exc:  # the write lock is taken: bookkeeping waits for next time
        session.rollback()
        LOG.debug("token %s: last use not written (%s)", token_id, exc.orig)


def token_owner(session: Session, token: str, now: datetime) -> tuple[ApiToken, str]:
    """The live token row and its user's username; NotSignedIn otherwise."""
    found = session.execute(
        select(ApiToken, User.username)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == token_digest(token), User.active.is_(True))
    ).first()
    if found is None:
        raise NotSignedIn("登录凭证无效，请重新登录")
    row, username = found
    if row.revoked_at is not None:
        raise NotSignedIn("登录凭证已注销，请重新登录")
    if row.expires_at <= now:
        raise NotSignedIn("登录已过期，请重新登录", error="token_expired")
    return row, username
