"""Signing in and out of the pages: a session cookie after the password (or an external
identity provider, see identity.py), and `login_required` for every page."""

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response

from engine.errors import NotSignedIn, SignInLocked

from .app import get_engine

bp = Blueprint("auth", __name__)


def current_user() -> dict[str, Any] | None:
    """The signed-in user's profile (`username, name, unit, unit_id, roles, sees_all,
    is_admin`), read once per request; None when nobody is signed in."""
    if "user" not in g:
        username = session.get("username")
        g.user = None
        if username:
            try:
                g.user = get_engine(current_app).profile(username)
            except NotSignedIn:  # deactivated since signing in
                session.clear()
    return g.user


def current_username() -> str:
    """The signed-in user's name, in a view behind `login_required`."""
    user = current_user()
    assert user is not None, "current_username() outside login_required"
    return user["username"]


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapped


def _safe_next(target: str | None) -> str:
    """Only local paths: an open redirect would let a phishing link borrow our sign-in."""
    if not target:
        return url_for("inbox.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("inbox.index")
    return target


def _start_session(username: str) -> None:
    session.clear()  # a fresh session id after sign-in (no fixation)
    session.permanent = True
    session["username"] = username


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    provider = current_app.extensions.get("duban_identity")
    next_url = _safe_next(request.values.get("next"))
    error, username, status = None, "", 200
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        if not current_app.config.get("PASSWORD_LOGIN", True):
            error, status = "本系统已改用统一身份认证登录", 403
        elif not username or not password:
            error, status = "请输入用户名和密码", 400
        else:
            try:
                get_engine(current_app).sign_in(username, password, via="page")
            except SignInLocked as exc:
                error, status = exc.message, 429
            except NotSignedIn as exc:
                error, status = exc.message, 401
            else:
                _start_session(username)
                return redirect(next_url)
    page = render_template(
        "auth/login.html",
        error=error,
        username=username,
        next_url=next_url,
        provider=provider,
        password_login=current_app.config.get("PASSWORD_LOGIN", True),
    )
    return page, status


@bp.get("/login/external")
def login_external() -> Response:
    provider = current_app.extensions.get("duban_identity")
    if provider is None:
        return redirect(url_for("auth.login"))
    session["login_next"] = _safe_next(request.args.get("next"))
    return redirect(provider.start(url_for("auth.login_callback", _external=True)))


@bp.get("/login/callback")
def login_callback() -> Any:
    provider = current_app.extensions.get("duban_identity")
    if provider is None:
        return redirect(url_for("auth.login"))
    next_url = session.get("login_next") or url_for("inbox.index")
    try:
        username = provider.finish(request)
        get_engine(current_app).profile(username)  # must be an active duban user
    except NotSignedIn as exc:
        page = render_template(
            "auth/login.html",
            error=exc.message,
            username="",
            next_url=next_url,
            provider=provider,
            password_login=current_app.config.get("PASSWORD_LOGIN", True),
        )
        return page, 401
    _start_session(username)
    return redirect(next_url)


@bp.post("/logout")
def logout() -> Response:
    session.clear()
    return redirect(url_for("auth.login"))
