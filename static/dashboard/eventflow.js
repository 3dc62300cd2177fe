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
  // Regions that must re-sync after a reconnect listen for "ef:reconnected" (not the first
  // open: the page was just rendered, and reloading it then would race the operator's clicks).
  var opened = false;
  document.addEventListener("htmx:wsOpen", function (event) {
    setConnection("live", "Live");
    if (opened) htmx.trigger(event.target, "ef:reconnected");
    opened = true;
  });
  document.addEventListener("htmx:wsClose", function () { setConnection("offline", "Reconnecting…"); });

  // Forms sent over the socket carry their fields only; the server reads no headers there.
  document.addEventListener("htmx:wsConfigSend", function (event) { event.detail.headers = null; });

  // The live tail keeps the newest rows only, so a busy topic cannot grow the page.
  // A failed event pushed to the top of its table (it failed again) leaves its older row.
  document.addEventListener("htmx:wsAfterMessage", function () {
    var rows = document.getElementById("tail-rows");
    if (rows) {
      while (rows.rows.length > MAX_TAIL_ROWS) rows.deleteRow(-1);
    }
    var failed = document.getElementById("failed-rows");
    if (failed) {
      var seen = {};
      failed.querySelectorAll("tr.failed-row").forEach(function (row) {
        if (seen[row.id]) row.remove(); else seen[row.id] = true;
      });
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
