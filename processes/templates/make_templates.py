"""Generate the first version of the document templates (run once; then edit the .docx in Word).

    .venv/bin/python processes/templates/make_templates.py [NAME ...]

The .docx files beside this script are the source: designers edit them in Word (or WPS) and
redeploy. This script only wrote their first version, in the layout of GB/T 9704-2012 (党政机关
公文格式): A4, 红头 with the issuing office, 文号, a red rule, the title in 小标宋, 主送, the body
in 仿宋 三号, 落款 and the date in Chinese, and the 版记 at the end. Placeholders are docxtpl
(Jinja) tags; the filters and standard values they use are listed in processes/README.md.
Running it again overwrites the named templates (all without arguments).
"""

import sys
from collections.abc import Callable
from pathlib import Path

from docx import Document as new_docx
from docx.document import Document
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Mm, Pt, RGBColor

HERE = Path(__file__).parent
RED = RGBColor(0xC0, 0x00, 0x00)
TITLE_FONT = "方正小标宋简体"
BODY_FONT = "仿宋_GB2312"
HEADING_FONT = "黑体"


# ------------------------------------------------------------------ layout
def new_document() -> Document:
    doc = new_docx()
    section = doc.sections[0]
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.top_margin, section.bottom_margin = Mm(37), Mm(35)
    section.left_margin, section.right_margin = Mm(28), Mm(26)
    normal = doc.styles["Normal"]
    normal.font.size = Pt(16)
    _east_asian(normal.element.get_or_add_rPr(), BODY_FONT)
    normal.paragraph_format.line_spacing = Pt(28)
    normal.paragraph_format.space_after = Pt(0)
    footer = section.footer.paragraphs[0]
    footer.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _page_number(footer)
    return doc


def _east_asian(rpr: object, font: str) -> None:
    fonts = rpr.find(qn("w:rFonts"))  # type: ignore[attr-defined]
    if fonts is None:
        fonts = OxmlElement("w:rFonts")
        rpr.insert(0, fonts)  # type: ignore[attr-defined]
    for attr in ("w:ascii", "w:hAnsi", "w:eastAsia"):
        fonts.set(qn(attr), font)


def _page_number(paragraph: object) -> None:
    run = paragraph.add_run("— ")  # type: ignore[attr-defined]
    for kind, text in (("begin", None), (None, "PAGE"), ("end", None)):
        if kind:
            field = OxmlElement("w:fldChar")
            field.set(qn("w:fldCharType"), kind)
            run._r.append(field)
        else:
            instr = OxmlElement("w:instrText")
            instr.text = text
            run._r.append(instr)
    paragraph.add_run(" —")  # type: ignore[attr-defined]


def para(
    doc: Document,
    text: str = "",
    *,
    align: str = "justify",
    size: float = 16,
    font: str | None = None,
    bold: bool = False,
    color: RGBColor | None = None,
    indent: bool = True,
    space_before: float = 0,
) -> object:
    paragraph = doc.add_paragraph()
    paragraph.alignment = {
        "center": WD_ALIGN_PARAGRAPH.CENTER,
        "right": WD_ALIGN_PARAGRAPH.RIGHT,
        "left": WD_ALIGN_PARAGRAPH.LEFT,
        "justify": WD_ALIGN_PARAGRAPH.JUSTIFY,
    }[align]
    if indent and align == "justify":
        paragraph.paragraph_format.first_line_indent = Pt(32)  # two characters
    paragraph.paragraph_format.space_before = Pt(space_before)
    if text:
        run = paragraph.add_run(text)
        run.font.size = Pt(size)
        run.bold = bold
        if color is not None:
            run.font.color.rgb = color
        if font:
            _east_asian(run._r.get_or_add_rPr(), font)
    return paragraph


def rule(doc: Document, color: str = "C00000", size: int = 18) -> None:
    """A horizontal rule: the bottom border of an empty paragraph (红线 / 版记线)."""
    paragraph = doc.add_paragraph()
    ppr = paragraph._p.get_or_add_pPr()
    border = OxmlElement("w:pBdr")
    bottom = OxmlElement("w:bottom")
    for key, value in (("w:val", "single"), ("w:sz", str(size)), ("w:color", color)):
        bottom.set(qn(key), value)
    border.append(bottom)
    ppr.append(border)
    paragraph.paragraph_format.line_spacing = Pt(8)


