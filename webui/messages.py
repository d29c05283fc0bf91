"""消息: in-app notifications (new task, reminder, return, CC), newest first, marked read."""

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from .auth import current_username, login_required
from .extensions import get_engine
from .pages import local_path

bp = Blueprint("messages", __name__, url_prefix="/messages")


@bp.get("")
@login_required
def index() -> str:
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    unread_only = request.args.get("unread") == "1"
    result = get_engine(current_app).notifications(
        current_username(), unread_only=unread_only, page=page
    )
    return render_template("messages/index.html", result=result, unread_only=unread_only)


@bp.post("/read")
@login_required
def mark_read() -> Response:
    """One notification (`id`) or, without one, all of mine; `next` opens what it is about."""
    raw = request.form.get("id", "")
    ids = [int(raw)] if raw.isdigit() else None
    marked = get_engine(current_app).mark_notifications_read(current_username(), ids)
    target = local_path(request.form.get("next"), "")
    if target:
        return redirect(target)
    if ids is None:
        flash(f"已将 {marked} 条消息标为已读", "ok")
    return redirect(url_for("messages.index"))
