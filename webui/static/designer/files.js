// The draft's other files beside the diagram: JSON Schema forms with a live preview of the
// rendered form, DMN decision tables as an editable table, scenarios and settings as text.
(function () {
  "use strict";

  function esc(text) {
    return String(text == null ? "" : text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function kindOf(name) {
    if (/\.scenarios\.yaml$/.test(name)) return "scenario";
    if (/(^|\/)duban\.toml$/.test(name)) return "meta";
    if (/\.json$/.test(name)) return "form";
    if (/\.dmn$/.test(name)) return "dmn";
    if (/\.bpmn$/.test(name)) return "bpmn";
    if (/\.docx$/.test(name)) return "template";
    return "other";
  }

  // ------------------------------------------------------------ form preview
  function control(key, prop, required) {
    var id = "pv-" + key;
    var label = '<label for="' + id + '">' + esc(prop.title || key) + (required ? '<span class="req">*</span>' : "") + "</label>";
    var choices = prop["enum"] ? prop["enum"].map(function (v) { return [v, v]; })
      : prop.oneOf ? prop.oneOf.map(function (o) { return [o["const"], o.title || o["const"]]; }) : null;
    var input;
    if (choices) {
      input = '<select id="' + id + '"><option value="">请选择</option>' + choices.map(function (c) {
        return "<option>" + esc(c[1]) + "</option>";
      }).join("") + "</select>";
    } else if (prop.type === "boolean") {
      input = '<input type="checkbox" id="' + id + '">';
    } else if (prop.type === "integer" || prop.type === "number") {
      input = '<input type="number" id="' + id + '"' + (prop.minimum != null ? ' min="' + prop.minimum + '"' : "") +
        (prop.maximum != null ? ' max="' + prop.maximum + '"' : "") + ">";
    } else if (prop.type === "array") {
      input = '<span class="hint">（列表，办理时可逐项添加）</span>';
    } else if (prop.format === "date") {
      input = '<input type="date" id="' + id + '">';
    } else if (prop.format === "textarea" || (prop.maxLength || 0) > 200) {
      input = '<textarea id="' + id + '" rows="3"></textarea>';
    } else {
      input = '<input id="' + id + '">';
    }
    return '<div class="field">' + label + input + (prop.description ? '<span class="hint">' + esc(prop.description) + "</span>" : "") + "</div>";
  }

  function renderForm(text) {
    var schema;
    try {
      schema = JSON.parse(text);
    } catch (err) {
      return '<p class="notice error">JSON 格式错误：' + esc(err.message) + "</p>";
    }
    var required = schema.required || [];
    var props = schema.properties || {};
    return "<h4>" + esc(schema.title || "（表单无标题）") + "</h4>" + Object.keys(props).map(function (key) {
      return control(key, props[key] || {}, required.indexOf(key) >= 0);
    }).join("");
  }

  // ------------------------------------------------------------- DMN tables
  function DmnTable(box, text, onChange) {
    this.box = box;
    this.onChange = onChange;
    this.doc = new DOMParser().parseFromString(text, "application/xml");
    this.render();
    var self = this;
    box.addEventListener("change", function (event) { self.edit(event.target); });
    box.addEventListener("click", function (event) {
      var action = event.target.dataset.action;
      if (action === "add-rule") self.addRule();
      if (action === "delete-rule") self.deleteRule(Number(event.target.dataset.row));
    });
  }

  DmnTable.prototype.all = function (node, name) {
    return Array.prototype.slice.call(node.getElementsByTagNameNS("*", name));
  };

  DmnTable.prototype.table = function () { return this.all(this.doc, "decisionTable")[0]; };

  DmnTable.prototype.render = function () {
    var table = this.table();
    if (!table || this.all(this.doc, "parsererror").length) {
      this.box.innerHTML = '<p class="notice error">无法读取决策表（DMN XML 有误）</p>';
      return;
    }
    var self = this;
    var inputs = this.all(table, "input").map(function (i) {
      var expr = self.all(i, "text")[0];
      return (i.getAttribute("label") || "") + (expr ? "（" + expr.textContent + "）" : "");
    });
    var outputs = this.all(table, "output").map(function (o) { return o.getAttribute("label") || o.getAttribute("name") || ""; });
    var html = '<table class="dmn"><thead><tr><th>#</th><th>说明</th>' + inputs.map(function (t) { return '<th class="in">当 ' + esc(t) + "</th>"; }).join("") +
      outputs.map(function (t) { return '<th class="out">则 ' + esc(t) + "</th>"; }).join("") + "<th></th></tr></thead><tbody>";
    this.all(table, "rule").forEach(function (rule, row) {
      var note = self.all(rule, "description")[0];
      html += "<tr><th>" + (row + 1) + '</th><td><input aria-label="规则' + (row + 1) + '说明" data-row="' + row +
        '" data-desc="1" value="' + esc(note ? note.textContent : "") + '"></td>';
      self.cells(rule).forEach(function (cell, col) {
        html += '<td><input aria-label="规则' + (row + 1) + "第" + (col + 1) + '列" data-row="' + row + '" data-col="' + col +
          '" value="' + esc(cell.textContent) + '"></td>';
      });
      html += '<td><button type="button" data-action="delete-rule" data-row="' + row + '">删除</button></td></tr>';
    });
    html += '</tbody></table><button type="button" data-action="add-rule">添加规则</button>' +
      '<p class="hint">单元格是 Python 表达式：? 代表输入值（如 ? &gt;= 90），- 表示任意值，文字须加引号（如 \'优秀\'）；规则自上而下取第一条命中的。</p>';
    this.box.innerHTML = html;
  };

  DmnTable.prototype.cells = function (rule) {
    var self = this;
    return this.all(rule, "inputEntry").concat(this.all(rule, "outputEntry")).map(function (entry) {
      return self.all(entry, "text")[0] || entry;
    });
  };

  DmnTable.prototype.save = function () {
    this.onChange(new XMLSerializer().serializeToString(this.doc));
  };

  DmnTable.prototype.edit = function (input) {
    if (input.dataset.row === undefined) return;
    var rule = this.all(this.table(), "rule")[Number(input.dataset.row)];
    if (input.dataset.desc) {
      var note = this.all(rule, "description")[0];
      if (!note) {
        note = this.doc.createElementNS(rule.namespaceURI, "description");
        rule.insertBefore(note, rule.firstChild);
      }
      note.textContent = input.value;
      this.save();
      return;
    }
    if (input.dataset.col === undefined) return;
    this.cells(rule)[Number(input.dataset.col)].textContent = input.value;
    this.save();
  };

  DmnTable.prototype.addRule = function () {
    var rules = this.all(this.table(), "rule");
    if (!rules.length) return;
    var copy = rules[rules.length - 1].cloneNode(true);
    var stamp = Date.now().toString(36);
    copy.setAttribute("id", "rule_" + stamp);
    this.all(copy, "*").forEach(function (node, index) {
      if (node.getAttribute("id")) node.setAttribute("id", "entry_" + stamp + "_" + index);
    });
    this.cells(copy).concat(this.all(copy, "description")).forEach(function (cell) { cell.textContent = ""; });
    rules[rules.length - 1].parentNode.appendChild(copy);
    this.save();
    this.render();
  };

  DmnTable.prototype.deleteRule = function (row) {
    var rule = this.all(this.table(), "rule")[row];
    if (rule) rule.parentNode.removeChild(rule);
    this.save();
    this.render();
  };

  // ------------------------------------------------------------ the editors
  function FileEditors(box, files, options) {
    this.box = box;
    this.files = files;
    this.options = options;
    this.open = null;
    var self = this;
    box.addEventListener("click", function (event) {
      var name = event.target.dataset.file;
      if (name !== undefined) self.show(name);
      if (event.target.dataset.action === "new-form") self.newForm();
    });
    box.addEventListener("input", function (event) {
      if (event.target.id === "file-text" && self.open) {
        self.files[self.open] = event.target.value;
        if (kindOf(self.open) === "form") box.querySelector("#form-preview").innerHTML = renderForm(event.target.value);
        self.options.onChange();
      }
    });
    this.renderList();
  }

  FileEditors.prototype.renderList = function () {
    var self = this;
    var names = Object.keys(this.files).filter(function (n) { return n !== self.options.bpmnFile; }).sort();
    var list = names.map(function (name) {
      return '<li><button type="button" class="link" data-file="' + esc(name) + '"' +
        (name === self.open ? ' aria-current="true"' : "") + ">" + esc(name) + "</button></li>";
    }).join("");
    this.box.querySelector("#file-list").innerHTML = list || "<li>（只有流程图）</li>";
  };

  FileEditors.prototype.show = function (name) {
    this.open = name;
    this.renderList();
    var editor = this.box.querySelector("#file-editor");
    var kind = kindOf(name);
    var self = this;
    if (kind === "dmn") {
      editor.innerHTML = "<h3>" + esc(name) + '</h3><div id="dmn-table"></div>';
      new DmnTable(editor.querySelector("#dmn-table"), this.files[name], function (text) {
        self.files[name] = text;
        self.options.onChange();
      });
      return;
    }
    if (kind === "template") {
      editor.innerHTML = "<h3>" + esc(name) + '</h3><p class="hint">文书模板是 Word 文件（docxtpl），请在 Word 中编辑后随流程文件一起部署；此处不能修改。</p>';
      return;
    }
    var text = '<label for="file-text">' + esc(name) + '</label><textarea id="file-text" rows="18" spellcheck="false">' +
      esc(this.files[name]) + "</textarea>";
    if (kind === "form") {
      editor.innerHTML = '<div class="form-editor"><div>' + text + '</div><div class="form-preview-box"><h3>表单预览</h3>' +
        '<div id="form-preview" class="form-preview">' + renderForm(this.files[name]) + "</div></div></div>";
    } else {
      editor.innerHTML = text;
    }
  };

  FileEditors.prototype.newForm = function () {
    var input = this.box.querySelector("#new-form-name");
    var step = (input.value || "").trim();
    if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(step)) {
      input.setCustomValidity("请用英文字母开头，只含字母、数字和下划线");
      input.reportValidity();
      return;
    }
    input.setCustomValidity("");
    var name = "forms/" + this.options.key + "/" + step + ".json";
    if (!this.files[name]) {
      this.files[name] = JSON.stringify({ title: step, type: "object", properties: {}, required: [] }, null, 2) + "\n";
    }
    this.options.onChange();
    this.show(name);
  };

  FileEditors.prototype.formFiles = function () {
    var key = this.options.bpmnFile.split("/").slice(0, -1).join("/");
    return Object.keys(this.files).filter(function (n) { return kindOf(n) === "form"; }).map(function (n) {
      return key && n.indexOf(key + "/") === 0 ? n.slice(key.length + 1) : n;
    }).sort();
  };

  window.Duban = window.Duban || {};
  window.Duban.FileEditors = FileEditors;
  window.Duban.renderForm = renderForm;
})();
