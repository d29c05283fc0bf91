"""Deploying processes, starting and reading instances, and an administrator's instance fixes."""

from pathlib import Path
from typing import Any

from SpiffWorkflow import TaskState
from SpiffWorkflow.exceptions import WorkflowException
from sqlalchemy import select

from . import acting, audit, definitions, forms, instance_views, queries, service_tasks
from .base import EngineBase
from .errors import Conflict, Forbidden, InvalidData, NotFound
from .models import MessageSubscription, ProcessInstance, ProcessVersion
from .runtime import load_run, send_message, start_instance
from .start_timers import schedule_start_timers
from .status import InstanceStatus


class InstanceCommands(EngineBase):
    """Processes and their instances: deploy, start, read, terminate, suspend, retry, message."""

    def deploy(self, path: str | Path, by: str | None = None) -> list[definitions.DeployedVersion]:
        sources = definitions.read_folder(path)
        with self.command(by) as (session, ctx):
            bundle, results = definitions.deploy(session, sources, ctx.now, by, str(path))
            for result in results:
                if result.created:
                    audit.record(
                        session,
                        "process_deployed",
                        ctx.now,
                        actor_id=ctx.actor_id,
                        detail={"process": result.key, "version": result.version},
                    )
                    schedule_start_timers(session, ctx, result.key)
        return results

    def processes(self, user: str | None = None) -> list[dict[str, Any]]:
        with self.read_session() as session:
            actor = self.actor(session, user)
            return queries.startable_processes(session, actor)

    def start(
        self,
        process: str,
        data: dict[str, Any] | None = None,
        *,
        user: str | None = None,
        title: str | None = None,
        parent_instance_id: int | None = None,
    ) -> dict[str, Any]:
        reserved = [key for key in data or {} if forms.is_reserved(key)]
        if reserved:
            raise InvalidData(
                f"字段 {'、'.join(reserved)} 与脚本可用的函数或保留名同名，不能作为流程数据",
                {key: "保留名，不能使用" for key in reserved},
            )
        with self.command(user) as (session, ctx):
            version = definitions.latest_version(session, process)
            if version is None:
                raise NotFound(f"流程 {process} 不存在或尚未部署")
            actor = self.actor(session, user)
            if actor and not queries.may_start(actor, version):
                raise Forbidden(f"您无权发起“{version.name}”")
            run = start_instance(
                session,
                ctx,
                self.specs,
                version.id,
                data or {},
                title=title,
                parent_instance_id=parent_instance_id,
            )
            return queries.instance_summary(run.instance, version)

    def instance(self, instance_id: int, user: str | None = None) -> dict[str, Any]:
        with self.read_session() as session:
            actor = self.actor(session, user)
            return queries.instance_detail(
                session, self.specs, instance_id, actor, self.clock.now(), self.calendar(session)
            )

    def instances(
        self,
        user: str,
        *,
        process: str | None = None,
        status: str | None = None,
        page: int = 1,
        per_page: int = 50,
    ) -> dict[str, Any]:
        """The instances `user` may see, newest first."""
        with self.read_session() as session:
            actor = self.actor(session, user)
            assert actor is not None
            return instance_views.instance_list(
                session, actor, process=process, status=status, page=page, per_page=per_page
            )

    def instance_summary(self, instance_id: int, user: str | None = None) -> dict[str, Any]:
        """id, process, version, status, title, revision, error — without loading the workflow."""
        with self.read_session() as session:
            actor = self.actor(session, user)
            instance = session.get(ProcessInstance, instance_id)
            if instance is None:
                raise NotFound(f"流程实例 {instance_id} 不存在")
            if actor is not None and not instance_views.may_view(session, instance_id, actor):
                raise Forbidden("您无权查看该流程：它不属于您所在的单位，您也未参与办理")
            version = session.get(ProcessVersion, instance.process_version_id)
            return queries.instance_summary(instance, version)

    def instance_diagram(self, instance_id: int, user: str | None = None) -> dict[str, Any]:
        """The BPMN XML of the instance's own version with its done/current/waiting elements."""
        with self.read_session() as session:
            actor = self.actor(session, user)
            return instance_views.diagram(session, self.specs, instance_id, actor)

    def terminate(self, instance_id: int, *, user: str | None = None, reason: str) -> None:
        self._require_reason(reason)
        with self.command(user) as (session, ctx):
            self._require_admin(session, user)
            run = load_run(session, instance_id, self.specs, ctx)
            if run.instance.status in (InstanceStatus.COMPLETED, InstanceStatus.TERMINATED):
                raise Conflict(acting.STATUS_REFUSALS[run.instance.status])
            run.workflow.cancel()
            run.instance.status, run.instance.ended_at = InstanceStatus.TERMINATED, ctx.now
            run.save()
            audit.record(
                session,
                "instance_terminated",
                ctx.now,
                instance_id=instance_id,
                actor_id=ctx.actor_id,
                reason=reason,
            )

    def suspend(self, instance_id: int, *, user: str | None = None, reason: str) -> None:
        self._set_status(
            instance_id,
            user,
            reason,
            InstanceStatus.RUNNING,
            InstanceStatus.SUSPENDED,
            "instance_suspended",
        )

    def resume(self, instance_id: int, *, user: str | None = None, reason: str) -> None:
        self._set_status(
            instance_id,
            user,
            reason,
            InstanceStatus.SUSPENDED,
            InstanceStatus.RUNNING,
            "instance_resumed",
        )

    def _set_status(
        self,
        instance_id: int,
        user: str | None,
        reason: str,
        expected: InstanceStatus,
        new: InstanceStatus,
        kind: str,
    ) -> None:
        self._require_reason(reason)
        with self.command(user) as (session, ctx):
            self._require_admin(session, user)
            run = load_run(session, instance_id, self.specs, ctx)
            if run.instance.status != expected:
                raise Conflict(f"实例当前状态为 {run.instance.status}，不能执行此操作")
            run.instance.status = new
            if new == InstanceStatus.RUNNING:
                run.advance()  # timers that fell due while suspended fire now
            run.save()
            audit.record(
                session,
                kind,
                ctx.now,
                instance_id=instance_id,
                actor_id=ctx.actor_id,
                reason=reason,
            )

    def retry(
        self,
        instance_id: int,
        *,
        user: str | None = None,
        data: dict[str, Any] | None = None,
        remove: list[str] | None = None,
        reason: str = "管理员重试",
    ) -> dict[str, Any]:
        """Run an instance in error again, first correcting the failed task's data (`data`) and
        deleting keys (`remove`, e.g. one that hides a script helper) from every live task. If
        it fails again, nothing changes (OperationFailed) and the instance stays in error."""
        data, remove = _corrections(data, remove)
        with self.command(user) as (session, ctx):
            self._require_admin(session, user)
            run = load_run(session, instance_id, self.specs, ctx)
            if run.instance.status != InstanceStatus.ERROR:
                raise Conflict("只有出错的流程实例可以重试")
            run.instance.status, run.instance.error_message = InstanceStatus.RUNNING, None
            run.instance.error_task = None
            run.operation = "重试"
            audit.record(
                session,
                "instance_retried",
                ctx.now,
                instance_id=instance_id,
                actor_id=ctx.actor_id,
                reason=reason,
                data_change={**data, **{key: {"removed": True} for key in remove}} or None,
            )
            for task in run.workflow.get_tasks(state=TaskState.NOT_FINISHED_MASK | TaskState.ERROR):
                for key in remove:
                    task.data.pop(key, None)
            for task in run.workflow.get_tasks(state=TaskState.ERROR):
                task.data.update(data)
                try:
                    with service_tasks.serving(run):  # the failed task may be a service task
                        task.run()
                except WorkflowException as exc:
                    run.fail(exc)  # raises: the retry is aborted whole
            run.advance()
            run.save()
            return {
                "id": instance_id,
                "status": run.instance.status,
                "error": run.instance.error_message,
            }

    def deliver_message(
        self, name: str, payload: dict[str, Any] | None = None, *, user: str | None = None
    ) -> list[int]:
        """Deliver a BPMN message to every waiting instance whose correlation matches."""
        payload = payload or {}
        delivered = []
        with self.command(user) as (session, ctx):
            ids = session.scalars(
                select(MessageSubscription.instance_id)
                .where(MessageSubscription.message == name)
                .distinct()
            )
            for instance_id in sorted(ids):
                run = load_run(session, instance_id, self.specs, ctx)
                running = run.instance.status == InstanceStatus.RUNNING
                if running and send_message(run, name, payload):
                    run.advance()
                    run.save()
                    audit.record(
                        session,
                        "message_delivered",
                        ctx.now,
                        instance_id=instance_id,
                        actor_id=ctx.actor_id,
                        detail={"message": name, "payload": payload},
                    )
                    delivered.append(instance_id)
        if not delivered:
            raise NotFound(f"没有正在等待消息“{name}”的流程实例")
        return delivered


def _corrections(
    data: dict[str, Any] | None, remove: list[str] | None
) -> tuple[dict[str, Any], list[str]]:
    """An administrator's data corrections, checked before anything is loaded."""
    data, remove = data or {}, remove or []
    if not isinstance(data, dict):
        raise InvalidData("修正数据必须是对象", {"data": "应为 JSON 对象"})
    if not isinstance(remove, list) or not all(isinstance(k, str) for k in remove):
        raise InvalidData("要删除的字段应为字段名列表", {"remove": "应为字段名列表"})
    reserved = [key for key in data if forms.is_reserved(key)]
    if reserved:
        raise InvalidData(
            f"字段 {'、'.join(reserved)} 与脚本可用的函数或保留名同名，不能写入流程数据",
            {key: "保留名，不能写入" for key in reserved},
        )
    return data, remove
