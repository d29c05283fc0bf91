"""Documents: render a deployed .docx template with docxtpl, keep the result with the instance.

A process reaches a `render_document` service task; the handler takes the template deployed
with the process's version, renders it with the task's data plus a few standard values (文号,
the date in Chinese, the issuing office) and Jinja filters that turn codes into names, and
stores the file as a `Document` row of the instance.
"""

import re
from datetime import date, datetime
from io import BytesIO
from typing import TYPE_CHECKING, Any

from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from . import audit
from .definitions import bpmn_file_of, resolve_form, stored_bytes
from .errors import EngineError
from .models import DeploymentFile, Document, ProcessVersion, Unit, User
from .workdays import BEIJING

if TYPE_CHECKING:
    from .runtime import Run

DEFAULT_ISSUER = "县“百千万工程”指挥部办公室"
_CN_DIGITS = "〇一二三四五六七八九"
_UNSAFE_FILENAME = re.compile(r'[\\/:*?"<>|\r\n\t]+')


# ------------------------------------------------------------- formatting
def date_cn(value: Any) -> str:
    """`2026-12-01` (or a date/datetime) → `2026年12月1日`, as GB/T 9704 dates documents."""
    day = _as_datetime(value)
    if day is None:
        return "" if value in (None, "") else str(value)
    return f"{day.year}年{day.month}月{day.day}日"


def datetime_cn(value: Any) -> str:
    moment = _as_datetime(value)
    if moment is None:
        return "" if value in (None, "") else str(value)
    if isinstance(value, str) and len(value) <= 10:
        return date_cn(moment)
    return f"{date_cn(moment)}{moment.hour}时{moment.minute:02d}分"


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value.astimezone(BEIJING) if value.tzinfo else value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(BEIJING) if parsed.tzinfo else parsed


def cn_number(value: Any) -> str:
    """1 → 一, 12 → 十二 (for 一、二、 headings); larger numbers stay Arabic."""
    number = int(value)
    if number < 10:
        return _CN_DIGITS[number]
    if number < 100:
        tens, ones = divmod(number, 10)
        return ("" if tens == 1 else _CN_DIGITS[tens]) + "十" + (_CN_DIGITS[ones] if ones else "")
    return str(number)


def percent(rate: Any) -> str:
    """0.8571 → 85.7%; None → —."""
    if rate is None or rate == "":
        return "—"
    return f"{round(float(rate) * 100, 1):g}%"


def lines(text: Any) -> list[str]:
    """A text field as paragraphs: one per non-empty line."""
    return [line.strip() for line in str(text or "").splitlines() if line.strip()]


def year_of(moment: datetime) -> int:
    return moment.astimezone(BEIJING).year


# ---------------------------------------------------------------- context
class Names:
    """Unit codes and usernames → Chinese names, looked up once per rendering."""

    def __init__(self, session: Session) -> None:
        self.units: dict[str, str] = {}
        for unit in session.scalars(select(Unit)):
            self.units[unit.code] = self.units[str(unit.id)] = unit.name
        self.users = dict(session.execute(select(User.username, User.display_name)).all())

    def unit(self, value: Any) -> str:
        if isinstance(value, list | tuple):
            return "、".join(self.unit(v) for v in value)
        return self.units.get(str(value), "" if value is None else str(value))

    def user(self, value: Any) -> str:
        if isinstance(value, list | tuple):
            return "、".join(self.user(v) for v in value)
        if isinstance(value, dict):  # {user, reason} rows of a form
            return self.user(value.get("user"))
        return self.users.get(str(value), "" if value is None else str(value)) or str(value)


def jinja_environment(names: Names) -> SandboxedEnvironment:
    """Templates are edited by designers: render them sandboxed, with the filters they use."""
    env = SandboxedEnvironment(autoescape=True)
    env.filters.update(
        unit=names.unit,
        user=names.user,
        date_cn=date_cn,
        datetime_cn=datetime_cn,
        cn=cn_number,
        pct=percent,
        lines=lines,
    )
    return env


def next_number(session: Session, kind: str, prefix: str, now: datetime) -> str:
    """文号 `prefix〔year〕n号`: n counts this kind's documents of the year, from 1."""
    year = year_of(now)
    start = datetime(year, 1, 1, tzinfo=BEIJING)
    if session.get_bind().dialect.name == "postgresql":
        # Commands lock one instance; two instances numbering the same kind at once must not
        # both take n. (SQLite runs one write transaction at a time.)
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"document:{kind}"}
        )
    count = session.scalar(
        select(func.count())
        .select_from(Document)
        .where(Document.kind == kind, Document.created_at >= start)
    )
    return f"{prefix}〔{year}〕{(count or 0) + 1}号"


# -------------------------------------------------------------- rendering
def template_bytes(session: Session, version_id: int, name: str) -> bytes:
    """The template as deployed with this version (versions never change, nor do their files)."""
    row = session.execute(
        select(DeploymentFile.kind, DeploymentFile.content)
        .join(ProcessVersion, ProcessVersion.deployment_id == DeploymentFile.deployment_id)
        .where(ProcessVersion.id == version_id, DeploymentFile.name == name)
    ).first()
    if row is None or row.kind != "template":
        raise EngineError(f"文书模板 {name} 未随流程部署")
    return stored_bytes(row.kind, row.content)


