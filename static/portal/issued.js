// Print only the handout (print CSS hides the rest); no inline script under the CSP.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var button = document.getElementById("print-handout");
  if (button) button.addEventListener("click", function () { window.print(); });
  ["share-url", "share-password"].forEach(function (id) {
    var field = document.getElementById(id);
    if (field) field.addEventListener("focus", function () { field.select(); });
  });
});
