"""Sign-in state: API tokens (stored hashed), failed sign-in attempts (for throttling) and
installation-wide settings (the session signing key)."""

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, intpk, timestamp


class ApiToken(Base):
    """A bearer token: only its SHA-256 is kept, so a database leak reveals no usable token."""

    __tablename__ = "api_token"

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[timestamp]
    expires_at: Mapped[timestamp]
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SignInThrottle(Base):
    """Recent failed sign-ins from one client address: for one username typed there (`scope`
    "name"), or for every name together (`scope` "address", `username` empty), and until when
    further attempts from there wait. Never a lock on the account itself: see engine/accounts.py."""

    __tablename__ = "sign_in_throttle"

    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    scope: Mapped[str] = mapped_column(String(8), primary_key=True)
    username: Mapped[str] = mapped_column(String(80), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    wait_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Setting(Base):
    """A value every process of the installation shares, e.g. the session signing key generated
    at `duban init` when the environment sets none."""

    __tablename__ = "app_setting"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
