"""Monthly bulletin figures and evaluation indicators (issue 8): computed in SQL from the ledger,
equal to a plain count over the same rows, and the same numbers in the bulletin the process
publishes and in the evaluation's score sheet."""

from datetime import datetime, time

import pytest
from sqlalchemy import select

from engine import Engine, InvalidData
from engine.lights import yellow_threshold
from engine.models import TrackedItem, Unit
from engine.workdays import BEIJING
from office import Office
from office.reports import Period, rank
from tests.county import load_county
from tests.documents_support import documents_of, docx_tables, docx_text, play_evaluation


def at(day: str, clock: str = "09:00") -> datetime:
    return datetime.combine(datetime.fromisoformat(day).date(), time.fromisoformat(clock), BEIJING)


# (key, kind, unit, created, deadline, closed, next_report_due, overdue_count)
ROWS = [
    ("a1", "督办事项", "nyncj", "2026-10-15", "2026-11-20", "2026-11-18", None, 0),
    ("a2", "督办事项", "nyncj", "2026-10-20", "2026-11-10", "2026-11-25", None, 1),
    ("a3", "督办事项", "nyncj", "2026-11-05", "2026-11-28", None, "2026-12-03", 1),
    ("a4", "督办事项", "nyncj", "2026-09-01", "2026-10-31", "2026-10-30", None, 0),
    ("b1", "督办事项", "czj", "2026-11-01", "2026-12-31", None, "2026-11-25", 0),
    ("b2", "督办事项", "czj", "2026-11-10", "2026-12-02", None, "2026-12-04", 0),
    ("b3", "督办事项", "czj", "2026-11-02", "2026-11-29", "2026-11-20", None, 0),
    ("c1", "督办事项", "cgz", "2026-11-03", "2027-01-31", None, "2026-12-05", 0),
    ("r1", "整改任务", "nyncj", "2026-11-10", "2026-11-30", "2026-11-29", None, 0),
    ("r2", "整改任务", "nyncj", "2026-11-15", "2026-12-20", None, None, 0),
    ("r3", "整改任务", "czj", "2026-11-16", "2026-12-20", "2026-12-01", None, 0),
]


@pytest.fixture
def ledger(engine: Engine) -> Engine:
    """The demo county, processes/ deployed, and the rows above attached to one instance."""
    load_county(engine)
    holder = engine.start("supervision_item", {"title": "台账挂靠"}, user="staff")
    with engine.write_session() as session, session.begin():
        units = dict(session.execute(select(Unit.code, Unit.id)).all())
        for key, kind, unit, created, deadline, closed, report_due, overdue in ROWS:
            session.add(
                TrackedItem(
                    instance_id=holder["id"],
                    kind=kind,
                    key=key,
                    title=f"事项{key}",
                    lead_unit_id=units[unit],
                    cooperating_unit_ids=[],
                    status="已销号" if closed else "办理中",
                    deadline=at(deadline, "23:59:59"),
                    original_deadline=at(deadline, "23:59:59"),
                    closed_at=at(closed, "08:00") if closed else None,
                    next_report_due=at(report_due) if report_due else None,
                    overdue_count=overdue,
                    attributes={},
                    created_at=at(created),
                    updated_at=at(created),
                )
            )
    return engine


def plain_counts(engine: Engine, period: Period, unit: str) -> dict[str, int]:
    """The same figures as a plain loop over every row: the truth the SQL must equal."""
    as_of = period.as_of(engine.clock.now())
    soon = yellow_threshold(as_of, engine.calendar())
    with engine.read_session() as session:
        unit_id = session.scalar(select(Unit.id).where(Unit.code == unit))
        rows = list(session.scalars(select(TrackedItem).where(TrackedItem.lead_unit_id == unit_id)))
    items = [
        r
        for r in rows
        if r.kind == "督办事项"
        and r.created_at < period.end
        and (r.closed_at is None or r.closed_at >= period.start)
    ]
    closed = [r for r in items if r.closed_at is not None and r.closed_at < period.end]
    open_ = [r for r in items if r.closed_at is None or r.closed_at > as_of]
    red = [r for r in open_ if r.deadline < as_of]
    missed = [r for r in open_ if r.next_report_due is not None and r.next_report_due < as_of]
    yellow = [r for r in open_ if r not in red and (r.deadline < soon or r in missed)]
    rect_open = [
        r
        for r in rows
        if r.kind == "整改任务"
        and r.created_at < as_of
        and (r.closed_at is None or r.closed_at > as_of)
    ]
    return {
        "total": len(items),
        "closed": len(closed),
        "closed_on_time": len([r for r in closed if r.closed_at <= r.deadline]),
        "red": len(red),
        "yellow": len(yellow),
        "missed_reports": len(missed),
        "overdue": sum(r.overdue_count for r in items),
        "open_rectifications": len(rect_open),
    }


