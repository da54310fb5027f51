/* llmlens UI: charts from data-chart JSON (uPlot), auto-submitting selects. No build step. */
(function () {
  "use strict";
  var COLORS = ["#2563eb", "#f97316", "#16a34a", "#dc2626", "#9333ea", "#0891b2", "#ca8a04", "#db2777", "#4b5563", "#65a30d"];

  function fmt(unit, v) {
    if (v == null || isNaN(v)) return "—";
    if (unit === "$") return v === 0 ? "$0" : (Math.abs(v) < 0.01 ? "$" + v.toFixed(4) : "$" + v.toFixed(2));
    if (unit === "%") return (v * 100).toFixed(1) + "%";
    if (unit === "ms") return v >= 1000 ? (v / 1000).toFixed(1) + "s" : Math.round(v) + "ms";
    var a = Math.abs(v);
    if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
    if (a >= 1e4) return (v / 1e3).toFixed(0) + "k";
    if (a >= 100 || v === Math.round(v)) return String(Math.round(v));
    return a >= 1 ? v.toFixed(2) : String(Number(v.toPrecision(2)));
  }

  function markersPlugin(markers) {
    return {
      hooks: {
        draw: [function (u) {
          var ctx = u.ctx;
          ctx.save();
          markers.forEach(function (m) {
            var x = Math.round(u.valToPos(m.x, "x", true));
            if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
            ctx.strokeStyle = "#111827";
            ctx.setLineDash([4, 4]);
            ctx.beginPath();
            ctx.moveTo(x, u.bbox.top);
            ctx.lineTo(x, u.bbox.top + u.bbox.height);
            ctx.stroke();
            ctx.setLineDash([]);
            ctx.fillStyle = "#111827";
            ctx.font = (12 * devicePixelRatio) + "px system-ui, sans-serif";
            ctx.fillText("▸ " + m.label, x + 4, u.bbox.top + 14 * devicePixelRatio);
          });
          ctx.restore();
        }]
      }
    };
  }

  function stack(series) {
    // Cumulative sums, drawn largest first so each band shows its own model's share.
    var acc = null;
    return series.map(function (s) {
      var values = s.values.map(function (v, i) { return (v || 0) + (acc ? acc[i] : 0); });
      acc = values;
      return { label: s.label, values: values, raw: s.values };
    });
  }

  function build(el) {
    if (el.dataset.ready || typeof uPlot === "undefined") return;
    var spec = JSON.parse(el.dataset.chart);
    var kind = el.dataset.kind || "line";
    var height = parseInt(el.dataset.height || "220", 10);
    var series = spec.series || [];
    el.dataset.ready = "1";
    if (!series.length || !spec.x || !spec.x.length) {
      el.classList.add("empty");
      el.textContent = "No data in this range.";
      return;
    }
    var categories = spec.categories || null;
    var unit = spec.unit || "";
    var drawn = kind === "stacked" ? stack(series) : series;
    var order = kind === "stacked" ? drawn.map(function (_, i) { return i; }).reverse() : drawn.map(function (_, i) { return i; });
    var data = [spec.x].concat(order.map(function (i) { return drawn[i].values; }));
    var bars = kind === "bars" || kind === "stacked";
    var uSeries = [{ label: categories ? "" : "time", value: categories ? function (u, v) { return v == null ? "" : categories[v] || ""; } : undefined }];
    order.forEach(function (i, n) {
      var color = COLORS[i % COLORS.length];
      var s = {
        label: drawn[i].label, stroke: color, width: kind === "spark" ? 1.5 : 2, spanGaps: false,
        value: function (u, v, si, di) {
          var raw = drawn[i].raw ? drawn[i].raw[di] : v;
          return fmt(unit, raw == null ? v : raw);
        }
      };
      if (bars) {
        s.fill = color + (kind === "stacked" ? "" : "cc");
        s.paths = uPlot.paths.bars({ size: [0.8, 60], align: 0 });
        s.points = { show: false };
      } else if (kind === "spark") {
        s.fill = color + "22";
        s.points = { show: false };
      }
      uSeries.push(s);
    });
    var axisX = categories
      ? { values: function (u, splits) { return splits.map(function (v) { return categories[v] || ""; }); }, gap: 4, size: 40 }
      : {};
    var opts = {
      width: Math.max(el.clientWidth, 120),
      height: height,
      series: uSeries,
      legend: { show: kind !== "spark" },
      cursor: kind === "spark" ? { show: false } : {},
      scales: { x: categories ? { time: false, range: function (u, min, max) { return [min - 0.5, max + 0.5]; } } : {}, y: { range: function (u, min, max) { return [Math.min(0, min), max > 0 ? max * 1.08 : 1]; } } },
      axes: kind === "spark" ? [{ show: false }, { show: false }] : [axisX, { values: function (u, splits) { return splits.map(function (v) { return fmt(unit, v); }); }, size: 60 }],
      plugins: spec.markers && spec.markers.length ? [markersPlugin(spec.markers)] : []
    };
    if (categories) { opts.axes[0].splits = function () { return spec.x; }; }
    var plot = new uPlot(opts, data, el);
    if (window.ResizeObserver) {
      new ResizeObserver(function () {
        var w = Math.max(el.clientWidth, 120);
        if (Math.abs(w - plot.width) > 2) plot.setSize({ width: w, height: height });
      }).observe(el);
    }
  }

  function init(root) {
    (root || document).querySelectorAll("[data-chart]").forEach(build);
    (root || document).querySelectorAll("select[data-autosubmit]").forEach(function (sel) {
      if (sel.dataset.bound) return;
      sel.dataset.bound = "1";
      sel.addEventListener("change", function () { sel.form.requestSubmit ? sel.form.requestSubmit() : sel.form.submit(); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSettle", function (e) { init(e.target); });
})();

/* CSRF: logged-in users' POST forms and htmx requests carry the session's token (meta csrf-token). */
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (!meta) return;
  var token = meta.getAttribute("content");
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || (form.method || "").toLowerCase() !== "post") return;
    if (form.querySelector('input[name="csrf_token"]')) return;
    var input = document.createElement("input");
    input.type = "hidden";
    input.name = "csrf_token";
    input.value = token;
    form.appendChild(input);
  }, true);
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = token;
  });
})();
