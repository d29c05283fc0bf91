"""Attachments (附件, 佐证材料): checking an upload, and the form data that names uploads.

A form field whose items are attachment objects (`{"name", "document_id"}` in the form's
`$defs`) holds `{"name", "id", "size"}` per uploaded file. An upload belongs to the task it was
sent to; a submitted form may name only uploads of its own instance, and naming one ties it to
the instance for good (it then shows on the instance page).

Uploads no submitted form has named yet are bounded: per task and person at most
`QUOTA_FILES` files and `QUOTA_BYTES` in all (`check_quota`), and once their task is no longer
open they are removed `UNUSED_DAYS` after upload (`remove_unused`, run by `duban worker`).
"""

import hashlib
import re
import unicodedata
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from . import audit
from .errors import InvalidData, QuotaExceeded
from .models import Attachment, HumanTask, User
from .status import OPEN_STATES

if TYPE_CHECKING:
    from .runtime import Run

MAX_BYTES = 15 * 1024 * 1024  # below the web app's 16 MB request cap, so the refusal is ours
NAME_LENGTH = 120
# Office file types only, each served back with its own fixed type (never the browser's guess).
TYPES = {
    "pdf": "application/pdf",
    "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt": "application/vnd.ms-powerpoint",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "txt": "text/plain",
    "zip": "application/zip",
    "ofd": "application/ofd",
    "wps": "application/vnd.ms-works",
}
ALLOWED = "pdf、doc/docx、xls/xlsx、ppt/pptx、jpg/png、txt、zip、ofd、wps"
_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]+')
# Bidirectional controls (LRM/RLM, ALM, embeddings and overrides, isolates): "发票\u202egpj.exe"
# would show as "发票exe.jpg". Removed, not replaced.
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
QUOTA_FILES = 20
QUOTA_BYTES = 60 * 1024 * 1024
UNUSED_DAYS = 7
MAX_ROW_ID = 2**31 - 1


def clean_name(name: Any) -> str:
    """The file's own name without any folder, control or reserved characters, shortened
    (keeping the extension) to fit."""
    text = unicodedata.normalize("NFC", name if isinstance(name, str) else "")
    text = _BIDI.sub("", text)
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = _UNSAFE.sub("_", text).strip(" .")
    if len(text) > NAME_LENGTH:
        stem, dot, ext = text.rpartition(".")
        keep = NAME_LENGTH - len(ext) - 1
        text = f"{stem[:keep]}.{ext}" if dot and 0 < len(ext) <= 10 else text[:NAME_LENGTH]
    return text


def checked_upload(name: Any, data: Any, limit: int = MAX_BYTES) -> tuple[str, str]:
    """(clean name, content type) of an acceptable upload; InvalidData (field `file`) if not."""
    clean = clean_name(name)
    if not clean:
        raise InvalidData("请选择要上传的文件", {"file": "缺少文件名"})
    ext = clean.rpartition(".")[2].lower() if "." in clean else ""
    if ext not in TYPES:
        message = f"不支持的文件类型“{clean}”，只能上传 {ALLOWED} 文件"
        raise InvalidData(message, {"file": message})
    if not isinstance(data, bytes) or not data:
        raise InvalidData(f"文件“{clean}”是空的", {"file": "文件是空的"})
    if len(data) > limit:
        message = f"文件“{clean}”超过 {limit // (1024 * 1024)} MB，请压缩或拆分后再上传"
        raise InvalidData(message, {"file": message})
    return clean, TYPES[ext]


def check_quota(
    session: Session, task: HumanTask, by: int | None, size: int, files: int, total: int
) -> None:
    """QuotaExceeded unless one more upload of `size` bytes keeps this person's uploads into
    `task` that no submitted form names yet within `files` files and `total` bytes."""
    count, used = session.execute(
        select(func.count(), func.coalesce(func.sum(Attachment.size), 0)).where(
            Attachment.task_id == task.id,
            Attachment.instance_id.is_(None),
            Attachment.uploaded_by_id == by
            if by is not None
            else Attachment.uploaded_by_id.is_(None),
        )
    ).one()
    megabytes = total // (1024 * 1024)
    limits = f"每人每个任务最多 {files} 个、共 {megabytes} MB"
    if count + 1 > files:
        raise QuotaExceeded(
            f"您在本任务中上传但尚未随表单提交的附件已有 {count} 个（{limits}），"
            "请先提交表单后再上传",
            files=files,
            bytes=total,
        )
    if used + size > total:
        raise QuotaExceeded(
            f"您在本任务中上传但尚未随表单提交的附件已有 {used / (1024 * 1024):.1f} MB，"
            f"加上此文件将超过 {megabytes} MB（{limits}），请压缩文件或先提交表单",
            files=files,
            bytes=total,
        )