def test_month_figures_by_unit_equal_the_rows(ledger: Engine) -> None:
    report = Office(ledger).monthly_report(2026, 11, "staff")
    by_unit = {row["code"]: row for row in report["by_unit"]}
    assert set(by_unit) == {"nyncj", "czj", "cgz"}  # a4 closed before November: not listed
    for code, row in by_unit.items():
        assert {k: row[k] for k in plain_counts(ledger, Period.month(2026, 11), code)} == (
            plain_counts(ledger, Period.month(2026, 11), code)
        )
    expected = {
        "unit": "农业农村局",
        "total": 3,
        "closed": 2,
        "closed_on_time": 1,
        "on_time_rate": 0.5,
        "red": 1,
        "yellow": 0,
        "missed_reports": 0,
        "overdue": 2,
        "open_rectifications": 1,
        "rectifications_closed": 1,
        "rectifications_on_time": 1,
    }
    assert {k: by_unit["nyncj"][k] for k in expected} == expected
    assert (by_unit["czj"]["yellow"], by_unit["czj"]["missed_reports"]) == (2, 1)
    assert [r["code"] for r in report["by_unit"]] == ["czj", "nyncj", "cgz"]  # 100%, 50%, none
    assert [r["rank"] for r in report["by_unit"]] == [1, 2, 3]
    assert (report["total"], report["closed"], report["on_time_rate"]) == (7, 3, 0.6667)
    assert report["open_rectifications"] == 2  # r2, and r3 closed only after the month
    assert report["red"] == ["事项a3"] and report["yellow"] == ["事项b2", "事项b1"]
    assert report["period"] == "2026年11月" and report["as_of"].startswith("2026-11-30T23:59")


def test_year_figures_count_what_closed_in_the_year(ledger: Engine) -> None:
    nyncj = next(
        r for r in Office(ledger).period_report("2026", "staff")["by_unit"] if r["code"] == "nyncj"
    )
    truth = plain_counts(ledger, Period.year(2026), "nyncj")
    assert {k: nyncj[k] for k in truth} == truth
    assert (nyncj["total"], nyncj["closed"], nyncj["closed_on_time"]) == (4, 3, 2)


def test_rank_shares_places_on_equal_figures() -> None:
    rows = [
        {"unit": u, "on_time_rate": rate, "red": red, "missed_reports": 0, "overdue": 0}
        for u, rate, red in [("甲", 0.9, 0), ("乙", None, 0), ("丙", 0.9, 0), ("丁", 0.9, 2)]
    ]
    assert [(r["unit"], r["rank"]) for r in rank(rows)] == [
        ("丙", 1),
        ("甲", 1),
        ("丁", 3),
        ("乙", 4),
    ]


@pytest.mark.parametrize("period", ["2026-13", "26-11", "abcd", "2026-1-1", ""])
def test_bad_period_is_refused(engine: Engine, period: str) -> None:
    with pytest.raises(InvalidData):
        Office(engine).period_report(period, None)


