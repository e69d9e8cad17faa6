// Sending through an upload link. The chosen files go to the practice a group at a time
// (at most data-group-bytes, and 50 files, per request): a dropped connection costs only the
// group under way, which is sent again a moment later, and a send stopped for good keeps what
// got through (sending again sends only the rest). A choice the link has no room for, or a
// file larger than a request may carry, is told before anything leaves the browser; the bar
// shows how far the whole send has got, since a CBCT over a phone connection takes minutes.
// Without this script the form still sends everything in one request, and the server checks
// the same.
(function () {
  "use strict";
  var form = document.getElementById("send-form");
  if (!form) return;
  var input = document.getElementById("id_files");
  var problem = document.getElementById("send-problem");
  var progress = document.getElementById("send-progress");
  var bar = progress.querySelector("progress");
  var progressText = document.getElementById("send-progress-text");
  var button = form.querySelector("button[type=submit]");
  // The form's own fields and each file's part headers travel with the files.
  var OVERHEAD = 4096, PER_FILE = 512;

  // In 1024s, as the page's own figures are written (portal.sizes): "512 MB", "1.5 GB".
  function size(bytes) {
    var KB = 1024, MB = KB * 1024, GB = MB * 1024;
    function one(x) { return x.toFixed(1).replace(/\.0$/, ""); }
    if (bytes >= GB) return one(bytes / GB) + " GB";
    if (bytes >= MB) return one(bytes / MB) + " MB";
    return (bytes > 0 ? Math.max(1, Math.round(bytes / KB)) : 0) + " KB";
  }
  var sending = false;
  // Files (the chosen File objects themselves) this page has sent and the practice received:
  // sending the same choice again after a dropped connection sends only the rest.
  var received = new Set();
  var through = 0;  // files of the send under way that got through
  // Each request carries at most this many files, so a dropped connection loses only those.
  var GROUP_FILES = 50, TRIES = 4;

  function chosen() {
    return Array.prototype.slice.call(input.files || []).filter(function (f) {
      return !received.has(f);
    });
  }

  function whatIsWrong(files) {
    var perSend = Number(form.dataset.perSend), room = Number(form.dataset.room);
    var total = 0, biggest = null;
    files.forEach(function (f) {
      total += f.size;
      if (!biggest || f.size > biggest.size) biggest = f;
    });
    if (biggest && biggest.size > perSend - OVERHEAD - PER_FILE) {
      return biggest.name + " is " + size(biggest.size) + ", more than one file may be (" +
        size(perSend) + "). If it is a ZIP, open it and send the files inside instead; " +
        "or call the practice.";
    }
    if (total > room) {
      return "These files come to " + size(total) + "; this link has room for " + size(room) +
        " more. Call the practice if more is needed.";
    }
    return "";
  }

  function check() {
    var said = whatIsWrong(chosen());
    problem.textContent = said;
    problem.hidden = !said;
    button.disabled = !!said || sending;  // one send at a time
    return !said;
  }

  // Consecutive files, each group under what one request may carry.
  function groups(files) {
    var most = Math.min(Number(form.dataset.groupBytes), Number(form.dataset.perSend) - OVERHEAD);
    var all = [], current = [], bytes = 0;
    files.forEach(function (f) {
      var adds = f.size + PER_FILE;
      if (current.length && (bytes + adds > most || current.length >= GROUP_FILES)) {
        all.push(current);
        current = [];
        bytes = 0;
      }
      current.push(f);
      bytes += adds;
    });
    if (current.length) all.push(current);
    return all;
  }

  function post(group, onProgress) {
    return new Promise(function (resolve, reject) {
      var data = new FormData();
      data.append("csrfmiddlewaretoken", form.elements.csrfmiddlewaretoken.value);
      group.forEach(function (f) { data.append("files", f, f.name); });
      var xhr = new XMLHttpRequest();
      xhr.upload.addEventListener("progress", function (e) { onProgress(e.loaded); });
      xhr.addEventListener("load", function () { resolve(xhr); });
      xhr.addEventListener("error", function () { reject(new Error("network")); });
      xhr.addEventListener("abort", function () { reject(new Error("network")); });
      xhr.open("POST", form.action);
      xhr.send(data);
    });
  }

  function wait(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

  function show(html) {
    // A page the server rendered (what became of the files, or why it refused): shown as is.
    document.open();
    document.write(html);
    document.close();
  }

  // The server's page for the last group, telling what became of every group's files.
  function summed(html, sent) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var said = doc.getElementById("send-summary");
    if (said) {
      var them = sent === 1 ? "it" : "them";
      said.textContent = sent + " file" + (sent === 1 ? "" : "s") + " received. The practice " +
        "will look at " + them + " before adding " + them + " to the record.";
    }
    return "<!DOCTYPE html>" + doc.documentElement.outerHTML;
  }

  function stopped(total, why) {
    sending = false;
    progress.hidden = true;
    button.disabled = false;
    problem.textContent = through ?
      through + " of " + total + " files got through; " +
        (why || "the connection dropped before the rest. Send again: what got through is " +
          "not sent twice.") :
      "The send did not get through. Check the connection and send again.";
    problem.hidden = false;
  }

  // What the portal's page says went wrong: its alert, or a closed link's heading and text.
  function saidOn(page) {
    var alert = page.querySelector(".error[role=alert]");
    if (alert) return alert.textContent.trim();
    var heading = page.querySelector("h1"), text = page.querySelector("h1 + p");
    return [heading && heading.textContent.trim(), text && text.textContent.trim()]
      .filter(Boolean).join(": ");
  }

  async function sendAll(files) {
    var total = files.reduce(function (n, f) { return n + f.size; }, 0);
    var done = 0, sent = 0, last = "";
    through = 0;
    var all = groups(files);
    for (var g = 0; g < all.length; g++) {
      var group = all[g], xhr = null;
      for (var tries = 1; ; tries++) {
        try {
          xhr = await post(group, function (loaded) {
            var now = Math.min(total, done + loaded);
            bar.value = total ? now / total : 1;
            progressText.textContent = now < total ?
              "Sending… " + size(now) + " of " + size(total) :
              "Sent: the files are being checked…";
          });
        } catch (e) {
          xhr = null;
        }
        // The portal's own pages say what to do (a full or closed link, storage failed: the
        // send page's 503); a timeout, a proxy's or a restarting server's error and an empty
        // answer are the connection's: the group goes again, after 2, 4 and 8 seconds.
        var portals = xhr && xhr.responseText &&
          (xhr.status < 500 || xhr.responseText.indexOf('id="send-form"') !== -1);
        if (portals && xhr.status !== 408) break;
        if (tries >= TRIES) return stopped(files.length);
        await wait(1000 * Math.pow(2, tries));
      }
      if (xhr.status !== 200) {
        // Refused: said on the page as it is, or here when earlier groups got through
        // (the page would say nothing of them, and a reload would forget what they were).
        if (!through) return show(xhr.responseText);
        var refused = new DOMParser().parseFromString(xhr.responseText, "text/html");
        return stopped(files.length, "then the portal said: " + saidOn(refused));
      }
      var page = new DOMParser().parseFromString(xhr.responseText, "text/html");
      var said = page.getElementById("send-summary");
      sent += said ? Number(said.dataset.sent) : 0;
      group.forEach(function (f) { received.add(f); });
      through += group.length;
      done += group.reduce(function (n, f) { return n + f.size; }, 0);
      last = xhr.responseText;
    }
    progressText.textContent = "Sent: the files are being checked…";
    show(summed(last, sent));
  }

  input.addEventListener("change", check);
  form.addEventListener("submit", function (event) {
    if (sending || !check()) { event.preventDefault(); return; }
    if (!window.FormData || !window.XMLHttpRequest || !window.DOMParser) return;
    event.preventDefault();
    var files = chosen();
    if (!files.length) {
      problem.textContent = "These files were sent already.";
      problem.hidden = false;
      return;
    }
    sending = true;
    button.disabled = true;
    var before = document.getElementById("send-summary");  // about an earlier send
    if (before) before.remove();
    bar.value = 0;
    progressText.textContent = "Sending…";
    progress.hidden = false;
    sendAll(files).catch(function () { stopped(files.length); });
  });
})();
