// The live events view: rows pushed by the server (server-sent events), newest first.
(function () {
  "use strict";
  var MAX_ROWS = 200;
  function cell(text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }
  function start() {
    var status = document.getElementById("live-status");
    var body = document.querySelector("#live-events tbody");
    if (!status || !body || !window.EventSource) return;
    var source = new EventSource(status.getAttribute("data-stream"));
    source.onopen = function () { status.textContent = "Connected: events appear as they arrive."; };
    source.onerror = function () { status.textContent = "Connection lost; reconnecting…"; };
    source.addEventListener("event", function (message) {
      var e = JSON.parse(message.data);
      var placeholder = body.querySelector("tr.placeholder");
      if (placeholder) placeholder.remove();
      var row = document.createElement("tr");
      row.setAttribute("data-key", e.key);
      row.setAttribute("data-event", e.event);
      row.appendChild(cell(e.time.replace("T", " ").replace("+00:00", "")));
      row.appendChild(cell(e.event));
      row.appendChild(cell(e.source));
      row.appendChild(cell(e.event_id));
      row.appendChild(cell(e.value === null ? "–" : e.value + " " + (e.currency || ""), "n"));
      row.appendChild(cell(e.content_ids.join(", ") || "–"));
      row.appendChild(cell(e.merged.length ? e.merged.join(", ") : "–"));
      row.appendChild(cell(e.state_text, "state state-" + e.state));
      body.insertBefore(row, body.firstChild);
      while (body.rows.length > MAX_ROWS) body.deleteRow(body.rows.length - 1);
    });
    source.addEventListener("update", function (message) {
      var u = JSON.parse(message.data);
      var rows = body.querySelectorAll("tr[data-key]");
      for (var i = 0; i < rows.length; i++) {
        if (rows[i].getAttribute("data-key") !== u.key) continue;
        var state = rows[i].querySelector("td.state");
        state.textContent = u.state_text;
        state.className = "state state-" + u.state;
      }
    });
    source.addEventListener("dropped", function () {
      status.textContent = "This page fell behind; reconnecting…";
    });
  }
  document.addEventListener("DOMContentLoaded", start);
})();
