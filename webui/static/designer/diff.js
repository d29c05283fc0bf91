// Two versions side by side: the old one marks what was removed or changed, the new one what
// was added or changed (the element lists come from the engine's diff).
(function () {
  "use strict";
  var view = document.getElementById("diff-view");
  if (!view || !window.BpmnJS) return;
  var diff = JSON.parse(document.getElementById("diff-data").textContent);

  function ids(list) { return list.map(function (e) { return e.id; }); }

  function draw(boxId, url, marks) {
    var box = document.getElementById(boxId);
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.json();
      })
      .then(function (found) {
        var viewer = new window.BpmnJS({ container: box });
        return viewer.importXML(found.files[found.bpmn_file]).then(function () {
          var canvas = viewer.get("canvas");
          var registry = viewer.get("elementRegistry");
          Object.keys(marks).forEach(function (kind) {
            marks[kind].forEach(function (id) { if (registry.get(id)) canvas.addMarker(id, "diff-" + kind); });
          });
          canvas.zoom("fit-viewport", "auto");
          box.dataset.ready = "true";
        });
      })
      .catch(function () { box.innerHTML = '<p class="notice error">流程图暂时无法显示。</p>'; });
  }

  draw("diagram-old", view.dataset.old, { removed: ids(diff.removed), changed: ids(diff.changed) });
  draw("diagram-new", view.dataset["new"], { added: ids(diff.added), changed: ids(diff.changed) });
})();
