"""Sign-in commands on the engine: password sign-in, API tokens, and audited refusals."""

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from . import accounts, audit, directory
from .errors import NotSignedIn
from .models import ApiToken

if TYPE_CHECKING:
    from .engine import Engine

# A token's last use is written at most this often, so reads stay reads.
LAST_USE_RESOLUTION = timedelta(minutes=5)


class AccountCommands:
    def sign_in(self: "Engine", username: str, password: str, *, via: str = "password") -> dict:
        """The user's summary if the password is right; NotSignedIn or SignInLocked otherwise.
        Failures count towards the lockout and are audited; the password is never recorded."""
        username = username.strip()
        with self.command() as (session, ctx):
            accounts.check_not_locked(session, username, ctx.now)
            user = directory.user_by_name(session, username) if username else None
            if user and user.active and directory.verify_password(user, password):
                accounts.record_success(session, username)
                audit.record(session, "signed_in", ctx.now, actor_id=user.id, detail={"via": via})
                return user.summary()
            accounts.record_failure(session, username, ctx.now)
            audit.record(
                session,
                "sign_in_failed",
                ctx.now,
                actor_id=user.id if user else None,
                detail={"username": username[:80], "via": via},
            )
        raise NotSignedIn("用户名或密码错误", error="invalid_credentials")

    def profile(self: "Engine", username: str) -> dict[str, Any]:
        """Who a signed-in user is, for the page header and permission-aware pages;
        NotSignedIn if the account is gone or deactivated since."""
        with self.read_session() as session:
            user = directory.user_by_name(session, username)
            if user is None or not user.active:
                raise NotSignedIn("账号不存在或已停用，请重新登录")
            actor = self.actor(session, username)
            assert actor is not None
            return {
                **user.summary(),
                "unit_id": user.unit_id,
                "sees_all": actor.sees_all,
                "is_admin": actor.is_admin,
            }

    def issue_token(
        self: "Engine",
        username: str,
        *,
        label: str | None = None,
        lifetime: timedelta = accounts.TOKEN_LIFETIME,
    ) -> dict[str, Any]:
        """A new bearer token for a signed-in user; only its hash is stored."""
        with self.command(username) as (session, ctx):
            user = directory.user_by_name(session, username)
            assert user is not None  # self.command resolved the actor
            token, row = accounts.issue_token(session, user, ctx.now, lifetime, label)
            audit.record(session, "token_issued", ctx.now, actor_id=user.id, detail={"id": row.id})
            return {"token": token, "expires_at": row.expires_at.isoformat(), "id": row.id}

    def token_user(self: "Engine", token: str) -> str:
        """The username a live token belongs to; NotSignedIn if unknown, expired or revoked."""
        now = self.clock.now()
        with self.read_session() as session:
            row, username = accounts.token_owner(session, token, now)
            stale = row.last_used_at is None or now - row.last_used_at > LAST_USE_RESOLUTION
            token_id = row.id
        if stale:
            with self.write_session() as session, session.begin():
                session.execute(
                    update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now)
                )
        return username

    def revoke_token(self: "Engine", token: str) -> None:
        """Sign a token out (the caller holds it, so no other check is needed)."""
        with self.command() as (session, ctx):
            row, _username = accounts.token_owner(session, token, ctx.now)
            row.revoked_at = ctx.now
            audit.record(
                session, "token_revoked", ctx.now, actor_id=row.user_id, detail={"id": row.id}
            )

    def revoke_tokens(self: "Engine", username: str, *, by: str | None = None) -> int:
        """Revoke every live token of `username` (the user themself or an administrator)."""
        with self.command(by or username) as (session, ctx):
            if by and by != username:
                self._require_admin(session, by)
            user = directory.user_by_name(session, username)
            if user is None:
                return 0
            rows = list(
                session.scalars(
                    select(ApiToken).where(
                        ApiToken.user_id == user.id,
                        ApiToken.revoked_at.is_(None),
                        ApiToken.expires_at > ctx.now,
                    )
                )
            )
            for row in rows:
                row.revoked_at = ctx.now
            audit.record(
                session,
                "tokens_revoked",
                ctx.now,
                actor_id=ctx.actor_id,
                detail={"username": username, "count": len(rows)},
            )
            return len(rows)

    def record_refusal(self: "Engine", username: str | None, action: str, message: str) -> None:
        """Audit a refused request (HTTP 403); it changes nothing else."""
        with self.write_session() as session, session.begin():
            actor_id = None
            if username:
                found = directory.actor_row(session, username)
                actor_id = found[0] if found else None
            audit.record(
                session,
                "access_denied",
                self.clock.now(),
                actor_id=actor_id,
                reason=message,
                detail={"action": action[:300], "username": username},
            )
