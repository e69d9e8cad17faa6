// A new link's page, and a new access token's: print only the handout (print CSS hides the
// rest), copy a value with one tap, select a field's text when it is focused. No inline script
// under the CSP.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var button = document.getElementById("print-handout");
  if (button) button.addEventListener("click", function () { window.print(); });
  ["share-url", "share-password", "upload-url", "upload-password"].forEach(function (id) {
    var field = document.getElementById(id);
    if (field) field.addEventListener("focus", function () { field.select(); });
  });
  document.querySelectorAll("button[data-copy]").forEach(function (copy) {
    var field = document.getElementById(copy.dataset.copy);
    var label = copy.textContent;
    function copied(ok) {
      copy.textContent = ok ? "Copied" : "Select and copy";
      setTimeout(function () { copy.textContent = label; }, 2500);
    }
    copy.addEventListener("click", function () {
      field.focus();
      field.select();
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(
          function () { copied(true); },
          function () { copied(document.execCommand("copy")); }
        );
      } else {
        copied(document.execCommand("copy"));
      }
    });
  });
});
