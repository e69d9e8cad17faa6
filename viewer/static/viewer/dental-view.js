/* The dental view's state and images: the curve and its sampled path, the panoramic, the row of
   cross-sections around the chosen position, picture downloads, and the traced canal, kept in
   this browser tab only (sessionStorage): nothing is written to the patient's record. */
import { $, checkSession, edgeLabels, refusedImage, getBitmap, num, otherPanes, progress, state } from "./core.js";
import { draw, resize } from "./draw.js";
import { fitAround, makePane, paintAxial, paintPanoramic, paintSection, pointAt } from "./dental-paint.js";

var box = $("#dental");
var toggle = $("#dental-toggle");
var statusEl = $("#dental-status");
var d = {
  on: false, code: "", base: "", gen: 0, geo: null, curve: null, path: null, arch: null,
  at: 0, spacing: 1, thickness: 10, mode: "mean", width: 30, tool: "pick", active: 0,
  positions: [], canal: [], grab: -1, dragging: false, touch: false, pathGen: 0, slice: null
};
var axial = makePane($('.dpane[data-view="axial"]'), "dental-axial", "Teeth from above");
var pano = makePane($('.dpane[data-view="panoramic"]'), "panoramic", "Panoramic");
var sections = [];
var SECTION_COUNT = window.matchMedia("(max-width: 600px)").matches ? 3 : 5;
for (var k = 0; k < SECTION_COUNT; k++) {
  var el = document.createElement("div");
  el.className = "dpane";
  el.dataset.view = "section";
  el.dataset.k = String(k);
  $(".dental-sections").appendChild(el);
  sections.push(makePane(el, "section", "Cross-section"));
}
axial.extra = function (p) { paintAxial(p, d); };
pano.extra = function (p) { paintPanoramic(p, d); };
sections.forEach(function (p, i) { p.extra = function (q) { paintSection(q, d, i); }; });

function allPanes() { return [axial, pano].concat(sections); }
allPanes().forEach(function (p) { otherPanes.push(p); });

function say(text) { statusEl.textContent = text; }

// ------------------------------------------------------------ URLs

function curveQuery() {
  return "points=" + d.curve.points.map(function (p) { return p[0].toFixed(1) + "," + p[1].toFixed(1); }).join(";") +
    "&occlusal=" + d.curve.occlusal_index;
}

function windowQuery() {
  return "&c=" + num(state.center) + "&w=" + num(state.width) + "&invert=" + (state.invert ? 1 : 0);
}

// The curve as a string: a cross-section's measurement keeps the curve it was taken along.
function curveKey() { return JSON.stringify(d.curve.points); }

function panoramicQuery() { return curveQuery() + "&thickness=" + d.thickness + "&mode=" + d.mode; }

function sectionQuery(at) {
  return curveQuery() + "&at=" + at.toFixed(1) + "&width=" + d.width + "&thickness=" + Math.min(d.spacing, 10);
}

function ext() { return state.lossless ? ".png" : ".jpg"; }

// ------------------------------------------------------------ loading

function occlusalRow() { return (d.curve.occlusal_index - d.geo.top_slice) * d.geo.slice_step; }

// Dental images are fetched here, not through the slice cache: each depends on the whole curve,
// so caching them would only push out slices. One request per pane is in flight: a newer one
// (a dragged point, a new slab) aborts the older, and the latest wins. A busy server's 429 is
// retried a moment later, a few times. The server renders three of a session's dental images
// at once (viewer.dental_views.RENDERS): the panes' requests take turns here, so that opening
// the view (a panoramic and five cross-sections) is not a burst of 429s.
var RETRIES = 5;
var AT_ONCE = 3;
var running = 0;
var queued = [];

function turn() {
  if (running < AT_ONCE) { running += 1; return Promise.resolve(); }
  return new Promise(function (resolve) { queued.push(resolve); });
}

function done() {
  var next = queued.shift();
  if (next) next(); else running -= 1;
}

function fetchImage(pane, url, tries) {
  if (pane.controller) pane.controller.abort();
  var controller = new AbortController();
  pane.controller = controller;
  progress(1);
  return turn().then(function () {
    if (controller.signal.aborted) { done(); throw new Error("superseded"); }
    return fetch(url, { credentials: "same-origin", signal: controller.signal }).then(function (r) {
      done();
      return r;
    }, function (err) { done(); throw err; });
  }).then(function (r) {
    progress(-1);
    if (r.status === 429 && tries > 0 && pane.wanted === url) {
      var wait = 200 * (RETRIES - tries + 1);  // the session's other images finish first
      return new Promise(function (resolve) { setTimeout(resolve, wait); }).then(function () {
        if (pane.wanted !== url) throw new Error("superseded");  // never abort the newer one
        return fetchImage(pane, url, tries - 1);
      });
    }
    if (!r.ok || r.redirected) {
      return r.text().then(function (text) {
        var err = new Error("HTTP " + r.status);
        err.status = r.redirected ? 401 : r.status;
        err.text = r.headers.get("Content-Type") === "text/plain" ? text : "";
        if (r.headers.get("Content-Type") === "application/json") {
          try { err.text = JSON.parse(text).error || ""; } catch (e) { err.text = ""; }
        }
        if (refusedImage(r)) checkSession();
        throw err;
      });
    }
    return r.blob().then(function (b) { return createImageBitmap(b); });
  }, function (err) { progress(-1); throw err; });
}

