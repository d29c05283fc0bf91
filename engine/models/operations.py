"""Operations state: the timer workers' heartbeats, for the health page and /metrics."""

from datetime import datetime

from sqlalchemy import Float, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, timestamp


class WorkerHeartbeat(Base):
    """One row per `duban worker` process, rewritten at every loop; a worker whose last beat is
    older than a few of its intervals is considered dead."""

    __tablename__ = "worker_heartbeat"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)  # host:pid
    hostname: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int]
    started_at: Mapped[timestamp]
    last_seen_at: Mapped[timestamp]
    interval_seconds: Mapped[float] = mapped_column(Float())
    loops: Mapped[int] = mapped_column(default=0)
    fired_total: Mapped[int] = mapped_column(default=0)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
