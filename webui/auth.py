"""Signing in and out of the pages: a session cookie after the password (or an external
identity provider, see identity.py), `login_required` for every page, and 我的账号 (the
account's recent failed sign-ins).

A session holds the username and the user's session version at sign-in (`SESSION_VERSION`);
every request checks it with the user lookup it makes anyway (`current_user`), so 退出, a new
password, deactivation or an administrator's 强制退出 end a session captured before at once.
Sign-ins are throttled per client address (`request.remote_addr`: behind a reverse proxy set
DUBAN_PROXY_HOPS so it is the client's, see app.py)."""

from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response

from engine.errors import NotSignedIn, SignInLocked
from engine.workdays import BEIJING

from .extensions import get_engine

bp = Blueprint("auth", __name__)

SESSION_VERSION = "session_version"


def current_user() -> dict[str, Any] | None:
    """The signed-in user's profile (`username, name, unit, unit_id, roles, sees_all,
    is_admin`), read once per request; None when nobody is signed in."""
    if "user" not in g:
        username = session.get("username")
        g.user = None
        if username:
            version = session.get(SESSION_VERSION)
            try:
                if not isinstance(version, int):  # signed before sessions could be ended
                    raise NotSignedIn("登录已失效，请重新登录")
                g.user = get_engine(current_app).profile(username, session_version=version)
            except NotSignedIn:  # deactivated, signed out or 强制退出 since
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
    """A new session stamped with the user's session version, and a notice of the failed
    sign-ins on the account since their previous sign-in."""
    stamp = get_engine(current_app).session_stamp(username)
    session.clear()  # a fresh session after sign-in (no fixation)
    session.permanent = True
    session["username"] = username
    session[SESSION_VERSION] = stamp["version"]
    failures = stamp["failures"]
    if failures:
        latest = failures[0]
        count = f"{len(failures)}+" if len(failures) >= 20 else str(len(failures))
        flash(
            f"自您上次登录以来，您的账号有 {count} 次登录失败，最近一次在 "
            f"{_beijing(latest['at'])}，来自 {latest['address'] or '未知地址'}。"
            "如非本人操作，请联系系统管理员（详见“我的账号”）",
            "error",
        )


def _beijing(value: str) -> str:
    return datetime.fromisoformat(value).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


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
                get_engine(current_app).sign_in(
                    username, password, via="page", address=request.remote_addr
                )
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
        # must be an active duban user; audited as a sign-in
        get_engine(current_app).external_sign_in(username, address=request.remote_addr)
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
    """退出: ends every page session of this user (a copy of the cookie stops working too)."""
    username = session.get("username")
    if username:
        get_engine(current_app).sign_out(username, session.get(SESSION_VERSION))
    session.clear()
    return redirect(url_for("auth.login"))


@bp.get("/account")
@login_required
def account() -> str:
    """我的账号: who I am and the latest failed sign-ins on my account."""
    failures = get_engine(current_app).sign_in_failures(current_username())["items"]
    return render_template("auth/account.html", failures=failures)
