// EventFlow dashboard: the few behaviours htmx attributes cannot say.
// (No inline scripts anywhere: the Content-Security-Policy forbids them.)
(function () {
  "use strict";
  var MAX_TAIL_ROWS = 300;

  function setConnection(state, text) {
    var el = document.getElementById("conn");
    if (el) {
      el.dataset.state = state;
      el.textContent = text;
    }
  }

  document.addEventListener("htmx:wsConnecting", function () { setConnection("connecting", "Connecting…"); });
  document.addEventListener("htmx:wsOpen", function () { setConnection("live", "Live"); });
  document.addEventListener("htmx:wsClose", function () { setConnection("offline", "Reconnecting…"); });

  // The live tail keeps the newest rows only, so a busy topic cannot grow the page.
  document.addEventListener("htmx:wsAfterMessage", function () {
    var rows = document.getElementById("tail-rows");
    if (rows) {
      while (rows.rows.length > MAX_TAIL_ROWS) rows.deleteRow(-1);
    }
  });

  // "Select all on this page" for the failed-events table.
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (box.matches && box.matches("[data-select-all]")) {
      document.querySelectorAll("#failed-rows input[name=ids]:not(:disabled)").forEach(function (b) {
        b.checked = box.checked;
      });
    }
  });
})();
