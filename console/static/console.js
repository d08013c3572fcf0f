// tokenproxy console: the only script. It refreshes a verification's
// progress in place; without it the page refreshes itself (<noscript>).
"use strict";
(function () {
  // Says the script ran (the browser test checks it is off when it should be).
  document.documentElement.classList.add("js");
  var state = document.getElementById("verify-state");
  if (!state) { return; }
  var url = state.getAttribute("data-status");
  var bar = document.getElementById("verify-progress");
  var pct = document.getElementById("verify-pct");
  function poll() {
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        bar.value = s.percent;
        pct.textContent = String(s.percent);
        if (s.finished) { window.location.reload(); } else { setTimeout(poll, 500); }
      })
      .catch(function () { setTimeout(poll, 2000); });
  }
  setTimeout(poll, 300);
})();
