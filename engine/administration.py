"""User, unit and role administration: create, edit, deactivate, and import users from a
spreadsheet. Each function works inside the caller's transaction and audits what it changes."""

import re
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from . import accounts, audit, console, directory, notifications
from .errors import Conflict, InvalidData, NotFound
from .models import HumanTask, HumanTaskCandidate, Role, Unit, User, user_role
from .status import OPEN_STATES

MIN_PASSWORD = 4
USERNAME = re.compile(r"[A-Za-z0-9_.\-]{2,80}")


# ---------------------------------------------------------------- reading
def overview(session: Session) -> dict[str, Any]:
    """Every user (active or not), unit and role, for the administration page."""
    members: dict[int, int] = dict(
        session.execute(
            select(user_role.c.role_id, func.count()).group_by(user_role.c.role_id)
        ).all()
    )
    units = list(session.scalars(select(Unit).order_by(Unit.kind, Unit.code)))
    return {
        "users": [
            user_dict(user) for user in session.scalars(select(User).order_by(User.username))
        ],
        "units": [unit_dict(session, unit) for unit in units],  # parents: in the identity map
        "roles": [
            {**role_dict(role), "members": int(members.get(role.id, 0))}
            for role in session.scalars(select(Role).order_by(Role.name))
        ],
    }


def user_dict(user: User) -> dict[str, Any]:
    return {**user.summary(), "active": user.active}


# ------------------------------------------------------------------ users
def field_text(value: Any, field: str, message: str, *, required: bool = True) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidData(message, {field: message})
        return None
    if not isinstance(value, str | int):
        raise InvalidData(message, {field: message})
    return str(value).strip()


def existing_user(session: Session, username: Any) -> User:
    user = directory.user_by_name(session, str(username)) if username else None
    if user is None:
        raise NotFound(f"用户“{username}”不存在")
    return user


def roles_named(session: Session, names: Any) -> list[Role]:
    """Existing roles only: a typo must not create a role nobody's lane names."""
    if names is None:
        return []
    if isinstance(names, str):
        names = split_list(names)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InvalidData("角色须为角色名列表", {"roles": "角色须为角色名列表"})
    found = {r.name: r for r in session.scalars(select(Role).where(Role.name.in_(names)))}
    missing = [name for name in names if name not in found]
    if missing:
        message = f"角色不存在：{'、'.join(missing)}"
        raise InvalidData(message, {"roles": message})
    return [found[name] for name in dict.fromkeys(names)]


def find_unit(session: Session, ref: Any) -> Unit | None:
    """A unit by id, code or name; a number too large to be an id is looked up as a code."""
    if isinstance(ref, bool) or not isinstance(ref, str | int):
        return None
    if str(ref).strip().isdigit() and console.as_id(str(ref)) is None:
        return session.scalars(
            select(Unit).where((Unit.code == str(ref)) | (Unit.name == str(ref)))
        ).first()
    return directory.find_unit(session, ref)


def unit_named(session: Session, ref: Any) -> Unit | None:
    if ref is None or ref == "":
        return None
    unit = find_unit(session, ref)
    if unit is None:
        message = f"单位“{ref}”不存在"
        raise InvalidData(message, {"unit": message})
    return unit


def create_user(
    session: Session, fields: dict[str, Any], now: datetime, actor_id: int | None
) -> User:
    username = field_text(fields.get("username"), "username", "请填写用户名")
    assert username is not None
    if not USERNAME.fullmatch(username):
        message = "用户名只能包含字母、数字、下划线、点和连字符（2–80 位）"
        raise InvalidData(message, {"username": message})
    if directory.user_by_name(session, username) is not None:
        raise InvalidData(f"用户名 {username} 已存在", {"username": "用户名已存在"})
    password = _password(fields.get("password"))
    roles = roles_named(session, fields.get("roles"))
    unit = unit_named(session, fields.get("unit"))
    user = User(
        username=username,
        display_name=field_text(fields.get("name"), "name", "请填写姓名", required=False)
        or username,
        password_hash=directory.hash_password(password),
        unit_id=unit.id if unit else None,
        created_at=now,
    )
    user.roles = roles
    session.add(user)
    session.flush()
    audit.record(
        session,
        "user_added",
        now,
        actor_id=actor_id,
        detail={
            "username": username,
            "unit": unit.name if unit else None,
            "roles": user.role_names,
        },
    )
    return user


