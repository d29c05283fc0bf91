"""What every page shares: the header's unread count and navigation, and the Jinja filters
that show times (Beijing), waiting times, and (from webui/labels.py) lights, statuses, task
states, audit events and opinions in Chinese."""

from datetime import datetime
from typing import Any

from flask import Blueprint, current_app

from engine.workdays import BEIJING
from office.vocabulary import HQ_ROLES, LEADER_ROLES

from . import labels
from .auth import current_user
from .extensions import get_engine

bp = Blueprint("pages", __name__)


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
        "lights": labels.LIGHTS,
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


for _name, _label in labels.FILTERS.items():  # status, task_state, event, opinion_kind …
    bp.add_app_template_filter(_label, _name)


@bp.app_template_filter("percent")
def percent(value: Any) -> str:
    return "—" if value is None else f"{float(value) * 100:.1f}%"


def local_path(target: str | None, default: str) -> str:
    """`target` if it is a path on this site, else `default` (no open redirects)."""
    if not target or not target.startswith("/") or target[1:2] in ("/", "\\"):
        return default
    return target
