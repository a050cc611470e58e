// attnkit attention explorer: reads the JSON in #data, draws everything offline (no network, no libraries).
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("data").textContent);
  var SCALE = Math.pow(10, D.digits);
  var RAMP = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  var S = {method: null, layer: D.layers[0], head: "mean", query: 0, page: 0, pinned: 0,
           gridLayers: null, gridHeads: null};
  var $ = function (id) { return document.getElementById(id); };
  var NAMES = {raw: "raw attention", rollout: "rollout", flow: "flow", grad: "gradient-weighted",
               alignment: "alignment (output x input)", regions: "image regions", words: "word weights"};

  function bytes(s) { var b = atob(s), u = new Uint8Array(b.length); for (var i = 0; i < b.length; i++) u[i] = b.charCodeAt(i); return u; }
  function u16(s) { var b = bytes(s), dv = new DataView(b.buffer), o = new Uint16Array(b.length / 2);
    for (var i = 0; i < o.length; i++) o[i] = dv.getUint16(2 * i, true); return o; }
  function decode(m) {            // sparse rows: per row the stored columns and values (round(100 w))
    if (m.rows) return m;
    var n = u16(m.n), c = u16(m.c), v = bytes(m.v), k = 0; m.rows = [];
    for (var i = 0; i < m.tq; i++) { m.rows.push({c: c.subarray(k, k + n[i]), v: v.subarray(k, k + n[i])}); k += n[i]; }
    return m;
  }
  function colour(x) { x = Math.max(0, Math.min(1, x)); var p = x * (RAMP.length - 1), i = Math.min(Math.floor(p), RAMP.length - 2), f = p - i;
    return [0, 1, 2].map(function (k) { return Math.round(RAMP[i][k] + f * (RAMP[i + 1][k] - RAMP[i][k])); }); }
  function labels(name) { return D[name] || []; }
  function view() { return D.views[S.method]; }
  function key() { return S.method === "raw" ? S.layer + "," + S.head : S.method === "grad" ? String(S.layer) : ""; }
  function matrix() { return decode(view().matrices[key()]); }
  function fmt(q) { return (q / SCALE).toFixed(D.digits); }
  function option(sel, value, text) { var o = document.createElement("option"); o.value = value; o.textContent = text; sel.appendChild(o); }
  function parseList(text, all) {  // "0-3,5" -> [0,1,2,3,5] (only values in all); empty -> all
    if (!text || !text.trim()) return all.slice();
    var out = [];
    text.split(",").forEach(function (part) {
      var ab = part.trim().split("-").map(Number);
      if (ab.length === 1) ab.push(ab[0]);
      for (var x = ab[0]; x <= ab[1]; x++) if (all.indexOf(x) >= 0 && out.indexOf(x) < 0) out.push(x);
    });
    return out;
  }

  function setup() {
    $("title").textContent = D.title;
    $("output").textContent = D.output ? "output: " + D.output : "";
    D.notes.forEach(function (n) { var li = document.createElement("li"); li.textContent = n; $("notes").appendChild(li); });
    $("footer").textContent = "Weights rounded to " + D.digits + " decimals; weights that round to 0 are not stored" +
      (D.top_k ? "; at most the " + D.top_k + " largest weights of each row are kept" : "") + ". Made by attnkit, offline.";
    $("model").textContent = D.model ? "model: " + D.model : "";
    $("input").textContent = D.input ? "input: " + D.input : "";
    Object.keys(D.views).forEach(function (m) { option($("method"), m, NAMES[m] || m); });
    S.method = D.initial in D.views ? D.initial : Object.keys(D.views)[0];  // the view the command asked for
    $("method").value = S.method;
    D.layers.forEach(function (l) { option($("layer"), l, String(l)); });
    D.heads.forEach(function (h) { option($("head"), h, String(h)); });
    option($("head"), "mean", "mean of heads");
    $("head").value = "mean";
    $("method").onchange = function () {  // keep the chosen token when the new view has the same rows
      var same = D.views[this.value].rows === view().rows;
      S.method = this.value;
      if (!same) { S.query = S.pinned = 0; S.page = 0; }
      render();
    };
    $("layer").onchange = function () { S.layer = Number(this.value); render(); };
    $("head").onchange = function () { S.head = this.value === "mean" ? "mean" : Number(this.value); render(); };
    $("page").onchange = function () { S.page = Number(this.value); S.query = S.pinned = S.page * D.page; render(); };
    $("collapse").onchange = render;
    $("filter-layers").oninput = function () { S.gridLayers = parseList(this.value, D.layers); renderGrid(); };
    $("filter-heads").oninput = function () { S.gridHeads = parseList(this.value, D.heads); renderGrid(); };
    render();
  }

  function renderControls() {
    var v = view(), m = S.method;
    $("layer-box").classList.toggle("hidden", !(m === "raw" || m === "grad"));
    $("head-box").classList.toggle("hidden", m !== "raw");
    $("model-view").classList.toggle("hidden", !v.thumbs);
    var rows = labels(v.rows), pages = Math.ceil(rows.length / D.page), sel = $("page");
    sel.innerHTML = "";
    for (var p = 0; p < pages; p++) {
      var last = Math.min(rows.length, (p + 1) * D.page) - 1;
      option(sel, p, (p * D.page) + "-" + last + " of " + rows.length);
    }
    sel.value = S.page;
    $("page-box").classList.toggle("hidden", pages < 2);
    var cols = labels(v.cols);
    $("collapse-box").classList.toggle("hidden", v.cols === "regions");
    if (!$("collapse").dataset.init) { $("collapse").checked = cols.length > D.page; $("collapse").dataset.init = "1"; }
    $("from-label").textContent = v.rows === "out_tokens" ? "output tokens (rows)" : v.rows === "weights" ? "" : "tokens (rows: who attends)";
    $("to-label").textContent = v.cols === "regions" ? "" : "attended tokens (columns), shaded by weight";
  }

  function renderFrom() {
    var v = view(), rows = labels(v.rows), from = $("from");
    from.innerHTML = "";
    var lo = S.page * D.page, hi = Math.min(rows.length, lo + D.page);
    for (var i = lo; i < hi; i++) {
      var s = document.createElement("span");
      s.className = "tok" + (i === S.query ? " sel" : ""); s.dataset.i = i; s.textContent = rows[i];
      s.onclick = function () { S.pinned = S.query = Number(this.dataset.i); render(); };
      s.onmouseenter = function () { S.query = Number(this.dataset.i); renderRow(); };
      s.onmouseleave = function () { S.query = S.pinned; renderRow(); };
      from.appendChild(s);
    }
  }

  function renderRow() {  // the query's weights: shaded columns, the weights table, the image overlay
    var v = view(), m = matrix(), row = m.rows[S.query] || {c: [], v: []}, cols = labels(v.cols), to = $("to");
    Array.prototype.forEach.call($("from").children, function (s) { s.classList.toggle("sel", Number(s.dataset.i) === S.query); });
    var w = {}, max = 1;
    for (var k = 0; k < row.c.length; k++) { w[row.c[k]] = row.v[k]; max = Math.max(max, row.v[k]); }
    to.innerHTML = "";
    if (v.cols !== "regions") {
      var hidden = 0, collapse = $("collapse").checked;
      for (var j = 0; j < cols.length; j++) {
        if (collapse && !(j in w)) { hidden++; continue; }
        if (hidden) { gap(to, hidden); hidden = 0; }
        var s = document.createElement("span"), x = (w[j] || 0) / max;
        s.className = "tok"; s.dataset.j = j; s.textContent = cols[j];
        s.style.background = "rgba(30, 90, 200, " + (0.85 * x).toFixed(3) + ")"; s.style.color = x > 0.5 ? "#fff" : "#222";
        s.title = cols[j] + ": " + fmt(w[j] || 0);
        to.appendChild(s);
      }
      if (hidden) gap(to, hidden);
    }
    var order = Array.prototype.map.call(row.c, function (c, k) { return [c, row.v[k]]; });
    order.sort(function (a, b) { return b[1] - a[1] || a[0] - b[0]; });
    var body = $("weights").tBodies[0];
    body.innerHTML = "";
    order.forEach(function (e) {
      var tr = document.createElement("tr"); tr.dataset.j = e[0];
      tr.innerHTML = "<td class='pos'></td><td class='tok-name'></td><td class='w'></td>";
      tr.children[0].textContent = e[0]; tr.children[1].textContent = cols[e[0]]; tr.children[2].textContent = fmt(e[1]);
      body.appendChild(tr);
    });
    var rows = labels(v.rows);
    $("weights-title").textContent = "Weights of " + JSON.stringify(rows[S.query] || "") + " (row " + S.query + ")" +
      (v.relative ? " · relative to the layer's largest" : "");
    renderRegions(w, max);
    drawHeat();
  }
  function gap(to, n) { var g = document.createElement("span"); g.className = "gap"; g.textContent = "…" + n + "…"; to.appendChild(g); }

  function renderRegions(w, max) {
    var v = view(), box = $("regions-box");
    box.style.display = v.image ? "block" : "none";
    if (!v.image) return;
    var img = $("region-image"), cv = $("region-overlay");
    if (img.src !== v.image) img.src = v.image;
    var draw = function () {
      cv.width = img.clientWidth; cv.height = img.clientHeight;
      var g = cv.getContext("2d"), gh = v.grid[0], gw = v.grid[1], ch = cv.height / gh, cw = cv.width / gw;
      g.clearRect(0, 0, cv.width, cv.height);
      for (var r = 0; r < gh * gw; r++) {
        g.fillStyle = "rgba(0,0,0," + (0.75 * (1 - (w[r] || 0) / max)).toFixed(3) + ")";
        g.fillRect((r % gw) * cw, Math.floor(r / gw) * ch, cw, ch);
      }
    };
    if (img.complete) draw(); else img.onload = draw;
  }

  function paint(canvas, h, w, value, cw, ch) {  // value(i, j) in [0, 1] -> viridis, cw x ch pixels a cell
    cw = cw || 1; ch = ch || cw;
    canvas.width = w * cw; canvas.height = h * ch;
    var g = canvas.getContext("2d"), im = g.createImageData(w * cw, h * ch), W = w * cw;
    for (var i = 0; i < h; i++) for (var j = 0; j < w; j++) {
      var c = colour(value(i, j));
      for (var a = 0; a < ch; a++) for (var b = 0; b < cw; b++) {
        var o = 4 * ((i * ch + a) * W + j * cw + b);
        im.data[o] = c[0]; im.data[o + 1] = c[1]; im.data[o + 2] = c[2]; im.data[o + 3] = 255;
      }
    }
    g.putImageData(im, 0, 0);
    return g;
  }

  function clamp(x, lo, hi) { return Math.max(lo, Math.min(hi, x)); }
  function cut(s) { s = String(s); return s.length > 14 ? s.slice(0, 13) + "\u2026" : s; }
  var HEAT = {};  // painted cells, by view and key: a click only redraws the labels and the row marker
  function drawHeat() {  // the matrix as a matrix: rows = the strip above, columns = the attended tokens, labelled
    var m = matrix(), v = view(), id = S.method + "|" + key(), rows = labels(v.rows), cols = labels(v.cols);
    var cw = clamp(Math.floor(420 / m.tk), 2, 28), ch = clamp(Math.floor(420 / m.tq), 2, 28);
    var canvas = $("heat"), g = canvas.getContext("2d");
    if (!HEAT[id]) {
      var dense = new Float32Array(m.tq * m.tk), cells = document.createElement("canvas");
      m.rows.forEach(function (r, i) { for (var k = 0; k < r.c.length; k++) dense[i * m.tk + r.c[k]] = r.v[k] / SCALE; });
      var max = dense.reduce(function (a, x) { return Math.max(a, x); }, 0) || 1;  // colours span 0 .. the largest
      HEAT[id] = paint(cells, m.tq, m.tk, function (i, j) { return dense[i * m.tk + j] / max; }, cw, ch)
        .getImageData(0, 0, cells.width, cells.height);
      HEAT[id].top = max;
    }
    var rowStep = Math.ceil(11 / ch), colStep = Math.ceil(11 / cw), shownRows = [], shownCols = [];
    for (var i = 0; i < m.tq; i += rowStep) shownRows.push(i);
    for (var j = 0; j < m.tk; j += colStep) shownCols.push(j);
    g.font = "10px monospace";
    var width = function (idx, names) { return idx.reduce(function (a, k) { return Math.max(a, g.measureText(cut(names[k])).width); }, 0); };
    var left = Math.ceil(width(shownRows, rows)) + 8, top = Math.ceil(width(shownCols, cols)) + 8;
    canvas.width = left + m.tk * cw; canvas.height = top + m.tq * ch;
    g = canvas.getContext("2d"); g.font = "10px monospace"; g.fillStyle = "#223";
    g.putImageData(HEAT[id], left, top);
    g.textAlign = "right"; g.textBaseline = "middle";
    shownRows.forEach(function (k) { g.fillText(cut(rows[k]), left - 4, top + k * ch + ch / 2); });
    shownCols.forEach(function (k) {
      g.save(); g.translate(left + k * cw + cw / 2, top - 4); g.rotate(-Math.PI / 2);
      g.textAlign = "left"; g.fillText(cut(cols[k]), 0, 0); g.restore();
    });
    canvas.dataset.rows = JSON.stringify(shownRows.map(function (k) { return rows[k]; }));
    canvas.dataset.cols = JSON.stringify(shownCols.map(function (k) { return cols[k]; }));
    canvas.dataset.cell = cw + "x" + ch;
    g.strokeStyle = "#ff3030"; g.lineWidth = 2;
    g.strokeRect(left + 1, top + S.query * ch, m.tk * cw - 2, Math.max(ch, 2));
    $("heat-caption").textContent = (v.rows === "out_tokens" ? "rows: output tokens" : "rows: attending tokens") +
      " \u00b7 columns: " + (v.cols === "regions" ? "image regions (row, col)" : "attended tokens") +
      " \u00b7 colour: weight from 0 (dark) to " + fmt(Math.round(HEAT[id].top * SCALE)) + " (bright), this matrix's largest" +
      (v.relative ? "; weights relative to the layer's largest" : "");
  }

  function renderGrid() {
    var v = view(), grid = $("grid");
    grid.innerHTML = "";
    if (!v.thumbs) return;
    var layers = S.gridLayers || D.layers, heads = S.method === "raw" ? (S.gridHeads || D.heads).concat(["mean"]) : [""];
    var t = document.createElement("table"), hr = t.insertRow();
    hr.insertCell().textContent = "";
    heads.forEach(function (h) { hr.insertCell().textContent = h === "" ? "all heads" : h === "mean" ? "mean" : "head " + h; });
    layers.forEach(function (l) {
      var tr = t.insertRow();
      tr.insertCell().textContent = "layer " + l;
      heads.forEach(function (h) {
        var k = S.method === "raw" ? l + "," + h : String(l), th = v.thumbs[k], cv = document.createElement("canvas");
        var px = bytes(th.v);
        paint(cv, th.h, th.w, function (i, j) { return px[i * th.w + j] / 255; }, 1, 1);
        cv.dataset.layer = l; cv.dataset.head = h; cv.title = "layer " + l + (h === "" ? "" : ", head " + h);
        if (l === S.layer && (S.method !== "raw" || String(h) === String(S.head))) cv.className = "sel";
        cv.onclick = function () {
          S.layer = Number(this.dataset.layer); $("layer").value = S.layer;
          if (S.method === "raw") { S.head = this.dataset.head === "mean" ? "mean" : Number(this.dataset.head); $("head").value = S.head; }
          render();
        };
        tr.insertCell().appendChild(cv);
      });
    });
    grid.appendChild(t);
  }

  function render() { renderControls(); renderFrom(); renderRow(); renderGrid(); document.body.dataset.ready = "1"; }
  setup();
})();
