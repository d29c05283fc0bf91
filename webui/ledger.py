"""督办台账: every tracked item with its light, lead unit, deadline and last progress; filters by
unit, source, light, status and period, and the same list as a spreadsheet."""

import re
from typing import Any

from flask import Blueprint, current_app, render_template, request

from office.vocabulary import ITEM_KINDS

from .auth import current_user, login_required
from .extensions import get_engine

bp = Blueprint("ledger", __name__, url_prefix="/ledger")

FILTERS = ("kind", "unit", "source", "status", "light", "closed", "period")
PERIOD = re.compile(r"^(19|2\d)\d{2}(-(0[1-9]|1[0-2]))?$")
KINDS = ITEM_KINDS
STATUSES = ("待签收", "办理中", "延期审批中", "办结审核中", "已办结", "已销号")
CLOSED = {"": "全部", "false": "未办结", "true": "已办结"}


def _filters() -> dict[str, str]:
    chosen = {key: request.args.get(key, "").strip() for key in FILTERS}
    if chosen["light"] not in ("", "red", "yellow", "green"):
        chosen["light"] = ""
    if chosen["closed"] not in CLOSED:
        chosen["closed"] = ""
    if not PERIOD.match(chosen["period"]):
        chosen["period"] = ""
    return chosen


@bp.get("")
@login_required
def index() -> str:
    me = current_user()
    assert me is not None
    engine = get_engine(current_app)
    chosen = _filters()
    query: dict[str, Any] = {k: v or None for k, v in chosen.items() if k != "closed"}
    query["closed"] = None if not chosen["closed"] else chosen["closed"] == "true"
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    result = engine.items(me["username"], **query, page=page, per_page=50)
    export = {k: v for k, v in chosen.items() if v}
    return render_template(
        "ledger/index.html",
        result=result,
        chosen=chosen,
        units=engine.directory_choices()["units"],
        kinds=KINDS,
        statuses=STATUSES,
        closed_options=CLOSED,
        export=export,
    )
