"""流程设计: processes and versions, the modeler (save draft → check → deploy), diff, migration.

The pages are thin over the engine's designer commands; the modeler page talks to the small
JSON endpoints below (same session, CSRF header), which call the same engine functions as the
API in webui/api/designer.py. Only 流程设计员 and 系统管理员 get anything (the engine refuses
everyone else).
"""

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from engine import Engine, InvalidData

from .auth import current_username, login_required
from .extensions import get_engine

bp = Blueprint("designer", __name__, url_prefix="/designer")

NEW_PROCESS_FORM = """{
  "title": "填写",
  "type": "object",
  "properties": {
    "note": {"title": "说明", "type": "string"}
  }
}
"""


TYPE_NAMES = {
    "userTask": "用户任务",
    "manualTask": "人工任务",
    "serviceTask": "服务任务",
    "scriptTask": "脚本任务",
    "businessRuleTask": "业务规则任务",
    "callActivity": "调用活动",
    "subProcess": "子流程",
    "startEvent": "开始事件",
    "endEvent": "结束事件",
    "boundaryEvent": "边界事件",
    "intermediateCatchEvent": "中间事件",
    "intermediateThrowEvent": "中间事件",
    "exclusiveGateway": "排他网关",
    "parallelGateway": "并行网关",
    "inclusiveGateway": "包容网关",
    "eventBasedGateway": "事件网关",
    "sequenceFlow": "连线",
    "lane": "泳道",
}


def _engine() -> Engine:
    return get_engine(current_app)


# ------------------------------------------------------------------- pages
@bp.get("")
@login_required
def index() -> str:
    return render_template(
        "designer/index.html", processes=_engine().designer_processes(current_username())
    )


@bp.post("/new")
@login_required
def new() -> Response:
    key = request.form.get("key", "").strip()
    name = request.form.get("name", "").strip() or key
    engine = _engine()
    if any(p["key"] == key for p in engine.designer_processes(current_username())):
        flash(f"流程 {key} 已存在，请直接编辑", "error")
        return redirect(url_for("designer.index"))
    try:
        engine.save_draft(key, new_process_files(key, name), user=current_username())
    except InvalidData as exc:
        flash(exc.message, "error")
        return redirect(url_for("designer.index"))
    return redirect(url_for("designer.modeler", key=key))


@bp.get("/<key>")
@login_required
def modeler(key: str) -> str:
    draft = _engine().draft(key, current_username())
    roles = _engine().designer_roles(current_username())
    return render_template("designer/modeler.html", key=key, draft=draft, roles=roles)


@bp.post("/<key>/discard")
@login_required
def discard(key: str) -> Response:
    _engine().discard_draft(key, user=current_username())
    flash(f"已放弃流程 {key} 的草稿", "ok")
    return redirect(url_for("designer.index"))


@bp.get("/<key>/diff")
@login_required
def diff(key: str) -> str:
    engine = _engine()
    versions = engine.process_versions(key, current_username())["versions"]
    numbers = [v["version"] for v in versions]
    new = request.args.get("new", type=int) or (numbers[-1] if numbers else 0)
    old = request.args.get("old", type=int) or (new - 1 if new > 1 else new)
    result = engine.diff_versions(key, old, new, current_username()) if numbers else None
    return render_template(
        "designer/diff.html",
        key=key,
        numbers=numbers,
        old=old,
        new=new,
        diff=result,
        type_names=TYPE_NAMES,
    )


@bp.get("/<key>/migrate")
@login_required
def migrate(key: str) -> str:
    engine = _engine()
    numbers = [v["version"] for v in engine.process_versions(key, current_username())["versions"]]
    check = engine.migration_check(
        key, to_version=request.args.get("to", type=int), user=current_username()
    )
    return render_template("designer/migrate.html", key=key, check=check, numbers=numbers)


@bp.post("/<key>/migrate")
@login_required
def migrate_post(key: str) -> Response:
    ids = [int(i) for i in request.form.getlist("instance") if i.isdigit()]
    if not ids:
        flash("请先勾选要迁移的实例", "error")
        return redirect(url_for("designer.migrate", key=key))
    reason = request.form.get("reason", "").strip() or None
    to = request.form.get("to", type=int)
    results = _engine().migrate_instances(
        ids, to_version=to, user=current_username(), reason=reason
    )
    moved = [r for r in results if r["migrated"]]
    flash(f"已迁移 {len(moved)} 个实例，{len(results) - len(moved)} 个未迁移", "ok")
    for result in results:
        if not result["migrated"]:
            flash(f"实例 {result['instance_id']} 未迁移：{'；'.join(result['reasons'])}", "error")
    return redirect(url_for("designer.migrate", key=key, to=to))


# ------------------------------------------------------------------ helpers
def new_process_files(key: str, name: str) -> dict[str, str]:
    """A first draft: start → one step (指挥办工作人员) → end, with its form and DI."""
    form = f"forms/{key}/fill.json"
    ns = (
        'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" '
        'xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" '
        'xmlns:di="http://www.omg.org/spec/DD/20100524/DI" '
        'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"'
    )
    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions {ns} id="Definitions_{key}" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:collaboration id="collab_{key}">
    <bpmn:participant id="pool_{key}" name="{_xml(name)}" processRef="{key}"/>
  </bpmn:collaboration>
  <bpmn:process id="{key}" name="{_xml(name)}" isExecutable="true">
    <bpmn:laneSet id="lanes_{key}">
      <bpmn:lane id="lane_staff" name="指挥办工作人员">
        <bpmn:flowNodeRef>start</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>fill</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>end</bpmn:flowNodeRef>
      </bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="start" name="发起"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="fill" name="填写">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="formJsonSchemaFilename" value="{form}"/>
        <spiffworkflow:property name="dueInWorkdays" value="3"/>
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="end" name="结束"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="fill"/>
    <bpmn:sequenceFlow id="f2" sourceRef="fill" targetRef="end"/>
  </bpmn:process>
  <bpmndi:BPMNDiagram id="diagram_{key}">
    <bpmndi:BPMNPlane id="plane_{key}" bpmnElement="collab_{key}">
      <bpmndi:BPMNShape id="pool_{key}_di" bpmnElement="pool_{key}" isHorizontal="true">
        <dc:Bounds x="100" y="80" width="560" height="150"/>
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="lane_staff_di" bpmnElement="lane_staff" isHorizontal="true">
        <dc:Bounds x="130" y="80" width="530" height="150"/>
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="start_di" bpmnElement="start"><dc:Bounds x="180" y="137" width="36" height="36"/></bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="fill_di" bpmnElement="fill"><dc:Bounds x="300" y="115" width="100" height="80"/></bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="end_di" bpmnElement="end"><dc:Bounds x="500" y="137" width="36" height="36"/></bpmndi:BPMNShape>
      <bpmndi:BPMNEdge id="f1_di" bpmnElement="f1"><di:waypoint x="216" y="155"/><di:waypoint x="300" y="155"/></bpmndi:BPMNEdge>
      <bpmndi:BPMNEdge id="f2_di" bpmnElement="f2"><di:waypoint x="400" y="155"/><di:waypoint x="500" y="155"/></bpmndi:BPMNEdge>
    </bpmndi:BPMNPlane>
  </bpmndi:BPMNDiagram>
</bpmn:definitions>
"""  # noqa: E501 (DI lines read best whole)
    return {f"{key}.bpmn": xml, form: NEW_PROCESS_FORM}


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
