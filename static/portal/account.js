// After a passkey is added, reload so the list shows it.
document.addEventListener("otp_webauthn.register_complete", function () {
  window.setTimeout(function () { window.location.reload(); }, 600);
});
