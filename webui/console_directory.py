"""运维控制台 · 用户/单位/角色: create, edit, deactivate (tasks go back to the unit's pool),
强制退出 (end a user's sessions and tokens), import users from a spreadsheet. The engine checks
the role and audits every change."""

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from engine import InvalidData

from .auth import SESSION_VERSION, login_required
from .console import TABS, carry_out, engine, failed, me

bp = Blueprint("console_directory", __name__, url_prefix="/console/directory")

USER_FIELDS = ("username", "name", "password", "unit")
UNIT_FIELDS = ("name", "code", "kind", "parent")
HOME = "console_directory.index"


def _form(names: tuple[str, ...], *, keep_empty: bool = False) -> dict[str, Any]:
    return {
        name: request.form.get(name, "").strip()
        for name in names
        if name in request.form and (keep_empty or request.form.get(name, "").strip())
    }


def _to_directory() -> Response:
    return redirect(url_for(HOME))


def _page(show: str = "active", report: list[str] | None = None) -> str:
    """The directory page: users (`show` "all", or only the active ones), units, roles, and
    what was wrong with a refused import (`report`)."""
    overview = engine().directory_overview(me())
    users = [u for u in overview["users"] if show == "all" or u["active"]]
    return render_template(
        "console/directory.html",
        tab="directory",
        tabs=TABS,
        overview=overview,
        users=users,
        show=show,
        report=report,
    )


@bp.get("/")
@login_required
def index() -> str:
    return _page(request.args.get("show", "active"))


@bp.post("/users")
@login_required
def create_user() -> Response:
    fields = {**_form(USER_FIELDS), "roles": request.form.getlist("roles")}
    return carry_out(
        lambda: engine().create_user(fields, user=me()),
        lambda created: f"已创建用户 {created['username']}（{created['name']}）",
        HOME,
    )


@bp.get("/users/<username>")
@login_required
def edit_user(username: str) -> str:
    overview = engine().directory_overview(me())
    found = next((u for u in overview["users"] if u["username"] == username), None)
    if found is None:
        flash(f"用户“{username}”不存在", "error")
        return index()
    return render_template(
        "console/user.html", tab="directory", tabs=TABS, person=found, overview=overview
    )


@bp.post("/users/<username>")
@login_required
def update_user(username: str) -> Response:
    fields = {**_form(("name", "unit"), keep_empty=True), "roles": request.form.getlist("roles")}
    if request.form.get("password"):
        fields["password"] = request.form["password"]
    try:
        engine().update_user(username, fields, user=me())
    except InvalidData as exc:
        failed(exc)
        return redirect(url_for("console_directory.edit_user", username=username))
    if "password" in fields and username == me():  # my other sessions end; this one goes on
        session[SESSION_VERSION] = engine().session_stamp(username)["version"]
    flash(f"已保存用户 {username}", "ok")
    return _to_directory()


@bp.post("/users/<username>/sign-out")
@login_required
def sign_out_everywhere(username: str) -> Response:
    """强制退出: every page session and API token of the user ends now."""
    try:
        result = engine().sign_out_everywhere(
            username, user=me(), reason=request.form.get("reason")
        )
    except InvalidData as exc:
        failed(exc)
        return redirect(url_for("console_directory.edit_user", username=username))
    if username == me():
        return redirect(url_for("auth.login"))
    message = f"已强制退出 {username} 的全部登录"
    if result["tokens_revoked"]:
        message += f"，并注销其 {result['tokens_revoked']} 个 API 令牌"
    flash(message, "ok")
    return _to_directory()


@bp.post("/users/<username>/deactivate")
@login_required
def deactivate_user(username: str) -> Response:
    try:
        result = engine().deactivate_user(username, user=me(), reason=request.form.get("reason"))
    except InvalidData as exc:
        failed(exc)
        return _to_directory()
    returned = result["tasks_returned"]
    message = f"已停用用户 {username}"
    if returned:
        message += f"，其 {len(returned)} 项待办已退回单位待办池"
        nobody = [t["title"] for t in returned if not t["candidates"]]
        if nobody:
            message += f"（{'、'.join(nobody)} 暂无人可办，请在“待办改派”中改派）"
    flash(message, "ok")
    return _to_directory()


@bp.post("/users/<username>/activate")
@login_required
def activate_user(username: str) -> Response:
    return carry_out(
        lambda: engine().activate_user(username, user=me(), reason=request.form.get("reason")),
        lambda _answer: f"已启用用户 {username}",
        HOME,
    )


@bp.post("/import")
@login_required
def import_users() -> Any:
    upload = request.files.get("file")
    report: list[str] = []
    try:
        if upload is None or not upload.filename:
            raise InvalidData("请选择要导入的 .xlsx 文件", {"file": "请选择 .xlsx 文件"})
        result = engine().import_users(upload.read(), user=me())
    except InvalidData as exc:
        report = [m for m in exc.errors.values()] or [exc.message]
        flash("导入失败，未导入任何用户，请按下列说明修改表格后重新导入", "error")
    else:
        flash(f"已导入 {result['imported']} 个用户", "ok")
        return _to_directory()
    return _page(report=report), 422


@bp.post("/units")
@login_required
def create_unit() -> Response:
    return carry_out(
        lambda: engine().create_unit(_form(UNIT_FIELDS), user=me()),
        lambda unit: f"已创建单位 {unit['name']}",
        HOME,
    )


@bp.post("/units/<int:unit_id>")
@login_required
def update_unit(unit_id: int) -> Response:
    return carry_out(
        lambda: engine().update_unit(unit_id, _form(UNIT_FIELDS, keep_empty=True), user=me()),
        lambda unit: f"已保存单位 {unit['name']}",
        HOME,
    )


@bp.post("/roles")
@login_required
def create_role() -> Response:
    fields = {**_form(("name", "description")), "sees_all": request.form.get("sees_all") == "1"}
    return carry_out(
        lambda: engine().create_role(fields, user=me()),
        lambda role: f"已创建角色 {role['name']}",
        HOME,
    )


@bp.post("/roles/<name>")
@login_required
def update_role(name: str) -> Response:
    fields = {
        "description": request.form.get("description", "").strip(),
        "sees_all": request.form.get("sees_all") == "1",
    }
    return carry_out(
        lambda: engine().update_role(name, fields, user=me()),
        lambda _answer: f"已保存角色 {name}",
        HOME,
    )
