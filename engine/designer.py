"""The designer's checks: a draft bundle is parsed, linted and its scenarios run before a deploy.

Every problem names the file and, where there is one, the BPMN element, so a page can point at
it in the diagram. Also here: which files make up a process's bundle, and the element-level
difference between two versions.
"""

import base64
import binascii
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from lxml import etree

from . import approval_steps, definitions, handover
from .definitions import BPMN_NS, SPIFF_NS, SourceFile
from .errors import DefinitionError, InvalidData

TEXT_KINDS = ("bpmn", "dmn", "form", "meta", "scenario")
USER_TASKS = ("userTask", "manualTask")
FLOW_NODES = (
    "startEvent",
    "endEvent",
    "intermediateCatchEvent",
    "intermediateThrowEvent",
    "boundaryEvent",
    "task",
    "userTask",
    "manualTask",
    "serviceTask",
    "scriptTask",
    "businessRuleTask",
    "sendTask",
    "receiveTask",
    "callActivity",
    "subProcess",
    "exclusiveGateway",
    "parallelGateway",
    "inclusiveGateway",
    "eventBasedGateway",
)
DIFFED = (*FLOW_NODES, "sequenceFlow", "lane")
MAX_FILES = 200
MAX_FILE_CHARS = 2_000_000


@dataclass(frozen=True)
class Problem:
    message: str
    file: str | None = None
    element: str | None = None
    severity: str = "error"  # error | warning

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -------------------------------------------------------------------- files
def file_kind(name: str) -> str | None:
    """What a draft file is, by its name (the same rules as `duban deploy` reading a folder)."""
    if PurePosixPath(name).name == definitions.METADATA_FILE:
        return "meta"
    if name.endswith(definitions.SCENARIO_SUFFIX):
        return "scenario"
    return definitions.SUFFIX_KINDS.get(PurePosixPath(name).suffix.lower())


def checked_files(files: Any) -> dict[str, str]:
    """A draft's files as {relative name: text}; refuse names that could escape the bundle."""
    if not isinstance(files, dict) or not files:
        raise InvalidData("草稿至少包含一个文件", {"files": "应为 {文件名: 内容} 对象"})
    if len(files) > MAX_FILES:
        raise InvalidData("草稿文件过多", {"files": f"最多 {MAX_FILES} 个文件"})
    for name, content in files.items():
        path = PurePosixPath(str(name))
        if (
            not name
            or path.is_absolute()
            or ".." in path.parts
            or "\\" in name
            or file_kind(name) is None
        ):
            raise InvalidData(f"文件名 {name} 不合法", {"files": f"文件名 {name} 不合法"})
        if not isinstance(content, str) or len(content) > MAX_FILE_CHARS:
            raise InvalidData(f"文件 {name} 的内容必须是文本", {"files": f"{name} 内容无效"})
        if file_kind(name) in definitions.BINARY_KINDS and not _is_base64(content):
            raise InvalidData(f"文件 {name} 应为 base64 编码", {"files": f"{name} 内容无效"})
    if not any(file_kind(name) == "bpmn" for name in files):
        raise InvalidData("草稿中没有 .bpmn 文件", {"files": "缺少 .bpmn 文件"})
    return {str(name): content for name, content in sorted(files.items())}


def _is_base64(content: str) -> bool:
    try:
        base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def files_hash(files: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode("utf-8")).hexdigest()


def sources(files: dict[str, str]) -> list[SourceFile]:
    found = []
    for name, content in files.items():
        kind = file_kind(name) or "form"
        found.append(SourceFile(name, kind, definitions.stored_bytes(kind, content)))
    return found


def bundle_files(deployment_files: dict[str, tuple[str, str]], key: str) -> dict[str, str]:
    """The files of process `key` in a deployment ({name: (kind, text)}): its BPMN, called
    processes, DMN, forms and templates, its scenario file and the settings file."""
    srcs = [
        SourceFile(name, kind, definitions.stored_bytes(kind, text))
        for name, (kind, text) in deployment_files.items()
    ]
    bundle = definitions.validate_bundle(srcs)
    parsed = bundle.processes.get(key)
    wanted = set(parsed.files) if parsed else set()
    for name, (kind, text) in deployment_files.items():
        if kind == "meta" or (kind == "scenario" and _scenario_process(text) == key):
            wanted.add(name)
    return {name: deployment_files[name][1] for name in sorted(wanted)}


def _scenario_process(text: str) -> str | None:
    import yaml

    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        return None
    return doc.get("process") if isinstance(doc, dict) else None


# ------------------------------------------------------------------ linting
def parse(files: dict[str, str]) -> tuple[definitions.Bundle | None, list[Problem]]:
    """Validate the bundle as a deploy would; a refusal becomes one problem."""
    try:
        return definitions.validate_bundle(sources(files)), []
    except DefinitionError as exc:
        return None, [Problem(exc.message, exc.file, exc.element)]