function load(pane, url, fitter) {
  if (pane.loading && pane.wanted === url && pane.inflight) return pane.inflight;  // asked already
  var gen = d.gen;
  pane.wanted = url;
  pane.loading = true;
  box.dataset.state = "loading";
  var fetched = url.indexOf(d.base) === 0 ? fetchImage(pane, url, RETRIES) : getBitmap(url);
  pane.inflight = fetched.then(function (bmp) {
    if (gen !== d.gen || pane.wanted !== url) {
      if (url.indexOf(d.base) === 0 && bmp !== pane.img) bmp.close();
      return;
    }
    var old = pane.img;
    var first = !pane.img || pane.img.width !== bmp.width || pane.img.height !== bmp.height;
    pane.img = bmp; pane.source = bmp; pane.failed = ""; pane.loading = false;
    pane.rows = bmp.height; pane.cols = bmp.width;
    if (old && old !== bmp && url.indexOf(d.base) === 0 && old.close) old.close();
    if (first || pane.fitted) { resize(pane); fitter(pane); }
    draw(pane);
    settle();
  }, function (err) {
    if (gen !== d.gen || pane.wanted !== url) return;
    pane.failed = err.text || "This view could not be made.";
    pane.source = null; pane.loading = false;
    draw(pane);
    say(pane.failed);
    settle();
  });
  return pane.inflight;
}

// data-state="ready" once every pane shows what was last asked of it (for tests and people).
function settle() {
  if (allPanes().some(function (p) { return p.loading; })) return;
  box.dataset.state = "ready";
  box.dataset.panoramic = pano.wanted;
}

// The occlusal plane runs between the upper and lower crowns, so the axial image starts a few
// mm below it, through the lower crowns; the wheel moves it.
var BELOW_OCCLUSAL_MM = 3;

function startSlice() {
  var below = Math.round(BELOW_OCCLUSAL_MM / d.geo.mm_per_row);
  var index = d.curve.occlusal_index + (d.geo.slice_step < 0 ? -below : below);
  return Math.max(0, Math.min(d.geo.slices - 1, index));
}

function showAxial(index) {
  var m = state.manifest;
  d.slice = index === undefined ? (d.slice === null ? startSlice() : d.slice) : index;
  d.slice = Math.max(0, Math.min(d.geo.slices - 1, d.slice));
  var url = m.urls.slice.replace("{plane}", "axial").replace("{index}", String(d.slice)) +
    ext() + "?" + windowQuery().slice(1);
  axial.sp = m.planes.axial.spacing || [1, 1];
  axial.labels = edgeLabels(m, "axial");
  axial.count = d.geo.slices;
  axial.shown = d.slice;
  load(axial, url, fitArch);
}

// Zoom the axial image onto the arch, with a margin, so its dots are easy to grab.
function fitArch(pane) {
  var pts = d.curve.points, sp = pane.sp, margin = 12;
  var cs = pts.map(function (p) { return p[0]; }), rs = pts.map(function (p) { return p[1]; });
  var x0 = Math.min.apply(null, cs) * sp[1] - margin, x1 = Math.max.apply(null, cs) * sp[1] + margin;
  var y0 = Math.min.apply(null, rs) * sp[0] - margin, y1 = Math.max.apply(null, rs) * sp[0] + margin;
  pane.scale = Math.min(pane.cssW / (x1 - x0), pane.cssH / (y1 - y0));
  pane.ox = pane.cssW / 2 - (x0 + x1) / 2 * pane.scale;
  pane.oy = pane.cssH / 2 - (y0 + y1) / 2 * pane.scale;
  pane.fitted = true;
}

// The panoramic's left edge is where the curve starts: the patient's right for a detected arch
// (the server follows the scan's orientation); worked out here from the axial letters, so a
// curve that runs the other way is labelled as it is. No S/I letters: the mm ruler is on top.
function panoramicLabels() {
  var ax = edgeLabels(state.manifest, "axial"), pts = d.curve.points;
  if (!ax || !ax.right || pts.length < 2) return null;
  var imageRightIsLeft = ax.right.indexOf("L") >= 0;
  var runsRight = pts[pts.length - 1][0] > pts[0][0];
  return { right: runsRight === imageRightIsLeft ? "L" : "R", bottom: "" };
}

