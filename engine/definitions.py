"""Process definitions: read a folder, validate all of it, deploy new versions, cache the specs."""

import ast
import base64
import hashlib
import json
import threading
import tomllib
import zipfile
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path, PurePosixPath
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.spiff.parser import SpiffBpmnParser
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import approval_steps, forms
from .bpmn import UnsafeXml, make_parser, parse_xml
from .errors import DefinitionError, NotFound
from .models import Deployment, DeploymentFile, ProcessVersion

SUFFIX_KINDS = {".bpmn": "bpmn", ".dmn": "dmn", ".json": "form", ".docx": "template"}
BINARY_KINDS = {"template"}  # stored base64 in DeploymentFile.content (Text)
DOCUMENT_HANDLER = "render_document"
METADATA_FILE = "duban.toml"
SCENARIO_SUFFIX = ".scenarios.yaml"  # designers' scenario tests (engine/scenarios.py)
FORM_PROPERTY = "formJsonSchemaFilename"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"


@dataclass(frozen=True)
class SourceFile:
    name: str  # posix path relative to the deployed folder
    kind: str  # bpmn | dmn | form | meta
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass
class ParsedProcess:
    key: str
    name: str
    bpmn_file: str
    spec: Any
    subprocess_specs: dict[str, Any]
    files: set[str]
    start_roles: list[str]
    timer_starts: list[dict[str, str]]
    metadata: dict[str, Any] = field(default_factory=dict)  # its section of duban.toml

    def content_hash(self, files: dict[str, SourceFile]) -> str:
        digest = hashlib.sha256()
        for name in sorted(self.files):
            digest.update(f"{name}\0{files[name].sha256}\n".encode())
        if self.metadata:  # an edited start_roles is a new version; no section, no change in hash
            digest.update(json.dumps(self.metadata, sort_keys=True, ensure_ascii=False).encode())
        return digest.hexdigest()


@dataclass
class Bundle:
    """A validated set of files and the executable processes they define."""

    files: dict[str, SourceFile]
    processes: dict[str, ParsedProcess] = field(default_factory=dict)
    forms: dict[str, dict[str, Any]] = field(default_factory=dict)


# ------------------------------------------------------------------ reading
def read_folder(path: str | Path) -> list[SourceFile]:
    root = Path(path)
    if not root.exists():
        raise DefinitionError(f"找不到要部署的路径：{path}")
    if root.is_file():
        candidates, root = [root], root.parent
    else:
        candidates = sorted(p for p in root.rglob("*") if p.is_file())
    found = []
    for file in candidates:
        kind = "meta" if file.name == METADATA_FILE else SUFFIX_KINDS.get(file.suffix.lower())
        if file.name.endswith(SCENARIO_SUFFIX):  # kept with the deployment for the designer
            kind = "scenario"
        if kind:
            name = file.relative_to(root).as_posix()
            found.append(SourceFile(name, kind, file.read_bytes()))
    if not any(f.kind == "bpmn" for f in found):
        raise DefinitionError(f"{path} 中没有 .bpmn 文件")
    return found


# --------------------------------------------------------------- validating
def validate_bundle(sources: list[SourceFile]) -> Bundle:
    """Parse and check everything; raise DefinitionError naming the file and element."""
    bundle = Bundle(files={s.name: s for s in sources})
    for source in sources:
        if source.kind == "form":
            bundle.forms[source.name] = _load_form(source)
        elif source.kind == "template":
            _check_template(source)
    metadata = _load_metadata(bundle.files)
    parser = make_parser()
    xml_roots = {}
    for source in sources:
        if source.kind in ("bpmn", "dmn"):
            xml_roots[source.name] = root = _parse_file(source)
            with _naming(source.name):
                if source.kind == "bpmn":
                    parser.add_bpmn_xml(root, source.name)
                else:
                    parser.add_dmn_xml(root, source.name)
    _check_called_processes(parser)
    for key in parser.get_process_ids():
        bundle.processes[key] = _parse_process(parser, key, bundle, metadata)
    if not bundle.processes:
        raise DefinitionError('没有可执行的流程（isExecutable="true"）')
    return bundle


def _check_called_processes(parser: SpiffBpmnParser) -> None:
    """SpiffWorkflow reports an unknown `calledElement` without file or element; we name both."""
    for process_parser in list(parser.process_parsers.values()):
        for node in process_parser.node.iter(f"{{{BPMN_NS}}}callActivity"):
            called = node.get("calledElement")
            if called and called not in parser.process_parsers:
                raise DefinitionError(
                    f"调用活动“{node.get('name') or node.get('id')}”引用的流程 {called} 不存在",
                    file=process_parser.filename,
                    element=node.get("id"),
                )


