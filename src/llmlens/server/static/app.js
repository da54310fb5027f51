/* llmlens UI: charts from data-chart JSON (uPlot), auto-submitting selects. No build step. */
(function () {
  "use strict";
  var COLORS = ["#2563eb", "#f97316", "#16a34a", "#dc2626", "#9333ea", "#0891b2", "#ca8a04", "#db2777", "#4b5563", "#65a30d"];
  var OTHER_COLOR = "#9ca3af";
  // More lines than this on one chart do not read: the rest fold into "other" (sums and counts) or wait
  // behind the chart's "show all" button (rates, percentiles: those of the rest do not add up).
  var TOP_SERIES = 5;
  var EMPTY_FILL = "rgba(148, 163, 184, 0.18)";
  var UNFILTERABLE = ["other", "(none)", "(unnamed)"];
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

  // -- numbers, written as the pages' tables write them (server/routes/_formatting.py) ---------------

  function significantDecimals(a, n) { return Math.max(n - 1 - Math.floor(Math.log10(a)), 0); }
  function roundTo(x, d) { var f = Math.pow(10, d); return Math.round(x * f) / f; }
  function grouped(x, d) { return x.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d }); }

  function usd(v) {
    if (v === 0) return "$0";
    var sign = v < 0 ? "-" : "", a = Math.abs(v);
    if (a < 0.1) {
      var d = significantDecimals(a, 2);
      if (roundTo(a, d) < 0.1) return sign + "$" + a.toFixed(d);
    }
    return sign + "$" + grouped(a, roundTo(a, 2) < 100 ? 2 : 0);
  }

  function count(v) {
    var a = Math.abs(v);
    if (a < 10000) return v === Math.round(v) || a >= 100 ? grouped(v, 0) : grouped(v, 2);
    var units = [[1e3, "k"], [1e6, "M"], [1e9, "B"]], i = 0;
    while (i + 1 < units.length && a >= units[i + 1][0]) i++;
    var scaled = threeSignificant(a / units[i][0]);
    if (scaled >= 1000 && i + 1 < units.length) { i++; scaled = threeSignificant(a / units[i][0]); }
    return (v < 0 ? "-" : "") + scaled.toFixed(decimalsOfThree(scaled)) + units[i][1];
  }
  function decimalsOfThree(x) { return x < 10 ? 2 : x < 100 ? 1 : 0; }
  function threeSignificant(x) { return roundTo(x, decimalsOfThree(x)); }

  function fmt(unit, v) {
    if (v == null || isNaN(v)) return "—";
    if (unit === "$") return usd(v);
    if (unit === "%") return (v * 100).toFixed(1) + " %";
    if (unit === "ms") return Math.round(v) >= 1000 ? (v / 1000).toFixed(2) + " s" : v.toFixed(0) + " ms";
    var text = count(v);
    if (!unit) return text;
    return unit.charAt(0) === "/" ? text + " / " + unit.slice(1) : text + " " + unit;
  }

  // Axis labels: one unit and one precision per axis, chosen from its largest tick and its step
  // (never "0ms" beside "10.0s", nor "0.3" beside "0.25").
  function axisValues(unit, splits) {
    var max = 0;
    splits.forEach(function (v) { if (v != null && Math.abs(v) > max) max = Math.abs(v); });
    var step = splits.length > 1 ? Math.abs(splits[1] - splits[0]) : max;
    function each(scale, prefix, suffix) {
      var d = axisDecimals(step / scale);
      return splits.map(function (v) { return v == null ? "" : prefix + (v / scale).toFixed(d) + suffix; });
    }
    if (unit === "ms") return max >= 1000 ? each(1000, "", " s") : each(1, "", " ms");
    if (unit === "$") return each(1, "$", "");
    if (unit === "%") return each(0.01, "", " %");
    if (max >= 1e6) return each(1e6, "", "M");
    if (max >= 1e4) return each(1e3, "", "k");
    return each(1, "", "");
  }

  function axisDecimals(step) {
    // The fewest decimals that write the step exactly (0.25 -> 2, 2.5 -> 1, 10 -> 0).
    if (!step || !isFinite(step)) return 0;
    for (var d = 0; d < 8; d++) {
      var scaled = step * Math.pow(10, d);
      if (Math.abs(scaled - Math.round(scaled)) < 1e-6 * Math.max(1, scaled)) return d;
    }
    return 8;
  }

  // -- time: always UTC and 24-hour, as the page's tables and its footer say ---------------------------

  function pad(n) { return n < 10 ? "0" + n : String(n); }
  function utcDay(sec) { return new Date(sec * 1000).toISOString().slice(0, 10); }
  function shortDay(sec) { var d = new Date(sec * 1000); return MONTHS[d.getUTCMonth()] + " " + d.getUTCDate(); }
  function utcClock(sec) {
    var d = new Date(sec * 1000);
    return pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + (d.getUTCSeconds() ? ":" + pad(d.getUTCSeconds()) : "");
  }
  function isoTime(sec) { return new Date(sec * 1000).toISOString().replace(".000Z", "Z"); }

  function spanText(start, end) {
    // "2026-12-06 01:00–02:00 UTC"; whole days as dates.
    var days = (end - start) / 86400;
    if (days >= 1 && utcClock(start) === "00:00" && utcClock(end) === "00:00") {
      return utcDay(start) + (days > 1 ? " – " + utcDay(end - 86400) : "") + " UTC";
    }
    var endText = utcDay(end) === utcDay(start) ? utcClock(end)
      : utcClock(end) === "00:00" && utcDay(end - 1) === utcDay(start) ? "24:00" : utcDay(end) + " " + utcClock(end);
    return utcDay(start) + " " + utcClock(start) + "–" + endText + " UTC";
  }

  function timeTicks(el) {
    return function (u, splits, axisIdx, space, incr) {
      var lastDay = null;
      var labels = splits.map(function (s) {
        if (s == null) return "";
        var day = utcDay(s);
        if (incr >= 86400) return shortDay(s);
        var label = utcClock(s);
        if (day !== lastDay) label += "\n" + shortDay(s);  // the date under the first tick of each day
        lastDay = day;
        return label;
      });
      el.dataset.xTicks = JSON.stringify(splits.map(function (s, i) { return [s, labels[i]]; }));
      return labels;
    };
  }

  // -- which series a chart shows -------------------------------------------------------------------

  function seriesToShow(spec, showAll, noun) {
    var all = (spec.series || []).map(function (s, i) {
      // The server's own group names ("other" models, "(none)") are no value a trace filter can take.
      return { label: s.label, values: s.values, color: COLORS[i % COLORS.length], filter: UNFILTERABLE.indexOf(s.label) < 0 };
    });
    if (showAll || all.length <= TOP_SERIES + 1) return { series: all, rest: showAll && all.length > TOP_SERIES + 1 ? -1 : 0 };
    var additive = spec.additive !== false;
    function weight(s) {
      // Sums and counts: the largest in total; otherwise the series with values in the most buckets. The
      // server's own "other" (models beyond its limit) always goes with the rest.
      if (s.label === "other") return -1;
      var w = 0;
      s.values.forEach(function (v) { if (v != null) w += additive ? Math.abs(v) : 1; });
      return w;
    }
    var ranked = all.map(function (s, i) { return { s: s, i: i, w: weight(s) }; })
      .sort(function (a, b) { return (b.w - a.w) || (a.i - b.i); });
    var top = ranked.slice(0, TOP_SERIES).sort(function (a, b) { return a.i - b.i; }).map(function (r) { return r.s; });
    var rest = ranked.slice(TOP_SERIES).map(function (r) { return r.s; });
    if (additive) {
      var sums = spec.x.map(function (_, j) {
        var total = null;
        rest.forEach(function (s) { if (s.values[j] != null) total = (total || 0) + s.values[j]; });
        return total;
      });
      var counted = rest.every(function (s) { return s.label !== "other"; });
      top.push({ label: counted ? "other " + rest.length + " " + noun : "other", values: sums, color: OTHER_COLOR, filter: false });
    }
    return { series: top, rest: rest.length };
  }

  function stack(series) {
    // Cumulative sums, drawn largest first so each band shows its own series' share.
    var acc = null;
    return series.map(function (s) {
      var values = s.values.map(function (v, i) { return (v || 0) + (acc ? acc[i] : 0); });
      acc = values;
      return { label: s.label, values: values, raw: s.values, color: s.color, filter: s.filter };
    });
  }

  function isolated(values) {
    // Values with no neighbour: a line cannot join them to anything, so they are drawn as dots.
    var out = [];
    values.forEach(function (v, i) {
      if (v != null && (i === 0 || values[i - 1] == null) && (i === values.length - 1 || values[i + 1] == null)) out.push(i);
    });
    return out;
  }

  // -- plugins ------------------------------------------------------------------------------------------

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

  function emptyBucketsPlugin(starts, step, empty) {
    // Buckets without a single call are shaded: "nothing happened", which a zero or a gap alone cannot say.
    return {
      hooks: {
        drawClear: [function (u) {
          var ctx = u.ctx;
          ctx.save();
          ctx.fillStyle = EMPTY_FILL;
          empty.forEach(function (i) {
            var x0 = u.valToPos(starts[i], "x", true), x1 = u.valToPos(starts[i] + step, "x", true);
            ctx.fillRect(x0, u.bbox.top, Math.max(x1 - x0, 1), u.bbox.height);
          });
          ctx.restore();
        }]
      }
    };
  }

  // -- a bucket's traces ------------------------------------------------------------------------------

  function bucketSpan(spec, step, i) {
    // Bucket i cut to the chart's window: its first and last buckets hold only what falls inside it.
    return [Math.max(spec.x[i], spec.start || spec.x[i]), Math.min(spec.x[i] + step, spec.end || spec.x[i] + step)];
  }

  function bucketUrl(el, span, label) {
    // The traces of a bucket under the page's filters (data-traces), narrowed to one series' value.
    var url = new URL(el.dataset.traces, window.location.href);
    url.searchParams.delete("range");
    url.searchParams.delete("cursor");
    url.searchParams.set("from", isoTime(span[0]));
    url.searchParams.set("to", isoTime(span[1]));
    if (label != null && el.dataset.seriesFilter) url.searchParams.set(el.dataset.seriesFilter, label);
    return url.pathname + url.search;
  }

  // -- building a chart -------------------------------------------------------------------------------

  function build(el) {
    if (el.dataset.ready || typeof uPlot === "undefined") return;
    el.dataset.ready = "1";
    draw(el, false);
  }

  function draw(el, showAll) {
    (el.chartExtras || []).forEach(function (node) { node.remove(); });
    el.chartExtras = [];
    function addBelow(node) {
      // After the canvas (role=img), not in it: a hint and a button are not part of the picture.
      var last = el.chartExtras.length ? el.chartExtras[el.chartExtras.length - 1] : el;
      last.parentNode.insertBefore(node, last.nextSibling);
      el.chartExtras.push(node);
    }
    var spec = JSON.parse(el.dataset.chart);
    var kind = el.dataset.kind || "line";
    var height = parseInt(el.dataset.height || "220", 10);
    var categories = spec.categories || null;
    var n = spec.x ? spec.x.length : 0;
    var empty = categories ? [] : (spec.empty || []);
    if (!(spec.series || []).length || !n || empty.length === n) {
      el.classList.add("empty");
      el.textContent = (spec.series || []).length && n ? "No calls in this range." : "No data in this range.";
      return;
    }
    var unit = spec.unit || "";
    var additive = spec.additive !== false;
    var noun = el.dataset.seriesNoun || "series";
    var shown = kind === "spark" ? { series: (spec.series || []).map(function (s, i) { return { label: s.label, values: s.values, color: COLORS[i % COLORS.length] }; }), rest: 0 } : seriesToShow(spec, showAll, noun);
    var series = shown.series;
    var step = categories ? 1 : (spec.step_s || (n > 1 ? spec.x[1] - spec.x[0] : 3600));
    var emptySet = {};
    empty.forEach(function (i) { emptySet[i] = true; });
    // Time series are drawn at the middle of their buckets, over the whole of the first and last ones.
    var xs = categories ? spec.x : spec.x.map(function (t) { return t + step / 2; });
    var drawn = kind === "stacked" ? stack(series) : series;
    var order = drawn.map(function (_, i) { return i; });
    if (kind === "stacked") order.reverse();
    var data = [xs].concat(order.map(function (i) { return drawn[i].values; }));
    var bars = kind === "bars" || kind === "stacked";
    var linked = !categories && kind !== "spark" && !!el.dataset.traces;
    var uSeries = [{
      label: categories ? "" : "time",
      value: categories
        ? function (u, v) { return v == null ? "" : categories[v] || ""; }
        : function (u, v, si, di) { return di == null ? "" : spanText.apply(null, bucketSpan(spec, step, di)); }
    }];
    order.forEach(function (i) {
      var d = drawn[i];
      var s = {
        label: d.label, stroke: d.color, width: kind === "spark" ? 1.5 : 2, spanGaps: false,
        value: function (u, v, si, di) {
          if (di == null) return "";
          var raw = d.raw ? d.raw[di] : v;
          if (emptySet[di]) return additive ? fmt(unit, 0) + " (no calls)" : "no calls";
          // A sum the data does not give (calls without a price), or no call of this series in the bucket.
          if (raw == null) return categories || additive ? (unit === "$" && !categories ? "unpriced" : "—") : "no calls";
          return fmt(unit, raw);
        }
      };
      if (bars) {
        s.fill = d.color + (kind === "stacked" ? "" : "cc");
        s.paths = uPlot.paths.bars({ size: [0.8, Infinity], align: 0 });
        s.points = { show: false };
      } else if (kind === "spark") {
        s.fill = d.color + "22";
        s.points = { show: false };
      } else {
        var lone = isolated(d.values);
        s.points = { show: false, size: 6, fill: d.color, filter: function () { return lone.length ? lone : null; } };
      }
      uSeries.push(s);
    });
    var plugins = [];
    if (spec.markers && spec.markers.length) plugins.push(markersPlugin(spec.markers));
    if (empty.length && kind !== "spark") plugins.push(emptyBucketsPlugin(spec.x, step, empty));
    var axisX = categories
      ? { values: function (u, splits) { return splits.map(function (v) { return categories[v] || ""; }); }, gap: 4, size: 40, splits: function () { return spec.x; } }
      : { values: timeTicks(el), size: 46 };
    var focused = null;
    // A line chart whose lines are values of a trace filter (models, tools): the line nearest the cursor
    // is highlighted, and a click narrows to it.
    var focusable = kind === "line" && !!el.dataset.seriesFilter && drawn.length > 1;
    var opts = {
      width: Math.max(el.clientWidth, 120),
      height: height,
      series: uSeries,
      legend: { show: kind !== "spark" },
      // No drag-to-zoom: a click opens the bucket's traces.
      cursor: kind === "spark" ? { show: false } : { drag: { x: false, y: false, setScale: false }, focus: { prox: focusable ? 24 : -1 } },
      focus: { alpha: 0.35 },
      scales: {
        x: categories
          ? { time: false, range: function (u, min, max) { return [min - 0.5, max + 0.5]; } }
          : { time: true, range: function () { return [spec.x[0], spec.x[n - 1] + step]; } },
        y: { range: function (u, min, max) { return [Math.min(0, min), max > 0 ? max * 1.08 : 1]; } }
      },
      axes: kind === "spark" ? [{ show: false }, { show: false }] : [axisX, { values: function (u, splits) { return axisValues(unit, splits); }, size: 64 }],
      plugins: plugins,
      hooks: {
        setSeries: [function (u, si, o) { if (o && o.focus != null) focused = si; }]
      }
    };
    if (!categories) {
      opts.tzDate = function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); };
    }
    el.textContent = "";
    var plot = new uPlot(opts, data, el);
    el.uplot = plot;

    function pointed() {
      // The bucket under the cursor, and the series the click narrows to (the band of a stacked bar,
      // the line next to the cursor), or null for the whole bucket.
      var left = plot.cursor.left, top = plot.cursor.top;
      if (left == null || left < 0) return null;
      var i = Math.floor((plot.posToVal(left, "x") - spec.x[0]) / step);
      if (i < 0 || i >= n) return null;
      var label = null;
      if (el.dataset.seriesFilter && drawn.length > 1) {
        if (kind === "stacked") {
          var y = plot.posToVal(top, "y");
          for (var k = 0; k < drawn.length; k++) {
            var below = k ? drawn[k - 1].values[i] : 0;
            if (y >= below && y <= drawn[k].values[i] && drawn[k].values[i] > below) { label = drawn[k].filter === false ? null : drawn[k].label; break; }
          }
        } else if (focusable && focused != null && focused > 0) {
          var d = drawn[order[focused - 1]];
          label = d && d.filter !== false ? d.label : null;
        }
      }
      return { i: i, label: label };
    }

    if (linked) {
      var hint = document.createElement("p");
      hint.className = "chart-hint muted";
      var idle = "Click a bucket to open its traces" + (el.dataset.seriesFilter && drawn.length > 1 ? " (of the " + el.dataset.seriesFilter.replace("_id", "") + " under the cursor)" : "") + ".";
      hint.textContent = idle;
      addBelow(hint);
      plot.over.style.cursor = "pointer";
      plot.over.addEventListener("mousemove", function () {
        var at = pointed();
        if (!at) { hint.textContent = idle; return; }
        hint.textContent = "Click: the traces of " + spanText.apply(null, bucketSpan(spec, step, at.i)) + (at.label != null ? " · " + el.dataset.seriesFilter + " " + at.label : "");
      });
      plot.over.addEventListener("mouseleave", function () { hint.textContent = idle; });
      plot.over.addEventListener("click", function (event) {
        var at = pointed();
        if (!at) return;
        var href = bucketUrl(el, bucketSpan(spec, step, at.i), at.label);
        if (event.ctrlKey || event.metaKey) window.open(href, "_blank");
        else window.location.assign(href);
      });
    }
    if (empty.length && kind !== "spark") {
      var note = document.createElement("p");
      note.className = "chart-note muted";
      note.innerHTML = '<span class="swatch-empty" aria-hidden="true"></span> no calls in the shaded buckets' + (additive ? " (0)" : "");
      addBelow(note);
    }
    if (shown.rest) {
      var more = document.createElement("button");
      more.type = "button";
      more.className = "secondary chart-more";
      more.textContent = shown.rest > 0 ? "Show all " + spec.series.length + " " + noun : "Show the top " + TOP_SERIES;
      more.addEventListener("click", function () {
        plot.destroy();
        draw(el, shown.rest > 0);
        var again = (el.chartExtras || []).filter(function (node) { return node.classList.contains("chart-more"); })[0];
        if (again) again.focus();
      });
      addBelow(more);
    }
    if (window.ResizeObserver && !el.resizeWatched) {
      el.resizeWatched = true;
      new ResizeObserver(function () {
        var current = el.uplot;
        if (!current) return;
        var w = Math.max(el.clientWidth, 120);
        if (Math.abs(w - current.width) > 2) current.setSize({ width: w, height: height });
      }).observe(el);
    }
  }

  function init(root) {
    (root || document).querySelectorAll("main > table").forEach(function (table) {
      // Full width in a box that scrolls sideways when the table is wider than the screen (app.css).
      var box = document.createElement("div");
      box.className = "table-scroll";
      table.parentNode.insertBefore(box, table);
      box.appendChild(table);
    });
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
