"""Spreadsheets (.xlsx, openpyxl): the ledger, rectification lists and evaluation score sheets.

Each export is a workbook built from plain rows the caller already checked and filtered; the
functions here only lay them out: a bold, frozen header row, sensible column widths, and the
filters the user chose written above the table so a printed sheet says what it shows.

Every text is written as text: one that a spreadsheet would take for a formula (starting with
`=`, `+`, `-`, `@`, a tab or a carriage return — a liaison's `=HYPERLINK(...)`, say) is stored
as a string cell marked `quotePrefix`, as Excel marks a typed apostrophe, so it never runs.
Control characters a workbook cannot hold are left out rather than failing the export.
"""

from collections.abc import Iterable, Sequence
from io import BytesIO
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

LIGHTS = {"red": "红灯", "yellow": "黄灯", "green": "绿灯"}
FILTER_LABELS = {
    "kind": "类别",
    "unit": "单位",
    "source": "来源",
    "status": "状态",
    "light": "灯色",
    "closed": "是否办结",
    "period": "期限时段",
}

Column = tuple[str, str]  # (key in the row, Chinese header)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

LEDGER_COLUMNS: list[Column] = [
    ("id", "编号"),
    ("title", "事项名称"),
    ("kind", "类别"),
    ("source", "来源"),
    ("lead_unit", "牵头单位"),
    ("cooperating_units", "协办单位"),
    ("deadline", "办结时限"),
    ("status", "状态"),
    ("light", "灯色"),
    ("progress", "进度（%）"),
    ("last_progress", "最新进展"),
    ("last_report_at", "最近报送"),
    ("extension_count", "延期次数"),
    ("overdue_count", "超期次数"),
    ("closed_at", "办结时间"),
]

# 整改清单: the three lists of a rectification (第十二条), as kept in its process data.
RECTIFICATION_LISTS: list[tuple[str, str, list[Column]]] = [
    (
        "问题清单",
        "problem_list",
        [("seq", "问题序号"), ("description", "问题描述"), ("evidence_note", "佐证与出处")],
    ),
    (
        "责任清单",
        "responsibility_list",
        [
            ("problem_seq", "对应问题序号"),
            ("responsible_unit", "责任单位"),
            ("responsible_person", "责任人"),
            ("duty", "责任内容"),
        ],
    ),
]
RECTIFICATION_TASK_COLUMNS: list[Column] = [
    ("instance_id", "通报编号"),
    ("key", "任务序号"),
    ("lead_unit", "责任单位"),
    ("title", "整改任务"),
    ("measures", "整改措施"),
    ("deadline", "完成时限"),
    ("status", "状态"),
    ("light", "灯色"),
    ("progress", "进度（%）"),
    ("closed_at", "销号时间"),
]


def workbook_bytes(workbook: Workbook) -> bytes:
    out = BytesIO()
    workbook.save(out)
    return out.getvalue()


def add_sheet(
    workbook: Workbook,
    title: str,
    columns: Sequence[Column],
    rows: Iterable[dict[str, Any]],
    *,
    caption: str | None = None,
) -> Worksheet:
    """A sheet: optional caption line, a bold frozen header, one row per dict."""
    sheet = workbook.create_sheet(title[:31])
    if caption:
        append_row(sheet, [caption])
        sheet.cell(1, 1).font = Font(bold=True)
    append_row(sheet, [header for _, header in columns])
    header_row = sheet.max_row
    for cell in sheet[header_row]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(horizontal="center", vertical="center")
    for row in rows:
        append_row(sheet, [cell_value(key, row.get(key)) for key, _ in columns])
    sheet.freeze_panes = sheet.cell(header_row + 1, 1)
    for index, (_, header) in enumerate(columns, start=1):
        width = max(
            [len(header) * 2 + 2]
            + [min(len(str(c.value or "")) * 2, 60) for c in sheet[get_column_letter(index)]][
                header_row:
            ]
        )
        sheet.column_dimensions[get_column_letter(index)].width = max(8, width)
    return sheet


def append_row(sheet: Worksheet, values: list[Any]) -> None:
    """One row at the bottom of the sheet; every text in it stays a text (see the module), less
    the control characters a workbook cannot hold (a vertical tab pasted from Word, say)."""
    sheet.append([ILLEGAL_CHARACTERS_RE.sub("", v) if isinstance(v, str) else v for v in values])
    for cell in sheet[sheet.max_row]:
        as_text(cell)


