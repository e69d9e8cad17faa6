/* Image viewer: the server renders windowed slices, these modules paint, scroll and measure.
   No framework, no build step. Data comes from data-* attributes and the series manifest.
   Modules: core (state, fetching), draw, measure, series, kinds (view kinds), input, and
   dental (panoramic and cross-sections). This one wires the buttons and keys and starts. */
import { $, $$, drawer, visiblePanes, panes, presetEl, sliceUrl, slider, state } from "./core.js";
import { draw, fit, oneToOne, previewWindow, resize } from "./draw.js";
import { clearMeasures, copyCsv, downloadCsv } from "./measure.js";
import { filterTags, loadTags, refreshAll, relayout, setActive, setIndex, setMode, setTool, setWindow, step, toggleCine } from "./series.js";
import { VIEW_KINDS, selectItem, setKind } from "./kinds.js";
import { stopFlick } from "./input.js";

// ------------------------------------------------------------ drawer, buttons and keys

function setDrawer(open) {
  drawer.classList.toggle("open", open);
  $("#drawer-open").setAttribute("aria-expanded", String(open));
  if (open) $("#drawer-close").focus();
}

$("#drawer-open").addEventListener("click", function () { setDrawer(!drawer.classList.contains("open")); });
$("#drawer-close").addEventListener("click", function () { setDrawer(false); $("#drawer-open").focus(); });
$$(".series-list .item").forEach(function (b) {
  b.addEventListener("click", function () { selectItem(b); setDrawer(false); });
});
$$("[data-tool]").forEach(function (b) { b.addEventListener("click", function () { setTool(b.dataset.tool); }); });
$$(".planes [data-plane]").forEach(function (b) {
  b.addEventListener("click", function () { setActive(b.dataset.plane); });
});
$("#layout-toggle").addEventListener("click", function () {
  state.layout = state.layout === "single" ? "triple" : "single";
  this.setAttribute("aria-pressed", state.layout === "triple" ? "true" : "false");
  relayout();
});
$("#mode-toggle").addEventListener("click", function () { setMode(state.mode === "full" ? "simple" : "full"); });
presetEl.addEventListener("change", function () {
  var o = presetEl.selectedOptions[0];
  if (o && o.value !== "") setWindow(parseFloat(o.dataset.center), parseFloat(o.dataset.width), true);
});
$("#invert").addEventListener("click", function () {
  state.invert = !state.invert;
  this.setAttribute("aria-pressed", String(state.invert));
  if (state.manifest) { visiblePanes().forEach(previewWindow); refreshAll(); }
});
$("#overlays").addEventListener("click", function () {
  state.overlays = !state.overlays;
  this.setAttribute("aria-pressed", String(state.overlays));
  refreshAll();
});
$("#lossless").addEventListener("click", function () {
  state.lossless = !state.lossless;
  this.setAttribute("aria-pressed", String(state.lossless));
  refreshAll();
});
$("#fit").addEventListener("click", function () {
  if (state.manifest && state.manifest.window && state.mode === "simple") {
    setWindow(state.manifest.window.center, state.manifest.window.width, true);
  }
  visiblePanes().forEach(function (p) { fit(p); draw(p); });
});
$("#one-to-one").addEventListener("click", function () { oneToOne(panes[state.active]); });
$("#cine").addEventListener("click", toggleCine);
$("#clear-measure").addEventListener("click", clearMeasures);
// The image on the screen (plane, number, window), saved as a picture: a download.
var savePicture = $("#save-picture");
if (savePicture) savePicture.addEventListener("click", function (event) {
  var pane = panes[state.active];
  if (!state.manifest || !pane.count) { event.preventDefault(); return; }
  savePicture.href = sliceUrl(pane.plane, pane.index).replace(/\.(jpg|png)\?/, "/picture.$1?");
});
$("#measure-copy").addEventListener("click", copyCsv);
$("#measure-csv").addEventListener("click", downloadCsv);
$("#tags-load").addEventListener("click", loadTags);
$("#tags-filter").addEventListener("input", filterTags);
slider.addEventListener("input", function () { stopFlick(); setIndex(panes[state.active], parseInt(slider.value, 10)); });

// Keys go to the viewer from the page or the image; a focused control keeps those it uses:
// form controls (the slider, the preset list) every key, buttons and links Space and Enter.
document.addEventListener("keydown", function (e) {
  var el = e.target && e.target.closest ? e.target : null;
  if (e.key === "Escape" && drawer.classList.contains("open")) { setDrawer(false); return; }
  if (!state.manifest || e.ctrlKey || e.metaKey || e.altKey) return;
  if (el && el.closest("input, select, textarea, [contenteditable], #drawer")) return;
  if ((e.key === " " || e.key === "Enter") && el && el.closest("button, a[href], [role=button]")) return;
  var p = panes[state.active];
  var keys = {
    ArrowUp: -1, ArrowLeft: -1, ArrowDown: 1, ArrowRight: 1, PageUp: -10, PageDown: 10
  };
  if (e.key in keys) step(keys[e.key]);
  else if (e.key === "Home") setIndex(p, 0);
  else if (e.key === "End") setIndex(p, p.count - 1);
  else if (e.key === "i") $("#invert").click();
  else if (e.key === "f") $("#fit").click();
  else if (e.key === " ") toggleCine();
  else return;
  e.preventDefault();
});

var resizeTimer = null;
window.addEventListener("resize", function () {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(function () {
    visiblePanes().forEach(function (p) { resize(p); if (p.fitted) fit(p); draw(p); });
  }, 100);
});

// For the views added later (panoramic, cross sections): register a kind and its opener.
window.viewer = {
  addViewKind: function (name, kind) { VIEW_KINDS[name] = kind; },
  state: state, panes: panes, setKind: setKind, relayout: relayout
};

setMode(state.mode);
var query = new URLSearchParams(window.location.search);
var wanted = (query.get("series") || query.get("item") || "").replace(/[^0-9a-f-]/gi, "");
var firstItem = (wanted && $('.series-list .item[data-code="' + wanted + '"]')) || $(".series-list .item");
if (firstItem) selectItem(firstItem);
