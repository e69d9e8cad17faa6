/* Pointer input on the panes: scroll, window/level, pan, pinch and wheel zoom, measuring,
   flicks and the crosshair of the three views. */
import { FRICTION, PLANES, PX_PER_SLICE, panes, state } from "./core.js";
import { draw, toImage, zoomAt } from "./draw.js";
import { addMeasure, newMeasure } from "./measure.js";
import { setActive, setIndex, setWindow, status, step } from "./series.js";

// ------------------------------------------------------------ pointer input

var pointers = new Map();
var drag = null;
var flick = null;

function local(pane, e) {
  var r = pane.canvas.getBoundingClientRect();
  return { x: e.clientX - r.left, y: e.clientY - r.top };
}

function inside(pane, ip) { return ip.x >= 0 && ip.y >= 0 && ip.x < pane.cols && ip.y < pane.rows; }

function stopFlick() { if (flick) { cancelAnimationFrame(flick.raf); flick = null; } }

// A flick keeps scrolling and slows down, as a list does under a thumb.
function startFlick(pane, velocity) {
  stopFlick();
  if (Math.abs(velocity) < 0.25 || pane.count < 2) return;
  flick = { pane: pane, v: velocity, acc: 0, last: performance.now(), raf: 0 };
  var frame = function (now) {
    if (!flick) return;
    var dt = Math.min(50, now - flick.last);
    flick.last = now;
    flick.acc += flick.v * dt;
    flick.v *= Math.pow(FRICTION, dt / 16);
    var steps = Math.trunc(flick.acc / PX_PER_SLICE);
    if (steps) { flick.acc -= steps * PX_PER_SLICE; setIndex(flick.pane, flick.pane.index + steps); }
    var atEnd = flick.pane.index <= 0 || flick.pane.index >= flick.pane.count - 1;
    if (Math.abs(flick.v) < 0.03 || atEnd) { flick = null; return; }
    flick.raf = requestAnimationFrame(frame);
  };
  flick.raf = requestAnimationFrame(frame);
}

function onDown(pane, e) {
  if (!pane.img && !pane.failed) return;
  stopFlick();
  if (pane.plane !== state.active) setActive(pane.plane);
  try { pane.canvas.setPointerCapture(e.pointerId); } catch (err) { /* synthetic or ended */ }
  pointers.set(e.pointerId, local(pane, e));
  e.preventDefault();
  if (pointers.size === 2) {
    var pts = Array.from(pointers.values());
    drag = { pinch: true, pane: pane, dist: Math.hypot(pts[0].x - pts[1].x, pts[0].y - pts[1].y),
      mid: { x: (pts[0].x + pts[1].x) / 2, y: (pts[0].y + pts[1].y) / 2 } };
    pane.draft = null;
    return;
  }
  if (pointers.size > 2) return;
  var p = local(pane, e);
  var tool = e.button === 1 || (e.button === 0 && e.shiftKey) ? "pan" : e.button === 2 ? "zoom" : state.tool;
  if (state.kind === "photo" && (tool === "scroll" || tool === "wl")) tool = "pan";
  if (pane.failed && tool !== "scroll") return;  // nothing shown to measure, pan or zoom
  drag = { pane: pane, tool: tool, start: p, last: p, c0: state.center, w0: state.width,
    index0: pane.index, moved: false, samples: [{ t: e.timeStamp, y: p.y }] };
  var ip = toImage(pane, p.x, p.y);
  if (tool === "length") pane.draft = newMeasure(pane, "length", ip);
  if (tool === "angle") {
    if (pane.draft && pane.draft.type === "angle" && pane.draft.pts.length === 2) pane.draft.pts.push(ip);
    else pane.draft = newMeasure(pane, "angle", ip);
  }
}

