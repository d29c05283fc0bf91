"""考核结果审定: the annual evaluation results (per-unit scores, grades, evidence) for the HQ
leader, with 同意 / 退回 and an opinion. The decision completes the same task the task page does."""

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for

from engine import InvalidData

from .auth import current_username, login_required
from .extensions import get_engine

bp = Blueprint("evaluation", __name__, url_prefix="/evaluation")

PROCESS, STEP = "annual_evaluation", "hq_approve"


def _open_reviews(user: str) -> list[dict[str, Any]]:
    engine = get_engine(current_app)
    todo = engine.tasks(user, box="todo", per_page=500)["items"]
    reviews = [
        engine.task(t["id"], user) for t in todo if t["process"] == PROCESS and t["name"] == STEP
    ]
    for review in reviews:  # each unit's self-evaluation is the evidence behind its score
        selves = (review.get("data") or {}).get("self_evaluations") or []
        review["evidence"] = {s.get("unit"): s for s in selves if isinstance(s, dict)}
    return reviews


@bp.get("")
@login_required
def index() -> str:
    return _page(_open_reviews(current_username()))


def _page(
    reviews: list[dict[str, Any]],
    errors: dict[str, dict[str, str]] | None = None,
    typed: dict[str, dict[str, str]] | None = None,
) -> str:
    names = {u["code"]: u["name"] for u in get_engine(current_app).directory_choices()["units"]}
    return render_template(
        "evaluation/index.html",
        reviews=reviews,
        errors=errors or {},
        typed=typed or {},
        unit_names=names,
        me=current_username(),
    )


@bp.post("/<task_id>")
@login_required
def decide(task_id: str) -> Any:
    engine, user = get_engine(current_app), current_username()
    decision = request.form.get("decision", "")
    data = {"decision": decision}
    for key in ("reason", "opinion"):
        if request.form.get(key, "").strip():
            data[key] = request.form[key].strip()
    try:
        engine.complete(task_id, data, user=user, opinion=data.get("reason") or data.get("opinion"))
    except InvalidData as exc:
        return _page(_open_reviews(user), {task_id: exc.errors}, {task_id: data}), 422
    engine.discard_task_draft(task_id, user, everyone=True)
    flash("考核结果已审定同意，将在全县通报" if decision == "approve" else "已退回结果建议", "ok")
    return redirect(url_for("evaluation.index"))
