// The modeler page: bpmn-js Modeler (Chinese palette) + the properties panel + the other files;
// 保存草稿 → 检查 → 部署, with every problem pointing at its element in the diagram.
(function () {
  "use strict";
  var root = document.getElementById("designer");
  if (!root || !window.BpmnJS) return;
  var draft = JSON.parse(document.getElementById("draft-data").textContent);
  var files = draft.files;
  var bpmnFile = draft.bpmn_file;
  var api = root.dataset.api;
  var status = document.getElementById("designer-status");
  var deployButton = document.getElementById("deploy-draft");
  var problemsBox = document.getElementById("problems");
  var marked = [];
  var basedOn = draft.saved ? draft.updated_at : null;  // for the concurrent-edit check

  var modeler = new window.BpmnJS({
    container: "#canvas",
    additionalModules: [window.Duban.zhModule],
    moddleExtensions: { spiffworkflow: window.Duban.spiffModdle }
  });
  var editors = new window.Duban.FileEditors(document.getElementById("files"), files, {
    key: draft.key, bpmnFile: bpmnFile, onChange: changed
  });
  new window.Duban.PropertiesPanel(modeler, document.getElementById("props"), {
    formFiles: function () { return editors.formFiles(); }, onChange: changed
  });

  function say(text, kind) {
    status.textContent = text;
    status.className = "designer-status " + (kind || "");
  }

  function changed() {
    deployButton.disabled = true;
    root.dataset.dirty = "true";
  }

  function call(method, path, body) {
    var headers = { "X-CSRFToken": root.dataset.csrf, Accept: "application/json" };
    if (body) headers["Content-Type"] = "application/json";
    return fetch(api + path, {
      method: method, credentials: "same-origin", headers: headers,
      body: body ? JSON.stringify(body) : undefined
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) throw new Error(data.message || "请求失败（" + response.status + "）");
        return data;
      });
    });
  }

  function save() {
    return modeler.saveXML({ format: true }).then(function (result) {
      files[bpmnFile] = result.xml;
      return call("PUT", "/draft", { files: files, updated_at: basedOn });
    }).then(function (saved) {
      basedOn = saved.updated_at;
      root.dataset.dirty = "false";
    });
  }

  function clearMarks() {
    var canvas = modeler.get("canvas");
    marked.forEach(function (id) { canvas.removeMarker(id, "duban-problem"); });
    marked = [];
  }

  function showProblems(result) {
    clearMarks();
    var registry = modeler.get("elementRegistry");
    var canvas = modeler.get("canvas");
    var items = result.problems.map(function (p) {
      var onDiagram = p.element && p.file === bpmnFile && registry.get(p.element);
      if (onDiagram && marked.indexOf(p.element) < 0) {
        canvas.addMarker(p.element, "duban-problem");
        marked.push(p.element);
      }
      var where = (p.file || "") + (p.element ? " · " + p.element : "");
      var label = p.severity === "warning" ? "提醒" : "错误";
      return '<li class="' + p.severity + '">' + (onDiagram ? '<button type="button" class="link" data-element="' +
        p.element + '">' : "<span>") + label + "：" + escapeText(p.message) + ' <span class="sub">' + escapeText(where) +
        "</span>" + (onDiagram ? "</button>" : "</span>") + "</li>";
    });
    var scenarios = (result.scenarios || []).map(function (s) {
      return "<li>" + (s.ok ? "✔ 通过" : "✘ 失败") + "：" + escapeText(s.name) + "</li>";
    });
    var changes = result.changes;
    var summary = "";
    if (changes) {
      var names = function (list) {
        return list.filter(function (e) { return e.type !== "sequenceFlow"; })
          .map(function (e) { return escapeText(e.name || e.id); }).join("、") || "无";
      };
      summary = '<h2>与第 ' + changes.since_version + ' 版相比</h2><ul class="changes">' +
        "<li>新增：" + names(changes.added) + "</li><li>删除：" + names(changes.removed) +
        "</li><li>修改：" + names(changes.changed) + "</li></ul>";
    }
    problemsBox.innerHTML = summary + (items.length ? '<h2>检查发现的问题</h2><ul class="problems">' + items.join("") + "</ul>" : "") +
      (scenarios.length ? '<h2>场景测试</h2><ul class="scenarios">' + scenarios.join("") + "</ul>" : "");
  }

  function escapeText(text) {
    var div = document.createElement("div");
    div.textContent = text == null ? "" : String(text);
    return div.innerHTML;
  }

  window.addEventListener("beforeunload", function (event) {
    if (root.dataset.dirty === "true") {
      event.preventDefault();
      event.returnValue = "";
    }
  });

  problemsBox.addEventListener("click", function (event) {
    var id = event.target.closest("[data-element]");
    if (!id) return;
    var element = modeler.get("elementRegistry").get(id.dataset.element);
    if (!element) return;
    modeler.get("selection").select(element);
    modeler.get("canvas").scrollToElement(element);
  });

  document.getElementById("save-draft").addEventListener("click", function () {
    say("正在保存…");
    save().then(function () { say("草稿已保存", "ok"); }).catch(function (err) { say(err.message, "error"); });
  });

  document.getElementById("check-draft").addEventListener("click", function () {
    say("正在保存并检查（含场景测试，可能需要几秒）…");
    save().then(function () { return call("POST", "/draft/check"); }).then(function (result) {
      showProblems(result);
      deployButton.disabled = !result.ok;
      root.dataset.checked = result.ok ? "ok" : "failed";
      say(result.ok ? "检查通过，可以部署" : "检查未通过：" + result.problems.filter(function (p) {
        return p.severity === "error";
      }).length + " 个问题", result.ok ? "ok" : "error");
    }).catch(function (err) { say(err.message, "error"); });
  });

  deployButton.addEventListener("click", function () {
    say("正在部署…");
    call("POST", "/draft/deploy").then(function (result) {
      deployButton.disabled = true;
      basedOn = null;  // the deployed draft is used up
      say(result.created ? "已部署为第 " + result.version + " 版" : "内容与第 " + result.version + " 版相同，未产生新版本", "ok");
    }).catch(function (err) { say(err.message, "error"); });
  });

  modeler.importXML(files[bpmnFile]).then(function (result) {
    modeler.get("canvas").zoom("fit-viewport", "auto");
    modeler.on("commandStack.changed", changed);
    if (result.warnings && result.warnings.length) say("流程图导入时有 " + result.warnings.length + " 条提醒", "warn");
    if (draft.check && draft.checked_current) {
      showProblems(draft.check);
      deployButton.disabled = !draft.check.ok;
    }
    root.dataset.ready = "true";
  }).catch(function (err) {
    say("流程图无法打开：" + err.message, "error");
  });
})();