def render(template: bytes, context: dict[str, Any], names: Names) -> bytes:
    from docxtpl import DocxTemplate  # imported on first use: most commands render nothing

    document = DocxTemplate(BytesIO(template))
    try:
        document.render(context, jinja_environment(names), autoescape=True)
    except Exception as exc:  # a designer's template error: say which, in Chinese
        raise EngineError(f"文书模板渲染出错：{type(exc).__name__}: {exc}") from exc
    out = BytesIO()
    document.save(out)
    return out.getvalue()


def store(
    session: Session,
    *,
    instance_id: int,
    kind: str,
    title: str,
    number: str | None,
    template: str,
    task_name: str | None,
    content: bytes,
    now: datetime,
    actor_id: int | None,
    public: bool = False,
) -> Document:
    document = Document(
        instance_id=instance_id,
        kind=kind,
        title=title,
        number=number,
        filename=filename(title, number),
        template=template,
        task_name=task_name,
        content=content,
        public=public,
        created_at=now,
        created_by_id=actor_id,
    )
    session.add(document)
    session.flush()
    return document


def filename(title: str, number: str | None) -> str:
    stem = _UNSAFE_FILENAME.sub("_", title).strip(" ._") or "文书"
    if number:
        stem = f"{_UNSAFE_FILENAME.sub('_', number)} {stem}"
    return f"{stem[:180]}.docx"


def summary(document: Document) -> dict[str, Any]:
    return {
        "id": document.id,
        "instance_id": document.instance_id,
        "kind": document.kind,
        "title": document.title,
        "number": document.number,
        "filename": document.filename,
        "public": document.public,
        "created_at": document.created_at.isoformat(),
    }


def standard_context(
    *, kind: str, title: str, number: str | None, issuer: str, now: datetime, instance: Any
) -> dict[str, Any]:
    """Values every template may use besides the process data."""
    today = now.astimezone(BEIJING).date()
    return {
        "document_kind": kind,
        "document_title": title,
        "doc_number": number or "",
        "issuer": issuer,
        "today": today.isoformat(),
        "date_cn": date_cn(today),
        "year": today.year,
        "instance_id": instance.id,
        "instance_title": instance.title or "",
    }


# --------------------------------------------------------- from a process
def render_for(run: "Run", values: dict[str, Any]) -> dict[str, Any]:
    """The `render_document` service task: see processes/README.md for its parameters."""
    session, ctx = run.session, run.ctx
    kind = str(values["kind"])[:40]
    title = str(values.get("title") or kind)[:300]
    extra = values.get("context") or {}
    if not isinstance(extra, dict):
        raise EngineError("render_document 的 context 必须是对象")
    task = _rendering_task(run, values)
    data = dict(task.data) if task is not None else {}
    bpmn_file = bpmn_file_of(task.task_spec, run.version.bpmn_file) if task else None
    template = resolve_form(bpmn_file or run.version.bpmn_file, str(values["template"]))
    # 文号: the parameter, else one typed into the process's form, else the next of the year.
    number = values.get("number") or data.get("doc_number") or None
    if number is None and values.get("number_prefix"):
        number = next_number(session, kind, str(values["number_prefix"]), ctx.now)
    number = str(number)[:80] if number else None
    context = {
        **data,
        **standard_context(
            kind=kind,
            title=title,
            number=number,
            issuer=str(values.get("issuer") or DEFAULT_ISSUER),
            now=ctx.now,
            instance=run.instance,
        ),
        **extra,
    }
    names = Names(session)
    content = render(template_bytes(session, run.version.version_id, template), context, names)
    document = store(
        session,
        instance_id=run.instance.id,
        kind=kind,
        title=title,
        number=number,
        template=template,
        task_name=task.task_spec.bpmn_id if task is not None else None,
        content=content,
        now=ctx.now,
        actor_id=ctx.actor_id,
        public=bool(values.get("public")),
    )
    audit.record(
        session,
        "document_rendered",
        ctx.now,
        instance_id=run.instance.id,
        actor_id=ctx.actor_id,
        detail={"document": document.id, "kind": kind, "number": document.number},
    )
    return {"id": document.id, "kind": kind, "title": title, "number": document.number}


def _rendering_task(run: "Run", values: dict[str, Any]) -> Any:
    """The service task being run: SpiffWorkflow passes handlers only the evaluated parameters,
    so find the ready `render_document` task whose template and kind match them."""
    from SpiffWorkflow import TaskState

    found = None
    for task in run.workflow.get_tasks(state=TaskState.READY):
        spec = task.task_spec
        if getattr(spec, "operation_name", None) != "render_document":
            continue
        found = found or task
        try:
            evaluated = spec.evaluate_params(task)
        except Exception:  # noqa: BLE001 - a sibling whose parameters cannot evaluate yet
            continue
        if all(evaluated.get(k, {}).get("value") == values.get(k) for k in ("kind", "template")):
            return task
    return found
