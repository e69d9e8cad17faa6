// Sending through an upload link. Before anything leaves the browser, a choice that one send
// cannot carry, or the link has no room for, is told at once (it used to upload in full and
// then be refused); a send shows how far it has got, since a CBCT over a phone connection
// takes minutes. Without this script the form still sends, and the server checks the same.
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

  // In 1024s, as the page's own figures are written (Django's filesizeformat).
  function size(bytes) {
    var KB = 1024, MB = KB * 1024, GB = MB * 1024;
    if (bytes >= GB) return (bytes / GB).toFixed(1) + " GB";
    if (bytes >= MB) return (bytes / MB).toFixed(1) + " MB";
    return (bytes > 0 ? Math.max(1, Math.round(bytes / KB)) : 0) + " KB";
  }
  var sending = false;

  function whatIsWrong(files) {
    var perSend = Number(form.dataset.perSend), room = Number(form.dataset.room);
    var total = 0, biggest = null;
    files.forEach(function (f) {
      total += f.size;
      if (!biggest || f.size > biggest.size) biggest = f;
    });
    var carries = perSend - OVERHEAD - PER_FILE * files.length;
    if (biggest && biggest.size > perSend - OVERHEAD - PER_FILE) {
      return biggest.name + " is " + size(biggest.size) + ", more than one send carries (" +
        size(perSend) + "). If it is a ZIP, open it and send the files inside in groups; " +
        "or call the practice.";
    }
    if (total > carries) {
      return "These " + files.length + " files come to " + size(total) + "; one send carries up to " +
        size(perSend) + ". Choose fewer, send them, then send the rest.";
    }
    if (total > room) {
      return "These files come to " + size(total) + "; this link has room for " + size(room) +
        " more. Call the practice if more is needed.";
    }
    return "";
  }

  function check() {
    var said = whatIsWrong(Array.prototype.slice.call(input.files || []));
    problem.textContent = said;
    problem.hidden = !said;
    button.disabled = !!said || sending;  // one send at a time
    return !said;
  }

  function sent(xhr) {
    // The answer is the page the server rendered (what became of each file): shown as is.
    document.open();
    document.write(xhr.responseText);
    document.close();
  }

  function failed() {
    sending = false;
    progress.hidden = true;
    button.disabled = false;
    problem.textContent = "The send did not get through. Check the connection and send again.";
    problem.hidden = false;
  }

  input.addEventListener("change", check);
  form.addEventListener("submit", function (event) {
    if (sending || !check()) { event.preventDefault(); return; }
    if (!window.FormData || !window.XMLHttpRequest) return;
    event.preventDefault();
    sending = true;
    var data = new FormData(form);
    var xhr = new XMLHttpRequest();
    button.disabled = true;
    bar.value = 0;
    progressText.textContent = "Sending…";
    progress.hidden = false;
    xhr.upload.addEventListener("progress", function (e) {
      if (!e.lengthComputable) return;
      bar.value = e.loaded / e.total;
      progressText.textContent = e.loaded < e.total
        ? "Sending… " + size(e.loaded) + " of " + size(e.total)
        : "Sent: the files are being checked…";
    });
    xhr.addEventListener("load", function () {
      // The portal's own 503 (storage failed) is a page that says what to do; other
      // server errors, and an empty answer, are the connection's.
      if ((xhr.status >= 500 && xhr.status !== 503) || !xhr.responseText) failed();
      else sent(xhr);
    });
    xhr.addEventListener("error", failed);
    xhr.addEventListener("abort", failed);
    xhr.open("POST", form.action);
    xhr.send(data);
  });
})();
