"""Page sessions: Flask's signed cookie, signed with a key every process shares.

The key is `DUBAN_SECRET_KEY` when the environment sets it; otherwise the one `duban init`
stored in the database (drawn there by the first process that needs it, if init did not), read
once per process at its first request. So restarts and every gunicorn worker sign alike.
Whether a signed session is still valid is checked on each request against the user's session
version (see auth.current_user): signing out, a new password, deactivation and an
administrator's 强制退出 end sessions server-side.
"""

from typing import Any

from flask import Flask
from flask.sessions import SecureCookieSessionInterface

from .extensions import get_engine


class SharedKeySessionInterface(SecureCookieSessionInterface):
    """The cookie session of Flask, with the key loaded from the database when not configured."""

    def get_signing_serializer(self, app: Flask) -> Any:
        if not app.secret_key:
            try:
                app.config["SECRET_KEY"] = get_engine(app).secret_key()
            except (
                Exception
            ):  # the database is down: no session this request (/health still answers)
                app.logger.exception("the session signing key cannot be read from the database")
                return None
        return super().get_signing_serializer(app)
