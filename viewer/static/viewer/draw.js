/* Geometry and painting of one pane: fit, zoom, overlay letters, scale bar, references,
   and the instant window/level preview. */
import { $, COLOURS, PLANES, SCALE_STEPS, num, opposite, painters, panes, state } from "./core.js";

// ------------------------------------------------------------ geometry and drawing

function resize(pane) {
  var r = pane.canvas.getBoundingClientRect();
  var dpr = window.devicePixelRatio || 1;
  var w = Math.max(1, Math.round(r.width * dpr));
  var h = Math.max(1, Math.round(r.height * dpr));
  if (pane.canvas.width !== w || pane.canvas.height !== h) {
    pane.canvas.width = w;
    pane.canvas.height = h;
  }
  pane.cssW = Math.max(1, r.width);
  pane.cssH = Math.max(1, r.height);
}

function fit(pane) {
  if (!pane.cols) return;
  var mmW = pane.cols * pane.sp[1];
  var mmH = pane.rows * pane.sp[0];
  pane.scale = Math.min(pane.cssW / mmW, pane.cssH / mmH);
  pane.ox = (pane.cssW - mmW * pane.scale) / 2;
  pane.oy = (pane.cssH - mmH * pane.scale) / 2;
  pane.fitted = true;
}

function oneToOne(pane) {
  if (!pane.cols) return;
  zoomAt(pane, pane.cssW / 2, pane.cssH / 2, (1 / pane.sp[1]) / pane.scale);
}

function zoomAt(pane, sx, sy, factor) {
  var s = Math.min(Math.max(pane.scale * factor, 0.02), 400);
  factor = s / pane.scale;
  pane.ox = sx - (sx - pane.ox) * factor;
  pane.oy = sy - (sy - pane.oy) * factor;
  pane.scale = s;
  pane.fitted = false;
  draw(pane);
}

function toImage(pane, sx, sy) {
  return { x: (sx - pane.ox) / (pane.scale * pane.sp[1]), y: (sy - pane.oy) / (pane.scale * pane.sp[0]) };
}

function toScreen(pane, p) {
  return { x: pane.ox + p.x * pane.sp[1] * pane.scale, y: pane.oy + p.y * pane.sp[0] * pane.scale };
}

function draw(pane) {
  var ctx = pane.ctx;
  var dpr = window.devicePixelRatio || 1;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, pane.cssW, pane.cssH);
  var c = pane.canvas.dataset;
  c.originX = num(pane.ox); c.originY = num(pane.oy);
  c.pxPerCol = String(pane.sp[1] * pane.scale); c.pxPerRow = String(pane.sp[0] * pane.scale);
  drawOverlay(pane);
  if (!pane.source) { if (pane.failed) drawFailure(pane); return; }
  ctx.imageSmoothingEnabled = pane.sp[1] * pane.scale < 2;
  ctx.drawImage(pane.source, pane.ox, pane.oy, pane.cols * pane.sp[1] * pane.scale,
    pane.rows * pane.sp[0] * pane.scale);
  // Reference lines belong to the three planes only, never to the dental view's panes.
  if (state.layout === "triple" && PLANES.indexOf(pane.plane) >= 0) drawReferences(pane);
  painters.forEach(function (paint) { paint(pane); });
  if (pane.extra) pane.extra(pane);  // a view's own marks (the dental curve, ruler, canal)
}

// Letters at the four edges, the position in the series and a scale bar, on the image.
function drawOverlay(pane) {
  var ov = $(".overlay", pane.el);
  var labels = pane.labels;
  $(".edge-right", ov).textContent = labels ? labels.right : "";
  $(".edge-bottom", ov).textContent = labels ? labels.bottom : "";
  $(".edge-left", ov).textContent = labels ? opposite(labels.right) : "";
  $(".edge-top", ov).textContent = labels ? opposite(labels.bottom) : "";
  $(".pane-pos", ov).textContent = pane.count > 1 && pane.shown >= 0 ? (pane.shown + 1) + " / " + pane.count : "";
  var bar = $(".scalebar", ov);
  var pxPerMm = pane.scale;
  if (!pane.mm || !pane.source || !isFinite(pxPerMm) || pxPerMm <= 0) { bar.hidden = true; return; }
  var mm = SCALE_STEPS[SCALE_STEPS.length - 1];
  for (var i = 0; i < SCALE_STEPS.length; i++) {
    if (SCALE_STEPS[i] * pxPerMm >= 48) { mm = SCALE_STEPS[i]; break; }
  }
  bar.hidden = false;
  $("i", bar).style.width = Math.round(mm * pxPerMm) + "px";
  $("b", bar).textContent = mm >= 10 ? (mm / 10) + " cm" : mm + " mm";
  bar.dataset.mm = String(mm);
}