function onMove(pane, e) {
  if (!pointers.has(e.pointerId) || !drag) return;
  var p = local(pane, e);
  pointers.set(e.pointerId, p);
  if (drag.pinch) {
    if (pointers.size < 2) return;
    var pts = Array.from(pointers.values());
    var dist = Math.hypot(pts[0].x - pts[1].x, pts[0].y - pts[1].y);
    var mid = { x: (pts[0].x + pts[1].x) / 2, y: (pts[0].y + pts[1].y) / 2 };
    pane.ox += mid.x - drag.mid.x;
    pane.oy += mid.y - drag.mid.y;
    zoomAt(pane, mid.x, mid.y, drag.dist > 0 ? dist / drag.dist : 1);
    drag.dist = dist; drag.mid = mid;
    return;
  }
  var dx = p.x - drag.last.x, dy = p.y - drag.last.y;
  if (Math.abs(p.x - drag.start.x) + Math.abs(p.y - drag.start.y) > 4) drag.moved = true;
  drag.last = p;
  drag.samples.push({ t: e.timeStamp, y: p.y });
  if (drag.samples.length > 8) drag.samples.shift();
  var ip = toImage(pane, p.x, p.y);
  if (drag.tool === "scroll") {
    // Dragging up moves towards the first image, as a finger pulls a list.
    setIndex(pane, drag.index0 - Math.round((p.y - drag.start.y) / PX_PER_SLICE));
  } else if (drag.tool === "wl") {
    var k = Math.max(drag.w0, 100) / 250;
    setWindow(drag.c0 - (p.y - drag.start.y) * k, drag.w0 + (p.x - drag.start.x) * k, false);
  } else if (drag.tool === "pan") {
    pane.ox += dx; pane.oy += dy; pane.fitted = false; draw(pane);
  } else if (drag.tool === "zoom") {
    zoomAt(pane, drag.start.x, drag.start.y, Math.exp(-dy / 150));
  } else if (pane.draft) {
    pane.draft.pts[pane.draft.pts.length - 1] = ip;
    draw(pane);
  }
}

function releaseVelocity(d, at) {
  var s = d.samples, last = s[s.length - 1], first = s[0];
  if (at - last.t > 80) return 0;  // the finger rested before it lifted: no flick
  for (var i = s.length - 1; i >= 0 && last.t - s[i].t <= 100; i--) first = s[i];
  var dt = last.t - first.t;
  return dt > 0 ? -(last.y - first.y) / dt : 0;  // px per ms, in slice direction
}

function onUp(pane, e) {
  if (!pointers.has(e.pointerId)) return;
  pointers.delete(e.pointerId);
  if (!drag) return;
  if (drag.pinch) { if (pointers.size === 0) drag = null; return; }
  var d = drag;
  drag = null;
  if (d.tool === "wl" && d.moved) setWindow(state.center, state.width, true);
  if (d.tool === "scroll" && d.moved && e.type === "pointerup") startFlick(pane, releaseVelocity(d, e.timeStamp));
  if (d.tool === "scroll" && !d.moved && state.layout === "triple") {
    var ip = toImage(pane, d.start.x, d.start.y);
    if (inside(pane, ip)) crosshair(pane, ip);
  }
  if (pane.draft && (d.tool === "length" || d.tool === "angle")) {
    var m = pane.draft;
    var done = (m.type === "length" && d.moved) || (m.type === "angle" && m.pts.length === 3);
    if (m.type === "length" && !d.moved) pane.draft = null;
    if (done) { pane.draft = null; addMeasure(m); }
    draw(pane);
  }
}

// A click in one of the three views moves the other two to that point.
function crosshair(pane, ip) {
  var nz = panes.axial.count;
  var x = Math.floor(ip.x), y = Math.floor(ip.y);
  if (pane.plane === "axial") { setIndex(panes.sagittal, x); setIndex(panes.coronal, y); }
  else if (pane.plane === "coronal") { setIndex(panes.sagittal, x); setIndex(panes.axial, nz - 1 - y); }
  else { setIndex(panes.coronal, x); setIndex(panes.axial, nz - 1 - y); }
  PLANES.forEach(function (p) { draw(panes[p]); });
  status();
}

var wheelAcc = 0;
function onWheel(pane, e) {
  if (!pane.img && !pane.failed) return;
  e.preventDefault();
  stopFlick();
  if (pane.plane !== state.active) setActive(pane.plane);
  if (e.ctrlKey || e.metaKey || state.kind === "photo") {
    var p = local(pane, e);
    zoomAt(pane, p.x, p.y, Math.exp(-e.deltaY / 300));
    return;
  }
  if (e.deltaMode !== 0 || Math.abs(e.deltaY) >= 50) { wheelAcc = 0; step(e.deltaY > 0 ? 1 : -1); return; }
  wheelAcc += e.deltaY;
  if (Math.abs(wheelAcc) >= 50) { step(wheelAcc > 0 ? 1 : -1); wheelAcc = 0; }
}

PLANES.forEach(function (plane) {
  var pane = panes[plane];
  var c = pane.canvas;
  c.addEventListener("pointerdown", function (e) { onDown(pane, e); });
  c.addEventListener("pointermove", function (e) { onMove(pane, e); });
  c.addEventListener("pointerup", function (e) { onUp(pane, e); });
  c.addEventListener("pointercancel", function (e) { onUp(pane, e); });
  c.addEventListener("wheel", function (e) { onWheel(pane, e); }, { passive: false });
  c.addEventListener("contextmenu", function (e) { e.preventDefault(); });
});

export { crosshair, drag, flick, inside, local, onDown, onMove, onUp, onWheel, pointers, releaseVelocity, startFlick, stopFlick, wheelAcc };
