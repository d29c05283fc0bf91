"""`Engine`'s approval commands: thin, one transaction each, over engine/operations.py.

Each checks its input before touching the database (a missing reason is refused at once),
takes the instance's lock, checks permission, and leaves the workflow state, the human-task
rows, the audit trail, the opinions and the notifications consistent — or changes nothing.
"""

from typing import Any
from uuid import UUID

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from . import acting, approval_steps, copies, handover, operations, returns, rewind, signing, urging
from .actor import Actor
from .base import EngineBase
from .bpmn import load_state
from .errors import Forbidden, InvalidData
from .models import HumanTask, ProcessInstance
from .runtime import Context, Run, load_run
from .status import OPEN_STATES, InstanceStatus, TaskRowKind


class ApprovalCommands(EngineBase):
    """Mixed into `Engine`: 转办, 委派, 加签, 退回, 撤回, 催办, 抄送 and the admin's fixes."""

    def transfer(
        self, task_id: str, to: str, *, user: str, opinion: str | None = None
    ) -> dict[str, Any]:
        with self.command(user) as (session, ctx):
            row, actor = self._locked_task(session, task_id, user)
            target = acting.person(session, to, "to")
            may_hold = self._may_hold(session, row, actor)
            return operations.transfer(session, ctx.now, row, actor, target, opinion, may_hold)

    def delegate(
        self, task_id: str, to: str, *, user: str, opinion: str | None = None
    ) -> dict[str, Any]:
        with self.command(user) as (session, ctx):
            row, actor = self._locked_task(session, task_id, user)
            target = acting.person(session, to, "to")
            may_hold = self._may_hold(session, row, actor)
            return operations.delegate(session, ctx.now, row, actor, target, opinion, may_hold)

    def transfer_candidates(self, task_id: str, user: str) -> list[dict[str, Any]]:
        """The people the 转办 / 委派 pickers offer for this task: those who may hold its step
        (handover.py), without the caller and whoever holds it now. `{username, name, unit}`."""
        with self.read_session() as session:
            row = acting.task_row(session, task_id)
            actor = self._me(session, user)
            acting.require_state(row)
            acting.check_may_act(session, row, actor)
            return handover.candidates(session, self._may_hold(session, row, actor))

    def add_signers(
        self,
        task_id: str,
        users: list[str],
        *,
        user: str,
        before: bool = True,
        data: dict[str, Any] | None = None,
        opinion: str | None = None,
    ) -> dict[str, Any]:
        with self.command(user) as (session, ctx):
            run, row, actor = self._task_run(session, ctx, task_id, user)
            acting.require_state(row)
            acting.check_may_act(session, row, actor)
            form = require_dict(data, "data")
            return signing.add_signers(run, row, actor, users, before, form, opinion)

    def return_task(
        self,
        task_id: str,
        *,
        user: str,
        reason: str | None,
        to: str | None = None,
    ) -> dict[str, Any]:
        """退回: `to` is an element id, `initiator`, or None for the previous step."""
        reason = acting.require_text(reason, "reason", "请填写退回原因")
        with self.command(user) as (session, ctx):
            run, row, actor = self._task_run(session, ctx, task_id, user)
            acting.require_state(row)
            acting.check_may_act(session, row, actor)
            return returns.return_task(run, row, actor.id, to, reason)

    def return_targets(self, task_id: str, user: str) -> list[dict[str, Any]]:
        """The steps the 退回 dialog offers for this task."""
        with self.read_session() as session:
            row = acting.task_row(session, task_id)
            actor = self._me(session, user)
            acting.require_state(row)
            acting.check_may_act(session, row, actor)
            instance = session.get(ProcessInstance, row.instance_id)
            assert instance is not None
            version = self.specs.get(session, instance.process_version_id)
            workflow = load_state(instance.state, version.spec, version.subprocess_specs)
            ctx = Context(self.clock, self.calendar(session), self.script_engine, actor.id)
            return returns.targets(Run(session, instance, version, workflow, ctx), row)

    def withdraw(self, task_id: str, *, user: str, opinion: str | None = None) -> dict[str, Any]:
        """撤回: `task_id` is the caller's own completed task."""
        with self.command(user) as (session, ctx):
            run, row, actor = self._task_run(session, ctx, task_id, user)
            return returns.withdraw(run, row, actor, opinion)

    def urge(self, task_id: str, *, user: str, message: str | None = None) -> dict[str, Any]:
        with self.command(user) as (session, ctx):
            row = acting.task_row(session, task_id)
            instance = acting.lock(session, row)
            actor = self._me(session, user)
            acting.require_state(row, *OPEN_STATES)
            acting.require_running(instance)
            if not self._may_urge(session, row, instance, actor):
                raise Forbidden("只有发起人、经办过本流程的人、管理员或流程指定的角色可以催办")
            urging.check_interval(session, ctx.now, row, actor.id)
            notified = urging.urge_task(session, ctx.now, row, message=message, actor_id=actor.id)
            session.flush()
            session.refresh(row)
            return {"id": row.id, "urge_count": row.urge_count, "notified": notified}

    def cc(
        self, task_id: str, users: list[str], *, user: str, opinion: str | None = None
    ) -> dict[str, Any]:
        with self.command(user) as (session, ctx):
            row = acting.task_row(session, task_id)
            acting.lock(session, row)
            actor = self._me(session, user)
            people = acting.people(session, users, "users")
            return operations.copy_task(session, ctx.now, row, actor, people, opinion)

    def mark_cc_read(self, cc_id: int, user: str) -> dict[str, Any]:
        with self.command(user) as (session, ctx):
            actor = self._me(session, user)
            return copies.mark_read(session, actor.id, cc_id, ctx.now)

    # ------------------------------------------------------------------ admin
    def reassign(
        self, task_id: str, to: str, *, user: str | None, reason: str | None
    ) -> dict[str, Any]:
        reason = acting.require_text(reason, "reason", "请填写改派原因")
        with self.command(user) as (session, ctx):
            self._require_admin(session, user)
            row = acting.task_row(session, task_id)
            acting.lock(session, row)
            target = acting.person(session, to, "to")
            return operations.reassign(session, ctx.now, row, ctx.actor_id, target, reason)

    def reset(
        self, instance_id: int, to: str, *, user: str | None, reason: str | None
    ) -> dict[str, Any]:
        """Send an instance back to an earlier step (`to`: its element id)."""
        reason = acting.require_text(reason, "reason", "请填写重置原因")
        with self.command(user) as (session, ctx):
            self._require_admin(session, user)
            run = load_run(session, instance_id, self.specs, ctx)
            if run.instance.status not in (InstanceStatus.RUNNING, InstanceStatus.ERROR):
                acting.require_running(run.instance)
            return returns.reset(run, to, ctx.actor_id, reason)

    # ------------------------------------------------------------------ helpers
    def _locked_task(self, session: Session, task_id: str, user: str) -> tuple[HumanTask, "Actor"]:
        row = acting.task_row(session, task_id)
        instance = acting.lock(session, row)
        acting.require_running(instance)
        return row, self._me(session, user)

    def _task_run(
        self, session: Session, ctx: Context, task_id: str, user: str
    ) -> tuple[Run, HumanTask, "Actor"]:
        row = acting.task_row(session, task_id)
        run = load_run(session, row.instance_id, self.specs, ctx)
        session.refresh(row)  # re-read under the instance lock
        acting.require_running(run.instance)
        return run, row, self._me(session, user)

    def _may_hold(self, session: Session, row: HumanTask, actor: "Actor") -> handover.Rule:
        """Who may be handed `row` (handover.Rule), from its step's BPMN properties."""
        instance = session.get(ProcessInstance, row.instance_id)
        assert instance is not None
        version = self.specs.get(session, instance.process_version_id)
        spec = approval_steps.task_spec_named(version.spec, version.subprocess_specs, row.name)
        fellows: list[str] = []
        if spec is not None and rewind.votes_in(spec):  # a 会签: which votes are this round's
            step_id = row.parent_task_id if row.kind == TaskRowKind.SIGN else row.id
            workflow = load_state(instance.state, version.spec, version.subprocess_specs)
            task = workflow.get_task_from_id(UUID(step_id or ""))
            fellows = [str(t.id) for t in rewind.fellow_votes(task)]
        return handover.rule(session, row, approval_steps.properties(spec), actor.id, fellows)

    def _may_urge(
        self, session: Session, row: HumanTask, instance: ProcessInstance, actor: "Actor"
    ) -> bool:
        if actor.is_admin or actor.id == instance.started_by_id:
            return True
        took_part = session.scalar(
            select(
                exists().where(
                    HumanTask.instance_id == row.instance_id,
                    HumanTask.completed_by_id == actor.id,
                )
            )
        )
        if took_part:
            return True
        version = self.specs.get(session, instance.process_version_id)
        spec = approval_steps.task_spec_named(version.spec, version.subprocess_specs, row.name)
        roles = approval_steps.listed(approval_steps.properties(spec).get("urgeRoles"))
        return bool(set(roles) & actor.roles)


def require_dict(value: Any, field: str) -> dict[str, Any]:
    """Form data in a request must be an object."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidData("表单数据必须是对象", {field: "表单数据必须是对象"})
    return value
