// My uploads: keeps the conversion progress of videos and recordings up to date while the
// server converts them, by asking GET /api/v1/media/{id} every 2 seconds. Rows marked
// data-watch are followed until their status is no longer "processing".
(function () {
  "use strict";

  var POLL_MS = 2000;
  var STATUS = {
    ready: "Ready",
    processing: "Converting for playback",
    uploading: "Upload not finished",
    failed: "Failed",
    recycled: "In the recycle bin",
    archived: "Archived"
  };

  function watched() {
    return Array.prototype.slice.call(document.querySelectorAll("tr[data-watch]"));
  }

  function timeLeft(seconds) {
    if (typeof seconds !== "number") return "";
    if (seconds < 60) return "less than a minute left";
    var minutes = Math.floor((seconds + 30) / 60);
    return "about " + minutes + (minutes === 1 ? " minute" : " minutes") + " left";
  }

  function detail(item) {
    switch (item.transcode_state) {
      case "waiting": return "Waiting for the converter";
      case "failed": return item.error || "Conversion failed";
      case "running": return timeLeft(item.eta_seconds) || "Converting";
      case "done": return "Finishing";
      default: return "Waiting to start";
    }
  }

  function percentOf(item) {
    if (typeof item.progress !== "number") return null;
    return Math.max(0, Math.min(100, Math.round(item.progress)));
  }

  function update(row, item) {
    row.setAttribute("data-status", item.status);
    var statusText = row.querySelector(".my-status-text");
    if (statusText) {
      statusText.textContent = STATUS[item.status] || String(item.status);
      if (item.status === "failed" && item.error) statusText.textContent += ": " + item.error;
    }
    var bar = row.querySelector(".my-progress progress");
    var text = row.querySelector(".my-progress-text");
    if (item.status !== "processing") {
      row.removeAttribute("data-watch");
      var box = row.querySelector(".my-progress");
      if (box) box.parentNode.removeChild(box);
      return;
    }
    var pct = percentOf(item);
    if (bar && pct !== null) {
      bar.value = pct;
      bar.textContent = pct + " %";
    }
    if (text) text.textContent = (pct !== null ? pct + " % · " : "") + detail(item);
  }

  function poll() {
    var rows = watched();
    if (!rows.length) return;
    Promise.all(rows.map(function (row) {
      var id = row.getAttribute("data-media-id");
      return fetch("/api/v1/media/" + encodeURIComponent(id), {
        credentials: "same-origin",
        headers: { Accept: "application/json" }
      })
        .then(function (res) { return res.ok ? res.json() : null; })
        .then(function (item) { if (item) update(row, item); })
        // A dropped connection or a restart: keep the last figures and ask again next time.
        .catch(function () {});
    })).then(function () {
      if (watched().length) setTimeout(poll, POLL_MS);
    });
  }

  if (watched().length) setTimeout(poll, POLL_MS);
})();