def as_text(cell: Cell) -> None:
    """A text that looks like a formula is written as a string cell shown as text."""
    value = cell.value
    if isinstance(value, str) and value.startswith(FORMULA_START):
        cell.data_type = "s"
        cell.quotePrefix = True


def cell_value(key: str, value: Any) -> Any:
    if key == "light":
        return LIGHTS.get(value, value)
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list):
        return "、".join(str(v) for v in value if v is not None)
    if isinstance(value, dict):
        return "；".join(f"{k}：{v}" for k, v in value.items())
    if isinstance(value, str) and len(value) >= 16 and value[10:11] == "T":
        return value[:16].replace("T", " ")  # ISO date-times as the office writes them
    return value


def new_workbook() -> Workbook:
    workbook = Workbook()
    workbook.remove(workbook.active)
    return workbook


def describe_filters(filters: dict[str, Any]) -> str:
    shown = []
    for key, label in FILTER_LABELS.items():
        value = filters.get(key)
        if value in (None, ""):
            continue
        if key == "light":
            value = LIGHTS.get(value, value)
        elif key == "closed":
            value = "已办结" if value else "未办结"
        shown.append(f"{label}：{value}")
    return "筛选条件：" + ("；".join(shown) if shown else "全部")


def ledger_workbook(rows: list[dict[str, Any]], filters: dict[str, Any], as_of: str) -> bytes:
    """督办台账: the ledger rows exactly as the user filtered them."""
    workbook = new_workbook()
    caption = f"督办台账（{as_of}）　{describe_filters(filters)}　共{len(rows)}项"
    add_sheet(workbook, "督办台账", LEDGER_COLUMNS, rows, caption=caption)
    return workbook_bytes(workbook)


def rectification_workbook(
    tasks: list[dict[str, Any]], lists: dict[str, list[dict[str, Any]]], as_of: str
) -> bytes:
    """整改清单: the task list from the ledger, the problem and responsibility lists from the
    rectifications' data (each row carries its 通报编号, the instance id)."""
    workbook = new_workbook()
    add_sheet(
        workbook,
        "任务清单",
        RECTIFICATION_TASK_COLUMNS,
        tasks,
        caption=f"整改任务清单（{as_of}）　共{len(tasks)}项",
    )
    for title, key, columns in RECTIFICATION_LISTS:
        rows = lists.get(key, [])
        add_sheet(
            workbook,
            title,
            [("instance_id", "通报编号"), *columns],
            rows,
            caption=f"{title}（{as_of}）　共{len(rows)}项",
        )
    return workbook_bytes(workbook)


def score_workbook(
    title: str,
    indicators: list[str],
    scores: list[dict[str, Any]],
    results: list[dict[str, Any]],
) -> bytes:
    """考核评分表 (objective figures, per-indicator scores, total) and 考核结果 (rank, grade)."""
    workbook = new_workbook()
    columns: list[Column] = [
        ("unit_name", "单位"),
        ("self_score", "自评总分"),
        ("items_total", "牵头督办事项（件）"),
        ("items_closed", "已办结（件）"),
        ("on_time_rate", "按期办结率（%）"),
        ("red_items", "红灯事项（件）"),
        ("missed_reports", "逾期未报（次）"),
        ("overdue_count", "超期（次）"),
        ("rectifications_closed", "整改销号（项）"),
        ("rectifications_on_time", "按期销号（项）"),
        *[(f"indicator:{name}", name) for name in indicators],
        ("total_score", "综合得分"),
        ("veto", "一票否决"),
        ("comment", "评分说明"),
    ]
    flat = []
    for row in scores:
        given = {e.get("indicator"): e.get("score") for e in row.get("indicator_scores") or []}
        flat.append({**row, **{f"indicator:{name}": given.get(name) for name in indicators}})
    add_sheet(workbook, "考核评分表", columns, flat, caption=title)
    add_sheet(
        workbook,
        "考核结果",
        [
            ("rank", "名次"),
            ("unit_name", "单位"),
            ("total_score", "综合得分"),
            ("veto", "一票否决"),
            ("grade", "考核等次"),
            ("measure", "处理意见"),
            ("remark", "备注"),
        ],
        results,
        caption=title,
    )
    return workbook_bytes(workbook)
