// 运维控制台: select-all boxes and a confirmation before deactivating. Pages work without it.
(function () {
  "use strict";
  document.querySelectorAll("input[data-select-all]").forEach(function (box) {
    box.addEventListener("change", function () {
      var name = box.getAttribute("data-select-all");
      box.form.querySelectorAll('input[type="checkbox"][name="' + name + '"]').forEach(function (item) {
        item.checked = box.checked;
      });
    });
  });
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
    });
  });
  document.querySelectorAll("form[data-confirm-terminate]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      var action = form.querySelector('select[name="action"]');
      if (action && action.value === "terminate" && !window.confirm("终止后流程不能恢复，确定终止选中的实例？")) {
        event.preventDefault();
      }
    });
  });
})();
