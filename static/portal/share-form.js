/* Share form: the patient's email on file goes with a patient link only. */
(function () {
  "use strict";
  var email = document.getElementById("id_recipient_email");
  if (!email || !email.dataset.patientEmail) return;
  var onFile = email.dataset.patientEmail;
  document.querySelectorAll('input[name="recipient_kind"]').forEach(function (radio) {
    radio.addEventListener("change", function () {
      if (radio.value === "patient" && !email.value) email.value = onFile;
      if (radio.value === "referrer" && email.value === onFile) email.value = "";
    });
  });
})();

/* A de-identified copy goes to a clinician or a teacher: choosing it picks that recipient. */
(function () {
  "use strict";
  var deid = document.getElementById("id_deidentified");
  if (!deid) return;
  deid.addEventListener("change", function () {
    var referrer = document.querySelector('input[name="recipient_kind"][value="referrer"]');
    if (deid.checked && referrer && !referrer.checked) {
      referrer.checked = true;
      referrer.dispatchEvent(new Event("change"));
    }
  });
})();