function showPanoramic() {
  pano.sp = [d.geo.mm_per_row, d.geo.mm_per_col];
  pano.labels = panoramicLabels();
  load(pano, d.base + "panoramic" + ext() + "?" + panoramicQuery() + windowQuery(),
    function (p) { fitAround(p, occlusalRow(), 40); });
  updateSaves();
}

function placeSections() {
  var mid = Math.floor(SECTION_COUNT / 2), len = d.path.length_mm;
  d.at = Math.max(0, Math.min(len, d.at));
  d.positions = sections.map(function (_, k) {
    return Math.round(Math.max(0, Math.min(len, d.at + (k - mid) * d.spacing)) * 10) / 10;
  });
  d.active = mid;
}

function showSections() {
  placeSections();
  sections.forEach(function (pane, k) {
    var at = d.positions[k];
    pane.sp = [d.geo.mm_per_row, d.geo.mm_per_col];
    pane.shown = Math.round(at * 10);
    pane.curveKey = curveKey();
    pane.el.dataset.at = String(at);
    load(pane, d.base + "section" + ext() + "?" + sectionQuery(at) + windowQuery(),
      function (p) { fitAround(p, occlusalRow(), 45); });
  });
  axial.source && draw(axial);
  pano.source && draw(pano);
  box.dataset.at = String(d.at);
  updateSaves();
}

function showAll() { showAxial(); showPanoramic(); showSections(); }

function setAt(at) {
  d.at = at;
  showSections();
  say("Cross-sections around " + num(d.at) + " mm along the arch.");
}

function updateSaves() {
  if (!$("#save-panoramic")) return;  // the link does not allow downloads
  var fmt = $("#dental-format").value === "png" ? ".png" : ".jpg";
  $("#save-panoramic").href = d.base + "export/panoramic" + fmt + "?" + panoramicQuery() + windowQuery();
  $("#save-section").href = d.base + "export/section" + fmt + "?" + sectionQuery(d.at) + windowQuery();
}

// The edited curve's path comes from the server, so every view agrees on where mm 0 is.
function refreshCurve(final) {
  var gen = ++d.pathGen;
  return fetch(d.base + "path.json?" + curveQuery(), { credentials: "same-origin" }).then(function (r) {
    return r.ok ? r.json() : r.text().then(function (t) { throw new Error(t); });
  }).then(function (path) {
    if (gen !== d.pathGen) return;
    var old = d.path ? d.at / d.path.length_mm : 0.5;
    d.path = path;
    d.at = old * path.length_mm;
    showPanoramic();
    if (!final) return;  // while a dot moves, the panoramic alone follows
    d.dragging = false;
    showSections();
  }).catch(function (err) { say(err.message || "The curve could not be used."); });
}

// ------------------------------------------------------------ canal (this tab only)

function canalKey() { return "dental-canal:" + d.code; }

function saveCanal() {
  try { sessionStorage.setItem(canalKey(), JSON.stringify(d.canal)); } catch (e) { /* private mode */ }
  $("#canal-clear").hidden = d.canal.length === 0;
  box.dataset.canal = String(d.canal.length);
}

function loadCanal() {
  var raw = null;
  try { raw = sessionStorage.getItem(canalKey()); } catch (e) { raw = null; }
  var list = [];
  try { list = JSON.parse(raw || "[]"); } catch (e) { list = []; }
  d.canal = Array.isArray(list) ? list.filter(function (q) {
    return q && isFinite(q.c) && isFinite(q.r) && isFinite(q.z);
  }) : [];
  saveCanal();
}

// A canal point at an arch position: tapped on the panoramic (on the curve, depth 0) or on a
// cross-section (at the depth tapped), kept as a voxel position so a moved curve keeps it.
function addCanalPoint(arc, depth, row) {
  arc = Math.max(0, Math.min(d.path.length_mm, arc));
  var p = pointAt(d.path, arc), sp = d.geo.pixel_spacing;
  var z = d.geo.top_slice + row * d.geo.slice_step;
  d.canal.push({ c: p.c + p.nc * depth / sp[1], r: p.r + p.nr * depth / sp[0], z: Math.round(z * 10) / 10 });
  saveCanal();
  allPanes().forEach(function (q) { if (q.source) draw(q); });
  say("Canal point " + d.canal.length + " at " + num(arc) + " mm.");
}

export {
  addCanalPoint, allPanes, axial, box, curveKey, d, loadCanal, pano, refreshCurve, saveCanal, say,
  sections, setAt, showAll, showAxial, showPanoramic, showSections, toggle, updateSaves
};
