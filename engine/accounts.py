"""Signing in: password checks with lockout, and bearer tokens stored only as hashes.

Lockout is per username (known or not, so it reveals nothing): after `FREE_ATTEMPTS`
consecutive failures each further failure locks the name for twice as long as the last time,
from `FIRST_LOCK` up to `LONGEST_LOCK`. A success clears the count.
"""

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from .errors import NotSignedIn, SignInLocked
from .models import ApiToken, SignInThrottle, User
from .workdays import BEIJING

FREE_ATTEMPTS = 5
FIRST_LOCK = timedelta(minutes=1)
LONGEST_LOCK = timedelta(hours=1)
TOKEN_LIFETIME = timedelta(hours=12)


def check_not_locked(session: Session, username: str, now: datetime) -> None:
    throttle = session.get(SignInThrottle, username)
    if throttle and throttle.locked_until and throttle.locked_until > now:
        until = throttle.locked_until.astimezone(BEIJING).strftime("%H:%M:%S")
        raise SignInLocked(
            f"连续登录失败次数过多，请于 {until} 后再试", retry_after=_seconds(throttle, now)
        )


def record_failure(session: Session, username: str, now: datetime) -> None:
    throttle = session.get(SignInThrottle, username)
    if throttle is None:
        throttle = SignInThrottle(username=username, failures=0)
        session.add(throttle)
    throttle.failures += 1
    extra = throttle.failures - FREE_ATTEMPTS
    if extra >= 0:
        throttle.locked_until = now + min(FIRST_LOCK * 2**extra, LONGEST_LOCK)


def record_success(session: Session, username: str) -> None:
    throttle = session.get(SignInThrottle, username)
    if throttle is not None:
        session.delete(throttle)


def _seconds(throttle: SignInThrottle, now: datetime) -> int:
    assert throttle.locked_until is not None
    return max(1, int((throttle.locked_until - now).total_seconds()) + 1)


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
