"""`Office`: the county command office's reads, composed over an `Engine` — the 月通报 and
年度 figures, the leaders' dashboard and the office's spreadsheets. Each method reads through
the engine's public face (its sessions, who the caller is, the ledger, an instance's data) and
checks what the caller may see exactly as the engine's own reads do."""

from typing import Any

from engine import Engine, Forbidden, InvalidData, NotFound
from engine.workdays import BEIJING

from . import dashboard, exports, reports
from .vocabulary import ITEM_KIND, LEADER_ROLES, RECTIFICATION_KIND

EXPORT_PAGE = 500


class Office:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -------------------------------------------------------------- figures
    def period_report(self, period: str, user: str | None, *, kind: str = ITEM_KIND) -> dict:
        """月通报 / 年度 figures (`period` = `YYYY-MM` or `YYYY`), live from the ledger."""
        try:
            parsed = reports.Period.parse(period)
        except ValueError as exc:
            raise InvalidData(str(exc), {"period": str(exc)}) from exc
        engine = self.engine
        with engine.read_session() as session:
            engine.actor(session, user)
            now, calendar = engine.clock.now(), engine.calendar(session)
            return reports.period_report(session, kind, parsed, now, calendar)

    def monthly_report(self, year: int, month: int, user: str | None) -> dict[str, Any]:
        if not 1 <= month <= 12:
            raise InvalidData("月份应为 1–12", {"month": "月份应为 1–12"})
        return self.period_report(f"{year:04d}-{month:02d}", user)

    def dashboard(self, user: str) -> dict[str, Any]:
        """The leaders' dashboard (领导驾驶舱); only for roles that see every instance."""
        engine = self.engine
        with engine.read_session() as session:
            actor = engine.actor(session, user)
            if actor is None or not (actor.sees_all or actor.is_admin):
                raise Forbidden("领导驾驶舱仅对指挥办和县指挥部领导开放")
            return dashboard.overview(
                session,
                engine.clock.now(),
                engine.calendar(session),
                leader_roles=LEADER_ROLES,
                rectification_kind=RECTIFICATION_KIND,
            )

    # -------------------------------------------------------------- exports
    def export_items(self, user: str | None, **filters: Any) -> bytes:
        """督办台账 .xlsx: every row `Engine.items` gives this user with these filters."""
        filters = _without_paging(filters)
        rows = self._ledger_rows(user, **filters)
        return exports.ledger_workbook(rows, filters, self._as_of())

    def export_rectifications(
        self, user: str | None, *, kind: str = RECTIFICATION_KIND, **filters: Any
    ) -> bytes:
        """整改清单 .xlsx: the task list (ledger rows of `kind`) and the problem and
        responsibility lists of the rectifications those tasks belong to."""
        tasks = self._ledger_rows(user, kind=kind, **_without_paging(filters))
        measures = self.engine.item_attributes([t["id"] for t in tasks])
        for task in tasks:
            task["measures"] = (measures.get(task["id"]) or {}).get("measures", "")
        units = {u["code"]: u["name"] for u in self.engine.units()}
        lists: dict[str, list[dict[str, Any]]] = {}
        for instance_id in sorted({t["instance_id"] for t in tasks}):
            data = self.engine.instance_data(instance_id, None)  # tasks the caller may see
            for _title, key, _columns in exports.RECTIFICATION_LISTS:
                for row in data.get(key) or []:
                    if isinstance(row, dict):
                        named = {
                            k: units.get(v, v) if k.endswith("unit") else v for k, v in row.items()
                        }
                        lists.setdefault(key, []).append({"instance_id": instance_id, **named})
        return exports.rectification_workbook(tasks, lists, self._as_of())

    def export_scores(self, instance_id: int, user: str | None) -> bytes:
        """考核评分表 .xlsx of one evaluation instance (its score sheet and results)."""
        instance = self.engine.instance(instance_id, user)  # the caller may view it
        data = instance["data"]
        scores = data.get("scores") or data.get("score_sheet") or []
        if not scores:
            raise NotFound("该流程还没有评分表")
        indicators = [str(i.get("name")) for i in data.get("indicators") or []]
        title = str(data.get("plan_title") or instance.get("title") or "考核评分表")
        return exports.score_workbook(title, indicators, scores, data.get("results") or [])

    # -------------------------------------------------------------- helpers
    def _ledger_rows(self, user: str | None, **filters: Any) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        page = 1
        while True:
            chunk = self.engine.items(user, **filters, page=page, per_page=EXPORT_PAGE)
            rows += chunk["items"]
            if len(rows) >= chunk["total"] or not chunk["items"]:
                return rows
            page += 1

    def _as_of(self) -> str:
        return self.engine.clock.now().astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


def _without_paging(filters: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in filters.items() if k not in ("page", "per_page", "format")}
