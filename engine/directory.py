"""Users, units and roles: creating them, signing in, and who holds a role in a unit."""

from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from .errors import InvalidData, NotFound
from .models import Role, Unit, User, user_role

_HASHER = PasswordHasher()


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(user: User, password: str) -> bool:
    try:
        return _HASHER.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def ensure_role(session: Session, name: str, description: str | None = None) -> Role:
    role = session.scalars(select(Role).where(Role.name == name)).first()
    if role is None:
        role = Role(name=name, description=description)
        session.add(role)
        session.flush()
    return role


def ensure_unit(
    session: Session,
    name: str,
    code: str | None = None,
    kind: str = "unit",
    parent: Unit | None = None,
) -> Unit:
    unit = session.scalars(select(Unit).where(Unit.name == name)).first()
    if unit is None:
        unit = Unit(
            name=name, code=code or name, kind=kind, parent_id=parent.id if parent else None
        )
        session.add(unit)
        session.flush()
    return unit


def find_unit(session: Session, ref: object) -> Unit | None:
    """A unit named by instance data: its id, its code or its name."""
    if ref is None or ref == "":
        return None
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        unit = session.get(Unit, int(ref))
        if unit is not None:
            return unit
    text = str(ref)
    return session.scalars(select(Unit).where(or_(Unit.code == text, Unit.name == text))).first()


def add_user(
    session: Session,
    username: str,
    password: str,
    display_name: str | None,
    roles: list[str],
    unit: str | None,
    now: datetime,
) -> User:
    if not username.strip():
        raise InvalidData("用户名不能为空", {"username": "请填写用户名"})
    if session.scalars(select(User).where(User.username == username)).first():
        raise InvalidData(f"用户名 {username} 已存在", {"username": "用户名已存在"})
    if len(password) < 4:
        raise InvalidData("密码太短", {"password": "密码至少 4 位"})
    unit_row = None
    if unit:
        unit_row = find_unit(session, unit)
        if unit_row is None:
            raise NotFound(f"单位“{unit}”不存在")
    user = User(
        username=username,
        display_name=display_name or username,
        password_hash=hash_password(password),
        unit_id=unit_row.id if unit_row else None,
        created_at=now,
    )
    user.roles = [ensure_role(session, name) for name in roles]
    session.add(user)
    session.flush()
    return user


def holders(session: Session, role: str, unit_id: int | None) -> list[int]:
    """Active users holding `role`, narrowed to `unit_id` when given."""
    query = (
        select(User.id)
        .join(user_role, user_role.c.user_id == User.id)
        .join(Role, Role.id == user_role.c.role_id)
        .where(Role.name == role, User.active.is_(True))
    )
    if unit_id is not None:
        query = query.where(User.unit_id == unit_id)
    return list(session.scalars(query))


def actor_row(session: Session, username: str) -> tuple[int, int | None, list[str], bool] | None:
    """(id, unit id, role names, sees all) of an active user, in one query."""
    rows = session.execute(
        select(User.id, User.unit_id, Role.name, Role.sees_all)
        .outerjoin(user_role, user_role.c.user_id == User.id)
        .outerjoin(Role, Role.id == user_role.c.role_id)
        .where(User.username == username, User.active.is_(True))
    ).all()
    if not rows:
        return None
    roles = [row.name for row in rows if row.name is not None]
    return rows[0].id, rows[0].unit_id, roles, any(row.sees_all for row in rows)


def user_by_name(session: Session, username: str) -> User | None:
    return session.scalars(select(User).where(User.username == username)).first()


def unit_list(session: Session, kind: str | None = None) -> list[dict[str, object]]:
    query = select(Unit).order_by(Unit.id)
    if kind:
        query = query.where(Unit.kind == kind)
    return [
        {"id": u.id, "code": u.code, "name": u.name, "kind": u.kind, "parent_id": u.parent_id}
        for u in session.scalars(query)
    ]


def user_list(
    session: Session,
    *,
    unit_id: int | None = None,
    role: str | None = None,
    query_text: str | None = None,
    include_inactive: bool = False,
    page: int = 1,
    per_page: int = 50,
) -> dict[str, object]:
    """Users for pickers and the directory: never a password hash."""
    query = select(User)
    if not include_inactive:
        query = query.where(User.active.is_(True))
    if unit_id is not None:
        query = query.where(User.unit_id == unit_id)
    if role:
        query = query.where(
            User.id.in_(
                select(user_role.c.user_id)
                .join(Role, Role.id == user_role.c.role_id)
                .where(Role.name == role)
            )
        )
    if query_text:
        pattern = f"%{query_text}%"
        query = query.where(or_(User.username.like(pattern), User.display_name.like(pattern)))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(User.id).offset((page - 1) * per_page).limit(per_page))
    return {
        "items": [
            {**user.summary(), "unit_id": user.unit_id, "active": user.active} for user in rows
        ],
        "total": total,
        "page": page,
        "per_page": per_page,
    }


def role_list(session: Session) -> list[dict[str, object]]:
    return [
        {"id": r.id, "name": r.name, "description": r.description, "sees_all": r.sees_all}
        for r in session.scalars(select(Role).order_by(Role.id))
    ]
