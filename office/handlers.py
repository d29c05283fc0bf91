"""The office's service-task handlers: figures its processes ask for. They join the engine's
registry when `office` is imported (office/__init__.py), as the web app, the CLI and the tests
do before running the office's processes."""

from typing import Any

from engine.errors import EngineError
from engine.service_tasks import handler

from . import reports
from .vocabulary import RECTIFICATION_KIND


def _require(values: dict[str, Any], *names: str) -> None:
    missing = [n for n in names if values.get(n) in (None, "")]
    if missing:
        raise EngineError(f"服务任务缺少参数：{'、'.join(missing)}")


@handler("item_report")
def item_report(run: Any, values: dict[str, Any]) -> dict[str, Any]:
    """Live figures of one kind of tracked item (周调度): per unit, the red and yellow lists."""
    _require(values, "kind")
    return reports.item_report(run.session, str(values["kind"]), run.ctx.now, run.ctx.calendar)


@handler("period_report")
def period_report(run: Any, values: dict[str, Any]) -> dict[str, Any]:
    """Figures of one month (`period` = `YYYY-MM`) or year (`YYYY`), ranked by unit, from SQL."""
    _require(values, "kind", "period")
    try:
        period = reports.Period.parse(str(values["period"]))
    except ValueError as exc:
        raise EngineError(str(exc)) from exc
    return reports.period_report(
        run.session,
        str(values["kind"]),
        period,
        run.ctx.now,
        run.ctx.calendar,
        rectification_kind=str(values.get("rectification_kind") or RECTIFICATION_KIND),
    )
