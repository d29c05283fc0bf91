"""Health: is the database reachable, when is the next timer due."""

from flask import Blueprint, current_app, render_template_string

from .app import get_engine

bp = Blueprint("health", __name__)

_PAGE = """<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>督办 · 运行状态</title>
<h1>督办系统运行状态</h1><p>数据库：{{ database }}</p><p>下一个定时器：{{ next_timer or "无" }}</p>
</html>"""


@bp.get("/health")
def health() -> tuple[dict[str, str | None], int]:
    engine = get_engine(current_app)
    try:
        due = engine.next_timer_due()
    except Exception as exc:  # the database is down: say so, don't crash
        return {"status": "error", "database": f"不可用：{type(exc).__name__}"}, 503
    return {"status": "ok", "database": "ok", "next_timer": due.isoformat() if due else None}, 200


@bp.get("/")
def index() -> str:
    body, _ = health()
    return render_template_string(
        _PAGE, database=body["database"], next_timer=body.get("next_timer")
    )
