"""Sign-in commands on the engine: password sign-in (throttled per client address), page
sessions (their stamp, sign-out), API tokens, the shared signing key, and audited refusals."""

import secrets
from datetime import timedelta
from typing import Any

from . import accounts, audit, directory
from .base import EngineBase
from .errors import NotSignedIn

# A token's last use is written at most this often, so reads stay reads.
LAST_USE_RESOLUTION = timedelta(minutes=5)


class AccountCommands(EngineBase):
    def sign_in(
        self,
        username: str,
        password: str,
        *,
        via: str = "password",
        address: str | None = None,
    ) -> dict:
        """The user's summary if the password is right; NotSignedIn, or SignInLocked while the
        client `address` must wait (see accounts: throttling slows an address down, it never
        locks the account). Every failure is audited on the account it names, with the address
        and never the password."""
        username = username.strip()
        address = accounts.client_address(address)
        with self.command() as (session, ctx):
            accounts.check_throttle(session, username, address, ctx.now)
            user = directory.user_by_name(session, username) if username else None
            if user and user.active and directory.verify_password(user, password):
                accounts.record_success(session, username, address)
                audit.record(
                    session,
                    "signed_in",
                    ctx.now,
                    actor_id=user.id,
                    detail={"via": via, "address": address},
                )
                return user.summary()
            wait = accounts.record_failure(session, username, address, ctx.now)
            detail: dict[str, Any] = {"username": username[:80], "via": via, "address": address}
            if wait:
                detail["wait_seconds"] = int(wait.total_seconds())
            audit.record(
                session,
                "sign_in_failed",
                ctx.now,
                actor_id=user.id if user else None,
                detail=detail,
            )
        accounts.LOG.warning("failed sign-in for %r from %s (%s)", username[:80], address, via)
        raise NotSignedIn("用户名或密码错误", error="invalid_credentials")

    def external_sign_in(self, username: str, *, address: str | None = None) -> dict:
        """An external identity provider vouched for `username`: audited like a password
        sign-in; NotSignedIn unless they are an active duban user."""
        with self.command() as (session, ctx):
            user = directory.user_by_name(session, username)
            if user is None or not user.active:
                raise NotSignedIn("账号不存在或已停用，请重新登录")
            audit.record(
                session,
                "signed_in",
                ctx.now,
                actor_id=user.id,
                detail={"via": "external", "address": accounts.client_address(address)},
            )
            return user.summary()

    def session_stamp(self, username: str) -> dict[str, Any]:
        """What a page session opened right after a recorded sign-in needs: the user's
        `version` to stamp into it, and the failed sign-ins on the account since the sign-in
        before this one (`failures`, newest first, at most 20) for a notice."""
        with self.read_session() as session:
            user = directory.user_by_name(session, username)
            if user is None or not user.active:
                raise NotSignedIn("账号不存在或已停用，请重新登录")
            previous = accounts.sign_in_ids(session, user.id)[1:]
            failures = accounts.failed_sign_ins(
                session, user.id, after_id=previous[0] if previous else 0
            )
            return {"version": user.session_version, "failures": failures}

    def sign_out(self, username: str, session_version: Any) -> None:
        """退出: end every page session of the user, if the one signing out is still valid (a
        session already ended changes nothing). API tokens are signed out on their own."""
        with self.command() as (session, ctx):
            user = directory.user_by_name(session, username)
            if user is None or user.session_version != session_version:
                return
            accounts.end_sessions(session, user, ctx.now, tokens=False)
            audit.record(session, "signed_out", ctx.now, actor_id=user.id)

    def sign_in_failures(self, username: str, *, limit: int = 20) -> dict[str, Any]:
        """The latest failed sign-ins on the caller's own account, newest first."""
        with self.read_session() as session:
            actor = self.actor(session, username)
            assert actor is not None
            return {"items": accounts.failed_sign_ins(session, actor.id, limit=limit)}

    def profile(self, username: str, *, session_version: int | None = None) -> dict[str, Any]:
        """Who a signed-in user is, for the page header and permission-aware pages;
        NotSignedIn if the account is gone or deactivated since, or — given the
        `session_version` a page session was stamped with — if that session has been ended
        since (sign-out, new password, deactivation, 强制退出). One lookup of the user's row,
        which every request makes anyway."""
        with self.read_session() as session:
            user = directory.user_by_name(session, username)
            if user is None or not user.active:
                raise NotSignedIn("账号不存在或已停用，请重新登录")
            if session_version is not None and user.session_version != session_version:
                raise NotSignedIn("登录已失效，请重新登录")
            actor = self.actor(session, username)
            assert actor is not None
            return {
                **user.summary(),
                "unit_id": user.unit_id,
                "sees_all": actor.sees_all,
                "is_admin": actor.is_admin,
            }

    def issue_token(
        self,
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

    def token_user(self, token: str) -> str:
        """The username a live token belongs to; NotSignedIn if unknown, expired or revoked.
        The token's last use is noted at most every LAST_USE_RESOLUTION, on this same session's
        connection and only if no one holds a lock on it: the bookkeeping never takes a second
        connection, never waits and never fails the request (see accounts.note_use)."""
        now = self.clock.now()
        with self.read_session() as session:
            row, username = accounts.token_owner(session, token, now)
            if row.last_used_at is None or now - row.last_used_at > LAST_USE_RESOLUTION:
                accounts.note_use(session, row.id, now)
        return username

    def revoke_token(self, token: str) -> None:
        """Sign a token out (the caller holds it, so no other check is needed)."""
        with self.command() as (session, ctx):
            row, _username = accounts.token_owner(session, token, ctx.now)
            row.revoked_at = ctx.now
            audit.record(
                session, "token_revoked", ctx.now, actor_id=row.user_id, detail={"id": row.id}
            )

    def revoke_tokens(self, username: str, *, by: str | None = None) -> int:
        """Revoke every live token of `username` (the user themself or an administrator)."""
        with self.command(by or username) as (session, ctx):
            if by and by != username:
                self._require_admin(session, by)
            user = directory.user_by_name(session, username)
            if user is None:
                return 0
            count = accounts.revoke_live_tokens(session, user.id, ctx.now)
            audit.record(
                session,
                "tokens_revoked",
                ctx.now,
                actor_id=ctx.actor_id,
                detail={"username": username, "count": count},
            )
            return count

    def secret_key(self) -> str:
        """The installation's session signing key, for when the environment sets none
        (DUBAN_SECRET_KEY): drawn once — at `duban init`, or by whichever process needs it first
        — and kept in the database, so every process and every restart signs alike."""
        with self.write_session() as session, session.begin():
            value = accounts.setting(session, "secret_key", lambda: secrets.token_hex(32))
        assert value is not None
        return value

    def record_refusal(self, username: str | None, action: str, message: str) -> None:
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
