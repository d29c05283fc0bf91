"""Tokens: sign in with a password for a bearer token, see who you are and the failed sign-ins on
your account, sign the token out."""

from typing import Any

from flask import current_app, request

from engine.errors import NotSignedIn

from . import bp
from .support import bearer_token, body, engine, login_required, text, username


@bp.post("/auth/token")
def issue_token() -> tuple[dict[str, Any], int]:
    data = body()
    if not current_app.config.get("PASSWORD_LOGIN", True):
        raise NotSignedIn("本系统已改用统一身份认证登录")
    name, password = text(data, "username") or "", text(data, "password") or ""
    if not name or not password:
        raise NotSignedIn("请输入用户名和密码", error="invalid_credentials")
    user = engine().sign_in(name, password, via="api", address=request.remote_addr)
    token = engine().issue_token(user["username"], label=text(data, "label"))
    return {**token, "user": user}, 200


@bp.delete("/auth/token")
@login_required
def revoke_token() -> tuple[str, int]:
    token = bearer_token()
    if token is None:
        raise NotSignedIn("只有令牌可以注销；网页登录请点击“退出”")
    engine().revoke_token(token)
    return "", 204


@bp.get("/auth/me")
@login_required
def me() -> dict[str, Any]:
    return engine().profile(username())


@bp.get("/auth/sign-in-failures")
@login_required
def sign_in_failures() -> dict[str, Any]:
    return engine().sign_in_failures(username())