def lint(files: dict[str, str], known_roles: set[str]) -> list[Problem]:
    """Unreachable steps, user tasks outside lanes or without forms, unknown roles, bad values."""
    problems: list[Problem] = []
    for name, text in files.items():
        if file_kind(name) != "bpmn":
            continue
        try:
            root = definitions.parse_xml(text.encode("utf-8"))
        except Exception:  # noqa: BLE001 — parse() already reported it
            continue
        for process in root.iter(f"{{{BPMN_NS}}}process"):
            problems.extend(_lint_process(name, process, known_roles))
    problems.extend(_lint_start_roles(files, known_roles))
    return problems


def _local(node: Any) -> str:
    return etree.QName(node).localname if isinstance(node.tag, str) else ""


def _label(node: Any) -> str:
    return node.get("name") or node.get("id") or "?"


def _lint_process(file: str, process: Any, roles: set[str]) -> list[Problem]:
    problems = []
    nodes = {n.get("id"): n for n in process.iter() if _local(n) in FLOW_NODES and n.get("id")}
    for node_id in sorted(set(nodes) - _reachable(process, nodes)):
        node = nodes[node_id]
        problems.append(Problem(f"步骤“{_label(node)}”无法到达（没有连线通向它）", file, node_id))
    lanes = {}
    for lane in process.iter(f"{{{BPMN_NS}}}lane"):
        for ref in lane.iter(f"{{{BPMN_NS}}}flowNodeRef"):
            lanes[(ref.text or "").strip()] = lane
        role = (lane.get("name") or "").strip()
        if role and roles and role not in roles:
            problems.append(Problem(f"泳道“{role}”不是已知角色", file, lane.get("id")))
    for node_id, node in sorted(nodes.items()):
        operator = next(node.iter(f"{{{SPIFF_NS}}}serviceTaskOperator"), None)
        if _local(node) == "serviceTask" and operator is not None and operator.get("id") == node_id:
            problems.append(
                Problem(
                    f"服务任务的标识 {node_id} 不能与处理程序同名，请改用其他标识", file, node_id
                )
            )
    user_task_ids = {i for i, n in nodes.items() if _local(n) in USER_TASKS}
    for node_id in sorted(user_task_ids):
        problems.extend(_lint_user_task(file, nodes[node_id], lanes, roles, user_task_ids))
    return problems


def _reachable(process: Any, nodes: dict[str, Any]) -> set[str]:
    outgoing: dict[str, list[str]] = {}
    for flow in process.iter(f"{{{BPMN_NS}}}sequenceFlow"):
        outgoing.setdefault(flow.get("sourceRef"), []).append(flow.get("targetRef"))
    attached: dict[str, list[str]] = {}
    for node_id, node in nodes.items():
        if _local(node) == "boundaryEvent":
            attached.setdefault(node.get("attachedToRef"), []).append(node_id)
    todo = [
        i
        for i, n in nodes.items()
        if _local(n) == "startEvent"
        and (n.getparent() is process or n.getparent().get("triggeredByEvent") == "true")
    ]
    seen: set[str] = set()
    while todo:
        node_id = todo.pop()
        if node_id in seen or node_id not in nodes:
            continue
        seen.add(node_id)
        todo.extend(outgoing.get(node_id, []))
        todo.extend(attached.get(node_id, []))
        if _local(nodes[node_id]) == "subProcess":
            todo.extend(
                c.get("id") for c in nodes[node_id] if _local(c) == "startEvent" and c.get("id")
            )
    return seen


def _properties(node: Any) -> dict[str, str]:
    found = {}
    for prop in node.iter(f"{{{SPIFF_NS}}}property"):
        found[prop.get("name") or ""] = prop.get("value") or ""
    return found


def _lint_user_task(
    file: str, node: Any, lanes: dict[str, Any], roles: set[str], user_tasks: set[str]
) -> list[Problem]:
    node_id, label, props = node.get("id"), _label(node), _properties(node)
    messages = []
    if node_id not in lanes and not props.get("assignee"):
        messages.append(f"用户任务“{label}”不在任何泳道中，无法确定办理角色")
    if _local(node) == "userTask" and not props.get(definitions.FORM_PROPERTY):
        messages.append(f"用户任务“{label}”没有指定表单")
    due = props.get("dueInWorkdays")
    if due is not None and not due.strip().isdigit():
        messages.append(f"“{label}”的办理时限（工作日）应为非负整数")
    mode = props.get("approvalMode")
    if mode is not None and mode not in approval_steps.APPROVAL_MODES:
        messages.append(f"“{label}”的审批方式应为 all（会签）或 any（或签）")
    for target in approval_steps.listed(props.get("returnTargets")):
        if target not in user_tasks:
            messages.append(f"“{label}”的退回目标 {target} 不是本流程的用户任务")
    messages += _lint_listed_roles(label, props, roles)
    return [Problem(message, file, node_id) for message in messages]


