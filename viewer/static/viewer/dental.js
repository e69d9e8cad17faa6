/* The dental view of a CBCT (a "Panoramic" button for a scan with teeth): the arch curve on the
   axial image, its dots dragged with a mouse or a finger; the panoramic along it; cross-sections
   that follow a tap on the panoramic or the curve; measuring on the cross-sections; tracing the
   nerve canal on the panoramic. State and images: dental-view.js; marks: dental-paint.js. */
import { $, $$, checkSession, choose, refusedImage, root, state } from "./core.js";
import { draw, resize, toImage, zoomAt } from "./draw.js";
import { addMeasure, newMeasure } from "./measure.js";
import { relayout, setStatusError } from "./series.js";
import { locate } from "./dental-paint.js";
import {
  addCanalPoint, allPanes, axial, box, curveKey, d, loadCanal, pano, refreshCurve, saveCanal, say,
  sections, setAt, showAll, showAxial, showPanoramic, showSections, toggle, updateSaves
} from "./dental-view.js";

var GRAB_PX = 26;       // a dot is grabbed this close, finger-sized
var PICK_MM = 12;       // a tap this close to the curve chooses a position on it
var REFRESH_MS = 250;   // while a dot moves, the panoramic follows this often

// ------------------------------------------------------------ opening and closing

// A scan whose stored volume showed teeth gets the button at once; one not yet stored gets it
// too, and the arch (found on the first click) decides.
function offer(m) {
  toggle.hidden = true;
  if (m.kind !== "volume" || m.colour || !m.urls || !m.urls.dental || m.teeth === false) return;
  d.code = m.code;
  d.base = m.urls.dental;
  toggle.hidden = false;
}

document.addEventListener("viewer:series", function (e) { offer(e.detail); });
// On a slow first visit the series may have opened before this module ran.
if (state.manifest) offer(state.manifest);

function fetchArch() {
  var gen = d.gen;
  toggle.disabled = true;
  return fetch(d.base + "arch.json", { credentials: "same-origin" }).then(function (r) {
    if (refusedImage(r)) checkSession();
    return r.json().catch(function () { return { error: "The panoramic could not be made (" + r.status + ")." }; });
  }).then(function (arch) {
    if (gen !== d.gen) return;
    toggle.disabled = false;
    if (arch.error) { toggle.hidden = true; setStatusError(arch.error); return; }
    d.arch = arch;
    open();
  }).catch(function () {
    if (gen === d.gen) { toggle.disabled = false; setStatusError("The panoramic could not be made."); }
  });
}

document.addEventListener("viewer:reset", function () {
  d.gen++;
  d.arch = null;
  toggle.hidden = true;
  toggle.disabled = false;
  if (d.on) close();
});

document.addEventListener("viewer:refresh", function () { if (d.on) showAll(); });

// "Show" on a cross-section's measurement: back to that position along the arch.
document.addEventListener("viewer:show-section", function (event) {
  var m = event.detail;
  var go = function () {
    if (!m.curveKey || m.curveKey === curveKey()) { setAt(m.at); return; }
    // Measured along a curve since moved or reset: that curve comes back first.
    d.curve = { points: JSON.parse(m.curveKey), occlusal_index: d.curve.occlusal_index };
    refreshCurve(true).then(function () { setAt(m.at); });
  };
  if (d.on) { go(); return; }
  if (d.arch) { open(); go(); return; }
  // After a reload the arch is not found yet: find it, as the Panoramic button does.
  if (!toggle.hidden && !toggle.disabled) fetchArch().then(function () { if (d.on) go(); });
});

document.addEventListener("viewer:measures", function () {
  if (d.on) sections.forEach(function (p) { if (p.source) draw(p); });
});

function open() {
  var a = d.arch;
  d.on = true;
  d.curve = { points: a.curve.points.map(function (p) { return p.slice(); }), occlusal_index: a.curve.occlusal_index };
  d.path = { points: a.points, normals: a.normals, length_mm: a.length_mm, step_mm: a.step_mm };
  d.geo = a.geometry;
  d.at = a.length_mm / 2;
  d.slice = null;
  root.dataset.view = "dental";
  box.hidden = false;
  $("#dental-settings").hidden = false;
  toggle.setAttribute("aria-pressed", "true");
  toggle.textContent = "Back to slices";
  loadCanal();
  allPanes().forEach(function (p) { p.img = null; p.source = null; p.fitted = true; resize(p); });
  showAll();
  say("Drag the yellow dots so the curve follows the teeth. Tap the panoramic to see cross-sections there.");
}

function close() {
  d.on = false;
  d.gen++;
  root.dataset.view = "";
  box.hidden = true;
  $("#dental-settings").hidden = true;
  toggle.setAttribute("aria-pressed", "false");
  toggle.textContent = "Panoramic";
  relayout();
}