def red_header(doc: Document, heading: str = "{{ issuer }}") -> None:
    para(doc, heading, align="center", size=26, font=TITLE_FONT, color=RED, space_before=12)
    para(doc, "{{ doc_number }}", align="center", space_before=12)
    rule(doc)


def title(doc: Document, text: str) -> None:
    para(doc, text, align="center", size=22, font=TITLE_FONT, space_before=16)
    para(doc)


def addressee(doc: Document, text: str) -> None:
    para(doc, text + "：", align="left", indent=False)


def heading(doc: Document, text: str) -> None:
    para(doc, text, font=HEADING_FONT)


def body_lines(doc: Document, expression: str) -> None:
    """Each line of a text field as its own indented paragraph."""
    para(doc, f"{{%p for line in {expression}|lines %}}")
    para(doc, "{{ line }}")
    para(doc, "{%p endfor %}")


def signature(doc: Document, issuer: str = "{{ issuer }}", day: str = "{{ date_cn }}") -> None:
    para(doc)
    para(doc, issuer, align="right", indent=False)
    para(doc, day, align="right", indent=False)


def colophon(doc: Document, cc: str | None = None) -> None:
    """版记: 抄送 and the issuing line, between thin rules."""
    para(doc)
    rule(doc, color="000000", size=8)
    if cc:
        para(doc, f"抄送：{cc}", align="left", indent=False, size=14)
    para(doc, "{{ issuer }}　　　　{{ date_cn }}印发", align="left", indent=False, size=14)
    rule(doc, color="000000", size=8)


def table(doc: Document, headers: list[str], loop: str, cells: list[str]) -> None:
    """A table whose body rows repeat with docxtpl's `{%tr %}` tags."""
    grid = doc.add_table(rows=4, cols=len(headers))
    grid.style = "Table Grid"
    grid.alignment = WD_TABLE_ALIGNMENT.CENTER
    for index, text in enumerate(headers):
        _cell(grid.rows[0].cells[index], text, bold=True)
        _cell(grid.rows[2].cells[index], cells[index])
    _cell(grid.rows[1].cells[0], f"{{%tr for {loop} %}}")
    _cell(grid.rows[3].cells[0], "{%tr endfor %}")


def _cell(cell: object, text: str, bold: bool = False) -> None:
    paragraph = cell.paragraphs[0]  # type: ignore[attr-defined]
    paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = paragraph.add_run(text)
    run.font.size = Pt(12)
    run.bold = bold


def field_table(doc: Document, rows: list[tuple[str, str]]) -> None:
    """A two-column form (督办单, 催办单): label | value."""
    grid = doc.add_table(rows=len(rows), cols=2)
    grid.style = "Table Grid"
    grid.alignment = WD_TABLE_ALIGNMENT.CENTER
    for row, (label, value) in zip(grid.rows, rows, strict=True):
        _cell(row.cells[0], label, bold=True)
        row.cells[0].width, row.cells[1].width = Mm(38), Mm(118)
        paragraph = row.cells[1].paragraphs[0]
        run = paragraph.add_run(value)
        run.font.size = Pt(14)


# --------------------------------------------------------------- templates
def meeting_notice(doc: Document) -> None:
    red_header(doc)
    title(doc, "关于召开{{ meeting_title }}的通知")
    addressee(doc, "各位副主任，各工作组，各有关工作专班牵头单位")
    para(
        doc,
        "经研究，定于{{ meeting_time|datetime_cn }}在{{ location }}召开{{ meeting_title }}，"
        "由{{ host|user }}主持。现将有关事项通知如下：",
    )
    heading(doc, "一、会议议题")
    para(doc, "{%p for topic in agenda %}")
    para(
        doc,
        "（{{ loop.index|cn }}）{{ topic.title }}"
        "{% if topic.reporter_unit %}（汇报单位：{{ topic.reporter_unit|unit }}）{% endif %}",
    )
    para(doc, "{%p endfor %}")
    heading(doc, "二、参会人员")
    para(
        doc,
        "出席：{% for r in notice_recipients if r.group == '参会' %}{{ r.role }}"
        "{% if not loop.last %}、{% endif %}{% endfor %}。",
    )
    para(
        doc,
        "列席：{% for r in notice_recipients if r.group == '列席' %}"
        "{% if r.unit %}{{ r.unit|unit }}{% endif %}{{ r.role }}"
        "{% if not loop.last %}、{% endif %}{% endfor %}。",
    )
    heading(doc, "三、有关要求")
    body_lines(doc, "notice_text")
    para(doc, "请参会人员准时出席，不能参会的请提前向县指挥办请假。")
    signature(doc)
    colophon(doc)