def _lint_listed_roles(label: str, props: dict[str, str], roles: set[str]) -> list[str]:
    """`ccRoles`, `urgeRoles` and `transferRoles` name roles that exist; `transferRoles` names
    no system role (handover.py ignores them)."""
    messages = []
    for key in ("ccRoles", "urgeRoles"):
        for role in approval_steps.listed(props.get(key)):
            if roles and role not in roles:
                messages.append(f"“{label}”的 {key} 中的角色“{role}”不存在")
    for role in handover.entry_roles(props.get(handover.TRANSFER_ROLES)):
        if role in handover.SYSTEM_ROLES:
            messages.append(f"“{label}”的 transferRoles 不能列系统角色“{role}”，它不会生效")
        elif roles and role not in roles:
            messages.append(f"“{label}”的 transferRoles 中的角色“{role}”不存在")
    return messages


def _lint_start_roles(files: dict[str, str], roles: set[str]) -> list[Problem]:
    import tomllib

    problems = []
    for name, text in files.items():
        if file_kind(name) != "meta":
            continue
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            continue  # parse() reported it
        for key, section in (doc.get("process") or {}).items():
            for role in section.get("start_roles") or []:
                if roles and role not in roles:
                    problems.append(Problem(f"流程 {key} 的发起角色“{role}”不存在", name))
    return problems


# ---------------------------------------------------------------- scenarios
def scenario_problems(files: dict[str, str], outcomes: list[Any]) -> list[Problem]:
    """Failed scenarios as problems, pointing at the step's element where the step names one."""
    problems = []
    for outcome in outcomes:
        if outcome.ok:
            continue
        step = _step(outcome)
        element = step.get("complete") if isinstance(step, dict) else None
        where = "发起" if outcome.step == 0 else f"第 {outcome.step} 步"
        problems.append(
            Problem(
                f"场景“{outcome.scenario.name}”{where}失败：{outcome.message}",
                outcome.scenario.file,
                element if _is_element(files, element) else None,
            )
        )
    return problems


def _step(outcome: Any) -> Any:
    steps = outcome.scenario.spec.get("steps") or []
    if outcome.step and 0 < outcome.step <= len(steps):
        return steps[outcome.step - 1]
    return None


def _is_element(files: dict[str, str], element: Any) -> bool:
    if not isinstance(element, str):
        return False
    return any(f'id="{element}"' in text for n, text in files.items() if file_kind(n) == "bpmn")


def write_folder(files: dict[str, str], folder: Path) -> None:
    for name, text in files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        kind = file_kind(name) or "form"
        target.write_bytes(definitions.stored_bytes(kind, text))


# --------------------------------------------------------------------- diff
def elements(files: dict[str, str], bpmn_file: str) -> dict[str, dict[str, Any]]:
    """The comparable signature of every element of one BPMN file (with its forms' content)."""
    text = files.get(bpmn_file)
    if text is None:
        return {}
    root = definitions.parse_xml(text.encode("utf-8"))
    lane_of = {}
    for lane in root.iter(f"{{{BPMN_NS}}}lane"):
        for ref in lane.iter(f"{{{BPMN_NS}}}flowNodeRef"):
            lane_of[(ref.text or "").strip()] = lane.get("id")  # a renamed lane is its own change
    found = {}
    for node in root.iter():
        if _local(node) not in DIFFED or not node.get("id"):
            continue
        props = _properties(node)
        form = props.get(definitions.FORM_PROPERTY)
        signature = {
            "类型": _local(node),
            "名称": node.get("name") or "",
            "泳道": lane_of.get(node.get("id"), ""),
            "连线": f"{node.get('sourceRef') or ''}→{node.get('targetRef') or ''}",
            "属性": props,
            "定义": _definition_text(node),
        }
        if form:
            signature["表单内容"] = files.get(definitions.resolve_form(bpmn_file, form), "")
        found[node.get("id")] = {"type": _local(node), "name": node.get("name") or "", **signature}
    return found


def _definition_text(node: Any) -> str:
    """Scripts, conditions, timers, operators: everything below the element but its DI."""
    parts = []
    for child in node.iter():
        if child is node or _local(child) in ("incoming", "outgoing", "documentation"):
            continue
        if _local(child) in ("property", "flowNodeRef"):
            continue
        attrs = ",".join(f"{k}={v}" for k, v in sorted(child.attrib.items()))
        parts.append(f"{_local(child)}[{attrs}]{(child.text or '').strip()}")
    return "\n".join(parts)


def diff(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Elements added, removed and changed (with the Chinese names of what changed)."""
    added = [_brief(i, new[i]) for i in sorted(set(new) - set(old))]
    removed = [_brief(i, old[i]) for i in sorted(set(old) - set(new))]
    changed = []
    for element_id in sorted(set(old) & set(new)):
        what = [
            key
            for key in ("类型", "名称", "泳道", "连线", "属性", "定义", "表单内容")
            if old[element_id].get(key) != new[element_id].get(key)
        ]
        if what:
            changed.append({**_brief(element_id, new[element_id]), "changes": what})
    return {"added": added, "removed": removed, "changed": changed}


def _brief(element_id: str, signature: dict[str, Any]) -> dict[str, Any]:
    return {"id": element_id, "type": signature["type"], "name": signature["name"]}
