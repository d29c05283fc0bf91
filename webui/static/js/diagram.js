// The instance page's diagram: bpmn-js (served from node_modules) draws the instance's own
// version, and each element gets a class for its state (done / current / waiting / error).
(function () {
  "use strict";
  var box = document.getElementById("diagram");
  if (!box || !window.BpmnJS) return;
  fetch(box.dataset.src, { credentials: "same-origin" })
    .then(function (response) {
      if (!response.ok) throw new Error(String(response.status));
      return response.json();
    })
    .then(function (found) {
      box.innerHTML = "";
      var viewer = new window.BpmnJS({ container: box });
      return viewer.importXML(found.xml).then(function () {
        var canvas = viewer.get("canvas");
        var registry = viewer.get("elementRegistry");
        [["completed", "done"], ["waiting", "waiting"], ["current", "current"]].forEach(function (pair) {
          (found[pair[0]] || []).forEach(function (id) {
            if (registry.get(id)) canvas.addMarker(id, "state-" + pair[1]);
          });
        });
        canvas.zoom("fit-viewport", "auto");
        box.dataset.ready = "true";
      });
    })
    .catch(function () {
      box.innerHTML = '<p class="notice error">流程图暂时无法显示，请稍后刷新。</p>';
    });
})();
