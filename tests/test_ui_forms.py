"""webui.forms: JSON Schema → fields to draw, and the posted form → typed JSON."""

import json
import re
from pathlib import Path

import pytest
from flask import render_template_string
from werkzeug.datastructures import FileStorage, MultiDict

from webui import create_app, forms

SCHEMA = {
    "type": "object",
    "required": ["count"],
    "properties": {
        "count": {"title": "数量", "type": "integer"},
        "ratio": {"title": "比例", "type": "number"},
        "when": {"title": "时间", "type": "string", "format": "date-time"},
        "kind": {"title": "类别", "type": "string", "enum": ["甲", "乙", "丙", "丁", "戊"]},
        "choice": {
            "title": "意见",
            "type": "string",
            "oneOf": [{"const": "approve", "title": "同意"}, {"const": "return", "title": "退回"}],
        },
        "roles": {
            "title": "领导",
            "type": "array",
            "items": {"type": "string", "enum": ["主任", "副主任"]},
        },
        "units": {"title": "单位", "type": "array", "items": {"type": "string", "format": "unit"}},
        "who": {"title": "人员", "type": "string", "format": "user"},
        "flag": {"title": "报请", "type": "boolean"},
        "note": {"title": "说明", "type": "string", "maxLength": 2000},
        "shown": {"title": "上级意见", "type": "string", "readOnly": True},
        "files": {"title": "附件", "type": "array", "items": {"$ref": "#/$defs/attachment"}},
        "rows": {
            "title": "清单",
            "type": "array",
            "items": {
                "type": "object",
                "title": "问题",
                "properties": {
                    "text": {"title": "问题", "type": "string"},
                    "done": {"title": "已整改", "type": "boolean"},
                },
            },
        },
    },
    "$defs": {
        "attachment": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "document_id": {"type": "string"}},
        }
    },
}
CHOICES = {
    "units": [{"code": "nyncj", "name": "农业农村局", "kind": "member_unit"}],
    "users": [{"username": "staff", "name": "王晓燕", "unit": "督查组"}],
}


def test_each_kind_of_field_gets_its_widget() -> None:
    drawn = {f.key: f for f in forms.fields(SCHEMA, {}, {}, CHOICES)}
    assert {k: f.widget for k, f in drawn.items()} == {
        "count": "integer",
        "ratio": "number",
        "when": "datetime",
        "kind": "select",
        "choice": "radio",
        "roles": "checkboxes",
        "units": "units",
        "who": "user",
        "flag": "checkbox",
        "note": "textarea",
        "shown": "readonly",
        "files": "file",
        "rows": "rows",
    }
    assert drawn["count"].required and not drawn["ratio"].required
    assert drawn["units"].options == [("nyncj", "农业农村局")]
    assert drawn["who"].options == [("staff", "王晓燕（督查组）")]
    assert [sub.path for sub in drawn["rows"].rows[0]] == ["rows.0.text", "rows.0.done"]
    assert drawn["rows"].template[0].path == "rows.__i0__.text"


def test_errors_land_on_their_fields_including_inside_rows() -> None:
    data = {"rows": [{"text": "a"}, {"text": "b"}]}
    errors = {"count": "请填写“数量”", "rows.1.text": "太短"}
    drawn = {f.key: f for f in forms.fields(SCHEMA, data, errors, CHOICES)}
    assert drawn["count"].error == "请填写“数量”"
    assert drawn["rows"].rows[1][0].error == "太短" and drawn["rows"].rows[0][0].error is None


