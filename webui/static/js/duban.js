// duban pages: repeatable rows, draft saving, small conveniences. Everything works without it.
(function () {
  "use strict";

  function csrfToken(form) {
    var input = form.querySelector('input[name="csrf_token"]');
    return input ? input.value : "";
  }

  // Repeatable rows (arrays of objects): add from the <template>, remove a row, renumber.
  function renumber(list) {
    var rows = list.querySelectorAll(":scope > fieldset.row");
    rows.forEach(function (row, i) {
      var legend = row.querySelector(":scope > legend");
      if (legend) legend.textContent = legend.textContent.replace(/\s*\d*$/, "") + " " + (i + 1);
    });
  }
  document.addEventListener("click", function (event) {
    var target = event.target;
    if (target.classList.contains("row-add")) {
      var box = target.closest("fieldset.rows");
      var list = box.querySelector(".row-list");
      var next = Number(box.dataset.next || list.children.length);
      while (list.querySelector('[name^="' + box.dataset.rows + "." + next + '."]')) next++;
      box.dataset.next = next + 1;
      var html = box.querySelector(":scope > template").innerHTML;
      var holder = document.createElement("div");
      holder.innerHTML = html.split(box.dataset.placeholder).join(String(next));
      var row = holder.firstElementChild;
      list.appendChild(row);
      renumber(list);
      var first = row.querySelector("input, select, textarea");
      if (first) first.focus();
    } else if (target.classList.contains("row-remove")) {
      var rowEl = target.closest("fieldset.row");
      var parent = rowEl.parentElement;
      var addButton = rowEl.closest("fieldset.rows").querySelector(":scope > .row-add");
      rowEl.remove();
      renumber(parent);
      if (addButton) addButton.focus();  // keyboard users keep their place
    }
  });

  // Long pickers (units, people) get a filter box: type part of a name to narrow the list.
  function addFilter(select) {
    if (select.dataset.filtered || select.options.length < 12) return;
    select.dataset.filtered = "true";
    var box = document.createElement("input");
    box.type = "search";
    box.className = "picker-filter";
    box.placeholder = "输入名称筛选";
    var label = select.labels && select.labels[0] ? select.labels[0].textContent : "";
    box.setAttribute("aria-label", "筛选" + label);
    select.parentNode.insertBefore(box, select);
    box.addEventListener("input", function () {
      var words = box.value.trim();
      Array.from(select.options).forEach(function (option) {
        option.hidden = words !== "" && option.value !== "" && option.text.indexOf(words) < 0;
      });
    });
  }
  document.querySelectorAll("select.picker, select[name$='unit'], select[name$='to']").forEach(addFilter);
  document.addEventListener("click", function (event) {
    if (event.target.classList.contains("row-add")) {
      document.querySelectorAll("select.picker").forEach(addFilter);
    }
  });

  // Selects marked data-autosubmit submit their form when changed.
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });

  // Drafts: save what was typed a few seconds after the last change, so nothing is lost.
  var form = document.querySelector("form[data-draft-url]");
  if (form && window.fetch && window.FormData) {
    var status = form.querySelector(".draft-status");
    var timer = null;
    var save = function () {
      var data = new FormData(form);
      Array.from(data.keys()).forEach(function (key) {
        if (data.get(key) instanceof File) data.delete(key);
      });
      fetch(form.dataset.draftUrl, {
        method: "POST",
        body: data,
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken(form), "X-Requested-With": "fetch" },
      }).then(function (response) {
        if (response.status === 409) {  // a colleague claimed the task: say who, early
          return response.json().then(function (body) { throw { refusal: body.message }; });
        }
        if (!response.ok) throw new Error(String(response.status));
        return response.json();
      }).then(function () {
        if (status) status.textContent = "草稿已自动保存 " + new Date().toLocaleTimeString("zh-CN");
      }).catch(function (problem) {
        if (!status) return;
        status.textContent = problem && problem.refusal
          ? "草稿未保存：" + problem.refusal + "，请复制您填写的内容"
          : "草稿未能自动保存，请检查网络或重新登录";
      });
    };
    form.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(save, 3000);
    });
    form.addEventListener("submit", function () { clearTimeout(timer); });
  }
})();
