/* Slices of a series: showing, prefetching, status, window, active plane, tools, cine
   and the DICOM tag panel. */
import { $, $$, PLANES, cap, choose, visiblePanes, errorEl, fetchBlob, getBitmap, num, panes, root, sliceUrl, slider, state, viewportEl } from "./core.js";
import { draw, fit, previewWindow, resize } from "./draw.js";

// ------------------------------------------------------------ slices

function show(pane) {
  if (!state.manifest || !pane.count) return;
  var url = sliceUrl(pane.plane, pane.index);
  var gen = state.gen;
  var index = pane.index;
  pane.wanted = url;
  pane.loading = true;
  viewportEl.dataset.state = "loading";
  getBitmap(url).then(function (bmp) {
    if (gen !== state.gen || pane.wanted !== url) return;
    pane.loading = false;
    pane.failed = "";
    var first = !pane.img || pane.img.width !== bmp.width || pane.img.height !== bmp.height;
    pane.img = bmp; pane.source = bmp; pane.src = null;
    pane.rendered = { c: state.center, w: state.width, inv: state.invert };
    pane.rows = bmp.height; pane.cols = bmp.width;
    pane.shown = index;
    pane.draft = null;
    pane.el.dataset.sliceIndex = String(index);
    if (first || pane.fitted) { resize(pane); fit(pane); }
    draw(pane);
    if (pane.plane === state.active) {
      viewportEl.dataset.sliceIndex = String(index);
      viewportEl.dataset.window = num(pane.rendered.c) + "/" + num(pane.rendered.w);
      viewportEl.dataset.state = "ready";
    }
    prefetch(pane);
  }, function (err) {
    if (gen !== state.gen || pane.wanted !== url) return;
    pane.loading = false;
    if (err.status === 422) sliceFailed(pane, index, err.text || "It could not be decoded.");
    else if (err.status) setStatusError(err.text || "This image could not be loaded (" + err.status + ").");
  });
  status();
}

// A slice that cannot be decoded blanks itself with the reason; the rest of the series still
// scrolls. The manifest alone reports a series as broken.
function sliceFailed(pane, index, text) {
  pane.failed = cap(pane.plane) + " " + (index + 1) + " cannot be shown. " + text;
  pane.source = null; pane.src = null; pane.shown = index;
  pane.el.dataset.sliceIndex = String(index);
  if (!pane.cols) {
    var g = state.manifest.planes[pane.plane];
    pane.rows = g.rows; pane.cols = g.columns;
    resize(pane); fit(pane);
  }
  draw(pane);
  if (pane.plane === state.active) {
    viewportEl.dataset.sliceIndex = String(index);
    viewportEl.dataset.state = "slice-error";
    setStatusError(pane.failed);
  }
}

function prefetch(pane) {
  var ahead = state.cine ? 12 : 6;
  for (var d = 1; d <= ahead; d++) {
    [pane.index + d, pane.index - Math.ceil(d / 2)].forEach(function (i) {
      if (i >= 0 && i < pane.count) fetchBlob(sliceUrl(pane.plane, i)).catch(function () {});
    });
  }
}

function setIndex(pane, index) {
  if (!pane.count) return;
  index = Math.max(0, Math.min(pane.count - 1, index));
  if (index === pane.index && pane.shown === index) return;
  pane.index = index;
  pane.draft = null;
  show(pane);
  if (state.layout === "triple") PLANES.forEach(function (p) { if (p !== pane.plane) draw(panes[p]); });
}

function step(delta) { var p = panes[state.active]; setIndex(p, p.index + delta); }

// Views outside the panes (the dental view) repaint on this event: window, invert, PNG.
function refreshAll() {
  visiblePanes().forEach(show);
  document.dispatchEvent(new CustomEvent("viewer:refresh"));
}

// ------------------------------------------------------------ status and controls

function status() {
  var pane = panes[state.active];
  viewportEl.dataset.plane = state.active;
  if (!state.manifest) return;
  slider.max = String(Math.max(0, pane.count - 1));
  slider.value = String(pane.index);
  var key = pane.plane === "axial" && state.manifest.key_images &&
    state.manifest.key_images.indexOf(pane.index) >= 0;
  $("#slice-label").textContent = (state.layout === "triple" ? cap(pane.plane) + " " : "") +
    (pane.index + 1) + " / " + pane.count + (key ? " (key image)" : "");
  slider.setAttribute("aria-valuetext", cap(pane.plane) + " image " + (pane.index + 1) + " of " + pane.count);
}


function setStatusError(text) {
  $("#slice-label").textContent = text;
  $("#viewer-say").textContent = text;  // the counter is not read out; a failure is
}

