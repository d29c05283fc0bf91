// The `spiffworkflow:` BPMN extensions this engine reads, as a bpmn-js moddle descriptor, so the
// modeler keeps them and the properties panel can edit them (see processes/README.md).
(function () {
  "use strict";
  function body(name) {
    return { name: name, superClass: ["Element"], properties: [{ name: "value", type: "String", isBody: true }] };
  }
  window.Duban = window.Duban || {};
  window.Duban.spiffModdle = {
    name: "SpiffWorkflow",
    prefix: "spiffworkflow",
    uri: "http://spiffworkflow.org/bpmn/schema/1.0/core",
    xml: { tagAlias: "lowerCase" },
    associations: [],
    types: [
      { name: "Properties", superClass: ["Element"],
        properties: [{ name: "properties", type: "Property", isMany: true }] },
      { name: "Property", superClass: ["Element"],
        properties: [{ name: "name", type: "String", isAttr: true },
                     { name: "value", type: "String", isAttr: true }] },
      body("PreScript"),
      body("PostScript"),
      body("CalledDecisionId"),
      body("InstructionsForEndUser"),
      { name: "ServiceTaskOperator", superClass: ["Element"],
        properties: [{ name: "id", type: "String", isAttr: true },
                     { name: "resultVariable", type: "String", isAttr: true },
                     { name: "parameters", type: "Parameters" }] },
      { name: "Parameters", superClass: ["Element"],
        properties: [{ name: "parameters", type: "Parameter", isMany: true }] },
      { name: "Parameter", superClass: ["Element"],
        properties: [{ name: "id", type: "String", isAttr: true },
                     { name: "type", type: "String", isAttr: true },
                     { name: "value", type: "String", isAttr: true }] }
    ]
  };
})();
