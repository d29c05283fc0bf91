"""`Engine`'s tracked-item ledger and documents: read-only, checked against what the caller may
see. (The office's figures and spreadsheets over them: office/.)"""

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import documents, ledger, queries
from .base import EngineBase
from .bpmn import json_safe, load_state
from .errors import Forbidden, NotFound
from .models import Document, ProcessInstance, TrackedItem
from .runtime import current_data

EXPORT_PAGE = 500


class DocumentCommands(EngineBase):
    """Mixed into `Engine`: the item ledger and the 文书 kept with instances."""

    # ------------------------------------------------------------ documents
    def items(self, user: str | None = None, **filters: Any) -> dict[str, Any]:
        """Tracked items with their lights; see engine/ledger.py for the filters. Staff of a
        town or member unit see only the items their unit leads; admins and `sees_all` roles
        see all."""
        with self.read_session() as session:
            actor = self.actor(session, user)
            if actor is not None and not (actor.is_admin or actor.sees_all):
                filters["unit_ids"] = {actor.unit_id} if actor.unit_id is not None else set()
            return ledger.ledger(session, self.clock.now(), self.calendar(session), **filters)

    def documents(self, instance_id: int, user: str | None = None) -> list[dict[str, Any]]:
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

    def document(self, document_id: int, user: str | None = None) -> tuple[str, bytes, str]:
        """(filename, .docx bytes, title) of one document, if the caller may view its instance."""
        with self.read_session() as session:
            row = self._viewable_document(session, document_id, user)
            return row.filename, row.content, row.title

    def document_detail(self, document_id: int, user: str | None = None) -> dict[str, Any]:
        """A document's summary with its instance's current data (e.g. a bulletin's text and
        figures), for showing it as a page."""
        with self.read_session() as session:
            row = self._viewable_document(session, document_id, user)
            return {
                **documents.summary(row),
                "data": json_safe(self._instance_data(session, row.instance_id)),
            }

    def documents_of_kind(
        self, kind: str, user: str | None = None, *, limit: int = 50
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

    def _viewable_document(self, session: Session, document_id: int, user: str | None) -> Document:
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
        self, session: Session, instance_id: int, user: str | None
    ) -> ProcessInstance:
        instance = session.get(ProcessInstance, instance_id)
        if instance is None:
            raise NotFound(f"流程实例 {instance_id} 不存在")
        actor = self.actor(session, user)
        if actor is not None and not queries.may_view_instance(session, instance, actor):
            raise Forbidden("您无权查看该流程的文书：它不属于您所在的单位，您也未参与办理")
        return instance

    def item_attributes(self, item_ids: list[int]) -> dict[int, dict[str, Any]]:
        """The free-form attributes `record_item` stored on these tracked items (e.g. a
        rectification task's measures), by item id."""
        with self.read_session() as session:
            rows = session.execute(
                select(TrackedItem.id, TrackedItem.attributes).where(TrackedItem.id.in_(item_ids))
            ).all()
            return {item_id: dict(attributes or {}) for item_id, attributes in rows}

    def instance_data(self, instance_id: int, user: str | None) -> dict[str, Any]:
        """An instance's current process data alone (no history, no task list), for a caller
        who may view the instance."""
        with self.read_session() as session:
            self._viewable_instance(session, instance_id, user)
            return json_safe(self._instance_data(session, instance_id))

    def _instance_data(self, session: Session, instance_id: int) -> dict[str, Any]:
        instance = session.get(ProcessInstance, instance_id)
        if instance is None:
            return {}
        loaded = self.specs.get(session, instance.process_version_id)
        return current_data(load_state(instance.state, loaded.spec, loaded.subprocess_specs))
