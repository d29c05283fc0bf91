// Chinese for the modeler's palette, context pad and replace menu: a bpmn-js `translate` module.
(function () {
  "use strict";
  var zh = {
    "Activate hand tool": "抓手工具", "Activate lasso tool": "套索工具",
    "Activate create/remove space tool": "插入/删除空白", "Activate global connect tool": "连线工具",
    "Create start event": "开始事件", "Create end event": "结束事件", "Create task": "任务",
    "Create gateway": "网关", "Create intermediate/boundary event": "中间/边界事件",
    "Create pool/participant": "池", "Create expanded sub-process": "展开的子流程",
    "Create data object reference": "数据对象", "Create data store reference": "数据存储",
    "Create group": "分组", "Append task": "追加任务", "Append end event": "追加结束事件",
    "Append gateway": "追加网关", "Append intermediate/boundary event": "追加中间事件",
    "Append timer intermediate catch event": "追加定时事件",
    "Append message intermediate catch event": "追加消息事件",
    "Append receive task": "追加接收任务", "Append compensation activity": "追加补偿活动",
    "Append conditional intermediate catch event": "追加条件事件",
    "Append signal intermediate catch event": "追加信号事件",
    "Add lane above": "在上方添加泳道", "Add lane below": "在下方添加泳道",
    "Divide into two lanes": "分成两个泳道", "Divide into three lanes": "分成三个泳道",
    "Add text annotation": "添加注释", "Change element": "更改类型", "Change type": "更改类型",
    "Connect to other element": "连线", "Connect using association": "关联连线",
    "Connect using data input association": "数据输入关联", "Delete": "删除",
    "Align elements": "对齐", "Distribute elements horizontally": "水平等距",
    "Distribute elements vertically": "垂直等距", "Search in diagram": "在图中查找",
    "Toggle non-interrupting": "切换为不中断", "Loop": "循环",
    "Parallel multi-instance": "并行多实例（会签/或签）", "Sequential multi-instance": "串行多实例",
    "Collection": "集合", "Participant multiplicity": "参与者多重性", "Open {element}": "打开 {element}",
    "Task": "任务", "User task": "用户任务", "Service task": "服务任务", "Script task": "脚本任务",
    "Manual task": "人工任务", "Business rule task": "业务规则任务", "Send task": "发送任务",
    "Receive task": "接收任务", "Call activity": "调用活动",
    "Sub-process (collapsed)": "子流程（折叠）", "Sub-process (expanded)": "子流程（展开）",
    "Start event": "开始事件", "End event": "结束事件", "Terminate end event": "终止结束事件",
    "Message end event": "消息结束事件", "Message start event": "消息开始事件",
    "Timer start event": "定时开始事件", "Exclusive gateway": "排他网关",
    "Parallel gateway": "并行网关", "Inclusive gateway": "包容网关",
    "Event-based gateway": "事件网关", "Intermediate throw event": "中间抛出事件",
    "Timer intermediate catch event": "定时中间事件",
    "Message intermediate catch event": "消息中间事件",
    "Timer boundary event": "定时边界事件",
    "Timer boundary event (non-interrupting)": "定时边界事件（不中断）",
    "Message boundary event": "消息边界事件", "Sequence flow": "顺序流", "Default flow": "默认流",
    "Conditional flow": "条件流"
  };
  function translate(template, replacements) {
    var text = zh[template] || template;
    replacements = replacements || {};
    return text.replace(/{([^}]+)}/g, function (_, key) {
      return replacements[key] !== undefined ? replacements[key] : "{" + key + "}";
    });
  }
  window.Duban = window.Duban || {};
  window.Duban.zhModule = { translate: ["value", translate] };
})();