def test_reading_a_post_gives_typed_values() -> None:
    posted = MultiDict(
        [
            ("count", "12"),
            ("ratio", "0.5"),
            ("when", "2027-01-08T09:00"),
            ("kind", "乙"),
            ("choice", "approve"),
            ("roles", "主任"),
            ("roles", "副主任"),
            ("units", "nyncj"),
            ("flag", "1"),
            ("note", "  两端的空格保留  "),
            ("shown", "ignored"),
            ("files.keep", "旧材料.pdf"),
            ("rows.3.text", "第二行"),
            ("rows.0.text", "第一行"),
            ("rows.0.done", "1"),
            ("rows.7.text", ""),
        ]
    )
    files = MultiDict([("files", FileStorage(filename="新材料.docx"))])
    assert forms.read(SCHEMA, posted, files) == {
        "count": 12,
        "ratio": 0.5,
        "when": "2027-01-08T09:00:00+08:00",
        "kind": "乙",
        "choice": "approve",
        "roles": ["主任", "副主任"],
        "units": ["nyncj"],
        "flag": True,
        "note": "  两端的空格保留  ",
        "files": [{"name": "旧材料.pdf"}, {"name": "新材料.docx"}],
        "rows": [{"text": "第一行", "done": True}, {"text": "第二行", "done": False}],
    }


def test_what_is_not_a_number_stays_text_for_the_engine_to_name() -> None:
    read = forms.read(SCHEMA, MultiDict([("count", "十二"), ("ratio", "")]))
    assert read == {
        "count": "十二",
        "flag": False,
        "roles": [],
        "units": [],
        "files": [],
        "rows": [],
    }


def test_approval_steps_are_recognised_by_their_decision_field() -> None:
    approval = {"properties": {"decision": SCHEMA["properties"]["choice"]}}
    assert forms.decision_options(approval) == [("approve", "同意"), ("return", "退回")]
    assert forms.decision_options(SCHEMA) == []
    assert forms.fields(approval, skip=("decision",)) == []


def test_read_only_values_in_rows_are_carried_back_unchanged() -> None:
    schema = {
        "type": "object",
        "properties": {
            "scores": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "unit": {"title": "单位", "type": "string", "readOnly": True},
                        "self_score": {
                            "title": "自评",
                            "type": ["number", "null"],
                            "readOnly": True,
                        },
                        "score": {"title": "得分", "type": ["number", "null"]},
                    },
                },
            }
        },
    }
    drawn = forms.fields(schema, {"scores": [{"unit": "cgz", "self_score": 94.5}]})
    unit, self_score, score = drawn[0].rows[0]
    assert (unit.widget, self_score.widget, score.widget) == ("readonly", "readonly", "number")
    posted = MultiDict(
        [
            ("scores.0.unit.__json", '"cgz"'),
            ("scores.0.self_score.__json", "94.5"),
            ("scores.0.score", "88"),
        ]
    )
    assert forms.read(schema, posted) == {
        "scores": [{"unit": "cgz", "self_score": 94.5, "score": 88}]
    }


FORMS_DIR = Path(__file__).resolve().parent.parent / "processes" / "forms"
FORM_FILES = sorted(FORMS_DIR.rglob("*.json"))


@pytest.fixture(scope="module")
def app():
    return create_app({"TESTING": True, "SECRET_KEY": "t", "DATABASE_URL": "sqlite://"})


@pytest.mark.parametrize("path", FORM_FILES, ids=[f"{p.parent.name}/{p.name}" for p in FORM_FILES])
def test_every_form_of_the_processes_draws_with_a_label_for_each_field(app, path: Path) -> None:
    schema = json.loads(path.read_text(encoding="utf-8"))
    with app.test_request_context():
        html = render_template_string(
            '{% from "partials/fields.html" import field %}'
            "{% for f in fields %}{{ field(f) }}{% endfor %}",
            fields=forms.fields(schema, {}, {}, CHOICES),
        )
    for key, prop in schema.get("properties", {}).items():
        if prop.get("readOnly"):
            continue
        title = prop.get("title", key)
        assert re.search(rf"<(label|legend)[^>]*>\s*(<input[^>]*>\s*)?{re.escape(title)}", html), (
            f"{path.name}: no label for {key}"
        )


