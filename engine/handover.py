"""Who a step may be handed to (转办 / 委派): the people who may hold it.

A step may be held by

* the holders of its lane's role — in the step's unit when the step names one (its `unit`
  property), anywhere when it names none — and, for a step narrowed to a unit, holders of that
  role who are office-wide: they hold a role marked `sees_all` (the command office's staff and
  leaders, whose work is not tied to one unit);
* the holders of the roles its designer lists in `transferRoles` (comma-separated, like
  `urgeRoles`); `角色@unit` narrows one of them to the step's unit in the same way.

The system roles (系统管理员, 流程设计员) never qualify anyone: an administrator is offered only
if they also hold a role that qualifies. Deactivated users, the person handing the step over and
whoever holds it now are never offered. An administrator's reassign (改派) is deliberately not
bound by this rule: it is how a task nobody may hold (its unit not found, its people gone) is
repaired.
"""

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, false, or_, select
from sqlalchemy.orm import Session

from .approval_steps import listed
from .errors import InvalidData
from .models import HumanTask, Role, Unit, User, user_role
from .status import TaskRowKind

# The roles that run the system rather than the county's work (actor.ADMIN_ROLE and
# designer_commands.DESIGNER_ROLES): holding one never makes anyone eligible for a step.
SYSTEM_ROLES = frozenset({"系统管理员", "流程设计员"})
TRANSFER_ROLES = "transferRoles"
IN_UNIT = "@unit"


@dataclass
class Rule:
    """Who may hold one step: roles held anywhere, and roles held in the step's unit (or by
    office-wide people)."""

    anywhere: set[str] = field(default_factory=set)
    in_unit: set[str] = field(default_factory=set)
    unit_id: int | None = None  # the step's unit; None with `in_unit` roles: the unit is missing
    unit_name: str | None = None
    excluded: set[int] = field(default_factory=set)  # who hands it over, who holds it now

    def describe(self) -> str:
        """The rule in words, for a refusal: "常务副主任、城关镇的联络员"."""
        parts = sorted(self.anywhere)
        where = self.unit_name or "本环节单位"
        parts += [f"{where}的{role}" for role in sorted(self.in_unit)]
        return "、".join(parts)


def rule(
    session: Session,
    row: HumanTask,
    properties: dict[str, str],
    actor_id: int | None,
    fellows: list[str] | None = None,
) -> Rule:
    """The rule for `row`, a step (or a 加签 signature: the rule of the step it signs), with
    the step's BPMN `properties`; `fellows`: the ids of the other votes of its 会签."""
    step = row
    if row.kind == TaskRowKind.SIGN and row.parent_task_id:
        step = session.get(HumanTask, row.parent_task_id) or row
    narrowed = bool(properties.get("unit")) or step.unit_id is not None
    found = Rule(unit_id=step.unit_id)
    if step.unit_id is not None:
        unit = session.get(Unit, step.unit_id)
        found.unit_name = unit.name if unit else None
    if step.role:
        (found.in_unit if narrowed else found.anywhere).add(step.role)
    for entry in listed(properties.get(TRANSFER_ROLES)):
        role, in_unit = _entry(entry)
        (found.in_unit if in_unit and narrowed else found.anywhere).add(role)
    found.anywhere -= SYSTEM_ROLES
    found.in_unit -= SYSTEM_ROLES | found.anywhere
    found.excluded = {i for i in (actor_id, row.assignee_id) if i is not None}
    found.excluded |= _fellow_approvers(session, fellows or [])
    return found


def _fellow_approvers(session: Session, fellows: list[str]) -> set[int]:
    """In a 会签/或签 every approver holds one instance of the step, opened together (`fellows`
    are the other instances' task ids): none of them may take over another's vote (they would
    vote twice)."""
    if not fellows:
        return set()
    rows = session.execute(
        select(HumanTask.assignee_id, HumanTask.completed_by_id).where(
            HumanTask.id.in_(fellows), HumanTask.kind == TaskRowKind.TASK
        )
    ).all()
    return {i for row in rows for i in row if i is not None}


def _entry(entry: str) -> tuple[str, bool]:
    """`角色` or `角色@unit` → (role, narrowed to the step's unit)."""
    if entry.endswith(IN_UNIT):
        return entry[: -len(IN_UNIT)].strip(), True
    return entry, False


def entry_roles(value: str | None) -> list[str]:
    """The role names a `transferRoles` value lists (for the designer's check)."""
    return [_entry(entry)[0] for entry in listed(value)]


def _eligible(found: Rule) -> Any:
    """The SQL condition on `User`: active, not excluded, and qualified by the rule."""

    def holds(roles: set[str]) -> Any:
        return User.id.in_(
            select(user_role.c.user_id)
            .join(Role, Role.id == user_role.c.role_id)
            .where(Role.name.in_(sorted(roles)))
        )

    office_wide = User.id.in_(
        select(user_role.c.user_id)
        .join(Role, Role.id == user_role.c.role_id)
        .where(Role.sees_all.is_(True), Role.name.not_in(sorted(SYSTEM_ROLES)))
    )
    qualified = []
    if found.anywhere:
        qualified.append(holds(found.anywhere))
    if found.in_unit:
        here = User.unit_id == found.unit_id if found.unit_id is not None else false()
        qualified.append(and_(holds(found.in_unit), or_(here, office_wide)))
    if not qualified:
        return false()
    conditions = [User.active.is_(True), or_(*qualified)]
    if found.excluded:
        conditions.append(User.id.not_in(sorted(found.excluded)))
    return and_(*conditions)


def candidates(session: Session, found: Rule) -> list[dict[str, Any]]:
    """The people the 转办 / 委派 pickers offer: `{username, name, unit}`, in directory order."""
    rows = session.execute(
        select(User.username, User.display_name, Unit.name)
        .outerjoin(Unit, Unit.id == User.unit_id)
        .where(_eligible(found))
        .order_by(User.id)
    ).all()
    return [{"username": u, "name": name, "unit": unit} for u, name, unit in rows]


def check_target(session: Session, row: HumanTask, found: Rule, to: User) -> None:
    """Refuse (422) handing `row` to `to` unless the rule allows them to hold it."""
    allowed = session.scalar(select(User.id).where(User.id == to.id, _eligible(found)))
    if allowed is not None:
        return
    who = to.display_name or to.username
    if to.id == row.assignee_id:
        reason = "已是本环节的办理人"
    elif found.anywhere or found.in_unit:
        reason = f"本环节只能转交给{found.describe()}"
    else:
        reason = "本环节没有可转交的人员，请联系管理员改派"
    message = f"{who}不能办理“{row.title}”：{reason}"
    raise InvalidData(message, {"to": message})
