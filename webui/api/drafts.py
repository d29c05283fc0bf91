"""Task drafts: what someone typed into a task form and has not submitted (the task page saves
the same drafts as they type)."""

from typing import Any

from engine import NotFound

from . import bp
from .support import body, engine, form_data, login_required, text, username


@bp.get("/tasks/<task_id>/draft")
@login_required
def task_draft(task_id: str) -> dict[str, Any]:
    found = engine().task_draft(task_id, username())
    if found is None:
        raise NotFound("该任务没有您保存的草稿")
    return found


@bp.put("/tasks/<task_id>/draft")
@login_required
def save_task_draft(task_id: str) -> dict[str, Any]:
    data = body()
    return engine().save_task_draft(
        task_id, form_data(data), user=username(), opinion=text(data, "opinion")
    )


@bp.delete("/tasks/<task_id>/draft")
@login_required
def discard_task_draft(task_id: str) -> dict[str, Any]:
    return {"deleted": engine().discard_task_draft(task_id, username())}
