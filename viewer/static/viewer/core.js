/* The viewer's shared state: the page's elements, the panes, fetching with caches and
   orientation letters. Every other module of the viewer imports from here. */

var root = document.getElementById("viewer");
var PLANES = ["axial", "coronal", "sagittal"];
var COLOURS = { axial: "#f5c518", coronal: "#3bd16f", sagittal: "#3b9bff" };
var MAX_BLOBS = 600;
var MAX_BITMAPS = 24;
var PX_PER_SLICE = 9;            // a thumb's drag: about one slice per 9 px
var FRICTION = 0.94;             // momentum left after each 16 ms frame of a flick
var SCALE_STEPS = [1, 2, 5, 10, 20, 50, 100];
var $ = function (sel, el) { return (el || document).querySelector(sel); };
var $$ = function (sel, el) { return Array.prototype.slice.call((el || document).querySelectorAll(sel)); };

var viewportEl = $("#viewport");
var slider = $("#slice-slider");
var loadingEl = $("#loading");
var errorEl = $("#series-error");
var presetEl = $("#preset");
var drawer = $("#drawer");

var state = {
  item: null, manifest: null, kind: null, gen: 0,
  center: 40, width: 400, invert: false, lossless: false, overlays: true,
  tool: "scroll", active: "axial", layout: "single", cine: null,
  mode: root.dataset.mode === "full" ? "full" : "simple"
};

var panes = {};
PLANES.forEach(function (plane) {
  var el = $('.pane[data-plane="' + plane + '"]', viewportEl);
  var canvas = $("canvas", el);
  panes[plane] = {
    plane: plane, el: el, canvas: canvas, ctx: canvas.getContext("2d"),
    count: 0, index: 0, shown: -1, rows: 0, cols: 0, sp: [1, 1], mm: false, labels: null,
    img: null, source: null, rendered: null, work: null, src: null, out: null,
    scale: 1, ox: 0, oy: 0, fitted: true, cssW: 1, cssH: 1,
    draft: null, loading: false, wanted: "", failed: ""
  };
});

// ------------------------------------------------------------ fetching with caches

var blobs = new Map();
var bitmaps = new Map();
var inflight = 0;
var batch = 0;

function progress(delta) {
  inflight += delta;
  if (delta > 0) batch += delta;
  if (inflight <= 0) {
    inflight = 0; batch = 0;
    loadingEl.hidden = true;
    return;
  }
  loadingEl.hidden = false;
  loadingEl.value = batch ? (batch - inflight) / batch : 0;
}

// A refused image may mean the session ended (the link was withdrawn or expired, or it idled
// out): the viewer asks (an answer that reads no patient data and records nothing) and, if
// so, goes where the reason is said, instead of showing "could not be loaded".
var sessionCheck = null;
function checkSession() {
  var signIn = root.dataset.signIn;
  if (!signIn || sessionCheck) return;
  var url = "/viewer/session/?as=" + encodeURIComponent(root.dataset.signedInAs || "share");
  // A staff session that idled out is answered with a redirect to sign in: not followed.
  sessionCheck = fetch(url, { credentials: "same-origin", redirect: "manual" }).then(function (r) {
    if (r.status === 401 || r.type === "opaqueredirect") location.assign(signIn);
    else sessionCheck = null;
  }, function () { sessionCheck = null; });
}

// An image answered with a redirect (to the sign-in page) or refused may mean the sign-in
// ended: the viewer asks.
function refusedImage(r) {
  return r.redirected || r.status === 404 || r.status === 403 || r.status === 401;
}

// A chosen tool or plane is marked for the eye and for a screen reader alike.
function choose(buttons, isChosen) {
  buttons.forEach(function (b) {
    var on = isChosen(b);
    b.classList.toggle("active", on);
    b.setAttribute("aria-pressed", String(on));
  });
}

function fetchBlob(url) {
  var p = blobs.get(url);
  if (p) { blobs.delete(url); blobs.set(url, p); return p; }
  progress(1);
  p = fetch(url, { credentials: "same-origin" }).then(function (r) {
    if (!r.ok || r.redirected) {
      return r.text().then(function (text) {
        var err = new Error("HTTP " + r.status);
        err.status = r.redirected ? 401 : r.status;
        err.text = r.headers.get("Content-Type") === "text/plain" ? text : "";
        if (refusedImage(r)) checkSession();
        throw err;
      });
    }
    return r.blob();
  });
  p.then(function () { progress(-1); }, function () { progress(-1); blobs.delete(url); });
  blobs.set(url, p);
  while (blobs.size > MAX_BLOBS) blobs.delete(blobs.keys().next().value);
  return p;
}

