/* Length and angle measurements in mm, listed in the drawer and exported as CSV. They are
   kept for this browser tab only (sessionStorage), as the canal is: a reload keeps them,
   another tab starts without them, and nothing is sent anywhere. */
import { $, PLANES, cap, painters, panes, state, visiblePanes } from "./core.js";
import { draw, line, toScreen } from "./draw.js";

// ------------------------------------------------------------ measurements

var measures = [];
var measureSeq = 0;

function measureValue(m) {
  var sp = m.sp;
  var d = function (a, b) { return Math.hypot((b.x - a.x) * sp[1], (b.y - a.y) * sp[0]); };
  if (m.type === "length" && m.pts.length === 2) return d(m.pts[0], m.pts[1]);
  if (m.type === "angle" && m.pts.length === 3) {
    var v = m.pts[1];
    var a1 = Math.atan2((m.pts[0].y - v.y) * sp[0], (m.pts[0].x - v.x) * sp[1]);
    var a2 = Math.atan2((m.pts[2].y - v.y) * sp[0], (m.pts[2].x - v.x) * sp[1]);
    var deg = Math.abs(a1 - a2) * 180 / Math.PI;
    return deg > 180 ? 360 - deg : deg;
  }
  return null;
}

function measureUnit(m) { return m.type === "angle" ? "°" : (m.mm ? " mm" : " px"); }

function measureText(m) {
  var v = measureValue(m);
  return v === null ? "" : v.toFixed(1) + measureUnit(m);
}

function drawMeasure(pane, m) {
  var ctx = pane.ctx;
  var pts = m.pts.map(function (p) { return toScreen(pane, p); });
  ctx.lineWidth = 2;
  for (var i = 1; i < pts.length; i++) line(ctx, pts[i - 1], pts[i], "#ff5a36");
  ctx.fillStyle = "#ff5a36";
  pts.forEach(function (p) { ctx.fillRect(p.x - 2, p.y - 2, 4, 4); });
  var text = (m.n ? m.n + ": " : "") + measureText(m);
  if (measureValue(m) !== null) {
    var at = pts[pts.length - 1];
    ctx.font = "bold 14px system-ui, sans-serif";
    // The value stays inside the pane: left of the point when it would run off the right.
    var w = ctx.measureText(text).width;
    var x = at.x + 6 + w > pane.cssW - 4 ? Math.max(4, at.x - 6 - w) : at.x + 6;
    var y = Math.max(16, at.y - 6);
    ctx.fillStyle = "#000";
    ctx.fillText(text, x + 1, y + 1);
    ctx.fillStyle = "#ffd166";
    ctx.fillText(text, x, y);
  }
}

function newMeasure(pane, type, p) {
  return { type: type, plane: pane.plane, index: pane.shown, item: state.item, sp: pane.sp.slice(),
    mm: pane.mm, pts: [p, p], label: state.item ? state.item.dataset.label : "",
    where: state.kind === "photo" ? "Photo" : "" };  // a photo has no plane or image number
}

function addMeasure(m) {
  m.n = ++measureSeq;
  measures.push(m);
  renderMeasures();
  $("#measure-status").textContent = "Measurement " + m.n + " added: " + measureText(m);
}

function removeMeasure(n) {
  measures = measures.filter(function (m) { return m.n !== n; });
  renderMeasures();
  visiblePanes().forEach(draw);
  $("#measure-status").textContent = "Measurement " + n + " removed.";
}

function clearMeasures() {
  measures = [];
  PLANES.forEach(function (p) { panes[p].draft = null; });
  renderMeasures();
  visiblePanes().forEach(draw);
  $("#measure-status").textContent = "All measurements cleared.";
}

function renderMeasures() {
  var list = $("#measure-list");
  list.textContent = "";
  measures.forEach(function (m) {
    var li = document.createElement("li");
    li.dataset.n = String(m.n);
    var text = document.createElement("span");
    text.textContent = (m.type === "angle" ? "Angle " : "Length ") + measureText(m) + " · " +
      (m.where || cap(m.plane) + " " + (m.index + 1)) + (m.label ? " · " + m.label : "");
    var go = document.createElement("button");
    go.type = "button"; go.className = "secondary"; go.textContent = "Show";
    go.addEventListener("click", function () { showMeasure(m); });
    var del = document.createElement("button");
    del.type = "button"; del.className = "secondary"; del.textContent = "Remove";
    del.setAttribute("aria-label", "Remove measurement " + m.n);
    del.addEventListener("click", function () { removeMeasure(m.n); });
    li.appendChild(text); li.appendChild(go); li.appendChild(del);
    list.appendChild(li);
  });
  var none = measures.length === 0;
  $("#measure-empty").hidden = !none;
  ["#measure-copy", "#measure-csv", "#clear-measure"].forEach(function (id) { $(id).disabled = none; });
  saveMeasures();
  document.dispatchEvent(new CustomEvent("viewer:measures"));
}

// ------------------------------------------------------------ kept for this tab

function keptKey() { return "measures:" + location.pathname; }

