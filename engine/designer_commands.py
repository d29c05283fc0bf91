"""`Engine`'s designer commands: drafts, check, deploy, versions, diff and instance migration.

A draft holds the files of one process bundle. `check_draft` parses and lints it and runs its
scenario files on a scratch database holding a copy of the directory and the other deployed
processes; `deploy_draft` deploys exactly the files that passed, in one transaction.
"""

import tempfile
from pathlib import Path
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import audit, definitions, designer, migration, scenarios
from . import designer_queries as queries
from .base import EngineBase
from .bpmn import load_state
from .errors import Conflict, Forbidden, InvalidData, NotFound
from .models import (
    ProcessDraft,
    ProcessInstance,
    ProcessVersion,
    Role,
)
from .runtime import load_run
from .start_timers import schedule_start_timers
from .status import InstanceStatus

DESIGNER_ROLES = frozenset({"流程设计员", "系统管理员"})
ANY_DRAFT = object()  # save_draft without a concurrency check (scripts, tests)


class DesignerCommands(EngineBase):
    """Mixed into `Engine`: what the process designer (流程设计员) does."""

    # ------------------------------------------------------------ reading
    def designer_processes(self, user: str | None = None) -> list[dict[str, Any]]:
        """Every process with its versions (who deployed each, when, instances per status)."""
        with self.read_session() as session:
            self._require_designer(session, user)
            return queries.process_list(session)

    def process_versions(self, key: str, user: str | None = None) -> dict[str, Any]:
        with self.read_session() as session:
            self._require_designer(session, user)
            found = [p for p in queries.process_list(session, key) if p["key"] == key]
            if not found:
                raise NotFound(f"流程 {key} 不存在")
            return found[0]

    def designer_roles(self, user: str | None = None) -> list[str]:
        """The roles a lane may name (the directory's roles)."""
        with self.read_session() as session:
            self._require_designer(session, user)
            return sorted(session.scalars(select(Role.name)))

    def version_files(self, key: str, version: int, user: str | None = None) -> dict[str, Any]:
        """The files of one deployed version's bundle, as a draft would start from them."""
        with self.read_session() as session:
            self._require_designer(session, user)
            row = queries.version(session, key, version)
            return {
                "key": key,
                "version": version,
                "bpmn_file": row.bpmn_file,
                "files": queries.bundle_files(session, row),
            }

    def draft(self, key: str, user: str | None = None) -> dict[str, Any]:
        """The saved draft, or (not yet saved) the files of the latest version."""
        with self.read_session() as session:
            self._require_designer(session, user)
            row = queries.draft_row(session, key)
            if row is not None:
                return queries.draft_summary(session, row)
            latest = definitions.latest_version(session, key)
            if latest is None:
                raise NotFound(f"流程 {key} 不存在，也没有草稿")
            return {
                "key": key,
                "saved": False,
                "base_version": latest.version,
                "bpmn_file": latest.bpmn_file,
                "files": queries.bundle_files(session, latest),
                "updated_at": None,
                "updated_by": None,
                "check": None,
                "checked_current": False,
            }

    # ----------------------------------------------------------- drafting
    def save_draft(
        self,
        key: str,
        files: Any,
        *,
        user: str | None = None,
        based_on: Any = ANY_DRAFT,
    ) -> dict[str, Any]:
        """Save the draft. `based_on` is the `updated_at` of the draft the editor started from
        (None: no saved draft); if someone saved, deployed or discarded it since, Conflict."""
        with self.command(user) as (session, ctx):
            self._require_designer(session, user)
            key, files = _checked_key(key), designer.checked_files(files)
            row = queries.draft_row(session, key)
            current = row.updated_at.isoformat() if row is not None else None
            if based_on is not ANY_DRAFT and based_on != current:
                raise Conflict("草稿已被他人修改、部署或放弃，请刷新页面后再改")
            if row is None:
                latest = definitions.latest_version(session, key)
                row = ProcessDraft(process_key=key, base_version_id=latest.id if latest else None)
                session.add(row)
            row.files, row.updated_by, row.updated_at = files, user, ctx.now
            audit.record(
                session,
                "draft_saved",
                ctx.now,
                actor_id=ctx.actor_id,
                detail={"process": key, "files": sorted(files)},
            )
            try:
                session.flush()
            except IntegrityError as exc:  # another designer created it at the same moment
                raise Conflict("草稿已被他人同时创建，请刷新页面后再改") from exc
            return queries.draft_summary(session, row)

    def discard_draft(self, key: str, *, user: str | None = None) -> None:
        with self.command(user) as (session, ctx):
            self._require_designer(session, user)
            row = queries.draft_row(session, key)
            if row is None:
                raise NotFound(f"流程 {key} 没有草稿")
            session.delete(row)
            audit.record(
                session, "draft_discarded", ctx.now, actor_id=ctx.actor_id, detail={"process": key}
            )

    def check_draft(self, key: str, *, user: str | None = None) -> dict[str, Any]:
        """Parse, lint and run the scenarios of the saved draft; the result is kept with it."""
        with self.read_session() as session:
            self._require_designer(session, user)
            row = queries.draft_row(session, key)
            if row is None:
                raise NotFound(f"流程 {key} 没有草稿，请先保存草稿")
            files = dict(row.files)
            roles = set(session.scalars(select(Role.name)))
            directory_doc = queries.directory(session)
            others = queries.other_deployments(session, key)
            latest = definitions.latest_version(session, key)
            before = None
            if latest is not None:
                before = (latest.version, queries.bundle_files(session, latest), latest.bpmn_file)
        result = self._check_files(key, files, roles, directory_doc, others)
        result["changes"] = _changes(key, files, before) if result["parsed"] else None
        with self.command(user) as (session, ctx):
            row = queries.draft_row(session, key)
            if row is not None and designer.files_hash(row.files) == designer.files_hash(files):
                row.checked_hash, row.checked_at = designer.files_hash(files), ctx.now
                row.check_result = result
        return result

    def _check_files(
        self,
        key: str,
        files: dict[str, str],
        roles: set[str],
        directory_doc: dict[str, Any],
        others: list[dict[str, str]],
    ) -> dict[str, Any]:
        bundle, problems = designer.parse(files)
        if bundle is not None and key not in bundle.processes:
            problems.append(designer.Problem(f"草稿中没有 id 为 {key} 的可执行流程"))
        problems += designer.lint(files, roles)
        outcomes: list[Any] = []
        if not any(p.severity == "error" for p in problems):
            try:
                outcomes = self._run_scenarios(files, directory_doc, others)
            except Exception as exc:  # noqa: BLE001 — a malformed scenario file, reported
                problems.append(designer.Problem(f"场景测试无法运行：{exc}", severity="error"))
            problems += designer.scenario_problems(files, outcomes)
            if not outcomes and not any(p.severity == "error" for p in problems):
                problems.append(
                    designer.Problem("草稿没有场景测试（*.scenarios.yaml）", severity="warning")
                )
        ok = not any(p.severity == "error" for p in problems)
        return {
            "ok": ok,
            "parsed": bundle is not None and key in bundle.processes,
            "problems": [p.to_dict() for p in problems],
            "scenarios": [
                {"name": o.scenario.name, "ok": o.ok, "step": o.step, "message": o.message}
                for o in outcomes
            ],
        }

    def _run_scenarios(
        self, files: dict[str, str], directory_doc: dict[str, Any], others: list[Any]
    ) -> list[Any]:
        with tempfile.TemporaryDirectory(prefix="duban-draft-") as tmp:
            root = Path(tmp)
            folders = []
            for index, other in enumerate([*others, files]):
                folder = root / f"bundle{index}"
                designer.write_folder(other, folder)
                folders.append(folder)
            found = scenarios.discover(folders[-1])
            if not found:
                return []

            def prepare(engine: scenarios.ScenarioEngine) -> None:
                engine.load_directory(directory_doc, "check")
                for folder in folders:
                    engine.deploy(folder)

            url = self.db.url
            base = (
                url.render_as_string(hide_password=False)
                if url.get_backend_name() == "postgresql"
                else None
            )
            make_engine = cast(scenarios.EngineFactory, type(self))  # the whole Engine
            template = scenarios.TemplateDatabase(base, prepare, make_engine)
            try:
                outcomes = []
                for scenario in found:
                    with template.copy() as copy_url:
                        outcomes.append(scenarios.run(scenario, copy_url, make_engine))
                return outcomes
            finally:
                template.close()

    def deploy_draft(self, key: str, *, user: str | None = None) -> dict[str, Any]:
        """Deploy the draft that passed its check; all of it in one transaction, or nothing."""
        with self.command(user) as (session, ctx):
            self._require_designer(session, user)
            row = queries.draft_row(session, key)
            if row is None:
                raise NotFound(f"流程 {key} 没有草稿")
            files = dict(row.files)
            result = row.check_result or {}
            if row.checked_hash != designer.files_hash(files) or not result.get("ok"):
                raise Conflict("草稿尚未通过检查（或检查后又有修改），请先检查再部署")
            _bundle, results = definitions.deploy(
                session, designer.sources(files), ctx.now, user, f"designer:{key}"
            )
            for deployed in results:
                if deployed.created:
                    audit.record(
                        session,
                        "process_deployed",
                        ctx.now,
                        actor_id=ctx.actor_id,
                        detail={
                            "process": deployed.key,
                            "version": deployed.version,
                            "source": "designer",
                        },
                    )
                    schedule_start_timers(session, ctx, deployed.key)
            session.delete(row)
            mine = next(r for r in results if r.key == key)
            return {
                "key": key,
                "version": mine.version,
                "created": mine.created,
                "deployed": [
                    {"key": r.key, "version": r.version, "created": r.created} for r in results
                ],
            }

    # --------------------------------------------------------------- diff
    def diff_versions(
        self, key: str, old: int, new: int, user: str | None = None
    ) -> dict[str, Any]:
        """Elements added, removed and changed from version `old` to version `new`."""
        with self.read_session() as session:
            self._require_designer(session, user)
            before, after = queries.version(session, key, old), queries.version(session, key, new)
            old_elements = designer.elements(
                queries.bundle_files(session, before), before.bpmn_file
            )
            new_elements = designer.elements(queries.bundle_files(session, after), after.bpmn_file)
        return {"key": key, "old": old, "new": new, **designer.diff(old_elements, new_elements)}

    # ---------------------------------------------------------- migration
    def migration_check(
        self, key: str, *, to_version: int | None = None, user: str | None = None
    ) -> dict[str, Any]:
        """Which running instances of older versions can move to `to_version` (default latest)."""
        with self.read_session() as session:
            self._require_designer(session, user)
            target_row = queries.target(session, key, to_version)
            target = self.specs.get(session, target_row.id)
            rows = session.execute(
                select(ProcessInstance, ProcessVersion.version)
                .join(ProcessVersion, ProcessVersion.id == ProcessInstance.process_version_id)
                .where(
                    ProcessInstance.process_key == key,
                    ProcessInstance.status.in_((*migration.MOVABLE_STATUSES, InstanceStatus.ERROR)),
                    ProcessVersion.version < target_row.version,
                )
                .order_by(ProcessInstance.id)
            ).all()
            found = []
            for instance, version in rows:
                loaded = self.specs.get(session, instance.process_version_id)
                workflow = load_state(instance.state, loaded.spec, loaded.subprocess_specs)
                reasons, notes = migration.check(workflow, instance.status, target)
                item = migration.Assessment(
                    instance.id, version, target_row.version, reasons, notes
                ).to_dict()
                item["title"], item["status"] = instance.title, instance.status
                found.append(item)
            return {"key": key, "target_version": target_row.version, "instances": found}

    def migrate_instances(
        self,
        instance_ids: list[int],
        *,
        to_version: int | None = None,
        user: str | None = None,
        reason: str | None = None,
    ) -> list[dict[str, Any]]:
        """Move each instance in its own transaction; one that cannot move is reported, kept."""
        if (
            not isinstance(instance_ids, list)
            or not instance_ids
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in instance_ids)
        ):
            raise InvalidData("请选择要迁移的实例", {"instances": "应为实例编号列表"})
        results = []
        for instance_id in instance_ids:
            results.append(self._migrate_one(instance_id, to_version, user, reason))
        return results

    def _migrate_one(
        self,
        instance_id: int,
        to_version: int | None,
        user: str | None,
        reason: str | None,
    ) -> dict[str, Any]:
        with self.command(user) as (session, ctx):
            self._require_designer(session, user)
            run = load_run(session, instance_id, self.specs, ctx)
            old = run.version
            target_row = queries.target(session, run.instance.process_key, to_version)
            if target_row.version <= old.version:
                reason_text = f"实例已在第 {old.version} 版，不能迁移到相同或更旧的版本"
                return {"instance_id": instance_id, "migrated": False, "reasons": [reason_text]}
            target = self.specs.get(session, target_row.id)
            reasons, notes = migration.check(run.workflow, run.instance.status, target)
            if reasons:
                return {"instance_id": instance_id, "migrated": False, "reasons": reasons}
            run.version = target
            run.instance.process_version_id = target.version_id
            migration.retitle_open_tasks(run)
            run.save()
            audit.record(
                session,
                "instance_migrated",
                ctx.now,
                instance_id=instance_id,
                actor_id=ctx.actor_id,
                reason=reason,
                detail={"from_version": old.version, "to_version": target.version, "notes": notes},
            )
            return {
                "instance_id": instance_id,
                "migrated": True,
                "version": target.version,
                "notes": notes,
            }

    def _require_designer(self, session: Session, user: str | None) -> None:
        actor = self.actor(session, user)
        if actor is not None and not (actor.roles & DESIGNER_ROLES):
            raise Forbidden("只有流程设计员或系统管理员可以执行此操作")


# ---------------------------------------------------------------- helpers
def _checked_key(key: Any) -> str:
    if not isinstance(key, str) or not key.replace("_", "a").isalnum() or not key[:1].isalpha():
        raise InvalidData("流程标识应以字母开头，只含字母、数字和下划线", {"key": "流程标识不合法"})
    if len(key) > 120 or not key.isascii():
        raise InvalidData("流程标识应以字母开头，只含字母、数字和下划线", {"key": "流程标识不合法"})
    return key


def _elements(session: Session, version: ProcessVersion) -> dict[str, dict[str, Any]]:
    return designer.elements(queries.bundle_files(session, version), version.bpmn_file)


def _changes(key: str, files: dict[str, str], before: Any) -> dict[str, Any] | None:
    """What the draft changes against the latest version (None for a new process)."""
    if before is None:
        return None
    version, old_files, old_bpmn = before
    bundle = definitions.validate_bundle(designer.sources(files))
    new_bpmn = bundle.processes[key].bpmn_file
    changed = designer.diff(
        designer.elements(old_files, old_bpmn), designer.elements(files, new_bpmn)
    )
    return {"since_version": version, **changed}