function getBitmap(url) {
  var p = bitmaps.get(url);
  if (p) { bitmaps.delete(url); bitmaps.set(url, p); return p; }
  p = fetchBlob(url).then(function (b) { return createImageBitmap(b); });
  p.catch(function () { bitmaps.delete(url); });
  bitmaps.set(url, p);
  while (bitmaps.size > MAX_BITMAPS) {
    var oldest = bitmaps.keys().next().value;
    var old = bitmaps.get(oldest);
    bitmaps.delete(oldest);
    old.then(function (bmp) { if (!isShown(bmp)) bmp.close(); }, function () {});
  }
  return p;
}

// Panes of other views (the dental view) register here, so their images are not closed.
var otherPanes = [];

function isShown(bmp) {
  return PLANES.some(function (p) { return panes[p].img === bmp; }) ||
    otherPanes.some(function (p) { return p.img === bmp; });
}

function num(v) { return String(Math.round(v * 10) / 10); }

function sliceUrl(plane, index) {
  var m = state.manifest;
  var base = m.urls.slice.replace("{plane}", plane).replace("{index}", String(index));
  return base + (state.lossless ? ".png" : ".jpg") + "?c=" + num(state.center) +
    "&w=" + num(state.width) + "&invert=" + (state.invert ? 1 : 0) +
    (m.overlays && !state.overlays ? "&overlay=0" : "") +
    (m.window && m.window.lut && state.center === m.window.center &&
      state.width === m.window.width ? "&lut=1" : "");
}

// ------------------------------------------------------------ orientation

var OPPOSITE = { L: "R", R: "L", A: "P", P: "A", S: "I", I: "S" };

// Patient direction letters (LPS) of a vector, strongest first, up to two.
function direction(v) {
  var letters = [];
  [["L", "R"], ["P", "A"], ["S", "I"]].forEach(function (pair, i) {
    var x = Number(v[i]);
    if (Math.abs(x) > 0.25) letters.push([Math.abs(x), x > 0 ? pair[0] : pair[1]]);
  });
  letters.sort(function (a, b) { return b[0] - a[0]; });
  return letters.slice(0, 2).map(function (l) { return l[1]; }).join("");
}

function opposite(s) {
  return String(s || "").replace(/[LRAPSI]/g, function (c) { return OPPOSITE[c]; });
}

// The manifest's own edge letters when it has them; else from Image Orientation (Patient),
// reformats shown head up (as the server cuts them).
function edgeLabels(m, plane) {
  var g = m.planes && m.planes[plane];
  if (g && g.labels && g.labels.right) return g.labels;
  var o = m.orientation;
  if (!o || o.length !== 6) return null;
  var row = o.slice(0, 3), col = o.slice(3, 6);
  var down = [-(row[1] * col[2] - row[2] * col[1]), -(row[2] * col[0] - row[0] * col[2]),
    -(row[0] * col[1] - row[1] * col[0])];
  var pair = { axial: [row, col], coronal: [row, down], sagittal: [col, down] }[plane];
  return { right: direction(pair[0]), bottom: direction(pair[1]) };
}

// Panes on screen: the three planes in the three-view layout, else the active one.
function visiblePanes() {
  if (state.layout === "triple") return PLANES.map(function (p) { return panes[p]; });
  return [panes[state.active]];
}

function cap(s) { return s.charAt(0).toUpperCase() + s.slice(1); }

// Marks drawn over every image after it is painted (measurements register theirs). A list
// rather than an import keeps the modules free of import circles, which hashed names need.
var painters = [];

export { otherPanes, $, $$, checkSession, choose, refusedImage, COLOURS, FRICTION, MAX_BITMAPS, MAX_BLOBS, OPPOSITE, PLANES, PX_PER_SLICE, SCALE_STEPS, batch, bitmaps, blobs, direction, drawer, edgeLabels, errorEl, fetchBlob, getBitmap, inflight, isShown, loadingEl, num, opposite, painters, panes, presetEl, progress, root, sliceUrl, slider, state, viewportEl, cap, visiblePanes };
