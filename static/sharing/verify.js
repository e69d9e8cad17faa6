/* Verification page: show or hide the password, and count down a wait the server asked for. */
(function () {
  "use strict";
  var field = document.getElementById("id_password");
  var toggle = document.getElementById("show-password");
  if (field && toggle) {
    toggle.hidden = false;
    toggle.addEventListener("click", function () {
      var show = field.type === "password";
      field.type = show ? "text" : "password";
      toggle.textContent = show ? "Hide" : "Show";
      toggle.setAttribute("aria-pressed", String(show));
      field.focus();
    });
    // Masked again before sending, so the browser keeps no copy in its history of typed text.
    field.form.addEventListener("submit", function () { field.type = "password"; });
  }
  var wait = document.getElementById("wait");
  if (wait) {
    var left = parseInt(wait.dataset.seconds, 10) || 0;
    var label = wait.querySelector(".seconds");
    var timer = setInterval(function () {
      left -= 1;
      if (left > 0) {
        label.textContent = left + (left === 1 ? " second" : " seconds");
        return;
      }
      clearInterval(timer);
      wait.textContent = "You can press Open now.";
    }, 1000);
  }
})();

/* "Email me a code" sends it without leaving the page, so a password already typed stays
   typed (the page it led to started empty). Without scripts the form posts as before. */
(function () {
  "use strict";
  var form = document.querySelector("form.code-form");
  var said = document.getElementById("code-status");
  if (!form || !said || !window.fetch || !window.DOMParser) return;
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;
    fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin" })
      .then(function (r) { return r.text().then(function (html) { return { r: r, html: html }; }); })
      .then(function (got) {
        var page = new DOMParser().parseFromString(got.html, "text/html");
        var messages = page.querySelector(".messages");
        if (!messages || !got.r.redirected) {
          window.location.assign("/s/");  // the link ended meanwhile: this page says so
          return;
        }
        var old = document.querySelector("main .messages");
        if (old) old.remove();  // what an earlier request said is out of date
        said.textContent = messages.textContent.trim();  // read out: a live region
        said.hidden = false;
        var code = document.getElementById("id_code");
        if (code) code.focus();  // where the code goes next
      })
      .catch(function () {
        said.textContent = "The code could not be asked for just now. Check your connection and try again.";
        said.hidden = false;
      })
      .then(function () { button.disabled = false; });
  });
})();