function saveMeasures() {
  var kept = measures.map(function (m) {
    return { n: m.n, type: m.type, plane: m.plane, index: m.index, sp: m.sp, mm: m.mm, pts: m.pts,
      label: m.label, where: m.where || "", at: m.at, curveKey: m.curveKey,
      code: m.item ? m.item.dataset.code : "" };
  });
  try { sessionStorage.setItem(keptKey(), JSON.stringify(kept)); } catch (e) { /* private mode */ }
}

function finite(v) { return typeof v === "number" && isFinite(v); }

// A kept measurement back on its image, or null when its image is gone or it makes no sense.
function revive(k) {
  if (!k || (k.type !== "length" && k.type !== "angle") || !Array.isArray(k.pts)) return null;
  if (k.pts.length !== (k.type === "angle" ? 3 : 2)) return null;
  if (!k.pts.every(function (p) { return p && finite(p.x) && finite(p.y); })) return null;
  if (!Array.isArray(k.sp) || k.sp.length !== 2 || !k.sp.every(finite)) return null;
  if (!finite(k.n) || !finite(k.index) || typeof k.code !== "string") return null;
  var item = Array.prototype.find.call(document.querySelectorAll(".series-list .item"), function (b) {
    return b.dataset.code === k.code;
  });
  if (!item) return null;
  var m = { n: k.n, type: k.type, plane: String(k.plane), index: k.index, item: item, sp: k.sp,
    mm: !!k.mm, label: String(k.label || ""), where: String(k.where || ""),
    pts: k.pts.map(function (p) { return { x: p.x, y: p.y }; }) };
  if (finite(k.at)) m.at = k.at;
  if (typeof k.curveKey === "string" && validCurve(k.curveKey)) m.curveKey = k.curveKey;
  return m;
}

function validCurve(key) {
  var points;
  try { points = JSON.parse(key); } catch (e) { return false; }
  return Array.isArray(points) && points.length >= 2 && points.length <= 32 && points.every(function (p) {
    return Array.isArray(p) && p.length === 2 && finite(p[0]) && finite(p[1]);
  });
}

function loadMeasures() {
  var raw = null, list = [];
  try { raw = sessionStorage.getItem(keptKey()); } catch (e) { raw = null; }
  try { list = JSON.parse(raw || "[]"); } catch (e) { list = []; }
  measures = (Array.isArray(list) ? list : []).map(revive).filter(Boolean);
  measureSeq = measures.reduce(function (top, m) { return Math.max(top, m.n); }, 0);
  renderMeasures();
}

// Going to a measurement's image is the series' business (kinds.js listens).
function showMeasure(m) {
  if (m.item === state.item && m.at !== undefined) {  // a cross-section: the dental view's business
    document.dispatchEvent(new CustomEvent("viewer:show-section", { detail: m }));
    return;
  }
  document.dispatchEvent(new CustomEvent("viewer:show-measure", { detail: m }));
}

painters.push(function (pane) {
  measures.forEach(function (m) {
    if (m.item !== state.item || m.plane !== pane.plane || m.index !== pane.shown) return;
    // A cross-section's measurement shows only along the curve it was taken on.
    if (m.curveKey && pane.curveKey && m.curveKey !== pane.curveKey) return;
    drawMeasure(pane, m);
  });
  if (pane.draft) drawMeasure(pane, pane.draft);
});

function csvField(v) {
  var s = String(v);
  return /[",\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
}

function measuresCsv() {
  var rows = [["number", "type", "value", "unit", "series", "plane", "image", "points (column row)"]];
  measures.forEach(function (m) {
    rows.push([m.n, m.type, measureValue(m).toFixed(2), measureUnit(m).trim(), m.label, m.where || m.plane, m.where ? "" : m.index + 1,
      m.pts.map(function (p) { return p.x.toFixed(1) + " " + p.y.toFixed(1); }).join("; ")]);
  });
  return rows.map(function (r) { return r.map(csvField).join(","); }).join("\r\n") + "\r\n";
}

function copyCsv() {
  var text = measuresCsv();
  var done = function () { $("#measure-status").textContent = "Measurements copied as CSV."; };
  if (navigator.clipboard && navigator.clipboard.writeText) {
    navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(text); done(); });
  } else { fallbackCopy(text); done(); }
}

function fallbackCopy(text) {
  var area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "sr-only";
  document.body.appendChild(area);
  area.select();
  try { document.execCommand("copy"); } catch (err) { /* the list stays on screen */ }
  document.body.removeChild(area);
}

function downloadCsv() {
  var url = URL.createObjectURL(new Blob([measuresCsv()], { type: "text/csv" }));
  var a = document.createElement("a");
  a.href = url;
  a.download = "measurements.csv";
  document.body.appendChild(a);
  a.click();
  document.body.removeChild(a);
  setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
}

loadMeasures();

export { addMeasure, clearMeasures, copyCsv, csvField, downloadCsv, drawMeasure, fallbackCopy, measureSeq, measureText, measureUnit, measureValue, measures, measuresCsv, newMeasure, removeMeasure, renderMeasures, showMeasure };
