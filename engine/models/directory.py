"""Who works here: units, roles, users, and the working-day calendar corrections."""

from datetime import date
from typing import Any

from sqlalchemy import Column, ForeignKey, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, intpk, json_doc, name_str, timestamp

user_role = Table(
    "user_role",
    Base.metadata,
    Column("user_id", ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True),
    Column("role_id", ForeignKey("role.id", ondelete="CASCADE"), primary_key=True),
)


class Unit(Base):
    """An organisational unit: the office, a work team, a member unit, a town ..."""

    __tablename__ = "unit"

    id: Mapped[intpk]
    code: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[name_str] = mapped_column(unique=True)
    kind: Mapped[str] = mapped_column(String(40), default="unit")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"))
    attributes: Mapped[json_doc] = mapped_column(default=dict)


class Role(Base):
    """A role a lane can name, e.g. 指挥办工作人员 or 主任."""

    __tablename__ = "role"

    id: Mapped[intpk]
    name: Mapped[name_str] = mapped_column(unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    # Holders see every instance and item; others only their own unit's and their own work.
    sees_all: Mapped[bool] = mapped_column(default=False)


class User(Base):
    __tablename__ = "user_account"

    id: Mapped[intpk]
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[name_str]
    password_hash: Mapped[str] = mapped_column(String(200))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[timestamp]
    # Stamped into every page session at sign-in; raising it ends them all (sign-out, a new
    # password, deactivation, an administrator's 强制退出).
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")

    unit: Mapped[Unit | None] = relationship(lazy="joined")
    roles: Mapped[list[Role]] = relationship(secondary=user_role, lazy="selectin")

    @property
    def role_names(self) -> list[str]:
        return [role.name for role in self.roles]

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "name": self.display_name,
            "unit": self.unit.name if self.unit else None,
            "roles": self.role_names,
        }


class CalendarOverride(Base):
    """An admin correction to the working-day calendar; wins over the library's schedule."""

    __tablename__ = "calendar_override"

    day: Mapped[date] = mapped_column(primary_key=True)
    is_workday: Mapped[bool]
    note: Mapped[str | None] = mapped_column(Text)