def _password(value: Any) -> str:
    if not isinstance(value, str) or len(value) < MIN_PASSWORD:
        message = f"密码至少 {MIN_PASSWORD} 位"
        raise InvalidData(message, {"password": message})
    return value


def update_user(
    session: Session, user: User, fields: dict[str, Any], now: datetime, actor_id: int | None
) -> User:
    """Change name, unit, roles or password; only the fields given."""
    changes: dict[str, Any] = {}
    if "name" in fields:
        name = field_text(fields["name"], "name", "请填写姓名")
        changes["name"] = {"from": user.display_name, "to": name}
        user.display_name = name or user.username
    if "unit" in fields:
        unit = unit_named(session, fields["unit"])
        changes["unit"] = {"from": user.unit.name if user.unit else None, "to": unit and unit.name}
        user.unit_id = unit.id if unit else None
    if "roles" in fields:
        roles = roles_named(session, fields["roles"])
        changes["roles"] = {"from": user.role_names, "to": [r.name for r in roles]}
        user.roles = roles
    if "password" in fields and fields["password"] not in (None, ""):
        user.password_hash = directory.hash_password(_password(fields["password"]))
        changes["password"] = {"from": "***", "to": "***"}
        # whoever held the old password is signed out: pages and API tokens alike
        accounts.end_sessions(session, user, now, tokens=True)
    _record_changes(session, "user_changed", changes, now, actor_id, {"username": user.username})
    session.flush()
    session.refresh(user)
    return user


def deactivate_user(
    session: Session, user: User, reason: str, now: datetime, actor_id: int | None
) -> list[dict[str, Any]]:
    """Deactivate a user: they can no longer sign in, and their open tasks go back to the
    pool of the task's role in the task's unit (or the user's unit). Returns those tasks."""
    if not user.active:
        raise Conflict(f"用户“{user.username}”已停用")
    if actor_id is not None and user.id == actor_id:
        raise Conflict("不能停用自己的账号")
    user.active = False
    tokens = accounts.end_sessions(session, user, now, tokens=True)  # for good: not on reactivation
    still_open = HumanTask.state.in_(OPEN_STATES)
    mine = select(HumanTaskCandidate.task_id).where(HumanTaskCandidate.user_id == user.id)
    affected = list(
        session.scalars(
            select(HumanTask)
            .where(still_open, or_(HumanTask.assignee_id == user.id, HumanTask.id.in_(mine)))
            .order_by(HumanTask.created_at, HumanTask.id)
            .with_for_update()
        )
    )
    session.execute(
        delete(HumanTaskCandidate).where(
            HumanTaskCandidate.user_id == user.id,
            HumanTaskCandidate.task_id.in_([row.id for row in affected]),
        )
    )
    others = _candidate_counts(session, [row.id for row in affected])
    # Their own tasks go back to the pool; a pool they were the last one in is refilled.
    returned = [
        _back_to_pool(session, row, user, reason, now, actor_id)
        for row in affected
        if row.assignee_id == user.id or (row.assignee_id is None and not others.get(row.id))
    ]
    audit.record(
        session,
        "user_deactivated",
        now,
        actor_id=actor_id,
        reason=reason,
        detail={
            "username": user.username,
            "tasks_returned": [t["id"] for t in returned],
            "tokens_revoked": tokens,
        },
    )
    return returned


def sign_out_everywhere(
    session: Session, user: User, reason: str, now: datetime, actor_id: int | None
) -> dict[str, Any]:
    """强制退出: end every page session of the user and revoke their live API tokens (e.g. a
    lost phone, a shared password); they can sign in again with their password."""
    tokens = accounts.end_sessions(session, user, now, tokens=True)
    audit.record(
        session,
        "signed_out_everywhere",
        now,
        actor_id=actor_id,
        reason=reason,
        detail={"username": user.username, "tokens_revoked": tokens},
    )
    return {"username": user.username, "tokens_revoked": tokens}