def meeting_minutes(doc: Document) -> None:
    red_header(doc, "{{ doc_kind or '会议纪要' }}")
    title(doc, "{{ doc_title }}")
    para(
        doc,
        "{{ actual_time|datetime_cn }}，{{ meeting_title }}召开。会议听取了各工作专班工作情况汇报，"
        "研究了有关事项。现纪要如下：",
    )
    body_lines(doc, "doc_body")
    heading(doc, "会议决定事项")
    table(
        doc,
        ["序号", "事项内容", "责任单位", "完成时限", "报请县指挥部"],
        "d in decision_items",
        [
            "{{ loop.index }}",
            "{{ d.content }}",
            "{{ d.unit|unit }}",
            "{{ d.deadline|date_cn }}",
            "{{ '是' if d.submit_to_hq else '否' }}",
        ],
    )
    para(doc)
    para(doc, "出席：{{ attendees|user }}", indent=False, align="left")
    para(doc, "列席：{{ observers|user }}", indent=False, align="left")
    para(
        doc,
        "请假：{% for a in absentees %}{{ a|user }}（{{ a.reason }}）"
        "{% if not loop.last %}、{% endif %}{% else %}无{% endfor %}",
        indent=False,
        align="left",
    )
    signature(doc)
    colophon(doc, cc="{{ distribute_roles|join('、') }}；{{ distribute_units|unit }}")


def work_brief(doc: Document) -> None:
    para(doc, "{{ kind or '工作简报' }}", align="center", size=36, font=TITLE_FONT, color=RED)
    para(doc, "{{ issue_no or doc_number }}", align="center")
    para(doc, "{{ issuer }}　　　　　　　　{{ date_cn }}", align="center", size=14)
    rule(doc)
    title(doc, "{{ title }}")
    body_lines(doc, "body")
    para(
        doc,
        "{% if source_unit %}（来稿单位：{{ source_unit|unit }}）{% endif %}",
        align="right",
        indent=False,
        size=14,
    )
    colophon(doc, cc="县指挥部各位领导，县指挥办各位主任、副主任")


def supervision_order(doc: Document) -> None:
    red_header(doc)
    title(doc, "督办通知单")
    addressee(doc, "{{ lead_unit|unit }}")
    para(doc, "现将下列事项交由你单位牵头办理，请按要求落实并按时报送进度。")
    field_table(
        doc,
        [
            ("督办事项", "{{ title }}"),
            ("事项来源", "{{ source }}"),
            ("牵头单位", "{{ lead_unit|unit }}"),
            ("协办单位", "{{ cooperating_units|unit or '无' }}"),
            ("办结时限", "{{ deadline|date_cn }}"),
            ("报送周期", "每{{ report_cycle_days or 7 }}天报送一次进度"),
            ("督办内容与要求", "{{ content }}"),
        ],
    )
    para(doc)
    para(
        doc,
        "请于收到本通知单后1个工作日内在系统中签收，5个工作日内报送落实方案；"
        "逾期未办结的将予以催办、通报。",
    )
    signature(doc)
    colophon(doc)


def urge_order(doc: Document) -> None:
    red_header(doc)
    title(doc, "催办通知单")
    addressee(doc, "{{ lead_unit|unit }}")
    field_table(
        doc,
        [
            ("督办事项", "{{ title }}"),
            ("督办文号", "{{ order_document.number if order_document else '' }}"),
            ("办结时限", "{{ deadline|date_cn }}"),
            ("当前进度", "{{ progress or 0 }}%"),
            ("催办事由", "{{ urge_reason }}"),
        ],
    )
    para(doc)
    para(doc, "请你单位高度重视，立即办理，并在系统中报送办理情况。")
    signature(doc)
    colophon(doc)


