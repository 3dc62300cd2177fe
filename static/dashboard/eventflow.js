// EventFlow dashboard: the few behaviours htmx attributes cannot say.
// (No inline scripts anywhere: the Content-Security-Policy forbids them.)
(function () {
  "use strict";

  function setConnection(state, text) {
    var el = document.getElementById("conn");
    if (el) {
      el.dataset.state = state;
      el.textContent = text;
    }
  }

  // A dependency down answers the banner's poll with a 503 that names it: show it (htmx swaps only 2xx).
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.xhr.status === 503 && event.detail.target.id === "sampler") {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
  document.addEventListener("htmx:wsConnecting", function () { setConnection("connecting", "Connecting…"); });
  // Regions that must re-sync after a reconnect listen for "ef:reconnected" (not the first
  // open: the page was just rendered, and reloading it then would race the operator's clicks).
  var opened = false;
  document.addEventListener("htmx:wsOpen", function (event) {
    setConnection("live", "Live");
    if (opened) htmx.trigger(event.target, "ef:reconnected");
    opened = true;
  });
  // While the socket is down the figures on screen are old: dim them and say since when.
  var lastUpdate = Date.now();
  var staleTimer = null;
  function markStale() {
    document.body.classList.add("stale");
    var seconds = Math.round((Date.now() - lastUpdate) / 1000);
    setConnection("offline", "Reconnecting… last update " + seconds + " s ago");
  }
  document.addEventListener("htmx:wsClose", function () {
    markStale();
    if (!staleTimer) staleTimer = setInterval(markStale, 1000);
  });
  document.addEventListener("htmx:wsOpen", function () {
    document.body.classList.remove("stale");
    if (staleTimer) { clearInterval(staleTimer); staleTimer = null; }
  });

  // Forms sent over the socket carry their fields only; the server reads no headers there.
  document.addEventListener("htmx:wsConfigSend", function (event) { event.detail.headers = null; });

  // The live tail keeps the newest rows only, so a busy topic cannot grow the page.
  // A failed event pushed to the top of its table (it failed again) leaves its older row.
  document.addEventListener("htmx:wsAfterMessage", function () {
    lastUpdate = Date.now();
    resort();
    var rows = document.getElementById("tail-rows");
    if (rows) {
      var keep = Number(rows.closest("table").dataset.keep);  // dashboard.live.TAIL_PAGE_ROWS, from the page
      while (rows.rows.length > keep) rows.deleteRow(-1);
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

  // "/" anywhere but in a field jumps to the header's search; Escape leaves it.
  document.addEventListener("keydown", function (event) {
    var field = event.target.closest && event.target.closest("input, textarea, select, [contenteditable]");
    var search = document.getElementById("global-q");
    if (event.key === "/" && !field && search) {
      event.preventDefault();
      search.focus();
      search.select();
    } else if (event.key === "Escape" && event.target === search) {
      search.value = "";
      var drop = document.getElementById("search-results");
      if (drop && search.form.contains(drop)) drop.replaceChildren();
      search.blur();
    }
  });

  // Tables marked data-sortable sort by a column header's button, in the browser: the
  // overview's tables are live regions replaced every second, so the order chosen is
  // remembered per table and applied again after each push.
  var sorts = {};
  function cellValue(row, index) {
    var cell = row.children[index];
    if (!cell) return "";
    var v = cell.getAttribute("data-v");
    if (v !== null && v !== "" && !isNaN(Number(v))) return Number(v);
    return (v !== null ? v : cell.textContent).trim().toLowerCase();
  }
  function sortTable(table, index, descending) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).filter(function (r) { return !r.querySelector(".empty"); });
    rows.sort(function (a, b) {
      var x = cellValue(a, index), y = cellValue(b, index);
      var order = x < y ? -1 : x > y ? 1 : 0;
      return descending ? -order : order;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    table.querySelectorAll("thead th").forEach(function (th, i) {
      if (i === index) th.setAttribute("aria-sort", descending ? "descending" : "ascending");
      else th.removeAttribute("aria-sort");
    });
  }
  function resort() {
    Object.keys(sorts).forEach(function (id) {
      var table = document.querySelector("#" + id + " table[data-sortable]");
      if (table) sortTable(table, sorts[id].index, sorts[id].descending);
    });
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("table[data-sortable] thead button");
    if (!button) return;
    var th = button.closest("th");
    var table = th.closest("table");
    var region = table.closest("section[id]");
    var index = Array.prototype.indexOf.call(th.parentNode.children, th);
    var previous = sorts[region.id];
    var descending = previous && previous.index === index ? !previous.descending : th.classList.contains("num");
    sorts[region.id] = { index: index, descending: descending };
    sortTable(table, index, descending);
  });

  // The live tail's filter applies to the rows already on screen too (the socket filters
  // the rows it sends from then on): same fields, same rules as TailFilter.accepts.
  function applyTailFilter(form) {
    var type = (form.elements["tail-type"].value || "").trim();
    var key = (form.elements["tail-key"].value || "").trim();
    var text = (form.elements["tail-text"].value || "").trim().toLowerCase();
    document.querySelectorAll("#tail-rows tr.tail-row").forEach(function (row) {
      var ok = (!type || row.dataset.type === type) && (!key || row.dataset.key === key) &&
        (!text || (row.dataset.text || "").indexOf(text) !== -1);
      row.hidden = !ok;
    });
  }
  ["input", "change"].forEach(function (name) {
    document.addEventListener(name, function (event) {
      var form = event.target.form;
      if (form && form.id === "tail-filter") applyTailFilter(form);
    });
  });

  // The charts' range (5 min / 1 h / 24 h): every range is in the live partial; the
  // choice lives on its wrapper, outside the partial, so pushes keep it.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-range-choice]");
    if (!button) return;
    var ranges = button.closest(".ranges");
    ranges.dataset.range = button.dataset.rangeChoice;
    ranges.querySelectorAll("[data-range-choice]").forEach(function (b) {
      b.setAttribute("aria-pressed", b === button ? "true" : "false");
    });
  });
})();
