"""/metrics: the engine's health figures in the Prometheus text format (prometheus-client).

Counts only, no names or data, yet not for everyone: a scraper sends `METRICS_TOKEN` (from the
environment or the app's config) as `Authorization: Bearer <token>`, or a 系统管理员 signed in
to the pages looks. Anyone else gets 401 (403 when signed in without the role).
"""

import hmac
import os
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .auth import current_user
from .extensions import get_engine

bp = Blueprint("metrics", __name__)


class EngineCollector(Collector):
    """Reads the figures once per scrape; a database that cannot be reached is `duban_up 0`."""

    def __init__(self, health: dict[str, Any] | None) -> None:
        self.health = health

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "duban_database_up", "数据库是否可用（1 可用，0 不可用）", value=int(bool(self.health))
        )
        if not self.health:
            return
        health = self.health
        instances = GaugeMetricFamily("duban_instances", "各状态的流程实例数", labels=["status"])
        for status in ("running", "suspended", "error", "completed", "terminated"):
            instances.add_metric([status], health["instances"].get(status, 0))
        yield instances
        timers = GaugeMetricFamily("duban_timers", "各状态的定时器数", labels=["state"])
        for state in ("waiting", "fired", "failed", "cancelled"):
            timers.add_metric([state], health["timers"].get(state, 0))
        yield timers
        for name, help_text, value in (
            ("duban_timer_queue_depth", "已到期尚未触发的定时器数", health["queue_depth"]),
            ("duban_workers_alive", "存活的定时器工作进程数", health["workers_alive"]),
            ("duban_open_tasks", "未办结的人工任务数", health["open_tasks"]),
            ("duban_overdue_tasks", "已超期的人工任务数", health["overdue_tasks"]),
            ("duban_active_users", "在用账号数", health["active_users"]),
        ):
            yield GaugeMetricFamily(name, help_text, value=value)
        seen = GaugeMetricFamily(
            "duban_worker_last_seen_seconds", "各工作进程距上次心跳的秒数", labels=["worker"]
        )
        for worker in health["workers"]:
            if not worker["stopped"]:
                seen.add_metric([worker["name"]], worker["seconds_since"])
        yield seen


@bp.get("/metrics")
def metrics() -> Response:
    refused = _refusal()
    if refused is not None:
        return refused
    try:
        health = get_engine(current_app).health()
    except Exception:  # the database is down: say so in the metrics, don't fail the scrape
        current_app.logger.exception("metrics: the database cannot be read")
        health = None
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector(health))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def _refusal() -> Response | None:
    """None when the caller may read the figures: the metrics token, or an admin's session."""
    token = current_app.config.get("METRICS_TOKEN") or os.environ.get("METRICS_TOKEN")
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        given = header.removeprefix("Bearer ").strip()
        if hmac.compare_digest(given.encode(), str(token).encode()):
            return None
    user = current_user()
    if user is not None and user["is_admin"]:
        return None
    if user is not None:
        return Response("只有系统管理员可以查看监控指标\n", 403, mimetype="text/plain")
    message = "需要有效的 METRICS_TOKEN（Authorization: Bearer …）或以系统管理员身份登录\n"
    return Response(message, 401, mimetype="text/plain")
