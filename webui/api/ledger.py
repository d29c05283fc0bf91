"""督办台账: tracked items with their lights, filtered; or the same list as a spreadsheet."""

from typing import Any
from urllib.parse import quote

from flask import Response, request

from engine import InvalidData

from . import bp
from .support import engine, login_required, office, paging, username

LIGHTS = ("red", "yellow", "green")
LEDGER_FILE = quote("督办台账.xlsx")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def item_filters() -> dict[str, Any]:
    args = request.args
    light = args.get("light") or None
    if light is not None and light not in LIGHTS:
        raise InvalidData("light 只能是 red、yellow 或 green", {"light": "取值无效"})
    closed = args.get("closed")
    if closed not in (None, "", "true", "false"):
        raise InvalidData("closed 只能是 true 或 false", {"closed": "取值无效"})
    return {
        "kind": args.get("kind") or None,
        "unit": args.get("unit") or None,
        "source": args.get("source") or None,
        "status": args.get("status") or None,
        "light": light,
        "closed": None if not closed else closed == "true",
        "period": args.get("period") or None,
    }


@bp.get("/items")
@login_required
def items() -> Any:
    """?format=xlsx answers the same filtered list as a spreadsheet."""
    fmt = request.args.get("format", "json")
    if fmt not in ("json", "xlsx"):
        raise InvalidData("format 只能是 json 或 xlsx", {"format": "取值无效"})
    if fmt == "xlsx":
        content = office().export_items(username(), **item_filters())
        return Response(
            content,
            mimetype=XLSX,
            headers={"Content-Disposition": f"attachment; filename*=UTF-8''{LEDGER_FILE}"},
        )
    return engine().items(username(), **item_filters(), **paging())
