/* The dental view's panes and marks: the arch curve with its dots on the axial image, the mm
   ruler along the panoramic, the cross-section positions, and the traced canal in every view.
   Positions along the arch come from the server's sampled path (one point per mm). */
import { $, num } from "./core.js";
import { line, toScreen } from "./draw.js";

var CURVE = "#f5c518";
var ACTIVE = "#3bd16f";
var MARK = "#3b9bff";
var CANAL = "#ff4fa3";

// A pane for the dental view, shaped as the viewer's own panes so draw() and measuring work.
function makePane(el, plane, label) {
  el.innerHTML = "";
  var canvas = document.createElement("canvas");
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", label);
  var ov = document.createElement("div");
  ov.className = "overlay";
  ov.setAttribute("aria-hidden", "true");
  ["edge edge-top", "edge edge-bottom", "edge edge-left", "edge edge-right", "pane-label", "pane-pos"]
    .forEach(function (cls) {
      var s = document.createElement("span");
      s.className = cls;
      ov.appendChild(s);
    });
  $(".pane-label", ov).textContent = label;
  var bar = document.createElement("span");
  bar.className = "scalebar";
  bar.hidden = true;
  bar.appendChild(document.createElement("i"));
  bar.appendChild(document.createElement("b"));
  ov.appendChild(bar);
  el.appendChild(canvas);
  el.appendChild(ov);
  return {
    plane: plane, el: el, canvas: canvas, ctx: canvas.getContext("2d"),
    count: 1, index: 0, shown: 0, rows: 0, cols: 0, sp: [1, 1], mm: true, labels: null,
    img: null, source: null, scale: 1, ox: 0, oy: 0, fitted: true, cssW: 1, cssH: 1,
    draft: null, failed: "", wanted: "", extra: null, label: label
  };
}

// Fit a pane's width, and its height to `mm` around image row `row` when the image is taller.
function fitAround(pane, row, mm) {
  var mmW = pane.cols * pane.sp[1], mmH = pane.rows * pane.sp[0];
  var showH = Math.min(mmH, mm || mmH);
  pane.scale = Math.min(pane.cssW / mmW, pane.cssH / showH);
  pane.ox = (pane.cssW - mmW * pane.scale) / 2;
  var centre = row === null || row === undefined ? pane.rows / 2 : row;
  pane.oy = pane.cssH / 2 - centre * pane.sp[0] * pane.scale;
  var top = pane.cssH - mmH * pane.scale;  // keep the image on screen when it is shorter
  if (mmH * pane.scale <= pane.cssH) pane.oy = top / 2;
  else pane.oy = Math.min(0, Math.max(top, pane.oy));
  pane.fitted = true;
}

// ------------------------------------------------------------ positions along the arch

// The point and the buccal normal (unit, in mm) at arc length `arc` of a sampled path.
function pointAt(path, arc) {
  var pts = path.points, n = pts.length;
  var f = Math.max(0, Math.min(n - 1, arc / path.step_mm));
  var i = Math.min(n - 2, Math.floor(f)), t = f - i;
  if (n < 2) return { c: pts[0][0], r: pts[0][1], nc: 0, nr: 1 };
  var a = pts[i], b = pts[i + 1], na = path.normals[i], nb = path.normals[i + 1];
  return { c: a[0] + (b[0] - a[0]) * t, r: a[1] + (b[1] - a[1]) * t,
    nc: na[0] + (nb[0] - na[0]) * t, nr: na[1] + (nb[1] - na[1]) * t };
}

// Arc length and depth (mm, buccal positive) of the point of the path nearest an axial pixel:
// the nearest sample, then the nearest point on the segments either side of it.
function locate(path, sp, c, r) {
  var pts = path.points, best = 0, bestD = Infinity;
  pts.forEach(function (p, i) {
    var dist = Math.hypot((p[0] - c) * sp[1], (p[1] - r) * sp[0]);
    if (dist < bestD) { bestD = dist; best = i; }
  });
  var arc = best * path.step_mm;
  [best - 1, best].forEach(function (i) {
    if (i < 0 || i + 1 >= pts.length) return;
    var ax = pts[i][0] * sp[1], ay = pts[i][1] * sp[0];
    var bx = pts[i + 1][0] * sp[1] - ax, by = pts[i + 1][1] * sp[0] - ay;
    var len2 = bx * bx + by * by;
    if (!len2) return;
    var t = Math.max(0, Math.min(1, ((c * sp[1] - ax) * bx + (r * sp[0] - ay) * by) / len2));
    var dist = Math.hypot(ax + t * bx - c * sp[1], ay + t * by - r * sp[0]);
    if (dist < bestD) { bestD = dist; arc = (i + t) * path.step_mm; }
  });
  var at = pointAt(path, arc);
  var depth = (c - at.c) * sp[1] * at.nc + (r - at.r) * sp[0] * at.nr;
  return { arc: arc, depth: depth, distance: bestD };
}

