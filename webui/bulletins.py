"""月通报: the published monthly bulletins as pages (text, per-unit figures, the .docx), and this
month's live figures. Staff edit the draft in the bulletin process's 编辑通报 step."""

from datetime import datetime
from typing import Any

from flask import Blueprint, current_app, render_template, request

from engine import InvalidData
from engine.workdays import BEIJING

from .auth import current_username, login_required
from .extensions import get_engine, get_office

bp = Blueprint("bulletins", __name__, url_prefix="/bulletins")

KIND = "月度通报"


@bp.get("")
@login_required
def index() -> str:
    engine, office = get_engine(current_app), get_office(current_app)
    period = request.args.get("period") or datetime.now(BEIJING).strftime("%Y-%m")
    try:
        live = office.period_report(period, current_username())
    except InvalidData:
        period = datetime.now(BEIJING).strftime("%Y-%m")
        live = office.period_report(period, current_username())
    published = engine.documents_of_kind(KIND, current_username())
    return render_template("bulletins/index.html", published=published, live=live, period=period)


@bp.get("/<int:document_id>")
@login_required
def show(document_id: int) -> str:
    detail: dict[str, Any] = get_engine(current_app).document_detail(
        document_id, current_username()
    )
    data = detail.get("data") or {}
    return render_template(
        "bulletins/show.html",
        document=detail,
        title=data.get("bulletin_title") or detail["title"],
        paragraphs=[p for p in str(data.get("bulletin_body") or "").splitlines() if p.strip()],
        figures=data.get("figures") or {},
    )