def posted_by_a_browser(html: str) -> MultiDict:
    """What a browser would post for this HTML form, untouched: values, checked boxes, the
    selected options and the text of text areas (template rows excluded)."""
    from lxml import html as lxml_html

    root = lxml_html.fromstring(f"<form>{html}</form>")
    for template in root.iter("template"):
        template.getparent().remove(template)
    posted: MultiDict = MultiDict()
    for element in root.iter("input", "select", "textarea"):
        name = element.get("name")
        if not name:
            continue
        if element.tag == "textarea":
            posted.add(name, element.text or "")
        elif element.tag == "select":
            for option in element.iter("option"):
                if option.get("selected") is not None:
                    posted.add(name, option.get("value"))
        elif element.get("type") in ("checkbox", "radio"):
            if element.get("checked") is not None:
                posted.add(name, element.get("value"))
        elif element.get("type") != "file":
            posted.add(name, element.get("value") or "")
    return posted


ROUND_TRIPS = {
    "director_meeting/record.json": {
        "actual_time": "2027-01-08T09:00:00+08:00",
        "attendees": ["staff"],
        "summary": "会议听取汇报并研究部署。",
        "absentees": [{"user": "staff", "reason": "出差"}],
        "decision_items": [
            {
                "content": "加快建设",
                "unit": "nyncj",
                "deadline": "2027-03-31",
                "cooperating_units": ["nyncj"],
                "submit_to_hq": True,
            },
            {
                "content": "开展自查",
                "unit": "nyncj",
                "deadline": "2027-02-28",
                "cooperating_units": [],
                "submit_to_hq": False,
            },
        ],
    },
    "director_meeting/minutes.json": {
        "doc_kind": "会议纪要",
        "doc_title": "主任会议纪要",
        "doc_body": "会议议定：一、加快建设；二、开展自查。",
        "distribute_roles": ["主任", "副主任"],
        "distribute_units": ["nyncj"],
        "distribute_users": [],
        "attachments": [{"name": "附件一.pdf"}],
    },
    "supervision_item/report.json": {
        "progress": 60,
        "done": "完成过半",
        "next_action": "extend",
        "report_attachments": [],
    },
    "annual_evaluation/score_units.json": {
        "scores": [
            {
                "unit": "cgz",
                "unit_name": "城关镇",
                "self_score": 94,
                "items_total": 1,
                "indicator_scores": [{"indicator": "重点任务推进", "score": 95}],
                "veto": False,
                "comment": "好",
            },
        ],
    },
}


@pytest.mark.parametrize("form", sorted(ROUND_TRIPS))
def test_a_form_posted_back_untouched_reads_as_the_data_it_showed(app, form: str) -> None:
    schema = json.loads((FORMS_DIR / form).read_text(encoding="utf-8"))
    data = ROUND_TRIPS[form]
    with app.test_request_context():
        html = render_template_string(
            '{% from "partials/fields.html" import field %}'
            "{% for f in fields %}{{ field(f) }}{% endfor %}",
            fields=forms.fields(schema, data, {}, CHOICES),
        )
    read = forms.read(schema, posted_by_a_browser(html))
    assert {k: v for k, v in read.items() if k in data} == data


def test_nested_lists_get_a_placeholder_per_level() -> None:
    schema = json.loads((FORMS_DIR / "annual_evaluation" / "score_units.json").read_text())
    scores = forms.fields(schema, {"scores": [{"unit": "cgz", "indicator_scores": [{}]}]})[0]
    assert scores.placeholder == "__i0__"
    inner = next(f for f in scores.rows[0] if f.key == "indicator_scores")
    assert inner.placeholder == "__i1__" and inner.template[0].path.endswith(".__i1__.indicator")
    inner_template = next(f for f in scores.template if f.key == "indicator_scores")
    assert inner_template.path == "scores.__i0__.indicator_scores"
    assert inner_template.placeholder == "__i1__"