function showError(text) {
  stopCine();
  errorEl.textContent = text;
  errorEl.hidden = false;
  viewportEl.hidden = true;
  viewportEl.dataset.state = "error";
  if (state.item) state.item.classList.add("broken");
}

function setWindow(c, w, commit) {
  state.center = c;
  state.width = Math.max(1, w);
  if (commit) refreshAll();
  else visiblePanes().forEach(previewWindow);
  status();
}

function setActive(plane) {
  if (!panes[plane].count) return;
  state.active = plane;
  PLANES.forEach(function (p) { panes[p].el.classList.toggle("active", p === plane); });
  choose($$(".planes [data-plane]"), function (b) { return b.dataset.plane === plane; });
  var pane = panes[plane];
  viewportEl.dataset.sliceIndex = pane.shown >= 0 ? String(pane.shown) : "";
  relayout();
  if (pane.shown !== pane.index || !pane.img) show(pane);
  status();
}

function relayout() {
  root.dataset.layout = state.layout;
  viewportEl.classList.toggle("single", state.layout === "single");
  viewportEl.classList.toggle("triple", state.layout === "triple");
  visiblePanes().forEach(function (p) {
    resize(p);
    if (p.fitted) fit(p);
    draw(p);
    if (p.count && (!p.img || p.shown !== p.index)) show(p);
  });
}

function setTool(tool) {
  state.tool = tool;
  choose($$("[data-tool]"), function (b) { return b.dataset.tool === tool; });
  PLANES.forEach(function (p) { panes[p].draft = null; });
}

function setMode(mode) {
  state.mode = mode;
  root.dataset.mode = mode;
  var b = $("#mode-toggle");
  b.setAttribute("aria-pressed", String(mode === "full"));
  b.textContent = mode === "full" ? "Fewer tools" : "More tools";
  var hidden = $('[data-tool="' + state.tool + '"]');
  if (hidden && hidden.offsetParent === null) setTool(state.kind === "photo" ? "pan" : "scroll");
  if (mode === "simple" && state.layout === "triple") { state.layout = "single"; relayout(); }
  document.dispatchEvent(new CustomEvent("viewer:mode"));  // presets follow the mode
}

function stopCine() {
  if (state.cine) clearInterval(state.cine);
  state.cine = null;
  $("#cine").setAttribute("aria-pressed", "false");
  $("#cine").textContent = "Play";
}

function toggleCine() {
  if (state.cine) { stopCine(); return; }
  $("#cine").setAttribute("aria-pressed", "true");
  $("#cine").textContent = "Stop";
  state.cine = setInterval(function () {
    var p = panes[state.active];
    if (p.loading || p.count < 2) return;
    setIndex(p, p.index + 1 >= p.count ? 0 : p.index + 1);
  }, 80);
}

// ------------------------------------------------------------ DICOM tags of the current image

function loadTags() {
  var item = state.item, m = state.manifest;
  if (!item || !m || !item.dataset.tags) return;
  var index = panes.axial.index;
  var note = $("#tags-note");
  note.hidden = false;
  note.textContent = "Loading…";
  fetch(item.dataset.tags + index + ".json", { credentials: "same-origin" }).then(function (r) {
    return r.json().then(function (data) { if (!r.ok) throw new Error(data.error || "HTTP " + r.status); return data; });
  }).then(function (data) {
    if (item !== state.item) return;
    var body = $("#tags-table tbody");
    body.textContent = "";
    data.rows.forEach(function (row) {
      var tr = document.createElement("tr");
      if (row.depth) tr.className = "nested";
      [row.tag, (row.depth ? "› ".repeat(row.depth) : "") + row.name, row.vr, row.value].forEach(function (v) {
        var td = document.createElement("td");
        td.textContent = v;
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    note.textContent = "Axial image " + (index + 1) + " of " + m.slices + " (" + data.rows.length + " elements).";
    $("#tags-table").hidden = false;
    $("#tags-filter").hidden = false;
    filterTags();
  }).catch(function (err) {
    if (item === state.item) note.textContent = err.message || "The tags could not be loaded.";
  });
}

function filterTags() {
  var q = $("#tags-filter").value.trim().toLowerCase();
  $$("#tags-table tbody tr").forEach(function (tr) {
    tr.hidden = q !== "" && tr.textContent.toLowerCase().indexOf(q) < 0;
  });
}

function resetTags() {
  $("#tags-table tbody").textContent = "";
  $("#tags-table").hidden = true;
  $("#tags-filter").hidden = true;
  $("#tags-note").hidden = true;
}

export { filterTags, loadTags, prefetch, refreshAll, relayout, resetTags, setActive, setIndex, setMode, setStatusError, setTool, setWindow, show, showError, sliceFailed, status, step, stopCine, toggleCine };
