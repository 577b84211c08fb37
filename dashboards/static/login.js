// Old login links (GET /login?token=...): post the single-use ticket the page holds.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("ticket-login");
  if (form) form.submit();
});
