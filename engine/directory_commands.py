"""The directory (units, roles, users) and the working-day calendar."""

from datetime import date
from typing import Any

from . import audit, directory, seeding
from .base import EngineBase
from .errors import Forbidden, NotFound
from .models import CalendarOverride


class DirectoryCommands(EngineBase):
    """Units, roles, users and the working-day calendar."""

    def add_user(
        self,
        username: str,
        password: str,
        *,
        name: str | None = None,
        roles: list[str] | None = None,
        unit: str | None = None,
    ) -> dict[str, Any]:
        with self.command() as (session, ctx):
            user = directory.add_user(session, username, password, name, roles or [], unit, ctx.now)
            audit.record(session, "user_added", ctx.now, detail={"username": username})
            return user.summary()

    def add_unit(
        self, name: str, *, code: str | None = None, kind: str = "unit", parent: str | None = None
    ) -> dict[str, Any]:
        with self.command() as (session, _ctx):
            parent_row = directory.find_unit(session, parent) if parent else None
            unit = directory.ensure_unit(session, name, code, kind, parent_row)
            return {"id": unit.id, "code": unit.code, "name": unit.name, "kind": unit.kind}

    def load_directory(self, doc: dict[str, Any], password: str) -> dict[str, int]:
        """Create roles, units and users from plain data (see engine/seeding.py)."""
        with self.command() as (session, ctx):
            return seeding.load_directory(session, doc, password, ctx.now)

    def units(self, user: str | None = None, *, kind: str | None = None) -> list[dict[str, Any]]:
        with self.read_session() as session:
            self.actor(session, user)
            return directory.unit_list(session, kind)

    def users(
        self,
        user: str | None = None,
        *,
        unit: str | None = None,
        role: str | None = None,
        q: str | None = None,
        include_inactive: bool = False,
        page: int = 1,
        per_page: int = 50,
    ) -> dict[str, Any]:
        """The directory for pickers; deactivated accounts only for administrators."""
        with self.read_session() as session:
            actor = self.actor(session, user)
            if include_inactive and actor is not None and not actor.is_admin:
                raise Forbidden("只有系统管理员可以查看已停用的账号")
            unit_id = None
            if unit:
                found = directory.find_unit(session, unit)
                if found is None:
                    raise NotFound(f"单位“{unit}”不存在")
                unit_id = found.id
            return directory.user_list(
                session,
                unit_id=unit_id,
                role=role,
                query_text=q,
                include_inactive=include_inactive,
                page=page,
                per_page=per_page,
            )

    def roles(self, user: str | None = None) -> list[dict[str, Any]]:
        with self.read_session() as session:
            self.actor(session, user)
            return directory.role_list(session)

    def authenticate(self, username: str, password: str) -> dict[str, Any] | None:
        with self.read_session() as session:
            user = directory.user_by_name(session, username)
            if user is None or not user.active or not directory.verify_password(user, password):
                return None
            return user.summary()

    def set_calendar_day(
        self, day: date, is_workday: bool, note: str | None = None, *, user: str | None = None
    ) -> None:
        """Correct the working-day calendar (e.g. a new 调休 day); wins over the library."""
        with self.command(user) as (session, ctx):
            self._require_admin(session, user)
            row = session.get(CalendarOverride, day) or CalendarOverride(day=day, is_workday=True)
            row.is_workday, row.note = is_workday, note
            session.add(row)
            audit.record(
                session,
                "calendar_changed",
                ctx.now,
                actor_id=ctx.actor_id,
                reason=note,
                detail={"day": day.isoformat(), "is_workday": is_workday},
            )
        self.reload_calendar()

    def calendar_warnings(self) -> list[str]:
        """Years ahead whose official holiday schedule the calendar does not know yet."""
        this_year = self.clock.now().year
        missing = self.calendar().years_without_official_data([this_year, this_year + 1])
        return [f"{year} 年的法定节假日与调休安排尚未收录，请管理员补录调整日" for year in missing]
