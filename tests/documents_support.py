"""Helpers for the documents, reports and exports tests: the demo county with processes/
deployed (tests/county.py), scenarios played into the test's database, and .docx text read back."""

from io import BytesIO

from docx import Document as open_docx
from sqlalchemy import select

from engine import Engine, scenarios
from engine.models import ProcessInstance, Unit
from tests.county import PROCESSES


def play(engine: Engine, db_url: str, process: str, name: str) -> int:
    """Run one scenario of processes/ on this database; the id of the instance it started."""
    scenario = next(
        s for s in scenarios.discover(PROCESSES) if s.process == process and s.name == name
    )
    outcome = scenarios.run(scenario, db_url, Engine)
    assert outcome.ok, f"第 {outcome.step} 步：{outcome.message}"
    with engine.read_session() as session:
        found = session.scalar(
            select(ProcessInstance.id)
            .where(
                ProcessInstance.process_key == process, ProcessInstance.parent_instance_id.is_(None)
            )
            .order_by(ProcessInstance.id.desc())
            .limit(1)
        )
    assert found is not None
    return found


def play_evaluation(engine: Engine, db_url: str) -> tuple[int, dict]:
    """The annual evaluation played to its approved results: its instance id and data."""
    instance_id = play(
        engine,
        db_url,
        "annual_evaluation",
        "县指挥部审定同意，较差单位启动问题整改，优秀单位记入表扬奖励",
    )
    return instance_id, engine.instance(instance_id, "staff")["data"]


def docx_text(content: bytes) -> str:
    """Every paragraph and table cell of a .docx, one per line, as Word shows them."""
    document = open_docx(BytesIO(content))
    lines = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            lines.append(" | ".join(cell.text for cell in row.cells))
    return "\n".join(lines)


def docx_tables(content: bytes) -> list[list[list[str]]]:
    document = open_docx(BytesIO(content))
    return [[[c.text for c in row.cells] for row in t.rows] for t in document.tables]


def unit_name(engine: Engine, code: str) -> str:
    with engine.read_session() as session:
        name = session.scalar(select(Unit.name).where(Unit.code == code))
    assert name is not None, code
    return name


def documents_of(engine: Engine, instance_id: int, user: str = "staff") -> dict[str, bytes]:
    """kind → content of an instance's documents (the newest of each kind)."""
    found = {}
    for doc in engine.documents(instance_id, user):
        found[doc["kind"]] = engine.document(doc["id"], user)[1]
    return found
