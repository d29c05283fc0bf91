// 领导驾驶舱 charts, drawn by ECharts (served from node_modules) from the page's JSON block.
(function () {
  "use strict";
  var source = document.getElementById("dashboard-data");
  if (!source || !window.echarts) return;
  var data = JSON.parse(source.textContent);
  var charts = [];
  var lights = document.getElementById("chart-lights");
  if (lights) {
    var bars = window.echarts.init(lights);
    bars.setOption({
      animation: false,
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      legend: { data: ["红灯", "黄灯", "绿灯"], top: 0 },
      grid: { left: 8, right: 16, bottom: 8, top: 36, containLabel: true },
      xAxis: { type: "value", minInterval: 1 },
      yAxis: { type: "category", data: data.units, inverse: true },
      series: [
        { name: "红灯", type: "bar", stack: "n", data: data.red, itemStyle: { color: "#c81e1e" } },
        { name: "黄灯", type: "bar", stack: "n", data: data.yellow, itemStyle: { color: "#ecc94b" } },
        { name: "绿灯", type: "bar", stack: "n", data: data.green, itemStyle: { color: "#2f855a" } },
      ],
    });
    charts.push(bars);
  }
  var rate = document.getElementById("chart-rate");
  if (rate) {
    var gauge = window.echarts.init(rate);
    var value = data.rate === null ? 0 : Math.round(data.rate * 1000) / 10;
    gauge.setOption({
      animation: false,
      series: [{
        type: "gauge", min: 0, max: 100, progress: { show: true, width: 14 },
        axisLine: { lineStyle: { width: 14 } }, pointer: { show: false },
        axisLabel: { distance: 18 }, splitLine: { length: 8 },
        title: { offsetCenter: [0, "75%"] },
        detail: { formatter: data.rate === null ? "暂无办结" : "{value}%", fontSize: 24, offsetCenter: [0, "0%"] },
        data: [{ value: value, name: "按期办结率" }],
      }],
    });
    charts.push(gauge);
  }
  document.body.dataset.chartsReady = "true";
  window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
})();