toggle.addEventListener("click", function () {
  if (d.on) close();
  else if (d.arch) open();
  else fetchArch();
});

// ------------------------------------------------------------ controls

function setDentalTool(tool) {
  d.tool = tool;
  choose($$("[data-dtool]"), function (b) { return b.dataset.dtool === tool; });
  sections.forEach(function (p) { p.draft = null; });
  box.dataset.tool = tool;
  say({
    pick: "Tap the panoramic or the curve to move the cross-sections; drag a yellow dot to move the curve.",
    length: "Drag across a cross-section to measure a distance in mm.",
    angle: "On a cross-section, drag along one side of the angle, then tap the end of the other side.",
    canal: "Tap along the nerve canal on the panoramic, or where you see it on a cross-section."
  }[tool] || "");
}

$$("[data-dtool]").forEach(function (b) {
  b.addEventListener("click", function () { setDentalTool(b.dataset.dtool); });
});
$("#dental-thickness").addEventListener("change", function () { d.thickness = parseFloat(this.value); showPanoramic(); });
$("#dental-mode").addEventListener("change", function () { d.mode = this.value; showPanoramic(); });
$("#dental-spacing").addEventListener("change", function () { d.spacing = parseFloat(this.value); showSections(); });
if ($("#dental-format")) $("#dental-format").addEventListener("change", updateSaves);
$("#curve-reset").addEventListener("click", function () {
  if (!d.on || !d.arch) return;
  d.curve = { points: d.arch.curve.points.map(function (p) { return p.slice(); }), occlusal_index: d.arch.curve.occlusal_index };
  refreshCurve(true);
  say("The curve is back where it was found.");
});
$("#canal-clear").addEventListener("click", function () {
  d.canal = [];
  saveCanal();
  allPanes().forEach(function (p) { if (p.source) draw(p); });
  say("The canal tracing was cleared.");
});

// ------------------------------------------------------------ pointer input

var pointers = new Map();
var gesture = null;
var wheel = 0;
var lastRefresh = 0;

function local(pane, e) {
  var r = pane.canvas.getBoundingClientRect();
  return { x: e.clientX - r.left, y: e.clientY - r.top };
}

function grabbed(p) {
  var best = -1, bestD = GRAB_PX;
  d.curve.points.forEach(function (q, i) {
    var s = { x: axial.ox + (q[0] + 0.5) * axial.sp[1] * axial.scale, y: axial.oy + (q[1] + 0.5) * axial.sp[0] * axial.scale };
    var dist = Math.hypot(s.x - p.x, s.y - p.y);
    if (dist < bestD) { bestD = dist; best = i; }
  });
  return best;
}

function measureDown(pane, ip) {
  var at = d.positions[sections.indexOf(pane)];
  var add = function (m) {
    m.where = "Cross-section at " + at + " mm";
    m.at = at;
    m.curveKey = curveKey();  // "at" means something only along this curve
    return m;
  };
  if (d.tool === "angle" && pane.draft && pane.draft.type === "angle" && pane.draft.pts.length === 2) {
    pane.draft.pts.push(ip);
  } else {
    pane.draft = add(newMeasure(pane, d.tool, ip));
  }
}

function onDown(pane, e) {
  if (!pane.source || !d.path) return;
  try { pane.canvas.setPointerCapture(e.pointerId); } catch (err) { /* synthetic */ }
  e.preventDefault();
  d.touch = e.pointerType === "touch";
  var p = local(pane, e);
  pointers.set(e.pointerId, p);
  if (pointers.size === 2) {
    var pts = Array.from(pointers.values());
    gesture = { pinch: true, pane: pane, dist: Math.hypot(pts[0].x - pts[1].x, pts[0].y - pts[1].y) };
    pane.draft = null;
    return;
  }
  var ip = toImage(pane, p.x, p.y);
  gesture = { pane: pane, start: p, moved: false, grab: -1 };
  if (pane === axial) {
    gesture.grab = grabbed(p);
    if (gesture.grab >= 0) { d.grab = gesture.grab; d.dragging = true; draw(axial); }
  } else if (sections.indexOf(pane) >= 0 && (d.tool === "length" || d.tool === "angle")) {
    measureDown(pane, ip);
    draw(pane);
  }
}

