// 全选: tick every instance that passed the safety check.
(function () {
  "use strict";
  var all = document.getElementById("mig-all");
  if (!all) return;
  all.addEventListener("change", function () {
    document.querySelectorAll('input[name="instance"]').forEach(function (box) { box.checked = all.checked; });
  });
})();
