"""The designer's reads: processes with their versions, bundle files, drafts, the directory."""

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import definitions, designer
from .errors import NotFound
from .models import (
    Deployment,
    DeploymentFile,
    ProcessDraft,
    ProcessInstance,
    ProcessVersion,
    Role,
    Unit,
    User,
)
from .status import LIVE_STATUSES


def draft_row(session: Session, key: str) -> ProcessDraft | None:
    return session.scalars(select(ProcessDraft).where(ProcessDraft.process_key == key)).first()


def draft_summary(session: Session, row: ProcessDraft) -> dict[str, Any]:
    base = session.get(ProcessVersion, row.base_version_id) if row.base_version_id else None
    bpmn_file = next((n for n in row.files if designer.file_kind(n) == "bpmn"), None)
    if base is not None and base.bpmn_file in row.files:
        bpmn_file = base.bpmn_file
    return {
        "key": row.process_key,
        "saved": True,
        "base_version": base.version if base else None,
        "bpmn_file": bpmn_file,
        "files": dict(row.files),
        "updated_at": row.updated_at.isoformat(),
        "updated_by": row.updated_by,
        "check": row.check_result,
        "checked_current": row.checked_hash == designer.files_hash(row.files),
    }


def version(session: Session, key: str, version: int) -> ProcessVersion:
    row = session.scalars(
        select(ProcessVersion).where(ProcessVersion.key == key, ProcessVersion.version == version)
    ).first()
    if row is None:
        raise NotFound(f"流程 {key} 没有版本 {version}")
    return row


def target(session: Session, key: str, number: int | None) -> ProcessVersion:
    """Version `number` of `key`, or its latest version."""
    if number is not None:
        return version(session, key, number)
    latest = definitions.latest_version(session, key)
    if latest is None:
        raise NotFound(f"流程 {key} 不存在")
    return latest


def deployment_files(session: Session, deployment_id: int) -> dict[str, tuple[str, str]]:
    rows = session.scalars(
        select(DeploymentFile).where(DeploymentFile.deployment_id == deployment_id)
    )
    return {f.name: (f.kind, f.content) for f in rows}


def bundle_files(session: Session, version: ProcessVersion) -> dict[str, str]:
    return designer.bundle_files(deployment_files(session, version.deployment_id), version.key)


def other_deployments(session: Session, key: str) -> list[dict[str, str]]:
    """The deployments holding the latest version of every other process, oldest first."""
    newest = (
        select(ProcessVersion.key, func.max(ProcessVersion.version).label("v"))
        .group_by(ProcessVersion.key)
        .subquery()
    )
    ids = session.scalars(
        select(ProcessVersion.deployment_id)
        .join(newest, (newest.c.key == ProcessVersion.key) & (newest.c.v == ProcessVersion.version))
        .where(ProcessVersion.key != key)
        .distinct()
    ).all()
    return [
        {name: text for name, (_kind, text) in deployment_files(session, i).items()}
        for i in sorted(ids)
    ]


def directory(session: Session) -> dict[str, Any]:
    """The live directory in the shape engine/seeding.py loads (for a check's scratch database)."""
    units = list(session.scalars(select(Unit).order_by(Unit.id)))
    codes = {u.id: u.code for u in units}
    return {
        "roles": [
            {"name": r.name, "description": r.description, "sees_all": r.sees_all}
            for r in session.scalars(select(Role).order_by(Role.id))
        ],
        "units": [
            {
                "name": u.name,
                "code": u.code,
                "kind": u.kind,
                "parent": codes.get(u.parent_id) if u.parent_id else None,
                "attributes": u.attributes,
            }
            for u in units
        ],
        "users": [
            {
                "username": u.username,
                "name": u.display_name,
                "unit": codes.get(u.unit_id) if u.unit_id else None,
                "roles": u.role_names,
            }
            for u in session.scalars(select(User).where(User.active).order_by(User.id))
        ],
    }


def process_list(session: Session, key: str | None = None) -> list[dict[str, Any]]:
    query = (
        select(ProcessVersion, Deployment.deployed_by)
        .join(Deployment, Deployment.id == ProcessVersion.deployment_id)
        .order_by(ProcessVersion.key, ProcessVersion.version)
    )
    if key is not None:
        query = query.where(ProcessVersion.key == key)
    counts: dict[int, dict[str, int]] = {}
    count_query = select(
        ProcessInstance.process_version_id, ProcessInstance.status, func.count()
    ).group_by(ProcessInstance.process_version_id, ProcessInstance.status)
    for version_id, status, count in session.execute(count_query):
        counts.setdefault(version_id, {})[status] = count
    drafts = {d.process_key: d for d in session.scalars(select(ProcessDraft))}
    processes: dict[str, dict[str, Any]] = {}
    for version, deployed_by in session.execute(query):
        entry = processes.setdefault(
            version.key, {"key": version.key, "name": version.name, "versions": []}
        )
        entry["name"] = version.name
        by_status = counts.get(version.id, {})
        entry["versions"].append(
            {
                "version": version.version,
                "name": version.name,
                "deployed_at": version.deployed_at.isoformat(),
                "deployed_by": deployed_by,
                "instances": by_status,
                "running": sum(by_status.get(status, 0) for status in LIVE_STATUSES),
            }
        )
    for draft_key, draft in drafts.items():
        if key is not None and draft_key != key:
            continue
        entry = processes.setdefault(
            draft_key, {"key": draft_key, "name": draft_key, "versions": []}
        )
        entry["draft"] = {
            "updated_at": draft.updated_at.isoformat(),
            "updated_by": draft.updated_by,
            "checked": draft.checked_hash == designer.files_hash(draft.files),
            "ok": bool((draft.check_result or {}).get("ok")),
        }
    for entry in processes.values():
        entry.setdefault("draft", None)
        entry["latest_version"] = entry["versions"][-1]["version"] if entry["versions"] else None
    return sorted(processes.values(), key=lambda p: p["key"])