def _load_form(source: SourceFile) -> dict[str, Any]:
    try:
        schema = json.loads(source.content.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DefinitionError(f"表单文件不是有效的 JSON：{exc}", file=source.name) from exc
    problem = forms.check_schema(schema)
    if problem:
        raise DefinitionError(problem, file=source.name)
    reserved = forms.reserved_fields(schema)
    if reserved:
        raise DefinitionError(
            f"表单字段 {'、'.join(reserved)} 与脚本可用的函数或保留名同名，"
            "提交后会使后续脚本出错，请改用其他字段名",
            file=source.name,
        )
    return schema


def _check_template(source: SourceFile) -> None:
    """A document template must be a Word .docx (a zip holding word/document.xml)."""
    try:
        with zipfile.ZipFile(BytesIO(source.content)) as docx:
            docx.getinfo("word/document.xml")
    except (zipfile.BadZipFile, KeyError) as exc:
        raise DefinitionError("文书模板不是有效的 Word（.docx）文件", file=source.name) from exc


def _template_files(process_parsers: list[Any], bpmn_file: str, bundle: Bundle) -> set[str]:
    """Templates named by `render_document` service tasks: versioned with their process."""
    found = set()
    for process_parser in process_parsers:
        for node in process_parser.node.iter(f"{{{SPIFF_NS}}}serviceTaskOperator"):
            if node.get("id") != DOCUMENT_HANDLER:
                continue
            for param in node.iter(f"{{{SPIFF_NS}}}parameter"):
                if param.get("id") != "template":
                    continue
                element = node.getparent().getparent()
                names = _quoted_docx(param.get("value") or "")
                if not names:
                    raise DefinitionError(
                        "render_document 的 template 参数须写出带引号的 .docx 文件名",
                        file=bpmn_file,
                        element=element.get("id"),
                    )
                for name in names:
                    resolved = resolve_form(bpmn_file, name)
                    known = bundle.files.get(resolved)
                    if known is None or known.kind != "template":
                        raise DefinitionError(
                            f"服务任务“{element.get('name') or element.get('id')}”引用的文书模板"
                            f" {name} 不存在",
                            file=bpmn_file,
                            element=element.get("id"),
                        )
                    found.add(resolved)
    return found


def _quoted_docx(expression: str) -> list[str]:
    """Every quoted `.docx` name in a template expression (it may choose between several)."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        return []
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value.lower().endswith(".docx")
    ]


def _load_metadata(files: dict[str, SourceFile]) -> dict[str, Any]:
    meta = next((f for f in files.values() if f.kind == "meta"), None)
    if meta is None:
        return {}
    try:
        doc = tomllib.loads(meta.content.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise DefinitionError(f"部署配置有误：{exc}", file=meta.name) from exc
    # [defaults] applies to every process; a [process.<key>] section overrides it.
    defaults = doc.get("defaults", {})
    sections = doc.get("process", {})
    return {key: {**defaults, **sections.get(key, {})} for key in sections} | {"*": defaults}


def _parse_file(source: SourceFile) -> etree._Element:
    try:
        source.content.decode("utf-8")  # deployments store the files as text
    except UnicodeDecodeError as exc:
        raise DefinitionError(
            "文件不是 UTF-8 编码，请另存为 UTF-8 后重新部署", file=source.name
        ) from exc
    try:
        return parse_xml(source.content)
    except UnsafeXml as exc:
        raise DefinitionError(
            "文件包含 DOCTYPE 或实体声明，出于安全原因不予解析", file=source.name
        ) from exc
    except etree.XMLSyntaxError as exc:
        raise DefinitionError(
            f"XML 格式错误（第 {exc.lineno} 行）：{exc.msg}", file=source.name
        ) from exc


class _naming:
    """Turn SpiffWorkflow's ValidationException into a DefinitionError naming file and element."""

    def __init__(self, file: str | None = None) -> None:
        self.file = file

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: Any, _tb: Any) -> None:
        if isinstance(exc, ValidationException):
            element = getattr(exc, "id", "") or getattr(exc, "name", "") or None
            line = getattr(exc, "line_number", "")
            where = f"（第 {line} 行）" if line else ""
            message = str(exc).rstrip(". ").strip()
            raise DefinitionError(
                f"流程定义有误{where}：{_translate(message)}",
                file=getattr(exc, "file_name", "") or self.file,
                element=element,
            ) from exc
        return None