def _candidate_counts(session: Session, task_ids: list[str]) -> dict[str, int]:
    if not task_ids:
        return {}
    rows = session.execute(
        select(HumanTaskCandidate.task_id, func.count())
        .where(HumanTaskCandidate.task_id.in_(task_ids))
        .group_by(HumanTaskCandidate.task_id)
    )
    return {task_id: int(count) for task_id, count in rows}


def _back_to_pool(
    session: Session, row: HumanTask, user: User, reason: str, now: datetime, actor_id: int | None
) -> dict[str, Any]:
    row.assignee_id = None
    if row.owner_id == user.id:
        row.owner_id, row.delegation = None, None
    existing = set(
        session.scalars(
            select(HumanTaskCandidate.user_id).where(HumanTaskCandidate.task_id == row.id)
        )
    )
    pool = (
        set(directory.holders(session, row.role, row.unit_id or user.unit_id))
        if row.role
        else set()
    )
    pool.discard(user.id)
    for user_id in sorted(pool - existing):
        session.add(HumanTaskCandidate(task_id=row.id, user_id=user_id))
    candidates = existing | pool
    notifications.notify(
        session,
        candidates,
        "task",
        f"任务退回待办池：{row.title}",
        now,
        body=f"原办理人 {user.display_name} 已停用",
        instance_id=row.instance_id,
        task_id=row.id,
    )
    audit.record_task(
        session,
        "task_returned_to_pool",
        now,
        row,
        actor_id=actor_id,
        reason=reason if candidates else f"{reason}（该任务暂无人可办，请改派）",
        detail={"from": user.username, "candidates": len(candidates)},
    )
    return {
        "id": row.id,
        "title": row.title,
        "instance_id": row.instance_id,
        "candidates": len(candidates),
    }


def activate_user(
    session: Session, user: User, reason: str, now: datetime, actor_id: int | None
) -> None:
    if user.active:
        raise Conflict(f"用户“{user.username}”未停用")
    user.active = True
    audit.record(
        session,
        "user_activated",
        now,
        actor_id=actor_id,
        reason=reason,
        detail={"username": user.username},
    )


# ------------------------------------------------------------------ units
def create_unit(
    session: Session, fields: dict[str, Any], now: datetime, actor_id: int | None
) -> Unit:
    name = field_text(fields.get("name"), "name", "请填写单位名称")
    code = field_text(fields.get("code"), "code", "请填写单位代码", required=False) or name
    if session.scalar(select(Unit.id).where(Unit.name == name)) is not None:
        raise InvalidData(f"单位“{name}”已存在", {"name": "单位名称已存在"})
    if session.scalar(select(Unit.id).where(Unit.code == code)) is not None:
        raise InvalidData(f"单位代码“{code}”已存在", {"code": "单位代码已存在"})
    parent = _parent(session, fields.get("parent"))
    kind = field_text(fields.get("kind"), "kind", "请填写单位类别", required=False) or "unit"
    unit = Unit(name=name, code=code, kind=kind, parent_id=parent.id if parent else None)
    session.add(unit)
    session.flush()
    audit.record(session, "unit_added", now, actor_id=actor_id, detail=unit_dict(session, unit))
    return unit


def update_unit(
    session: Session, unit: Unit, fields: dict[str, Any], now: datetime, actor_id: int | None
) -> Unit:
    before = unit_dict(session, unit)
    for field, label in (("name", "单位名称"), ("code", "单位代码")):
        if field in fields:
            value = field_text(fields[field], field, f"请填写{label}")
            clash = session.scalar(
                select(Unit.id).where(getattr(Unit, field) == value, Unit.id != unit.id)
            )
            if clash is not None:
                raise InvalidData(f"{label}“{value}”已存在", {field: f"{label}已存在"})
            setattr(unit, field, value)
    if "kind" in fields:
        unit.kind = field_text(fields["kind"], "kind", "请填写单位类别") or unit.kind
    if "parent" in fields:
        parent = _parent(session, fields["parent"])
        if parent is not None and _is_below(session, parent, unit):
            raise InvalidData(
                "上级单位不能是本单位或其下级", {"parent": "上级单位不能是本单位或其下级"}
            )
        unit.parent_id = parent.id if parent else None
    session.flush()
    changes = _differences(before, unit_dict(session, unit))
    _record_changes(session, "unit_changed", changes, now, actor_id, {"unit": unit.name})
    return unit


