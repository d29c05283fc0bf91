"""What every page shares: the header's unread count and navigation, and the Jinja filters
that show times (Beijing), waiting times, lights and statuses in Chinese."""

from datetime import datetime
from typing import Any

from flask import Blueprint, current_app

from engine.workdays import BEIJING

from .app import get_engine
from .auth import current_user

bp = Blueprint("pages", __name__)

LEADER_ROLES = ("主任", "第一副主任", "常务副主任", "副主任", "县指挥部领导", "工作组组长")
HQ_ROLES = ("县指挥部领导",)
LIGHTS = {"red": "红灯", "yellow": "黄灯", "green": "绿灯"}
STATUSES = {
    "running": "办理中",
    "completed": "已办结",
    "error": "出错",
    "suspended": "已暂停",
    "terminated": "已终止",
    "open": "待办",
    "waiting": "等待中",
    "returned": "已退回",
    "withdrawn": "已撤回",
    "cancelled": "已取消",
}
EVENTS = {
    "attachment_added": "上传附件",
    "attachment_removed": "清理未提交的附件",
    "instance_started": "发起流程",
    "instance_completed": "流程办结",
    "instance_error": "流程出错",
    "instance_terminated": "终止流程",
    "instance_suspended": "暂停流程",
    "instance_resumed": "恢复流程",
    "instance_retried": "重试流程",
    "instance_reset": "重置流程",
    "instance_copied": "抄送",
    "task_created": "生成待办",
    "task_claimed": "认领",
    "task_unclaimed": "退回任务池",
    "task_completed": "办理",
    "task_returned": "退回",
    "task_withdrawn": "撤回",
    "task_transferred": "转办",
    "task_delegated": "委派",
    "task_delegation_resolved": "委派办结",
    "task_reassigned": "改派",
    "task_urged": "催办",
    "task_signed": "加签意见",
    "signers_added": "加签",
    "signers_done": "加签完成",
    "timer_fired": "定时触发",
    "message_delivered": "收到消息",
    "cc_warning": "抄送提醒",
}
OPINIONS = {
    "approve": "同意",
    "return": "退回",
    "reject": "不同意",
    "complete": "办理",
    "transfer": "转办",
    "delegate": "委派",
    "resolve": "委派办结",
    "add_signers": "加签",
    "sign": "加签意见",
    "withdraw": "撤回",
    "urge": "催办",
    "cc": "抄送",
    "reassign": "改派",
}


def has_any(user: dict[str, Any] | None, roles: tuple[str, ...]) -> bool:
    return bool(user) and (user["is_admin"] or bool(set(user["roles"]) & set(roles)))


@bp.app_context_processor
def chrome() -> dict[str, Any]:
    me = current_user()
    unread = 0
    if me:
        try:
            unread = get_engine(current_app).unread_count(me["username"])
        except Exception:  # the header must never break a page (e.g. an error page)
            unread = 0
    return {
        "unread": unread,
        "is_leader": has_any(me, LEADER_ROLES),
        "is_hq": has_any(me, HQ_ROLES),
        "lights": LIGHTS,
    }


def _parse(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=BEIJING)


@bp.app_template_filter("bj")
def beijing(value: Any, pattern: str = "%Y-%m-%d %H:%M") -> str:
    """An ISO time as Beijing wall-clock time; a bare date stays as it is."""
    if isinstance(value, str) and len(value) == 10:
        return value
    parsed = _parse(value)
    return parsed.astimezone(BEIJING).strftime(pattern) if parsed else ""


@bp.app_template_filter("bjdate")
def beijing_date(value: Any) -> str:
    return beijing(value, "%Y-%m-%d")


@bp.app_template_filter("waited")
def waited(value: Any) -> str:
    """How long since `value`, in words: 3天2小时, 5小时, 20分钟."""
    since = _parse(value)
    if since is None:
        return ""
    seconds = max(0, int((get_engine(current_app).clock.now() - since).total_seconds()))
    days, hours, minutes = seconds // 86400, seconds % 86400 // 3600, seconds % 3600 // 60
    if days:
        return f"{days}天{hours}小时" if hours else f"{days}天"
    if hours:
        return f"{hours}小时"
    return f"{minutes}分钟"


@bp.app_template_filter("status")
def status_label(value: Any) -> str:
    return STATUSES.get(str(value), str(value or ""))


@bp.app_template_filter("event")
def event_label(value: Any) -> str:
    return EVENTS.get(str(value), str(value or ""))


@bp.app_template_filter("opinion_kind")
def opinion_label(value: Any) -> str:
    return OPINIONS.get(str(value), str(value or ""))


@bp.app_template_filter("percent")
def percent(value: Any) -> str:
    return "—" if value is None else f"{float(value) * 100:.1f}%"


def local_path(target: str | None, default: str) -> str:
    """`target` if it is a path on this site, else `default` (no open redirects)."""
    if not target or not target.startswith("/") or target[1:2] in ("/", "\\"):
        return default
    return target