_KNOWN_MESSAGES = {
    "No start event found": "缺少开始事件",
    "Non-default exclusive outgoing sequence flow without condition": (
        "排他网关的非默认出口缺少条件"
    ),
}


def _translate(message: str) -> str:
    for english, chinese in _KNOWN_MESSAGES.items():
        if english in message:
            return f"{chinese}（{message}）"
    if "was not found" in message:
        return f"引用的流程不存在（{message}）"
    if "No DMN Diagram available" in message:
        return f"引用的决策表不存在（{message}）"
    return message


def _parse_process(
    parser: SpiffBpmnParser, key: str, bundle: Bundle, metadata: dict[str, Any]
) -> ParsedProcess:
    process_parser = parser.process_parsers[key]
    bpmn_file = process_parser.filename
    with _naming(bpmn_file):
        spec = parser.get_spec(key)
        subprocess_specs = parser.get_subprocess_specs(key)
    approval_steps.prepare(spec, subprocess_specs, bpmn_file)
    files = {bpmn_file}
    for sub_key in subprocess_specs:
        sub_parser = parser.process_parsers.get(sub_key)
        if sub_parser is not None and sub_parser.filename:
            files.add(sub_parser.filename)
    for name in list(files):
        files |= _decision_files(parser, parser_for_file(parser, name))
        files |= _template_files(parser_for_file(parser, name), name, bundle)
    for task_spec in _task_specs(spec, subprocess_specs):
        form = _form_property(task_spec)
        if form is None:
            continue
        resolved = resolve_form(bpmn_file_of(task_spec, bpmn_file), form)
        if resolved not in bundle.forms:
            raise DefinitionError(
                f"用户任务“{task_spec.bpmn_name or task_spec.bpmn_id}”引用的表单 {form} 不存在",
                file=bpmn_file_of(task_spec, bpmn_file),
                element=task_spec.bpmn_id,
            )
        files.add(resolved)
    section = metadata.get(key, metadata.get("*", {}))
    declared = section.get("start_roles")
    return ParsedProcess(
        key=key,
        name=process_parser.get_name() or key,
        bpmn_file=bpmn_file,
        spec=spec,
        subprocess_specs=subprocess_specs,
        files=files,
        start_roles=list(declared) if declared is not None else _start_lanes(spec),
        timer_starts=_timer_starts(spec),
        metadata=section,
    )


def parser_for_file(parser: SpiffBpmnParser, filename: str) -> list[Any]:
    return [p for p in parser.process_parsers.values() if p.filename == filename]


def _decision_files(parser: SpiffBpmnParser, process_parsers: list[Any]) -> set[str]:
    found = set()
    for process_parser in process_parsers:
        for node in process_parser.node.iter(f"{{{SPIFF_NS}}}calledDecisionId"):
            dmn = parser.dmn_parsers.get((node.text or "").strip())
            if dmn is not None and dmn.filename:
                found.add(dmn.filename)
    return found


def _task_specs(spec: Any, subprocess_specs: dict[str, Any]) -> list[Any]:
    specs = list(spec.task_specs.values())
    for sub in subprocess_specs.values():
        if sub is not None:
            specs.extend(sub.task_specs.values())
    return specs


def _form_property(task_spec: Any) -> str | None:
    extensions = getattr(task_spec, "extensions", None) or {}
    return (extensions.get("properties") or {}).get(FORM_PROPERTY)


def bpmn_file_of(task_spec: Any, default: str) -> str:
    return getattr(task_spec._wf_spec, "file", None) or default


def resolve_form(bpmn_file: str, form: str) -> str:
    """Form names are relative to the folder of the BPMN file that names them."""
    return (PurePosixPath(bpmn_file).parent / form).as_posix().removeprefix("./")


def _start_lanes(spec: Any) -> list[str]:
    lanes = {
        task_spec.lane
        for task_spec in spec.task_specs.values()
        if type(task_spec).__name__ == "StartEvent" and task_spec.lane
    }
    return sorted(lanes)


def _timer_starts(spec: Any) -> list[dict[str, str]]:
    found = []
    for task_spec in spec.task_specs.values():
        definition = getattr(task_spec, "event_definition", None)
        if type(task_spec).__name__ == "StartEvent" and isinstance(
            definition, TimerEventDefinition
        ):
            found.append(
                {
                    "element": task_spec.name,
                    "type": type(definition).__name__,
                    "expression": definition.expression,
                }
            )
    return found