function onMove(pane, e) {
  if (!pointers.has(e.pointerId) || !gesture) return;
  var p = local(pane, e);
  pointers.set(e.pointerId, p);
  if (gesture.pinch) {
    if (pointers.size < 2) return;
    var pts = Array.from(pointers.values());
    var dist = Math.hypot(pts[0].x - pts[1].x, pts[0].y - pts[1].y);
    zoomAt(pane, (pts[0].x + pts[1].x) / 2, (pts[0].y + pts[1].y) / 2, gesture.dist > 0 ? dist / gesture.dist : 1);
    gesture.dist = dist;
    return;
  }
  if (Math.abs(p.x - gesture.start.x) + Math.abs(p.y - gesture.start.y) > 4) gesture.moved = true;
  var ip = toImage(pane, p.x, p.y);
  if (gesture.grab >= 0) {
    var c = Math.max(0, Math.min(axial.cols - 1, ip.x - 0.5));
    var r = Math.max(0, Math.min(axial.rows - 1, ip.y - 0.5));
    d.curve.points[gesture.grab] = [c, r];
    draw(axial);
    if (e.timeStamp - lastRefresh > REFRESH_MS) { lastRefresh = e.timeStamp; refreshCurve(false); }
  } else if (pane.draft) {
    pane.draft.pts[pane.draft.pts.length - 1] = ip;
    draw(pane);
  }
}

function onUp(pane, e) {
  if (!pointers.has(e.pointerId)) return;
  pointers.delete(e.pointerId);
  var g = gesture;
  if (!g) return;
  if (g.pinch) { if (pointers.size === 0) gesture = null; return; }
  gesture = null;
  if (g.grab >= 0) {
    d.grab = -1;
    refreshCurve(true);
    say("The curve was moved; the panoramic follows it.");
    return;
  }
  var ip = toImage(pane, g.start.x, g.start.y);
  if (pane.draft) {
    var m = pane.draft;
    var done = (m.type === "length" && g.moved) || (m.type === "angle" && m.pts.length === 3);
    if (m.type === "length" && !g.moved) pane.draft = null;
    if (done) { pane.draft = null; addMeasure(m); }
    draw(pane);
    return;
  }
  if (g.moved || e.type !== "pointerup") return;
  if (pane === pano) {
    if (d.tool === "canal") addCanalPoint((ip.x - 0.5) * d.geo.mm_per_col, 0, ip.y - 0.5);
    else setAt((ip.x - 0.5) * d.geo.mm_per_col);
  } else if (pane === axial) {
    var l = locate(d.path, axial.sp, ip.x - 0.5, ip.y - 0.5);
    if (l.distance <= PICK_MM) setAt(l.arc);
  } else {
    var k = sections.indexOf(pane);
    if (k >= 0 && d.tool === "canal") {
      addCanalPoint(d.positions[k], (ip.x - 0.5) * d.geo.mm_per_col - d.width / 2, ip.y - 0.5);
    } else if (k >= 0 && k !== d.active) setAt(d.positions[k]);
  }
}

allPanes().forEach(function (pane) {
  var c = pane.canvas;
  c.addEventListener("pointerdown", function (e) { onDown(pane, e); });
  c.addEventListener("pointermove", function (e) { onMove(pane, e); });
  c.addEventListener("pointerup", function (e) { onUp(pane, e); });
  c.addEventListener("pointercancel", function (e) { onUp(pane, e); });
  c.addEventListener("contextmenu", function (e) { e.preventDefault(); });
  c.addEventListener("wheel", function (e) {
    if (!pane.source) return;
    e.preventDefault();
    if (pane === axial && !e.ctrlKey && !e.metaKey) {  // the wheel moves the axial slice
      wheel += e.deltaY;
      if (Math.abs(wheel) < 50 && e.deltaMode === 0) return;
      showAxial(d.slice + (wheel > 0 ? 1 : -1) * d.geo.slice_step);  // down: towards the feet
      wheel = 0;
      return;
    }
    var p = local(pane, e);
    zoomAt(pane, p.x, p.y, Math.exp(-e.deltaY / 300));
  }, { passive: false });
});

// Keys move the cross-sections along the arch while the dental view is open.
document.addEventListener("keydown", function (e) {
  if (!d.on || e.ctrlKey || e.metaKey || e.altKey) return;
  var el = e.target && e.target.closest ? e.target : null;
  if (el && el.closest("input, select, textarea, #drawer")) return;
  var moves = { ArrowLeft: -1, ArrowUp: -1, ArrowRight: 1, ArrowDown: 1, PageUp: -10, PageDown: 10 };
  if (!(e.key in moves)) return;
  e.preventDefault();
  e.stopImmediatePropagation();
  setAt(d.at + moves[e.key] * d.spacing);
}, true);

$("#fit").addEventListener("click", function () {
  if (!d.on) return;
  allPanes().forEach(function (p) { p.fitted = true; });
  showAll();
});

var resizeTimer = null;
window.addEventListener("resize", function () {
  if (!d.on) return;
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(function () {
    allPanes().forEach(function (p) { resize(p); if (p.source) draw(p); });
  }, 100);
});

// For the browser journeys: where things are, without reading pixels.
window.viewer = window.viewer || {};
window.viewer.dental = { state: d, axial: axial, panoramic: pano, sections: sections };
