"""消息: the caller's in-app notifications, newest first; marking them read."""

from typing import Any

from flask import request

from engine import InvalidData

from ..extensions import MAX_ROW_ID
from . import bp
from .support import engine, login_required, optional_body, paging, username, whole_number


@bp.get("/notifications")
@login_required
def notifications() -> dict[str, Any]:
    unread = request.args.get("unread")
    if unread not in (None, "", "true", "false"):
        raise InvalidData("unread 只能是 true 或 false", {"unread": "取值无效"})
    return engine().notifications(username(), unread_only=unread == "true", **paging())


@bp.post("/notifications/read")
@login_required
def mark_read() -> dict[str, Any]:
    """`{ids: [...]}` marks those; no body (or no ids) marks all of the caller's."""
    data = optional_body()
    ids = data.get("ids")
    if ids is not None:
        if not isinstance(ids, list) or not all(whole_number(i, 1, MAX_ROW_ID) for i in ids):
            raise InvalidData("ids 应为消息编号列表", {"ids": "应为正整数列表"})
        ids = [int(i) for i in ids]
    return {"marked": engine().mark_notifications_read(username(), ids)}
