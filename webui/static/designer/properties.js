// The designer's properties panel: what this engine reads from a diagram (processes/README.md).
// Lane = role; user tasks: form, unit, assignee, due date in working days, reminders (boundary
// timers that 催办), CC, approval mode (会签/或签), return targets, pre/post scripts; script
// tasks, conditions on flows, timer expressions, service-task parameters.
(function () {
  "use strict";
  var SPIFF = "spiffworkflow:";
  var HUMAN = ["bpmn:UserTask", "bpmn:ManualTask"];

  function esc(text) {
    return String(text == null ? "" : text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function PropertiesPanel(modeler, box, options) {
    this.modeler = modeler;
    this.box = box;
    this.options = options;
    this.modeling = modeler.get("modeling");
    this.moddle = modeler.get("moddle");
    this.registry = modeler.get("elementRegistry");
    this.current = null;
    var self = this;
    modeler.on("selection.changed", function (event) {
      self.current = event.newSelection.length === 1 ? event.newSelection[0] : null;
      self.render();
    });
    modeler.on("element.changed", function (event) {
      if (self.current && event.element.id === self.current.id && !self.applying) self.render();
    });
    box.addEventListener("change", function (event) { self.onChange(event.target); });
    box.addEventListener("click", function (event) {
      var action = event.target.dataset.action;
      if (action === "add-reminder") self.addReminder();
      if (action === "make-multi" || action === "make-single") self.setMulti(action === "make-multi");
    });
    this.render();
  }

  // ------------------------------------------------------------- model access
  PropertiesPanel.prototype.ext = function (bo, type) {
    var values = (bo.extensionElements && bo.extensionElements.values) || [];
    return values.filter(function (v) { return v.$type === type; })[0];
  };

  PropertiesPanel.prototype.prop = function (bo, name) {
    var props = this.ext(bo, SPIFF + "Properties");
    var found = ((props && props.properties) || []).filter(function (p) { return p.name === name; })[0];
    return found ? found.value || "" : "";
  };

  PropertiesPanel.prototype.extensions = function (bo) {
    var ext = bo.extensionElements;
    if (!ext) {
      ext = this.moddle.create("bpmn:ExtensionElements", { values: [] });
      ext.$parent = bo;
    }
    return ext;
  };

  PropertiesPanel.prototype.setProp = function (element, name, value) {
    var bo = element.businessObject;
    var ext = this.extensions(bo);
    var props = this.ext(bo, SPIFF + "Properties");
    if (!props) {
      props = this.moddle.create(SPIFF + "Properties", { properties: [] });
      props.$parent = ext;
      ext.get("values").push(props);
    }
    var kept = (props.properties || []).filter(function (p) { return p.name !== name; });
    if (value) {
      var created = this.moddle.create(SPIFF + "Property", { name: name, value: value });
      created.$parent = props;
      kept.push(created);
    }
    props.properties = kept;
    this.modeling.updateProperties(element, { extensionElements: ext });
  };

  PropertiesPanel.prototype.setScript = function (element, type, value) {
    var bo = element.businessObject;
    var ext = this.extensions(bo);
    var values = ext.get("values").filter(function (v) { return v.$type !== type; });
    if (value) {
      var created = this.moddle.create(type, { value: value });
      created.$parent = ext;
      values.push(created);
    }
    ext.values = values;
    this.modeling.updateProperties(element, { extensionElements: ext });
  };

  PropertiesPanel.prototype.laneOf = function (element) {
    var bo = element.businessObject;
    var lane = this.registry.filter(function (e) {
      return e.type === "bpmn:Lane" && (e.businessObject.flowNodeRef || []).indexOf(bo) >= 0;
    })[0];
    return lane ? lane.businessObject.name || lane.id : "";
  };

  PropertiesPanel.prototype.timerOf = function (element) {
    var defs = element.businessObject.eventDefinitions || [];
    return defs.filter(function (d) { return d.$type === "bpmn:TimerEventDefinition"; })[0];
  };

  PropertiesPanel.prototype.timerText = function (def) {
    var kinds = ["timeDate", "timeDuration", "timeCycle"];
    for (var i = 0; i < kinds.length; i++) {
      if (def[kinds[i]]) return { kind: kinds[i], body: def[kinds[i]].body || "" };
    }
    return { kind: "timeDate", body: "" };
  };

  // ------------------------------------------------------------------ rendering
  function field(id, label, value, hint, kind) {
    var control = kind === "textarea"
      ? '<textarea id="' + id + '" data-key="' + id + '" rows="4" spellcheck="false">' + esc(value) + "</textarea>"
      : '<input id="' + id + '" data-key="' + id + '" value="' + esc(value) + '"' +
        (kind === "number" ? ' inputmode="numeric"' : "") + (kind === "roles" ? ' list="designer-roles"' : "") + ">";
    return '<div class="field"><label for="' + id + '">' + label + "</label>" + control +
      (hint ? '<span class="hint">' + hint + "</span>" : "") + "</div>";
  }

  function select(id, label, value, choices) {
    var options = choices.map(function (c) {
      return '<option value="' + esc(c[0]) + '"' + (c[0] === value ? " selected" : "") + ">" + esc(c[1]) + "</option>";
    }).join("");
    return '<div class="field"><label for="' + id + '">' + label + '</label><select id="' + id +
      '" data-key="' + id + '">' + options + "</select></div>";
  }

  PropertiesPanel.prototype.render = function () {
    var element = this.current;
    if (!element || element.type === "label") {
      this.box.innerHTML = '<p class="hint">在图中选择一个元素，编辑它的属性。</p>';
      return;
    }
    var bo = element.businessObject;
    var html = "<h3>" + esc(bo.name || element.id) + ' <span class="tag">' + esc(element.type.replace("bpmn:", "")) +
      "</span></h3>" + '<p class="hint">标识：' + esc(element.id) + "</p>";
    if (element.type === "bpmn:Lane") {
      html += field("prop-name", "角色（泳道名称）", bo.name, "泳道名称即办理角色，须是目录中已有的角色", "roles");
    } else {
      html += field("prop-name", "名称", bo.name);
    }
    if (HUMAN.indexOf(element.type) >= 0) html += this.humanFields(element);
    if (element.type === "bpmn:ScriptTask") {
      html += field("prop-script", "脚本（Python）", bo.script, "在沙箱中运行：不能 import，不能用下划线开头的名字", "textarea");
    }
    if (element.type === "bpmn:SequenceFlow") {
      var condition = bo.conditionExpression ? bo.conditionExpression.body : "";
      html += field("prop-condition", "条件表达式", condition, "例如 decision == 'approve'；默认流不需要条件", "textarea");
    }
    var timer = this.timerOf(element);
    if (timer) {
      var t = this.timerText(timer);
      html += select("prop-timer-kind", "定时方式", t.kind,
        [["timeDate", "到期时间"], ["timeDuration", "等待时长"], ["timeCycle", "周期"]]);
      html += field("prop-timer", "定时表达式", t.body, "例如 workdays_after(2) 或 \"P3D\"（字面量须加引号）");
    }
    if (element.type === "bpmn:ServiceTask") html += this.serviceFields(bo);
    if (/Task$|CallActivity|SubProcess/.test(element.type)) {
      html += field("prop-preScript", "前置脚本", (this.ext(bo, SPIFF + "PreScript") || {}).value, "", "textarea");
      html += field("prop-postScript", "后置脚本", (this.ext(bo, SPIFF + "PostScript") || {}).value, "", "textarea");
    }
    this.box.innerHTML = html;
  };

  PropertiesPanel.prototype.humanFields = function (element) {
    var bo = element.businessObject;
    var self = this;
    var forms = this.options.formFiles();
    var formValue = this.prop(bo, "formJsonSchemaFilename");
    var choices = [["", "（无表单）"]].concat(forms.map(function (f) { return [f, f]; }));
    if (formValue && forms.indexOf(formValue) < 0) choices.push([formValue, formValue + "（文件不存在）"]);
    var html = '<p class="hint">所在泳道（办理角色）：<strong>' + esc(this.laneOf(element) || "无（须放入泳道）") + "</strong></p>";
    html += select("prop-formJsonSchemaFilename", "表单文件", formValue, choices);
    html += field("prop-unit", "单位（表达式）", this.prop(bo, "unit"), "把泳道角色限定到某单位，例如 lead_unit");
    html += field("prop-assignee", "办理人", this.prop(bo, "assignee"), "initiator（发起人）或给出用户名的表达式");
    html += field("prop-dueInWorkdays", "办理时限（工作日）", this.prop(bo, "dueInWorkdays"), "任务出现后 N 个工作日到期", "number");
    html += field("prop-dueDate", "截止时间（表达式）", this.prop(bo, "dueDate"), "例如 deadline");
    var loop = bo.loopCharacteristics;
    if (loop && loop.$type === "bpmn:MultiInstanceLoopCharacteristics") {
      html += '<fieldset class="field"><legend>多人审批（会签/或签）</legend>';
      html += field("prop-mi-input", "审批人列表（变量）", loop.loopDataInputRef ? loop.loopDataInputRef.id : "",
        "流程数据中的用户名列表，每人一个任务，例如 approvers");
      html += field("prop-mi-item", "单个审批人（变量）", loop.inputDataItem ? loop.inputDataItem.id : "",
        "每个任务里代表本人的变量，同时作为办理人，例如 approver");
      html += select("prop-approvalMode", "审批方式", this.prop(bo, "approvalMode") || "all",
        [["all", "会签（全部同意）"], ["any", "或签（一人同意即可）"]]);
      html += '<button type="button" data-action="make-single">改为单人办理</button></fieldset>';
    } else {
      html += '<p><button type="button" data-action="make-multi">设为多人审批（会签/或签）</button></p>';
    }
    var targets = this.prop(bo, "returnTargets").split(/[,，]/).map(function (s) { return s.trim(); });
    var steps = this.registry.filter(function (e) {
      return HUMAN.indexOf(e.type) >= 0 && e.id !== element.id;
    });
    html += '<fieldset class="field"><legend>可退回到的步骤</legend>' + (steps.length ? steps.map(function (e) {
      return '<label class="check"><input type="checkbox" data-key="prop-returnTarget" value="' + esc(e.id) + '"' +
        (targets.indexOf(e.id) >= 0 ? " checked" : "") + "> " + esc(e.businessObject.name || e.id) + "</label>";
    }).join("") : '<span class="hint">没有其他人工步骤</span>') +
      '<span class="hint">上一步和发起人的步骤总是可以退回</span></fieldset>';
    html += field("prop-ccUsers", "抄送人（表达式）", this.prop(bo, "ccUsers"), "给出用户名或用户名列表的表达式");
    html += field("prop-ccRoles", "抄送角色", this.prop(bo, "ccRoles"), "逗号分隔的角色", "roles");
    html += field("prop-urgeRoles", "可催办角色", this.prop(bo, "urgeRoles"), "逗号分隔的角色", "roles");
    html += field("prop-transferRoles", "可转办/委派给的角色", this.prop(bo, "transferRoles"),
      "逗号分隔的角色；本泳道角色总是可以；角色@unit 限本环节单位", "roles");
    var reminders = (element.attachers || []).filter(function (a) { return self.timerOf(a); });
    html += '<fieldset class="field"><legend>超时提醒（定时边界事件）</legend>';
    html += reminders.length ? "<ul>" + reminders.map(function (r) {
      return "<li>" + esc(r.businessObject.name || r.id) + "：<code>" + esc(self.timerText(self.timerOf(r)).body) + "</code></li>";
    }).join("") + "</ul>" : '<span class="hint">尚无提醒</span>';
    html += '<label for="prop-reminder-days">新提醒：超过几个工作日未办</label>' +
      '<input id="prop-reminder-days" value="2" inputmode="numeric">' +
      '<button type="button" data-action="add-reminder">添加超时催办</button></fieldset>';
    return html;
  };

  PropertiesPanel.prototype.serviceFields = function (bo) {
    var operator = this.ext(bo, SPIFF + "ServiceTaskOperator");
    if (!operator) return '<p class="hint">未指定处理程序（serviceTaskOperator）</p>';
    var html = field("prop-operator", "处理程序", operator.id, "start_process、record_item、notify、urge、list_units、item_report…");
    html += field("prop-resultVariable", "结果变量", operator.resultVariable);
    var params = (operator.parameters && operator.parameters.parameters) || [];
    params.forEach(function (p, index) {
      html += field("prop-param-" + index, "参数 " + esc(p.id), p.value, "表达式");
    });
    return html;
  };

  // ------------------------------------------------------------------- editing
  PropertiesPanel.prototype.onChange = function (input) {
    var element = this.current;
    var key = input.dataset.key;
    if (!element || !key) return;
    var value = input.value.trim();
    var bo = element.businessObject;
    this.applying = true;
    try {
      if (key === "prop-name") {
        this.modeling.updateLabel(element, input.value);
        this.box.querySelector("h3").firstChild.textContent = (input.value || element.id) + " ";
      }
      else if (key === "prop-script") this.modeling.updateProperties(element, { scriptFormat: "python", script: input.value });
      else if (key === "prop-condition") {
        this.modeling.updateProperties(element, {
          conditionExpression: value ? this.moddle.create("bpmn:FormalExpression", { body: value }) : undefined
        });
      } else if (key === "prop-timer" || key === "prop-timer-kind") this.applyTimer(element);
      else if (key === "prop-preScript") this.setScript(element, SPIFF + "PreScript", input.value);
      else if (key === "prop-postScript") this.setScript(element, SPIFF + "PostScript", input.value);
      else if (key === "prop-returnTarget") {
        var checked = Array.prototype.slice.call(this.box.querySelectorAll('[data-key="prop-returnTarget"]:checked'));
        this.setProp(element, "returnTargets", checked.map(function (c) { return c.value; }).join(","));
      } else if (key === "prop-operator" || key === "prop-resultVariable" || key.indexOf("prop-param-") === 0) {
        this.applyOperator(element, key, value);
      } else if (key === "prop-mi-input" || key === "prop-mi-item") {
        this.applyMulti(element, key, value);
      } else if (key !== "prop-reminder-days") {
        this.setProp(element, key.replace("prop-", ""), value);
      }
    } finally {
      this.applying = false;
    }
    if (bo && this.options.onChange) this.options.onChange();
  };

  PropertiesPanel.prototype.applyTimer = function (element) {
    var def = this.timerOf(element);
    var kind = this.box.querySelector("#prop-timer-kind").value;
    var body = this.box.querySelector("#prop-timer").value.trim();
    var update = { timeDate: undefined, timeDuration: undefined, timeCycle: undefined };
    update[kind] = this.moddle.create("bpmn:FormalExpression", { body: body });
    this.modeling.updateModdleProperties(element, def, update);
  };

  PropertiesPanel.prototype.applyOperator = function (element, key, value) {
    var operator = this.ext(element.businessObject, SPIFF + "ServiceTaskOperator");
    if (key === "prop-operator") this.modeling.updateModdleProperties(element, operator, { id: value });
    else if (key === "prop-resultVariable") this.modeling.updateModdleProperties(element, operator, { resultVariable: value });
    else {
      var param = operator.parameters.parameters[Number(key.replace("prop-param-", ""))];
      this.modeling.updateModdleProperties(element, param, { value: value });
    }
  };

  // 会签/或签: a parallel multi-instance user task over a list of usernames (processes/README.md).
  PropertiesPanel.prototype.setMulti = function (on) {
    var element = this.current;
    var loop = on ? this.modeler.get("bpmnFactory").create("bpmn:MultiInstanceLoopCharacteristics") : undefined;
    this.modeling.updateProperties(element, { loopCharacteristics: loop });
    if (!on) this.setProp(element, "approvalMode", "");
    if (this.options.onChange) this.options.onChange();
  };

  PropertiesPanel.prototype.applyMulti = function (element, key, value) {
    var bo = element.businessObject;
    var loop = bo.loopCharacteristics;
    if (key === "prop-mi-input") {
      // The collection is declared on the task as a bpmn:property, so the reference resolves.
      var declared = (bo.get("properties") || []).slice();
      var found = declared.filter(function (p) { return p.id === value; })[0];
      if (value && !found) {
        found = this.moddle.create("bpmn:Property", { id: value, name: value });
        found.$parent = bo;
        declared.push(found);
        this.modeling.updateModdleProperties(element, bo, { properties: declared });
      }
      this.modeling.updateModdleProperties(element, loop, { loopDataInputRef: value ? found : undefined });
    } else {
      var item;
      if (value) {
        item = this.moddle.create("bpmn:DataInput", { id: value, name: value });
        item.$parent = loop;
      }
      this.modeling.updateModdleProperties(element, loop, { inputDataItem: item });
      this.setProp(element, "assignee", value);
    }
  };

  // A reminder: a non-interrupting boundary timer → a 催办 service task (handler `urge`) → end.
  PropertiesPanel.prototype.addReminder = function () {
    var host = this.current;
    var days = parseInt(this.box.querySelector("#prop-reminder-days").value, 10);
    if (!host || !(days > 0)) return;
    var moddle = this.moddle;
    var factory = this.modeler.get("elementFactory");
    var autoPlace = this.modeler.get("autoPlace");
    var bpmnFactory = this.modeler.get("bpmnFactory");  // it gives new elements their ids
    var boundaryBo = bpmnFactory.create("bpmn:BoundaryEvent", { cancelActivity: false, attachedToRef: host.businessObject });
    var timer = bpmnFactory.create("bpmn:TimerEventDefinition", {
      timeDate: moddle.create("bpmn:FormalExpression", { body: "workdays_after(" + days + ")" })
    });
    timer.$parent = boundaryBo;
    boundaryBo.eventDefinitions = [timer];
    var boundary = this.modeling.createShape(
      factory.createShape({ type: "bpmn:BoundaryEvent", businessObject: boundaryBo }),
      { x: host.x + host.width - 18, y: host.y + host.height }, host, { attach: true });
    this.modeling.updateLabel(boundary, "超时" + days + "个工作日");
    var urge = autoPlace.append(boundary, factory.createShape({ type: "bpmn:ServiceTask" }));
    var title = host.businessObject.name || host.id;
    var operator = moddle.create(SPIFF + "ServiceTaskOperator", { id: "urge", resultVariable: "urged" });
    var params = moddle.create(SPIFF + "Parameters", { parameters: [
      moddle.create(SPIFF + "Parameter", { id: "task", type: "str", value: "'" + host.id + "'" }),
      moddle.create(SPIFF + "Parameter", { id: "message", type: "str", value: "'“" + title + "”已超过" + days + "个工作日，请尽快办理。'" })
    ] });
    operator.parameters = params;
    var ext = moddle.create("bpmn:ExtensionElements", { values: [operator] });
    this.modeling.updateProperties(urge, { name: "催办" + title, extensionElements: ext });
    autoPlace.append(urge, factory.createShape({ type: "bpmn:EndEvent" }));
    this.modeler.get("selection").select(host);
    if (this.options.onChange) this.options.onChange();
  };

  window.Duban = window.Duban || {};
  window.Duban.PropertiesPanel = PropertiesPanel;
})();
