/* What an item opens as (VIEW_KINDS: series, photo, pdf; a new kind registers itself with
   addViewKind), and resetting the panes between items. */
import { $, $$, PLANES, choose, edgeLabels, errorEl, getBitmap, num, panes, presetEl, root, slider, state, viewportEl } from "./core.js";
import { draw, fit, resize } from "./draw.js";
import { renderMeasures } from "./measure.js";
import { relayout, resetTags, setActive, setIndex, setTool, showError, stopCine } from "./series.js";

// ------------------------------------------------------------ view kinds

function resetPanes() {
  state.gen++;
  stopCine();
  PLANES.forEach(function (p) {
    var pane = panes[p];
    pane.count = 0; pane.index = 0; pane.shown = -1; pane.img = null; pane.source = null;
    pane.src = null; pane.draft = null; pane.fitted = true; pane.wanted = "";
    pane.failed = ""; pane.rows = 0; pane.cols = 0; pane.labels = null; pane.mm = false;
    delete pane.el.dataset.sliceIndex;
    draw(pane);
  });
  errorEl.hidden = true;
  viewportEl.hidden = false;
  $("#pdf-view").hidden = true;
  $("#pdf-frame").removeAttribute("src");
  $("#slice-label").textContent = "–";
  slider.max = "0";
  slider.value = "0";
  state.manifest = null;
  state.active = "axial";
  state.layout = "single";
  $("#layout-toggle").setAttribute("aria-pressed", "false");
  PLANES.forEach(function (p) { panes[p].el.classList.toggle("active", p === "axial"); });
  choose($$(".planes [data-plane]"), function (b) { return b.dataset.plane === "axial"; });
  viewportEl.dataset.sliceIndex = "";
  viewportEl.dataset.state = "loading";
  resetTags();
  document.dispatchEvent(new CustomEvent("viewer:reset"));
}

function setKind(kind) {
  state.kind = kind;
  root.dataset.kind = kind;
  viewportEl.dataset.kind = kind;
  if (kind === "photo") setTool("pan");
  else if (kind !== "pdf" && (state.tool === "pan" || !state.tool)) setTool("scroll");
}

var VIEW_KINDS = {
  series: { open: openSeries },
  photo: { open: openPhoto },
  pdf: { open: openPdf }
};

function selectItem(btn) {
  $$(".series-list .item").forEach(function (b) { b.classList.toggle("active", b === btn); });
  state.item = btn;
  resetPanes();
  var kind = VIEW_KINDS[btn.dataset.kind] ? btn.dataset.kind : "pdf";
  setKind(kind === "series" ? "stack" : kind);
  $("#item-title").textContent = btn.dataset.label || "";
  $("#meta-series").textContent = btn.dataset.label || "";
  // The item's own kind (a photo is not the study's CT).
  $("#meta-modality").textContent = btn.dataset.modality || "—";
  $("#meta-image").textContent = "—";
  renderMeasures();
  VIEW_KINDS[kind].open(btn);
}

function openSeries(btn) {
  var gen = state.gen;
  // The manifest, not the page's data-error, is the word on a broken series: it re-checks.
  fetch(btn.dataset.manifest, { credentials: "same-origin" }).then(function (r) {
    if (!r.ok) throw new Error("HTTP " + r.status);
    return r.json();
  }).then(function (m) {
    if (gen !== state.gen) return;
    if (m.document) { setKind("pdf"); openPdf({ dataset: { file: m.document.url } }); return; }
    if (m.error) { showError(m.error); return; }
    state.manifest = m;
    $("#overlays").hidden = !m.overlays;
    setKind(m.kind);
    root.dataset.colour = m.colour ? "1" : "0";
    fillPresets(m);
    if (m.window) { state.center = m.window.center; state.width = m.window.width; }
    PLANES.forEach(function (p) {
      var g = m.planes[p];
      var pane = panes[p];
      pane.count = g ? g.count : 0;
      pane.index = p === "axial" ? m.initial_index : Math.floor(pane.count / 2);
      pane.sp = g && g.spacing ? g.spacing : [1, 1];
      pane.mm = !!(g && g.spacing);
      pane.labels = g ? edgeLabels(m, p) : null;
    });
    $$(".planes [data-plane]").forEach(function (b) { b.disabled = !m.planes[b.dataset.plane]; });
    var sp = m.pixel_spacing ? m.pixel_spacing.map(function (v) { return num(v); }).join(" × ") + " mm" : "";
    $("#meta-image").textContent = m.columns + " × " + m.rows + ", " + m.slices + " image" +
      (m.slices === 1 ? "" : "s") + (sp ? ", pixels " + sp : "");
    state.active = "axial";
    setActive("axial");
    document.dispatchEvent(new CustomEvent("viewer:series", { detail: m }));
  }).catch(function () {
    if (gen === state.gen) showError(btn.dataset.error || "This series could not be opened.");
  });
}

function fillPresets(m) {
  presetEl.textContent = "";
  var first = document.createElement("option");
  first.value = "";
  first.textContent = "Look…";
  presetEl.appendChild(first);
  var list = (m.window ? [{ name: "As taken", center: m.window.center, width: m.window.width, simple: true }] : [])
    .concat(m.presets.filter(function (p) { return state.mode === "full" || p.simple; }));
  list.forEach(function (p, i) {
    var o = document.createElement("option");
    o.value = String(i);
    o.textContent = p.name;
    o.dataset.center = p.center;
    o.dataset.width = p.width;
    presetEl.appendChild(o);
  });
}

function openPhoto(btn) {
  var gen = state.gen;
  var pane = panes.axial;
  pane.count = 1; pane.sp = [1, 1];
  relayout();
  getBitmap(btn.dataset.file).then(function (bmp) {
    if (gen !== state.gen) return;
    pane.img = bmp; pane.source = bmp; pane.rows = bmp.height; pane.cols = bmp.width;
    pane.shown = 0; pane.el.dataset.sliceIndex = "0";
    resize(pane); fit(pane); draw(pane);
    viewportEl.dataset.sliceIndex = "0";
    viewportEl.dataset.state = "ready";
    $("#meta-image").textContent = bmp.width + " × " + bmp.height + " photo";
  }, function () { if (gen === state.gen) showError("This photo could not be loaded."); });
}

function openPdf(btn) {
  viewportEl.hidden = true;
  $("#pdf-view").hidden = false;
  $("#pdf-frame").src = btn.dataset.file;
  $("#pdf-link").href = btn.dataset.file;
  $("#meta-image").textContent = "Report (PDF)";
  viewportEl.dataset.state = "ready";
}

// A measurement chosen in the list: open its image first, else go to its slice.
document.addEventListener("viewer:show-measure", function (event) {
  var m = event.detail;
  if (m.item !== state.item) { selectItem(m.item); return; }
  if (panes[m.plane] && panes[m.plane].count) { setActive(m.plane); setIndex(panes[m.plane], m.index); }
});
document.addEventListener("viewer:mode", function () {
  if (state.manifest) fillPresets(state.manifest);
});

export { VIEW_KINDS, fillPresets, openPdf, openPhoto, openSeries, resetPanes, selectItem, setKind };