def problem_notice(doc: Document) -> None:
    red_header(doc)
    title(doc, "关于{{ unit|unit }}有关问题的通报")
    addressee(doc, "{{ unit|unit }}")
    body_lines(doc, "notice")
    heading(doc, "一、问题清单")
    table(
        doc,
        ["序号", "问题描述", "佐证与出处"],
        "p in problem_list",
        ["{{ p.seq }}", "{{ p.description }}", "{{ p.evidence_note }}"],
    )
    heading(doc, "二、责任清单")
    table(
        doc,
        ["问题序号", "责任单位", "责任人", "责任内容"],
        "r in responsibility_list",
        [
            "{{ r.problem_seq }}",
            "{{ r.responsible_unit|unit }}",
            "{{ r.responsible_person }}",
            "{{ r.duty }}",
        ],
    )
    heading(doc, "三、任务清单")
    table(
        doc,
        ["序号", "整改任务", "整改措施", "完成时限"],
        "t in task_list",
        ["{{ t.seq }}", "{{ t.content }}", "{{ t.measures }}", "{{ t.deadline|date_cn }}"],
    )
    para(doc)
    para(
        doc,
        "请你单位对照三张清单认真整改，按时报送整改方案和整改进展，县指挥办将跟踪督办并组织验收。",
    )
    signature(doc)
    colophon(doc)


def acceptance_opinion(doc: Document) -> None:
    red_header(doc)
    title(doc, "{{ unit|unit }}问题整改验收意见")
    addressee(doc, "{{ unit|unit }}")
    para(doc, "通报问题：{{ problem }}")
    para(doc, "经县指挥办组织验收，你单位整改任务完成情况如下：")
    table(
        doc,
        ["序号", "整改任务", "完成时限"],
        "t in task_list",
        ["{{ t.seq }}", "{{ t.content }}", "{{ t.deadline|date_cn }}"],
    )
    para(doc)
    para(doc, "验收结论：通过，整改任务予以销号。")
    body_lines(doc, "acceptance_note")
    signature(doc)
    colophon(doc)


def monthly_bulletin(doc: Document) -> None:
    red_header(doc)
    title(doc, "{{ bulletin_title }}")
    addressee(doc, "各镇（街）、县各工作专班、各成员单位")
    body_lines(doc, "bulletin_body")
    signature(doc)
    para(doc, "附件：{{ figures.period }}分单位督办情况表", indent=False, align="left")
    table(
        doc,
        [
            "排名",
            "单位",
            "牵头事项",
            "已办结",
            "按期办结率",
            "红灯",
            "黄灯",
            "逾期未报",
            "在办整改",
        ],
        "row in figures.by_unit",
        [
            "{{ row.rank }}",
            "{{ row.unit }}",
            "{{ row.total }}",
            "{{ row.closed }}",
            "{{ row.on_time_rate|pct }}",
            "{{ row.red }}",
            "{{ row.yellow }}",
            "{{ row.missed_reports }}",
            "{{ row.open_rectifications }}",
        ],
    )
    para(
        doc,
        "合计：事项{{ figures.total }}件，已办结{{ figures.closed }}件，"
        "按期办结率{{ figures.on_time_rate|pct }}，"
        "在办整改任务{{ figures.open_rectifications }}项。",
        indent=False,
        align="left",
        size=12,
    )
    colophon(doc, cc="县指挥部各位领导")


def evaluation_results(doc: Document) -> None:
    red_header(doc)
    title(doc, "{{ results_title }}")
    addressee(doc, "各镇（街）党（工）委和政府，县各工作专班、各成员单位")
    body_lines(doc, "results_body")
    heading(doc, "附：{{ year }}年度考核评价结果")
    table(
        doc,
        ["名次", "单位", "综合得分", "考核等次", "处理意见"],
        "r in results",
        [
            "{{ r.rank }}",
            "{{ r.unit_name }}",
            "{{ r.total_score }}",
            "{{ r.grade }}",
            "{{ r.measure }}",
        ],
    )
    signature(doc)
    colophon(doc, cc="县委、县政府各位领导")


TEMPLATES: dict[str, Callable[[Document], None]] = {
    "meeting_notice": meeting_notice,  # 会议通知
    "meeting_minutes": meeting_minutes,  # 会议纪要
    "work_brief": work_brief,  # 工作简报
    "supervision_order": supervision_order,  # 督办单
    "urge_order": urge_order,  # 催办单
    "problem_notice": problem_notice,  # 问题通报（一对一）
    "acceptance_opinion": acceptance_opinion,  # 整改验收意见
    "monthly_bulletin": monthly_bulletin,  # 月度通报
    "evaluation_results": evaluation_results,  # 考核结果通报
}


def main(names: list[str]) -> None:
    for name in names or list(TEMPLATES):
        doc = new_document()
        TEMPLATES[name](doc)
        doc.core_properties.title = name
        doc.core_properties.author = "县指挥办"
        doc.save(HERE / f"{name}.docx")
        print(f"wrote {name}.docx")


if __name__ == "__main__":
    main(sys.argv[1:])
