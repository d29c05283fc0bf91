"""Load a directory (roles, units, users) from plain data, e.g. the demo county's YAML.

Idempotent: existing units and users are kept (and their passwords untouched).
"""

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import directory
from .models import User


def load_directory(
    session: Session, doc: dict[str, Any], password: str, now: datetime
) -> dict[str, int]:
    for role in doc.get("roles", []):
        row = directory.ensure_role(session, role["name"], role.get("description"))
        row.description = role.get("description") or row.description
        row.sees_all = bool(role.get("sees_all", False))
    for unit in doc.get("units", []):
        parent = directory.find_unit(session, unit["parent"]) if unit.get("parent") else None
        unit_row = directory.ensure_unit(
            session, unit["name"], unit["code"], unit.get("kind", "unit"), parent
        )
        unit_row.attributes = unit.get("attributes") or {}
    existing = set(session.scalars(select(User.username)))
    password_hash = directory.hash_password(password)  # one hash: demo users share a password
    added = 0
    for person in doc.get("users", []):
        if person["username"] in existing:
            continue
        unit = directory.find_unit(session, person["unit"]) if person.get("unit") else None
        user = User(
            username=person["username"],
            display_name=person.get("name") or person["username"],
            password_hash=password_hash,
            unit_id=unit.id if unit else None,
            created_at=now,
        )
        user.roles = [directory.ensure_role(session, name) for name in person.get("roles", [])]
        session.add(user)
        added += 1
    session.flush()
    return {
        "roles": len(doc.get("roles", [])),
        "units": len(doc.get("units", [])),
        "users_added": added,
    }
