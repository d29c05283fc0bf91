"""Importing users from an .xlsx spreadsheet (openpyxl): every row is checked first, and either
all rows become users or — with a Chinese report naming each wrong row — none does."""

import io
from datetime import datetime
from typing import Any

from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit, directory
from .administration import MIN_PASSWORD, USERNAME, create_user, find_unit, split_list, user_dict
from .errors import InvalidData
from .models import Role

IMPORT_COLUMNS = {"用户名": "username", "姓名": "name", "单位": "unit", "角色": "roles"}
IMPORT_COLUMNS |= {"密码": "password"}
MAX_IMPORT_ROWS = 2000


def read_sheet(content: bytes) -> list[tuple[int, dict[str, Any]]]:
    """(row number, {username, name, unit, roles, password}) for each non-empty row of the
    first sheet; the header row names the columns in Chinese (see IMPORT_COLUMNS)."""
    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        try:
            sheet = book.worksheets[0] if book.worksheets else None
            rows = (
                list(sheet.iter_rows(max_row=MAX_IMPORT_ROWS + 2, values_only=True))
                if sheet
                else []
            )
        finally:
            book.close()
    except Exception:  # not a zip, not a workbook: openpyxl raises a zoo of types
        raise InvalidData(
            "无法读取文件，请上传 .xlsx 格式的表格", {"file": "请上传 .xlsx 格式的表格"}
        ) from None
    if not rows:
        raise InvalidData("表格是空的", {"file": "表格是空的"})
    header = [str(cell).strip() if cell is not None else "" for cell in rows[0]]
    columns = {i: IMPORT_COLUMNS[h] for i, h in enumerate(header) if h in IMPORT_COLUMNS}
    missing = [h for h, key in IMPORT_COLUMNS.items() if key not in columns.values()]
    if missing:
        message = f"表头缺少列：{'、'.join(missing)}（第 1 行应为：{'、'.join(IMPORT_COLUMNS)}）"
        raise InvalidData(message, {"file": message})
    if len(rows) - 1 > MAX_IMPORT_ROWS:
        message = f"一次最多导入 {MAX_IMPORT_ROWS} 行"
        raise InvalidData(message, {"file": message})
    found = []
    for number, cells in enumerate(rows[1:], start=2):
        record = {
            key: (str(cells[i]).strip() if i < len(cells) and cells[i] is not None else "")
            for i, key in columns.items()
        }
        if any(record.values()):
            found.append((number, record))
    return found


def import_users(
    session: Session, content: bytes, now: datetime, actor_id: int | None
) -> list[dict[str, Any]]:
    """Create a user for every row, or — if any row is wrong — none, with a Chinese report
    naming each wrong row."""
    rows = read_sheet(content)
    if not rows:
        raise InvalidData("表格中没有用户", {"file": "表格中没有用户"})
    errors: dict[str, str] = {}
    seen: dict[str, int] = {}
    for number, record in rows:
        problem = _row_problem(session, record, seen.get(record["username"]))
        if problem:
            errors[f"row{number}"] = f"第 {number} 行：{problem}"
        seen.setdefault(record["username"], number)
    if errors:
        raise InvalidData(
            f"导入失败，共 {len(errors)} 行有误，未导入任何用户：" + "；".join(errors.values()),
            errors,
        )
    created = []
    for _number, record in rows:
        fields = {**record, "roles": split_list(record["roles"])}
        created.append(user_dict(create_user(session, fields, now, actor_id)))
    audit.record(
        session,
        "users_imported",
        now,
        actor_id=actor_id,
        detail={"count": len(created), "usernames": [u["username"] for u in created]},
    )
    return created


def _row_problem(session: Session, record: dict[str, str], earlier: int | None) -> str | None:
    username = record["username"]
    if not username:
        return "用户名为空"
    if not USERNAME.fullmatch(username):
        return f"用户名“{username}”只能包含字母、数字、下划线、点和连字符"
    if earlier is not None:
        return f"用户名“{username}”与第 {earlier} 行重复"
    if directory.user_by_name(session, username) is not None:
        return f"用户名“{username}”已存在"
    if len(record["password"]) < MIN_PASSWORD:
        return f"密码至少 {MIN_PASSWORD} 位"
    if record["unit"] and find_unit(session, record["unit"]) is None:
        return f"单位“{record['unit']}”不存在"
    names = split_list(record["roles"])
    known = set(session.scalars(select(Role.name).where(Role.name.in_(names))))
    unknown = [name for name in names if name not in known]
    if unknown:
        return f"角色不存在：{'、'.join(unknown)}"
    return None
