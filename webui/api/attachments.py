"""Attachments (附件, 佐证材料): upload a file into an open task, download it back."""

from typing import Any
from urllib.parse import quote

from flask import Response, request

from engine import InvalidData

from . import bp
from .support import engine, login_required, username


@bp.post("/tasks/<task_id>/attachments")
@login_required
def upload_attachment(task_id: str) -> tuple[dict[str, Any], int]:
    """multipart/form-data with one file in the field `file`."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise InvalidData("请选择要上传的文件（字段 file）", {"file": "必填"})
    kept = engine().add_attachment(
        task_id, upload.filename, upload.mimetype, upload.read(), username()
    )
    return kept, 201


@bp.get("/attachments/<int:attachment_id>")
@login_required
def download_attachment(attachment_id: int) -> Response:
    name, content_type, data = engine().attachment(attachment_id, username())
    disposition = f"attachment; filename*=UTF-8''{quote(name)}"
    return Response(data, mimetype=content_type, headers={"Content-Disposition": disposition})
