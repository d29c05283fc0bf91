"""The instance page: its own version's diagram drawn by bpmn-js with done / current / waiting
steps coloured, the timeline of every event, parent and child links, and its documents."""

from typing import Any

from flask import Blueprint, current_app, render_template

from .auth import current_user, current_username, login_required
from .extensions import get_engine

bp = Blueprint("instances", __name__, url_prefix="/instances")


@bp.get("/<int:instance_id>")
@login_required
def show(instance_id: int) -> str:
    engine = get_engine(current_app)
    detail = engine.instance(instance_id, current_username())
    choices = engine.directory_choices()
    names = {u["code"]: u["name"] for u in choices["units"]}
    names.update({u["username"]: u["name"] for u in choices["users"]})
    return render_template(
        "instances/show.html",
        instance=detail,
        documents=_documents(instance_id),
        titles=engine.field_titles(instance_id),
        names=names,
        may_urge=_may_urge(detail),
        me=current_username(),
    )


def _may_urge(detail: dict[str, Any]) -> bool:
    """Offer 催办 to those the engine lets urge: the initiator, people who took part,
    administrators, and the office (roles that see everything; processes may name more)."""
    me = current_user()
    assert me is not None
    if me["is_admin"] or me["sees_all"]:
        return True
    took_part = {e["actor"] for e in detail["history"] if e["kind"] == "instance_started"}
    took_part |= {o["actor"] for o in detail.get("opinions", [])}
    return me["username"] in took_part


def _documents(instance_id: int) -> list[dict[str, Any]]:
    """Documents produced by the instance, once the document engine (issue 8) provides them."""
    engine = get_engine(current_app)
    documents = getattr(engine, "documents", None)
    if documents is None:
        return []
    found = documents(instance_id, user=current_username())
    return found.get("items", []) if isinstance(found, dict) else list(found)