def remove_unused(session: Session, now: datetime, days: int = UNUSED_DAYS) -> int:
    """Delete uploads no submitted form named, uploaded more than `days` ago, whose task is no
    longer open (an open task's are still its people's work, bounded by `check_quota`). Each
    removal is in the audit trail. Returns how many were removed."""
    cutoff = now - timedelta(days=days)
    unused = (
        Attachment.instance_id.is_(None),
        Attachment.uploaded_at < cutoff,
        or_(HumanTask.id.is_(None), HumanTask.state.not_in(OPEN_STATES)),
    )
    rows = session.execute(
        select(
            Attachment.id,
            Attachment.task_id,
            Attachment.name,
            Attachment.size,
            HumanTask.instance_id,
            HumanTask.title,
        )
        .outerjoin(HumanTask, HumanTask.id == Attachment.task_id)
        .where(*unused)
        .order_by(Attachment.id)
    ).all()
    if not rows:
        return 0
    removed = set(
        session.scalars(  # one named by a form meanwhile (instance_id set) is kept
            delete(Attachment)
            .where(Attachment.id.in_([row.id for row in rows]), Attachment.instance_id.is_(None))
            .returning(Attachment.id),
            execution_options={"synchronize_session": False},
        )
    )
    for row in rows:
        if row.id not in removed:
            continue
        audit.record(
            session,
            "attachment_removed",
            now,
            instance_id=row.instance_id,
            task_id=row.task_id,
            task_title=row.title,
            reason=f"上传后超过 {days} 天未随表单提交，已自动清理",
            detail={"attachment_id": row.id, "name": row.name, "size": row.size},
        )
    return len(removed)


def new_attachment(
    task: HumanTask, name: str, content_type: str, data: bytes, by: int | None, now: Any
) -> Attachment:
    return Attachment(
        task_id=task.id,
        name=name,
        content_type=content_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
        uploaded_by_id=by,
        uploaded_at=now,
    )


def url(attachment_id: int) -> str:
    return f"/api/v1/attachments/{attachment_id}"


def summary(row: Attachment) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "size": row.size,
        "content_type": row.content_type,
        "url": url(row.id),
    }


def instance_of(session: Session, row: Attachment) -> int | None:
    """The instance an attachment belongs to: the one whose form named it, or else the one of
    the task it was uploaded into."""
    if row.instance_id is not None:
        return row.instance_id
    return session.scalar(select(HumanTask.instance_id).where(HumanTask.id == row.task_id))


def of_instance(session: Session, instance_id: int) -> list[dict[str, Any]]:
    """The attachments submitted forms of an instance named, oldest first, with their uploader
    and the step they were uploaded in."""
    rows = session.execute(
        select(Attachment, User.display_name, HumanTask.title)
        .outerjoin(User, User.id == Attachment.uploaded_by_id)
        .outerjoin(HumanTask, HumanTask.id == Attachment.task_id)
        .where(Attachment.instance_id == instance_id)
        .order_by(Attachment.id)
    ).all()
    return [
        {**summary(row), "uploaded_by": who, "task": title, "uploaded_at": row.uploaded_at}
        for row, who, title in rows
    ]


# ------------------------------------------------------------------ form data naming uploads
def check_references(run: "Run", task: HumanTask, data: dict[str, Any]) -> None:
    """Refuse form data naming an upload of another instance (or none); tie the named uploads
    to the instance and write their stored name and size into the data."""
    schema = run.version.forms.get(task.form) if task.form else None
    if not schema:
        return
    session = run.session
    for path, item in _attachment_items(schema, schema, data, ""):
        if "id" not in item:
            continue  # a file named without an upload (older data): kept as it is
        found = _find(session, item["id"])
        if found is None or instance_of(session, found) != task.instance_id:
            message = "附件不存在或不属于本流程，请重新上传"
            raise InvalidData(message, {path: message})
        found.instance_id = task.instance_id
        item["name"], item["size"] = found.name, found.size


def _find(session: Session, attachment_id: Any) -> Attachment | None:
    if isinstance(attachment_id, bool) or not isinstance(attachment_id, int):
        return None
    if not 0 < attachment_id <= MAX_ROW_ID:  # a larger number would overflow the database
        return None
    return session.get(Attachment, attachment_id)


def is_attachment(items: dict[str, Any]) -> bool:
    props = items.get("properties") or {}
    return items.get("type") == "object" and "name" in props and "document_id" in props


def _attachment_items(
    root: dict[str, Any], node: dict[str, Any], data: Any, prefix: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(field path, item) of every attachment object in `data`, rows of rows included."""
    if not isinstance(data, dict):
        return
    for key, prop in (node.get("properties") or {}).items():
        value = data.get(key)
        prop = _resolve(root, prop)
        if prop.get("type") != "array" or not isinstance(value, list):
            continue
        items = _resolve(root, prop.get("items") or {})
        path = f"{prefix}{key}"
        if is_attachment(items):
            yield from ((path, v) for v in value if isinstance(v, dict))
        elif items.get("type") == "object":
            for i, row in enumerate(value):
                yield from _attachment_items(root, items, row, f"{path}.{i}.")


def _resolve(root: dict[str, Any], node: Any) -> dict[str, Any]:
    if not isinstance(node, dict):
        return {}
    ref = node.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return node
    target: Any = root
    for part in ref[2:].split("/"):
        target = target.get(part, {}) if isinstance(target, dict) else {}
    return target if isinstance(target, dict) else {}