// The traced canal in arch coordinates (arc, depth in mm; slice), ordered along the arch.
function canalInArch(d) {
  return d.canal.map(function (q) {
    var l = locate(d.path, d.geo.pixel_spacing, q.c, q.r);
    return { arc: l.arc, depth: l.depth, z: q.z };
  }).sort(function (a, b) { return a.arc - b.arc; });
}

// ------------------------------------------------------------ marks

function dot(ctx, p, radius, fill, stroke) {
  ctx.beginPath();
  ctx.arc(p.x, p.y, radius, 0, 2 * Math.PI);
  ctx.fillStyle = fill;
  ctx.fill();
  if (stroke) { ctx.lineWidth = 2; ctx.strokeStyle = stroke; ctx.stroke(); }
}

function polyline(ctx, pts, colour, width, dash) {
  if (pts.length < 2) return;
  ctx.lineWidth = width;
  ctx.strokeStyle = colour;
  ctx.setLineDash(dash || []);
  ctx.beginPath();
  ctx.moveTo(pts[0].x, pts[0].y);
  for (var i = 1; i < pts.length; i++) ctx.lineTo(pts[i].x, pts[i].y);
  ctx.stroke();
  ctx.setLineDash([]);
}

function label(ctx, text, x, y, colour, align) {
  ctx.font = "bold 12px system-ui, sans-serif";
  ctx.textAlign = align || "left";
  ctx.fillStyle = "#000";
  ctx.fillText(text, x + 1, y + 1);
  ctx.fillStyle = colour;
  ctx.fillText(text, x, y);
  ctx.textAlign = "start";
}

// Axial: the sampled curve, its control dots, the cross-section positions, the canal.
function paintAxial(pane, d) {
  if (!d.path || !pane.source) return;
  var ctx = pane.ctx, sp = pane.sp;
  var toS = function (c, r) { return toScreen(pane, { x: c + 0.5, y: r + 0.5 }); };
  polyline(ctx, d.path.points.map(function (p) { return toS(p[0], p[1]); }), CURVE, 2);
  if (d.dragging) {
    polyline(ctx, d.curve.points.map(function (p) { return toS(p[0], p[1]); }), CURVE, 1.5, [6, 4]);
  }
  d.positions.forEach(function (at, k) {
    var p = pointAt(d.path, at), half = d.width / 2;
    var a = toS(p.c - p.nc * half / sp[1], p.r - p.nr * half / sp[0]);
    var b = toS(p.c + p.nc * half / sp[1], p.r + p.nr * half / sp[0]);
    ctx.lineWidth = k === d.active ? 2.5 : 1;
    line(ctx, a, b, k === d.active ? ACTIVE : MARK);
  });
  // Between its points the canal follows the arch, at the depths it was traced at.
  var canal = canalInArch(d), dense = [];
  canal.forEach(function (b, i) {
    if (i === 0) return;
    var a = canal[i - 1], steps = Math.max(1, Math.ceil(b.arc - a.arc));
    for (var s = 0; s <= steps; s++) {
      var t = s / steps, p = pointAt(d.path, a.arc + (b.arc - a.arc) * t);
      var depth = a.depth + (b.depth - a.depth) * t;
      dense.push(toS(p.c + p.nc * depth / sp[1], p.r + p.nr * depth / sp[0]));
    }
  });
  polyline(ctx, dense, CANAL, 2.5);
  d.canal.forEach(function (q) { dot(ctx, toS(q.c, q.r), 3, CANAL); });
  var radius = d.touch ? 11 : 8;
  d.curve.points.forEach(function (p, i) {
    dot(ctx, toS(p[0], p[1]), i === d.grab ? radius + 3 : radius, "rgba(245,197,24,.35)", CURVE);
  });
}