# ---------------------------------------------------------------- deploying
@dataclass(frozen=True)
class DeployedVersion:
    key: str
    name: str
    version: int
    created: bool
    version_id: int


def deploy(
    session: Session, sources: list[SourceFile], now: Any, deployed_by: str | None, source: str
) -> tuple[Bundle, list[DeployedVersion]]:
    """Store every changed process as a new version. Same content twice → no new version."""
    bundle = validate_bundle(sources)
    deployment: Deployment | None = None
    results = []
    for key, parsed in sorted(bundle.processes.items()):
        content_hash = parsed.content_hash(bundle.files)
        latest = latest_version(session, key)
        if latest is not None and latest.content_hash == content_hash:
            results.append(DeployedVersion(key, latest.name, latest.version, False, latest.id))
            continue
        if deployment is None:
            deployment = _store_deployment(session, bundle, now, deployed_by, source)
        version = ProcessVersion(
            key=key,
            version=(latest.version + 1) if latest else 1,
            name=parsed.name,
            content_hash=content_hash,
            deployment_id=deployment.id,
            bpmn_file=parsed.bpmn_file,
            start_roles=parsed.start_roles,
            timer_starts=parsed.timer_starts,
            deployed_at=now,
        )
        session.add(version)
        session.flush()
        results.append(DeployedVersion(key, parsed.name, version.version, True, version.id))
    return bundle, results


def _store_deployment(
    session: Session, bundle: Bundle, now: Any, deployed_by: str | None, source: str
) -> Deployment:
    deployment = Deployment(deployed_at=now, deployed_by=deployed_by, source=source)
    session.add(deployment)
    session.flush()
    for file in bundle.files.values():
        session.add(
            DeploymentFile(
                deployment_id=deployment.id,
                name=file.name,
                kind=file.kind,
                content=stored_text(file.kind, file.content),
                sha256=file.sha256,
            )
        )
    return deployment


def stored_text(kind: str, content: bytes) -> str:
    """DeploymentFile.content is text: binary files (templates) are kept as base64."""
    return base64.b64encode(content).decode("ascii") if kind in BINARY_KINDS else content.decode()


def stored_bytes(kind: str, content: str) -> bytes:
    return base64.b64decode(content) if kind in BINARY_KINDS else content.encode("utf-8")


def latest_version(session: Session, key: str) -> ProcessVersion | None:
    newest = select(func.max(ProcessVersion.version)).where(ProcessVersion.key == key)
    return session.scalars(
        select(ProcessVersion).where(
            ProcessVersion.key == key, ProcessVersion.version == newest.scalar_subquery()
        )
    ).first()


# ------------------------------------------------------------------ caching
@dataclass(frozen=True)
class LoadedVersion:
    """A version's parsed spec and forms, shared read-only by every instance of it."""

    version_id: int
    key: str
    version: int
    spec: Any
    subprocess_specs: dict[str, Any]
    forms: dict[str, dict[str, Any]]
    bpmn_file: str
    settings: dict[str, Any] = field(default_factory=dict)  # its duban.toml section


class SpecCache:
    """Parsed specs per version id. Versions never change, so entries never go stale."""

    def __init__(self) -> None:
        self._versions: dict[int, LoadedVersion] = {}
        self._bundles: dict[int, Bundle] = {}
        self._lock = threading.Lock()

    def remember(self, deployment_id: int, bundle: Bundle) -> None:
        with self._lock:
            self._bundles[deployment_id] = bundle

    def get(self, session: Session, version_id: int) -> LoadedVersion:
        loaded = self._versions.get(version_id)
        if loaded is not None:
            return loaded
        version = session.get(ProcessVersion, version_id)
        if version is None:
            raise NotFound(f"流程版本 {version_id} 不存在")
        bundle = self._bundle(version.deployment)
        parsed = bundle.processes[version.key]
        loaded = LoadedVersion(
            version_id=version.id,
            key=version.key,
            version=version.version,
            spec=parsed.spec,
            subprocess_specs=parsed.subprocess_specs,
            forms=bundle.forms,
            bpmn_file=parsed.bpmn_file,
            settings=parsed.metadata,
        )
        with self._lock:
            self._versions[version_id] = loaded
        return loaded

    def _bundle(self, deployment: Deployment) -> Bundle:
        bundle = self._bundles.get(deployment.id)
        if bundle is None:
            sources = [
                SourceFile(f.name, f.kind, stored_bytes(f.kind, f.content))
                for f in deployment.files
            ]
            bundle = validate_bundle(sources)
            with self._lock:
                self._bundles[deployment.id] = bundle
        return bundle
