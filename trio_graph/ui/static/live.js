// Live updates for the trio_graph inspector (served by the app; no CDN, no framework).
// The page's <body> names its event stream (data-events), the URL of its live part
// (data-part) and the version it shows (data-version). On a "change" event with a new
// version, the status fields are updated at once and #live is fetched again and
// replaced, unless the person is typing in a form inside it.
(function () {
  "use strict";
  var body = document.body;
  var conn = document.getElementById("conn");
  if (!body.dataset.events || !window.EventSource) return;
  var version = body.dataset.version || "";
  var pending = false;

  function say(text) { if (conn) conn.textContent = text; }

  function typing(live) {
    var el = document.activeElement;
    return el && live.contains(el) && /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName) && el.value;
  }

  function refresh() {
    var live = document.getElementById("live");
    if (!live || !body.dataset.part) return;
    if (typing(live)) { pending = true; return; }
    pending = false;
    fetch(body.dataset.part, { headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) live.innerHTML = html; })
      .catch(function () { say("update failed; retrying"); });
  }

  function open() {
    var url = body.dataset.events;
    url += (url.indexOf("?") < 0 ? "?" : "&") + "since=" + encodeURIComponent(version);
    var source = new EventSource(url);
    source.addEventListener("open", function () { say("live"); });
    source.addEventListener("change", function (e) {
      var data = JSON.parse(e.data);
      if (data.version === version) return;
      version = data.version;
      body.dataset.version = version;
      if (data.status) {
        document.querySelectorAll("[data-field=status] .badge").forEach(function (el) {
          el.textContent = data.status;
          el.className = "badge status-" + data.status;
        });
      }
      refresh();
    });
    source.addEventListener("error", function () {
      say("reconnecting…");
      if (source.readyState === EventSource.CLOSED) setTimeout(open, 2000);
    });
  }

  document.addEventListener("focusout", function () { if (pending) setTimeout(refresh, 200); });
  open();
})();