def test_published_bulletin_carries_the_sql_figures(ledger: Engine, db_url: str) -> None:
    """The process compiles the draft from the same figures; the .docx repeats them per unit."""
    started = ledger.start("monthly_bulletin", {}, user="staff")
    edit = next(t for t in ledger.tasks("staff")["items"] if t["instance_id"] == started["id"])
    draft = ledger.task(edit["id"], "staff")["data"]
    assert "全县纳入督办的事项共7件，已办结3件" in draft["bulletin_body"]
    assert "按期办结率66.7%" in draft["bulletin_body"]
    ledger.complete(
        edit["id"],
        {"bulletin_title": draft["bulletin_title"], "bulletin_body": draft["bulletin_body"]},
        user="staff",
    )
    approve = ledger.tasks("director")["items"][0]
    ledger.complete(approve["id"], {"decision": "approve"}, user="director")

    content = documents_of(ledger, started["id"])["月度通报"]
    text = docx_text(content)
    assert "关于2026年11月“百千万工程”督办事项推进情况的通报" in text
    assert "县指办通〔2026〕1号" in text and "2026年12月1日" in text
    assert "各镇（街）、县各工作专班、各成员单位：" in text
    table = docx_tables(content)[0]
    report = Office(ledger).monthly_report(2026, 11, None)
    assert table[1:] == [
        [
            str(r["rank"]),
            r["unit"],
            str(r["total"]),
            str(r["closed"]),
            "—" if r["on_time_rate"] is None else f"{r['on_time_rate'] * 100:g}%",
            str(r["red"]),
            str(r["yellow"]),
            str(r["missed_reports"]),
            str(r["open_rectifications"]),
        ]
        for r in report["by_unit"]
    ]
    assert table[2][:5] == ["2", "农业农村局", "3", "2", "50%"]


def test_evaluation_score_sheet_is_prefilled_from_the_ledger(ledger: Engine, db_url: str) -> None:
    instance_id, data = play_evaluation(ledger, db_url)
    row = next(r for r in data["score_sheet"] if r["unit"] == "nyncj")
    truth = plain_counts(ledger, Period.year(2026), "nyncj")
    assert (row["items_total"], row["items_closed"], row["red_items"]) == (
        truth["total"],
        truth["closed"],
        truth["red"],
    )
    assert row["on_time_rate"] == round(truth["closed_on_time"] / truth["closed"] * 100) == 67
    prefilled = {e["indicator"]: e.get("score") for e in row["indicator_scores"]}
    assert prefilled["督办事项按期办结"] == 67


# ------------------------------------------------------------------ pages
def test_bulletin_pages(ledger: Engine) -> None:
    from webui import create_app

    app = create_app({"TESTING": True, "SECRET_KEY": "t", "WTF_CSRF_ENABLED": False}, engine=ledger)
    pages = app.test_client()
    assert pages.get("/bulletins").status_code == 302  # sign in first
    pages.post("/login", data={"username": "unit_liaison", "password": "demo"})

    live = pages.get("/bulletins?period=2026-11").get_data(as_text=True)
    assert "还没有印发的月度通报" in live
    assert '<td>2</td><th scope="row">农业农村局</th><td>3</td><td>2</td>' in live
    assert "<td>50%</td>" in live
    assert pages.get("/bulletins?period=2026-99").status_code == 200  # falls back to this month

    started = ledger.start("monthly_bulletin", {}, user="staff")
    edit = next(t for t in ledger.tasks("staff")["items"] if t["instance_id"] == started["id"])
    draft = ledger.task(edit["id"], "staff")["data"]
    body = draft["bulletin_body"] + "\n请各单位对照整改。"
    ledger.complete(
        edit["id"], {"bulletin_title": draft["bulletin_title"], "bulletin_body": body}, user="staff"
    )
    ledger.complete(
        ledger.tasks("director")["items"][0]["id"], {"decision": "approve"}, user="director"
    )
    (doc,) = ledger.documents(started["id"], "staff")

    listing = pages.get("/bulletins").get_data(as_text=True)
    assert f'href="/bulletins/{doc["id"]}"' in listing and "县指办通〔2026〕1号" in listing
    page = pages.get(f"/bulletins/{doc['id']}").get_data(as_text=True)
    assert "<h1>关于2026年11月“百千万工程”督办事项推进情况的通报</h1>" in page
    assert "<p>请各单位对照整改。</p>" in page  # the text as the office edited it
    assert f'href="/api/v1/documents/{doc["id"]}"' in page
    assert pages.get("/bulletins/999").status_code == 404
