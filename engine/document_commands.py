"""`Engine`'s documents, reports and exports: read-only, checked against what the caller may see."""

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import documents, exports, queries, reports
from .bpmn import json_safe, load_state
from .errors import Forbidden, InvalidData, NotFound
from .models import Document, ProcessInstance, TrackedItem, Unit
from .runtime import current_data
from .workdays import BEIJING

if TYPE_CHECKING:
    from .engine import Engine

EXPORT_PAGE = 500


class DocumentCommands:
    """Mixed into `Engine`: 文书 of an instance, 月通报 figures, 考核 indicators, .xlsx exports."""

    # ------------------------------------------------------------ documents
    def documents(
        self: "Engine", instance_id: int, user: str | None = None
    ) -> list[dict[str, Any]]:
        """The documents kept with an instance, oldest first; to someone who may not view the
        instance, only its published (public) ones."""
        with self.read_session() as session:
            query = select(Document).where(Document.instance_id == instance_id)
            try:
                self._viewable_instance(session, instance_id, user)
            except Forbidden:
                query = query.where(Document.public.is_(True))
                if session.scalar(select(func.count()).select_from(query.subquery())) == 0:
                    raise
            return [documents.summary(row) for row in session.scalars(query.order_by(Document.id))]

    def document(
        self: "Engine", document_id: int, user: str | None = None
    ) -> tuple[str, bytes, str]:
        """(filename, .docx bytes, title) of one document, if the caller may view its instance."""
        with self.read_session() as session:
            row = self._viewable_document(session, document_id, user)
            return row.filename, row.content, row.title

    def document_detail(
        self: "Engine", document_id: int, user: str | None = None
    ) -> dict[str, Any]:
        """A document's summary with its instance's current data (e.g. a bulletin's text and
        figures), for showing it as a page."""
        with self.read_session() as session:
            row = self._viewable_document(session, document_id, user)
            return {
                **documents.summary(row),
                "data": json_safe(self._instance_data(session, row.instance_id)),
            }

    def documents_of_kind(
        self: "Engine", kind: str, user: str | None = None, *, limit: int = 50
    ) -> list[dict[str, Any]]:
        """The newest documents of one kind (e.g. published bulletins) the caller may view."""
        with self.read_session() as session:
            actor = self.actor(session, user)
            rows = session.execute(
                select(Document, ProcessInstance)
                .join(ProcessInstance, ProcessInstance.id == Document.instance_id)
                .where(Document.kind == kind)
                .order_by(Document.created_at.desc(), Document.id.desc())
                .limit(max(1, min(limit, 500)))
            ).all()
            return [
                documents.summary(doc)
                for doc, instance in rows
                if actor is None
                or doc.public
                or queries.may_view_instance(session, instance, actor)
            ]

    def _viewable_document(
        self: "Engine", session: Session, document_id: int, user: str | None
    ) -> Document:
        """The document, if the caller may view its instance or it is public (then any known
        user may)."""
        row = session.get(Document, document_id)
        if row is None:
            raise NotFound(f"文书 {document_id} 不存在")
        if not row.public:
            self._viewable_instance(session, row.instance_id, user)
        else:
            self.actor(session, user)
        return row

    def _viewable_instance(
        self: "Engine", session: Session, instance_id: int, user: str | None
    ) -> ProcessInstance:
        instance = session.get(ProcessInstance, instance_id)
        if instance is None:
            raise NotFound(f"流程实例 {instance_id} 不存在")
        actor = self.actor(session, user)
        if actor is not None and not queries.may_view_instance(session, instance, actor):
            raise Forbidden("您无权查看该流程的文书：它不属于您所在的单位，您也未参与办理")
        return instance

    # -------------------------------------------------------------- reports
    def period_report(
        self: "Engine", period: str, user: str | None = None, *, kind: str = "督办事项"
    ) -> dict[str, Any]:
        """月通报 / 年度 figures (`period` = `YYYY-MM` or `YYYY`), live from the ledger."""
        try:
            parsed = reports.Period.parse(period)
        except ValueError as exc:
            raise InvalidData(str(exc), {"period": str(exc)}) from exc
        with self.read_session() as session:
            self.actor(session, user)
            now, calendar = self.clock.now(), self.calendar(session)
            return reports.period_report(session, kind, parsed, now, calendar)

    def monthly_report(
        self: "Engine", year: int, month: int, user: str | None = None
    ) -> dict[str, Any]:
        if not 1 <= month <= 12:
            raise InvalidData("月份应为 1–12", {"month": "月份应为 1–12"})
        return self.period_report(f"{year:04d}-{month:02d}", user)

    # -------------------------------------------------------------- exports
    def export_items(self: "Engine", user: str | None = None, **filters: Any) -> bytes:
        """督办台账 .xlsx: every row `Engine.items` gives this user with these filters."""
        filters = {k: v for k, v in filters.items() if k not in ("page", "per_page", "format")}
        rows: list[dict[str, Any]] = []
        page = 1
        while True:
            chunk = self.items(user, **filters, page=page, per_page=EXPORT_PAGE)
            rows += chunk["items"]
            if len(rows) >= chunk["total"] or not chunk["items"]:
                break
            page += 1
        return exports.ledger_workbook(rows, filters, self._as_of())

    def export_rectifications(
        self: "Engine", user: str | None = None, *, kind: str = "整改任务", **filters: Any
    ) -> bytes:
        """整改清单 .xlsx: the task list (ledger rows of `kind`) and the problem and
        responsibility lists of the rectifications those tasks belong to."""
        filters = {k: v for k, v in filters.items() if k not in ("page", "per_page", "format")}
        tasks: list[dict[str, Any]] = []
        page = 1
        while True:
            chunk = self.items(user, kind=kind, **filters, page=page, per_page=EXPORT_PAGE)
            tasks += chunk["items"]
            if len(tasks) >= chunk["total"] or not chunk["items"]:
                break
            page += 1
        lists: dict[str, list[dict[str, Any]]] = {}
        with self.read_session() as session:
            measures = dict(
                session.execute(
                    select(TrackedItem.id, TrackedItem.attributes).where(
                        TrackedItem.id.in_([t["id"] for t in tasks])
                    )
                ).all()
            )
            for task in tasks:
                task["measures"] = (measures.get(task["id"]) or {}).get("measures", "")
            units = dict(session.execute(select(Unit.code, Unit.name)).all())
            for instance_id in sorted({t["instance_id"] for t in tasks}):
                data = self._instance_data(session, instance_id)
                for _title, key, _columns in exports.RECTIFICATION_LISTS:
                    for row in data.get(key) or []:
                        if isinstance(row, dict):
                            named = {
                                k: units.get(v, v) if k.endswith("unit") else v
                                for k, v in row.items()
                            }
                            lists.setdefault(key, []).append({"instance_id": instance_id, **named})
        return exports.rectification_workbook(tasks, lists, self._as_of())

    def export_scores(self: "Engine", instance_id: int, user: str | None = None) -> bytes:
        """考核评分表 .xlsx of one evaluation instance (its score sheet and results)."""
        with self.read_session() as session:
            instance = self._viewable_instance(session, instance_id, user)
            data = self._instance_data(session, instance_id)
        scores = data.get("scores") or data.get("score_sheet") or []
        if not scores:
            raise NotFound("该流程还没有评分表")
        indicators = [str(i.get("name")) for i in data.get("indicators") or []]
        title = str(data.get("plan_title") or instance.title or "考核评分表")
        return exports.score_workbook(title, indicators, scores, data.get("results") or [])

    def _instance_data(self: "Engine", session: Session, instance_id: int) -> dict[str, Any]:
        instance = session.get(ProcessInstance, instance_id)
        if instance is None:
            return {}
        loaded = self.specs.get(session, instance.process_version_id)
        return current_data(load_state(instance.state, loaded.spec, loaded.subprocess_specs))

    def _as_of(self: "Engine") -> str:
        return self.clock.now().astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")