def _parent(session: Session, ref: Any) -> Unit | None:
    if ref is None or ref == "":
        return None
    parent = find_unit(session, ref)
    if parent is None:
        raise InvalidData(f"上级单位“{ref}”不存在", {"parent": "上级单位不存在"})
    return parent


def _is_below(session: Session, candidate: Unit, unit: Unit) -> bool:
    seen: set[int] = set()
    node: Unit | None = candidate
    while node is not None and node.id not in seen:
        if node.id == unit.id:
            return True
        seen.add(node.id)
        node = session.get(Unit, node.parent_id) if node.parent_id else None
    return False


def unit_dict(session: Session, unit: Unit) -> dict[str, Any]:
    parent = session.get(Unit, unit.parent_id) if unit.parent_id else None
    return {
        "id": unit.id,
        "code": unit.code,
        "name": unit.name,
        "kind": unit.kind,
        "parent": parent.name if parent else None,
    }


# ------------------------------------------------------------------ roles
def create_role(
    session: Session, fields: dict[str, Any], now: datetime, actor_id: int | None
) -> Role:
    name = field_text(fields.get("name"), "name", "请填写角色名称")
    if session.scalar(select(Role.id).where(Role.name == name)) is not None:
        raise InvalidData(f"角色“{name}”已存在", {"name": "角色已存在"})
    role = Role(
        name=name,
        description=field_text(fields.get("description"), "description", "", required=False),
        sees_all=_flag(fields.get("sees_all", False)),
    )
    session.add(role)
    session.flush()
    audit.record(session, "role_added", now, actor_id=actor_id, detail=role_dict(role))
    return role


def update_role(
    session: Session, role: Role, fields: dict[str, Any], now: datetime, actor_id: int | None
) -> Role:
    """Description and `sees_all`; a role's name is what lanes refer to, so it stays."""
    before = role_dict(role)
    if "name" in fields and fields["name"] != role.name:
        message = "角色名称被流程泳道引用，不能修改；请新建角色"
        raise InvalidData(message, {"name": message})
    if "description" in fields:
        role.description = field_text(fields["description"], "description", "", required=False)
    if "sees_all" in fields:
        role.sees_all = _flag(fields["sees_all"])
    changes = _differences(before, role_dict(role))
    _record_changes(session, "role_changed", changes, now, actor_id, {"role": role.name})
    return role


def existing_role(session: Session, name: Any) -> Role:
    role = session.scalars(select(Role).where(Role.name == str(name))).first()
    if role is None:
        raise NotFound(f"角色“{name}”不存在")
    return role


def role_dict(role: Role) -> dict[str, Any]:
    return {
        "id": role.id,
        "name": role.name,
        "description": role.description,
        "sees_all": role.sees_all,
    }


def _differences(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {k: {"from": before[k], "to": v} for k, v in after.items() if before[k] != v}


def _record_changes(
    session: Session,
    kind: str,
    changes: dict[str, Any],
    now: datetime,
    actor_id: int | None,
    detail: dict[str, Any],
) -> None:
    """Audit an edit (`changes`: field → {from, to}); an edit that changes nothing is refused."""
    if not changes:
        raise InvalidData("没有要修改的内容", {"_form": "没有要修改的内容"})
    audit.record(session, kind, now, actor_id=actor_id, data_change=changes, detail=detail)


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in (None, "", 0, "0", "false", "off", "no", "否"):
        return False
    if value in (1, "1", "true", "on", "yes", "是"):
        return True
    raise InvalidData("请填写是或否", {"sees_all": "请填写是或否"})


def split_list(value: str) -> list[str]:
    return [part.strip() for part in re.split(r"[,，、;；\s]+", value) if part.strip()]
