"""Documents (文书) kept with an instance, the .docx download, and the monthly figures."""

from typing import Any
from urllib.parse import quote

from flask import Response, request

from engine import InvalidData

from . import bp
from .ledger import item_filters
from .support import engine, login_required, office, username

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def attachment(content: bytes, filename: str, mimetype: str) -> Response:
    return Response(
        content,
        mimetype=mimetype,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"},
    )


@bp.get("/instances/<int:instance_id>/documents")
@login_required
def instance_documents(instance_id: int) -> dict[str, Any]:
    found = engine().documents(instance_id, username())
    return {
        "items": [
            {k: d[k] for k in ("id", "kind", "title", "number", "filename", "created_at")}
            for d in found
        ]
    }


@bp.get("/documents/<int:document_id>")
@login_required
def document(document_id: int) -> Response:
    filename, content, _title = engine().document(document_id, username())
    return attachment(content, filename, DOCX)


@bp.get("/reports/monthly")
@login_required
def monthly() -> dict[str, Any]:
    """?period=YYYY-MM (or YYYY): the bulletin's figures, live from the ledger."""
    period = request.args.get("period") or ""
    if not period:
        raise InvalidData("请指定期间（period，YYYY-MM 或 YYYY）", {"period": "必填"})
    return office().period_report(period, username())


@bp.get("/instances/<int:instance_id>/scores.xlsx")
@login_required
def scores(instance_id: int) -> Response:
    """An annual evaluation's score sheet and results as a spreadsheet."""
    return attachment(office().export_scores(instance_id, username()), "考核评分表.xlsx", XLSX)


@bp.get("/rectifications.xlsx")
@login_required
def rectifications() -> Response:
    """整改清单: task, problem and responsibility lists; ?unit=&light=&closed= as for /items."""
    filters = {k: v for k, v in item_filters().items() if k != "kind"}
    return attachment(office().export_rectifications(username(), **filters), "整改清单.xlsx", XLSX)