// Panoramic: a mm ruler along the arch, the cross-section positions, the canal.
function paintPanoramic(pane, d) {
  if (!d.path || !pane.source) return;
  var ctx = pane.ctx, g = d.geo;
  var x = function (arc) { return pane.ox + (arc / g.mm_per_col + 0.5) * pane.sp[1] * pane.scale; };
  var top = Math.max(pane.oy, 0) + 2;
  var pxPerMm = pane.scale;
  var major = pxPerMm * 10 >= 36 ? 10 : 20;
  var minor = major / 2;
  ctx.fillStyle = "rgba(0,0,0,.55)";
  ctx.fillRect(x(0), top - 2, x(d.path.length_mm) - x(0), 22);
  for (var mm = 0; mm <= d.path.length_mm + 1e-6; mm += minor) {
    var isMajor = Math.round(mm / minor) % 2 === 0;
    ctx.lineWidth = 1;
    line(ctx, { x: x(mm), y: top }, { x: x(mm), y: top + (isMajor ? 10 : 5) }, "#e8ecf0");
    if (isMajor && mm > 0) label(ctx, String(mm), x(mm), top + 19, "#e8ecf0", "center");
  }
  label(ctx, "mm", x(0) + 2, top + 19, "#e8ecf0");
  var y0 = pane.oy, y1 = pane.oy + pane.rows * pane.sp[0] * pane.scale;
  d.positions.forEach(function (at, k) {
    ctx.lineWidth = k === d.active ? 2 : 1;
    line(ctx, { x: x(at), y: Math.max(y0, top + 22) }, { x: x(at), y: y1 }, k === d.active ? ACTIVE : MARK);
  });
  var rowOf = function (z) { return (z - g.top_slice) * g.slice_step; };
  var canal = canalInArch(d).map(function (q) {
    return toScreen(pane, { x: q.arc / g.mm_per_col + 0.5, y: rowOf(q.z) + 0.5 });
  });
  polyline(ctx, canal, CANAL, 2.5);
  canal.forEach(function (p) { dot(ctx, p, 4, CANAL); });
}

// Where the canal crosses a cross-section at arc `at`: its depth (mm) and slice, or null.
function canalAt(d, at) {
  var pts = canalInArch(d);
  for (var i = 1; i < pts.length; i++) {
    var a = pts[i - 1], b = pts[i];
    if (at >= a.arc && at <= b.arc && b.arc > a.arc) {
      var t = (at - a.arc) / (b.arc - a.arc);
      return { depth: a.depth + (b.depth - a.depth) * t, z: a.z + (b.z - a.z) * t };
    }
  }
  return null;
}

// Cross-section: the curve's position (depth 0), the canal where it crosses, the frame.
function paintSection(pane, d, k) {
  if (!pane.source) return;
  var ctx = pane.ctx, g = d.geo;
  var colOf = function (depth) { return (depth + d.width / 2) / g.mm_per_col; };
  var mid = toScreen(pane, { x: colOf(0) + 0.5, y: 0 });
  ctx.lineWidth = 1;
  ctx.setLineDash([3, 5]);
  line(ctx, { x: mid.x, y: 0 }, { x: mid.x, y: pane.cssH }, "rgba(245,197,24,.6)");
  ctx.setLineDash([]);
  var hit = canalAt(d, d.positions[k]);
  if (hit) {
    var p = toScreen(pane, { x: colOf(hit.depth) + 0.5, y: (hit.z - g.top_slice) * g.slice_step + 0.5 });
    ctx.lineWidth = 2;
    ctx.strokeStyle = CANAL;
    ctx.beginPath();
    ctx.arc(p.x, p.y, 6, 0, 2 * Math.PI);
    ctx.stroke();
  }
  if (k === d.active) {
    ctx.lineWidth = 3;
    ctx.strokeStyle = ACTIVE;
    ctx.strokeRect(1.5, 1.5, pane.cssW - 3, pane.cssH - 3);
  }
  $(".pane-label", pane.el).textContent = num(d.positions[k]) + " mm";
}

export { canalAt, canalInArch, fitAround, locate, makePane, paintAxial, paintPanoramic, paintSection, pointAt };
