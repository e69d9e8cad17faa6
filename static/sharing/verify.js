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
