/* Image viewer: the server renders windowed slices, this script paints, scrolls and measures.
   No framework, no build step. Data comes from data-* attributes and the series manifest. */
(function () {
  "use strict";
  var root = document.getElementById("viewer");
  if (!root) return;

  var PLANES = ["axial", "coronal", "sagittal"];
  var COLOURS = { axial: "#f5c518", coronal: "#3bd16f", sagittal: "#3b9bff" };
  var MAX_BLOBS = 600;
  var MAX_BITMAPS = 24;
  var $ = function (sel, el) { return (el || document).querySelector(sel); };
  var $$ = function (sel, el) { return Array.prototype.slice.call((el || document).querySelectorAll(sel)); };

  var viewportEl = $("#viewport");
  var slider = $("#slice-slider");
  var loadingEl = $("#loading");
  var errorEl = $("#series-error");
  var presetEl = $("#preset");
  var resultEl = $("#measure-result");

  var state = {
    item: null, manifest: null, kind: null, gen: 0,
    center: 40, width: 400, invert: false, lossless: false,
    tool: "scroll", active: "axial", layout: "single", cine: null
  };

  var panes = {};
  PLANES.forEach(function (plane) {
    var el = $('.pane[data-plane="' + plane + '"]', viewportEl);
    var canvas = $("canvas", el);
    panes[plane] = {
      plane: plane, el: el, canvas: canvas, ctx: canvas.getContext("2d"),
      count: 0, index: 0, shown: -1, rows: 0, cols: 0, sp: [1, 1],
      img: null, source: null, rendered: null, work: null, src: null, out: null,
      scale: 1, ox: 0, oy: 0, fitted: true, cssW: 1, cssH: 1,
      measures: [], draft: null, loading: false, wanted: "", failed: ""
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

  function fetchBlob(url) {
    var p = blobs.get(url);
    if (p) { blobs.delete(url); blobs.set(url, p); return p; }
    progress(1);
    p = fetch(url, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) {
        return r.text().then(function (text) {
          var err = new Error("HTTP " + r.status);
          err.status = r.status;
          err.text = r.headers.get("Content-Type") === "text/plain" ? text : "";
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

  function isShown(bmp) {
    return PLANES.some(function (p) { return panes[p].img === bmp; });
  }

  function num(v) { return String(Math.round(v * 10) / 10); }

  function sliceUrl(plane, index) {
    var m = state.manifest;
    var base = m.urls.slice.replace("{plane}", plane).replace("{index}", String(index));
    return base + (state.lossless ? ".png" : ".jpg") + "?c=" + num(state.center) +
      "&w=" + num(state.width) + "&invert=" + (state.invert ? 1 : 0);
  }

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
    var cx = pane.cssW / 2, cy = pane.cssH / 2;
    zoomAt(pane, cx, cy, (1 / pane.sp[1]) / pane.scale);
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
    if (!pane.source) { if (pane.failed) drawFailure(pane); return; }
    ctx.imageSmoothingEnabled = pane.sp[1] * pane.scale < 2;
    ctx.drawImage(pane.source, pane.ox, pane.oy, pane.cols * pane.sp[1] * pane.scale,
      pane.rows * pane.sp[0] * pane.scale);
    if (state.layout === "triple") drawReferences(pane);
    pane.measures.forEach(function (m) { if (m.index === pane.shown) drawMeasure(pane, m); });
    if (pane.draft) drawMeasure(pane, pane.draft);
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

  function measureText(pane, m) {
    var unit = state.kind === "photo" || !state.manifest || !state.manifest.pixel_spacing ? " px" : " mm";
    var mm = function (a, b) {
      return Math.hypot((b.x - a.x) * pane.sp[1], (b.y - a.y) * pane.sp[0]);
    };
    if (m.type === "length" && m.pts.length === 2) return mm(m.pts[0], m.pts[1]).toFixed(1) + unit;
    if (m.type === "angle" && m.pts.length === 3) {
      var v = m.pts[1];
      var a1 = Math.atan2((m.pts[0].y - v.y) * pane.sp[0], (m.pts[0].x - v.x) * pane.sp[1]);
      var a2 = Math.atan2((m.pts[2].y - v.y) * pane.sp[0], (m.pts[2].x - v.x) * pane.sp[1]);
      var deg = Math.abs(a1 - a2) * 180 / Math.PI;
      if (deg > 180) deg = 360 - deg;
      return deg.toFixed(1) + "°";
    }
    return "";
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

  function drawMeasure(pane, m) {
    var ctx = pane.ctx;
    var pts = m.pts.map(function (p) { return toScreen(pane, p); });
    ctx.lineWidth = 2;
    for (var i = 1; i < pts.length; i++) line(ctx, pts[i - 1], pts[i], "#ff5a36");
    ctx.fillStyle = "#ff5a36";
    pts.forEach(function (p) { ctx.fillRect(p.x - 2, p.y - 2, 4, 4); });
    var text = measureText(pane, m);
    if (text) {
      var at = pts[pts.length - 1];
      ctx.font = "bold 14px system-ui, sans-serif";
      ctx.fillStyle = "#000";
      ctx.fillText(text, at.x + 7, at.y - 5);
      ctx.fillStyle = "#ffd166";
      ctx.fillText(text, at.x + 6, at.y - 6);
    }
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

  // ------------------------------------------------------------ slices

  function visiblePanes() {
    if (state.layout === "triple") return PLANES.map(function (p) { return panes[p]; });
    return [panes[state.active]];
  }

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
    show(pane);
    if (state.layout === "triple") PLANES.forEach(function (p) { if (p !== pane.plane) draw(panes[p]); });
  }

  function step(delta) { var p = panes[state.active]; setIndex(p, p.index + delta); }

  function refreshAll() { visiblePanes().forEach(show); }

  // ------------------------------------------------------------ status and controls

  function status() {
    var pane = panes[state.active];
    viewportEl.dataset.plane = state.active;
    if (!state.manifest) return;
    slider.max = String(Math.max(0, pane.count - 1));
    slider.value = String(pane.index);
    $("#slice-label").textContent = cap(pane.plane) + " " + (pane.index + 1) + " / " + pane.count;
    $("#window-label").textContent = state.manifest.colour ? "" :
      "C " + num(state.center) + " W " + num(state.width);
  }

  function cap(s) { return s.charAt(0).toUpperCase() + s.slice(1); }

  function setStatusError(text) { $("#slice-label").textContent = text; }

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
    $$(".planes [data-plane]").forEach(function (b) { b.classList.toggle("active", b.dataset.plane === plane); });
    var pane = panes[plane];
    viewportEl.dataset.sliceIndex = pane.shown >= 0 ? String(pane.shown) : "";
    relayout();
    if (pane.shown !== pane.index || !pane.img) show(pane);
    status();
  }

  function relayout() {
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
    $$("[data-tool]").forEach(function (b) { b.classList.toggle("active", b.dataset.tool === tool); });
    PLANES.forEach(function (p) { panes[p].draft = null; });
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

  // ------------------------------------------------------------ opening items

  function resetPanes() {
    state.gen++;
    stopCine();
    PLANES.forEach(function (p) {
      var pane = panes[p];
      pane.count = 0; pane.index = 0; pane.shown = -1; pane.img = null; pane.source = null;
      pane.src = null; pane.measures = []; pane.draft = null; pane.fitted = true; pane.wanted = "";
      pane.failed = ""; pane.rows = 0; pane.cols = 0;
      delete pane.el.dataset.sliceIndex;
      draw(pane);
    });
    errorEl.hidden = true;
    viewportEl.hidden = false;
    $("#pdf-view").hidden = true;
    $("#pdf-frame").removeAttribute("src");
    resultEl.textContent = "";
    $("#slice-label").textContent = "–";
    $("#window-label").textContent = "";
    slider.max = "0";
    slider.value = "0";
    state.manifest = null;
    state.active = "axial";
    PLANES.forEach(function (p) { panes[p].el.classList.toggle("active", p === "axial"); });
    $$(".planes [data-plane]").forEach(function (b) { b.classList.toggle("active", b.dataset.plane === "axial"); });
    viewportEl.dataset.sliceIndex = "";
    viewportEl.dataset.state = "loading";
  }

  function selectItem(btn) {
    $$(".series-list .item").forEach(function (b) { b.classList.toggle("active", b === btn); });
    state.item = btn;
    resetPanes();
    state.kind = btn.dataset.kind;
    viewportEl.dataset.kind = state.kind;
    $("#meta-series").textContent = btn.dataset.label || "";
    $("#meta-image").textContent = "—";
    if (state.kind === "series") openSeries(btn);
    else if (state.kind === "photo") openPhoto(btn);
    else openPdf(btn);
  }

  function enablePlanes(m) {
    var volume = m && m.kind === "volume";
    $$(".planes [data-plane]").forEach(function (b) { b.disabled = !(m && m.planes[b.dataset.plane]); });
    $("#layout-toggle").disabled = !volume;
    if (!volume) {
      state.layout = "single";
      $("#layout-toggle").setAttribute("aria-pressed", "false");
    }
    var greyscale = m && !m.colour;
    presetEl.disabled = !greyscale;
    $("#lossless").disabled = !m;
    $('[data-tool="wl"]').disabled = !greyscale;
  }

  function openSeries(btn) {
    var gen = state.gen;
    // The manifest, not the page's data-error, is the word on a broken series: it re-checks.
    fetch(btn.dataset.manifest, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    }).then(function (m) {
      if (gen !== state.gen) return;
      if (m.error) { enablePlanes(null); showError(m.error); return; }
      state.manifest = m;
      state.kind = m.kind;
      viewportEl.dataset.kind = m.kind;
      enablePlanes(m);
      fillPresets(m);
      if (m.window) { state.center = m.window.center; state.width = m.window.width; }
      PLANES.forEach(function (p) {
        var g = m.planes[p];
        var pane = panes[p];
        pane.count = g ? g.count : 0;
        pane.index = p === "axial" ? m.initial_index : Math.floor(pane.count / 2);
        pane.sp = g && g.spacing ? g.spacing : [1, 1];
      });
      var sp = m.pixel_spacing ? m.pixel_spacing.map(function (v) { return num(v); }).join(" × ") + " mm" : "";
      $("#meta-image").textContent = m.columns + " × " + m.rows + ", " + m.slices + " images" + (sp ? ", " + sp : "");
      state.active = "axial";
      setActive("axial");
    }).catch(function () {
      if (gen === state.gen) showError(btn.dataset.error || "This series could not be opened.");
    });
  }

  function fillPresets(m) {
    presetEl.innerHTML = "";
    var first = document.createElement("option");
    first.value = "";
    first.textContent = "Window…";
    presetEl.appendChild(first);
    var list = (m.window ? [{ name: "Default", center: m.window.center, width: m.window.width }] : []).concat(m.presets);
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
    state.manifest = null;
    enablePlanes(null);
    state.layout = "single";
    var pane = panes.axial;
    pane.count = 1; pane.sp = [1, 1];
    state.active = "axial";
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
    state.manifest = null;
    enablePlanes(null);
    viewportEl.hidden = true;
    $("#pdf-view").hidden = false;
    $("#pdf-frame").src = btn.dataset.file;
    $("#pdf-link").href = btn.dataset.file;
    viewportEl.dataset.state = "ready";
  }

  // ------------------------------------------------------------ pointer input

  var pointers = new Map();
  var drag = null;

  function local(pane, e) {
    var r = pane.canvas.getBoundingClientRect();
    return { x: e.clientX - r.left, y: e.clientY - r.top };
  }

  function onDown(pane, e) {
    if (!pane.img && !pane.failed) return;
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
    if (pane.failed && tool !== "scroll") return;  // nothing shown to measure, pan or zoom
    drag = { pane: pane, tool: tool, start: p, last: p, c0: state.center, w0: state.width,
      index0: pane.index, moved: false };
    var ip = toImage(pane, p.x, p.y);
    if (tool === "length") pane.draft = { type: "length", index: pane.shown, pts: [ip, ip] };
    if (tool === "angle") {
      if (pane.draft && pane.draft.type === "angle" && pane.draft.pts.length === 2) pane.draft.pts.push(ip);
      else pane.draft = { type: "angle", index: pane.shown, pts: [ip, ip] };
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
    if (Math.abs(p.x - drag.start.x) + Math.abs(p.y - drag.start.y) > 3) drag.moved = true;
    drag.last = p;
    var ip = toImage(pane, p.x, p.y);
    if (drag.tool === "scroll") {
      var rate = Math.max(2, Math.min(10, pane.cssH / Math.max(pane.count, 1)));
      setIndex(pane, drag.index0 + Math.round((p.y - drag.start.y) / rate));
    } else if (drag.tool === "wl") {
      var k = Math.max(drag.w0, 100) / 250;
      setWindow(drag.c0 - (p.y - drag.start.y) * k, drag.w0 + (p.x - drag.start.x) * k, false);
    } else if (drag.tool === "pan") {
      pane.ox += dx; pane.oy += dy; pane.fitted = false; draw(pane);
    } else if (drag.tool === "zoom") {
      zoomAt(pane, drag.start.x, drag.start.y, Math.exp(-dy / 150));
    } else if (pane.draft) {
      pane.draft.pts[pane.draft.pts.length - 1] = ip;
      resultEl.textContent = measureText(pane, pane.draft);
      draw(pane);
    }
  }

  function onUp(pane, e) {
    if (!pointers.has(e.pointerId)) return;
    pointers.delete(e.pointerId);
    if (!drag) return;
    if (drag.pinch) { if (pointers.size === 0) drag = null; return; }
    var d = drag;
    drag = null;
    if (d.tool === "wl" && d.moved) setWindow(state.center, state.width, true);
    if (d.tool === "scroll" && !d.moved && state.layout === "triple") crosshair(pane, toImage(pane, d.start.x, d.start.y));
    if (pane.draft && (d.tool === "length" || d.tool === "angle")) {
      var m = pane.draft;
      var done = (m.type === "length" && d.moved) || (m.type === "angle" && m.pts.length === 3);
      if (m.type === "length" && !d.moved) pane.draft = null;
      if (done) {
        resultEl.textContent = measureText(pane, m);
        pane.measures.push(m);
        pane.draft = null;
      }
      draw(pane);
    }
  }

  function crosshair(pane, ip) {
    var nz = panes.axial.count;
    var x = Math.floor(ip.x), y = Math.floor(ip.y);
    if (pane.plane === "axial") { setIndex(panes.sagittal, x); setIndex(panes.coronal, y); }
    else if (pane.plane === "coronal") { setIndex(panes.sagittal, x); setIndex(panes.axial, nz - 1 - y); }
    else { setIndex(panes.coronal, x); setIndex(panes.axial, nz - 1 - y); }
    PLANES.forEach(function (p) { draw(panes[p]); });
  }

  var wheelAcc = 0;
  function onWheel(pane, e) {
    if (!pane.img && !pane.failed) return;
    e.preventDefault();
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

  // ------------------------------------------------------------ buttons and keys

  $$(".series-list .item").forEach(function (b) { b.addEventListener("click", function () { selectItem(b); }); });
  $$("[data-tool]").forEach(function (b) { b.addEventListener("click", function () { setTool(b.dataset.tool); }); });
  $$(".planes [data-plane]").forEach(function (b) {
    b.addEventListener("click", function () { setActive(b.dataset.plane); });
  });
  $("#layout-toggle").addEventListener("click", function () {
    state.layout = state.layout === "single" ? "triple" : "single";
    this.setAttribute("aria-pressed", state.layout === "triple" ? "true" : "false");
    relayout();
  });
  presetEl.addEventListener("change", function () {
    var o = presetEl.selectedOptions[0];
    if (o && o.value !== "") setWindow(parseFloat(o.dataset.center), parseFloat(o.dataset.width), true);
  });
  $("#invert").addEventListener("click", function () {
    state.invert = !state.invert;
    this.setAttribute("aria-pressed", String(state.invert));
    if (state.manifest) { visiblePanes().forEach(previewWindow); refreshAll(); }
  });
  $("#lossless").addEventListener("click", function () {
    state.lossless = !state.lossless;
    this.setAttribute("aria-pressed", String(state.lossless));
    refreshAll();
  });
  $("#fit").addEventListener("click", function () { visiblePanes().forEach(function (p) { fit(p); draw(p); }); });
  $("#one-to-one").addEventListener("click", function () { oneToOne(panes[state.active]); });
  $("#cine").addEventListener("click", toggleCine);
  $("#clear-measure").addEventListener("click", function () {
    PLANES.forEach(function (p) { panes[p].measures = []; panes[p].draft = null; draw(panes[p]); });
    resultEl.textContent = "";
  });
  slider.addEventListener("input", function () { setIndex(panes[state.active], parseInt(slider.value, 10)); });

  // Keys go to the viewer from the page or the image; a focused control keeps those it uses:
  // form controls (the slider, the preset list) every key, buttons and links Space and Enter.
  document.addEventListener("keydown", function (e) {
    var el = e.target && e.target.closest ? e.target : null;
    if (!state.manifest || e.ctrlKey || e.metaKey || e.altKey) return;
    if (el && el.closest("input, select, textarea, [contenteditable]")) return;
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

  var wanted = new URLSearchParams(window.location.search).get("series");
  var firstItem = (wanted && $('.series-list .item[data-code="' + wanted.replace(/[^0-9a-f-]/gi, "") + '"]')) ||
    $(".series-list .item");
  if (firstItem) selectItem(firstItem);
})();