function line(ctx, a, b, colour) {
  ctx.strokeStyle = colour;
  ctx.beginPath();
  ctx.moveTo(a.x, a.y);
  ctx.lineTo(b.x, b.y);
  ctx.stroke();
}

function drawReferences(pane) {
  if (state.kind !== "volume") return;
  var nz = panes.axial.count;
  var ctx = pane.ctx;
  ctx.lineWidth = 1;
  var rows = [], cols = [];
  if (pane.plane === "axial") {
    rows.push([panes.coronal.index + 0.5, COLOURS.coronal]);
    cols.push([panes.sagittal.index + 0.5, COLOURS.sagittal]);
  } else {
    rows.push([nz - 1 - panes.axial.index + 0.5, COLOURS.axial]);
    var other = pane.plane === "coronal" ? panes.sagittal : panes.coronal;
    cols.push([other.index + 0.5, COLOURS[other.plane]]);
  }
  rows.forEach(function (r) {
    line(ctx, toScreen(pane, { x: 0, y: r[0] }), toScreen(pane, { x: pane.cols, y: r[0] }), r[1]);
  });
  cols.forEach(function (col) {
    line(ctx, toScreen(pane, { x: col[0], y: 0 }), toScreen(pane, { x: col[0], y: pane.rows }), col[1]);
  });
}

function drawFailure(pane) {
  var ctx = pane.ctx, words = pane.failed.split(" "), lines = [""], max = pane.cssW - 32;
  ctx.font = "15px system-ui, sans-serif";
  words.forEach(function (w) {
    var next = lines[lines.length - 1] ? lines[lines.length - 1] + " " + w : w;
    if (ctx.measureText(next).width > max && lines[lines.length - 1]) lines.push(w);
    else lines[lines.length - 1] = next;
  });
  ctx.fillStyle = "#fecdca";
  ctx.textAlign = "center";
  lines.forEach(function (l, i) { ctx.fillText(l, pane.cssW / 2, pane.cssH / 2 + (i - lines.length / 2) * 20); });
  ctx.textAlign = "start";
}

// ------------------------------------------------------------ window/level preview

function previewWindow(pane) {
  if (!pane.img || pane.failed || !pane.rendered || (state.manifest && state.manifest.colour)) return;
  var w = pane.img.width, h = pane.img.height;
  if (!pane.src) {
    pane.work = pane.work || document.createElement("canvas");
    pane.work.width = w; pane.work.height = h;
    var wctx = pane.work.getContext("2d", { willReadFrequently: true });
    wctx.drawImage(pane.img, 0, 0);
    pane.src = wctx.getImageData(0, 0, w, h);
    pane.out = wctx.createImageData(w, h);
  }
  var r = pane.rendered;
  // MONOCHROME1 arrives inverted from the server; undo whichever inversion the image has.
  var mono1 = !!(state.manifest && state.manifest.monochrome1);
  var lo0 = r.c - r.w / 2, lo1 = state.center - state.width / 2;
  var lut = new Uint8ClampedArray(256);
  for (var v = 0; v < 256; v++) {
    var y = r.inv !== mono1 ? 255 - v : v;
    var y1 = ((lo0 + y * r.w / 255) - lo1) / state.width * 255;
    lut[v] = state.invert !== mono1 ? 255 - y1 : y1;
  }
  var src = pane.src.data, out = pane.out.data;
  for (var i = 0; i < src.length; i += 4) {
    var g = lut[src[i]];
    out[i] = g; out[i + 1] = g; out[i + 2] = g; out[i + 3] = 255;
  }
  pane.work.getContext("2d").putImageData(pane.out, 0, 0);
  pane.source = pane.work;
  draw(pane);
}

export { draw, drawFailure, drawOverlay, drawReferences, fit, line, oneToOne, previewWindow, resize, toImage, toScreen, zoomAt };
