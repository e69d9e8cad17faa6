// Drag-and-drop upload with a small tus 1.0.0 client: POST creates, PATCH sends chunks at
// Upload-Offset, HEAD finds where to resume after a dropped connection. Upload URLs are kept in
// localStorage under a fingerprint of the file (name, size, date; never its contents).
"use strict";
(function () {
  var CHUNK = 8 * 1024 * 1024;
  var RETRIES = [1000, 3000, 5000, 10000, 20000];
  var app = document.getElementById("upload-app");
  if (!app) return;
  var csrf = app.dataset.csrf;
  var maxBytes = Number(app.dataset.max);
  var patient = app.dataset.patient || "";
  var list = document.getElementById("filelist");
  var overall = document.getElementById("overall");
  var overallBar = document.getElementById("overall-bar");
  var overallText = document.getElementById("overall-text");
  var report = document.getElementById("report");
  var busy = false;

  function fingerprint(file, path) {
    return "tus::" + path + "::" + file.size + "::" + file.lastModified;
  }

  function hash(text) {
    var h = 5381;
    for (var i = 0; i < text.length; i++) h = ((h * 33) ^ text.charCodeAt(i)) >>> 0;
    return h.toString(36) + "-" + text.length;
  }

  async function newBatch() {
    var form = new FormData();
    form.append("patient", patient);
    var res = await fetch("/upload/batches/", {
      method: "POST", body: form, headers: { "X-CSRFToken": csrf }, credentials: "same-origin",
    });
    if (res.redirected || res.status !== 201) throw new Error("signed-out");
    return (await res.json()).batch;
  }

  function b64(text) {
    return btoa(unescape(encodeURIComponent(text)));
  }

  function sleep(ms) {
    return new Promise(function (resolve) { setTimeout(resolve, ms); });
  }

  function request(method, url, headers, body, onProgress) {
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      xhr.open(method, url);
      xhr.setRequestHeader("Tus-Resumable", "1.0.0");
      xhr.setRequestHeader("X-CSRFToken", csrf);
      Object.keys(headers || {}).forEach(function (k) { xhr.setRequestHeader(k, headers[k]); });
      if (onProgress && xhr.upload) {
        xhr.upload.onprogress = function (e) { if (e.lengthComputable) onProgress(e.loaded); };
      }
      xhr.onload = function () {
        if (xhr.responseURL && xhr.responseURL.indexOf("/login/") !== -1) {
          reject(new Error("signed-out"));
        } else {
          resolve(xhr);
        }
      };
      xhr.onerror = function () { reject(new Error("network")); };
      xhr.send(body || null);
    });
  }

  function signedOut(err) {
    return err && err.message === "signed-out";
  }

  function row(item) {
    var li = document.createElement("li");
    var name = document.createElement("span");
    name.className = "fname";
    name.textContent = item.path;
    var bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", "Progress of " + item.path);
    var state = document.createElement("span");
    state.className = "fstate";
    li.appendChild(name);
    li.appendChild(bar);
    li.appendChild(state);
    list.appendChild(li);
    item.bar = bar;
    item.state = state;
    item.li = li;
  }

  function updateOverall(items) {
    var total = 0, sent = 0;
    items.forEach(function (it) { total += it.file.size; sent += it.sent; });
    var pct = total ? Math.floor((sent * 100) / total) : 100;
    overallBar.value = pct;
    overallText.textContent = pct + "% of " + (total / 1048576).toFixed(1) + " MB";
  }

  async function createUpload(item, batch) {
    var meta = "filename " + b64(item.file.name) + ",relativePath " + b64(item.path) +
      ",batch " + b64(batch);
    var xhr = await request("POST", "/upload/tus/", {
      "Upload-Length": String(item.file.size), "Upload-Metadata": meta,
    });
    if (xhr.status === 404) throw new Error("batch-gone");
    if (xhr.status !== 201) throw new Error(xhr.responseText || "The server refused the file.");
    return xhr.getResponseHeader("Location");
  }

  async function currentOffset(url) {
    var xhr = await request("HEAD", url);
    if (xhr.status !== 200) return null;
    return Number(xhr.getResponseHeader("Upload-Offset"));
  }

  async function sendFile(item, batch, items) {
    var key = fingerprint(item.file, item.path) + "::" + batch;
    var url = localStorage.getItem(key);
    var offset = url ? await currentOffset(url) : null;
    if (offset === null) {
      url = await createUpload(item, batch);
      localStorage.setItem(key, url);
      offset = 0;
    }
    var attempt = 0;
    while (offset < item.file.size) {
      var chunk = item.file.slice(offset, Math.min(offset + CHUNK, item.file.size));
      var base = offset;
      try {
        var xhr = await request("PATCH", url, {
          "Content-Type": "application/offset+octet-stream", "Upload-Offset": String(offset),
        }, chunk, function (loaded) {
          item.sent = base + loaded;
          item.bar.value = Math.floor((item.sent * 100) / item.file.size);
          updateOverall(items);
        });
        if (xhr.status === 204) {
          offset = Number(xhr.getResponseHeader("Upload-Offset"));
          attempt = 0;
        } else if (xhr.status === 409) {
          offset = await currentOffset(url);
        } else {
          throw new Error(xhr.responseText || ("Upload failed (" + xhr.status + ")."));
        }
      } catch (err) {
        if (signedOut(err) || err.message !== "network" || attempt >= RETRIES.length) throw err;
        item.state.textContent = "connection lost, retrying…";
        await sleep(RETRIES[attempt++]);
        var found = await currentOffset(url).catch(function () { return null; });
        if (found !== null) offset = found;
      }
      item.sent = offset;
      item.bar.value = item.file.size ? Math.floor((offset * 100) / item.file.size) : 100;
      item.state.textContent = "";
      updateOverall(items);
    }
    item.bar.value = 100;
    item.state.textContent = "sent";
    localStorage.removeItem(key);
  }

  function showReport(data) {
    report.textContent = "";
    var h = document.createElement("h2");
    h.textContent = "Result";
    report.appendChild(h);
    if (data.error) {
      var p = document.createElement("p");
      p.className = "error";
      p.setAttribute("role", "alert");
      p.textContent = data.error;
      report.appendChild(p);
    }
    (data.studies || []).forEach(function (s) {
      var p = document.createElement("p");
      var a = document.createElement("a");
      a.href = s.url;
      a.className = "button";
      a.textContent = "Open the study: " + s.label;  // new, or one the files add to or repeat
      p.appendChild(a);
      report.appendChild(p);
    });
    if ((data.files || []).length) {
      var ul = document.createElement("ul");
      ul.className = "filereport";
      data.files.forEach(function (f) {
        var li = document.createElement("li");
        li.className = "file-" + f.status;
        li.textContent = f.name + ": " + f.status + (f.reason ? " (" + f.reason + ")" : "");
        ul.appendChild(li);
      });
      report.appendChild(ul);
    }
  }

  async function getJson(url, init) {
    var res = await fetch(url, Object.assign({
      headers: { "X-CSRFToken": csrf, "Accept": "application/json" }, credentials: "same-origin",
    }, init || {}));
    if (res.redirected) throw new Error("signed-out");
    if ((res.headers.get("Content-Type") || "").indexOf("application/json") !== 0) {
      throw new Error("The portal could not answer (" + res.status + "). Please try again.");
    }
    return { status: res.status, data: await res.json() };
  }

  // The server reads the images in the background; ask every second until it has finished.
  async function finishBatch(batch, batchKey) {
    overallText.textContent = "All files sent. Reading the images…";
    var answer = await getJson("/upload/batches/" + batch + "/finish/", { method: "POST" });
    while (answer.status === 202) {
      await sleep(1000);
      answer = await getJson(answer.data.status_url);
    }
    showReport(answer.data);
    if (answer.data.state === "open" && answer.data.error) {
      overallText.textContent = "Not finished.";
      var retry = document.createElement("button");
      retry.type = "button";
      retry.className = "button";
      retry.textContent = "Try again";
      retry.addEventListener("click", function () {
        retry.disabled = true;
        finishBatch(batch, batchKey).catch(function (err) {
          showReport({ error: signedOut(err) ? "Your session ended. Sign in again." : err.message });
        });
      });
      report.appendChild(retry);
      return;
    }
    localStorage.removeItem(batchKey);
    overallText.textContent = "Done.";
  }

  async function startBatch(items) {
    if (busy || !items.length) return;
    busy = true;
    list.textContent = "";
    report.textContent = "";
    overall.hidden = false;
    items.forEach(function (it) { it.sent = 0; row(it); });
    updateOverall(items);
    try {
      var tooBig = items.filter(function (it) { return it.file.size > maxBytes; });
      if (tooBig.length) throw new Error(tooBig[0].path + " is larger than the portal accepts.");
      // The same files dropped again (say after a reload) continue in the same batch.
      var batchKey = "tus-batch::" + patient + "::" + hash(items.map(function (it) {
        return fingerprint(it.file, it.path);
      }).sort().join("|"));
      var batch = localStorage.getItem(batchKey);
      for (var attempt = 0; attempt < 2; attempt++) {
        if (!batch) {
          batch = await newBatch();
          localStorage.setItem(batchKey, batch);
        }
        try {
          for (var i = 0; i < items.length; i++) {
            items[i].state.textContent = "sending…";
            await sendFile(items[i], batch, items);
          }
          break;
        } catch (err) {
          if (err.message !== "batch-gone" || attempt) throw err;
          localStorage.removeItem(batchKey);
          batch = null;
        }
      }
      await finishBatch(batch, batchKey);
    } catch (err) {
      showReport({ error: signedOut(err)
        ? "Your session ended. Sign in again, then drop the files again: sent parts are kept."
        : err.message });
    } finally {
      busy = false;
    }
  }

  function fromFileList(files) {
    return Array.prototype.map.call(files, function (f) {
      return { file: f, path: f.webkitRelativePath || f.name };
    });
  }

  function readEntries(reader) {
    return new Promise(function (resolve, reject) { reader.readEntries(resolve, reject); });
  }

  async function walk(entry, prefix, out) {
    if (entry.isFile) {
      var file = await new Promise(function (resolve, reject) { entry.file(resolve, reject); });
      out.push({ file: file, path: prefix + file.name });
    } else if (entry.isDirectory) {
      var reader = entry.createReader();
      var batch;
      do {
        batch = await readEntries(reader);
        for (var i = 0; i < batch.length; i++) {
          await walk(batch[i], prefix + entry.name + "/", out);
        }
      } while (batch.length);
    }
  }

  async function fromDrop(dt) {
    var items = dt.items ? Array.prototype.slice.call(dt.items) : [];
    var entries = items.map(function (i) {
      return i.webkitGetAsEntry ? i.webkitGetAsEntry() : null;
    }).filter(Boolean);
    if (!entries.length) return fromFileList(dt.files);
    var out = [];
    for (var i = 0; i < entries.length; i++) await walk(entries[i], "", out);
    return out;
  }

  var zone = document.getElementById("dropzone");
  zone.addEventListener("dragover", function (e) { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", function () { zone.classList.remove("over"); });
  zone.addEventListener("drop", async function (e) {
    e.preventDefault();
    zone.classList.remove("over");
    startBatch(await fromDrop(e.dataTransfer));
  });
  zone.addEventListener("keydown", function (e) {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      document.getElementById("pick-files").click();
    }
  });
  ["pick-files", "pick-folder"].forEach(function (id) {
    var input = document.getElementById(id);
    input.addEventListener("change", function () {
      startBatch(fromFileList(input.files));
      input.value = "";
    });
  });
})();
