// ReDoc for dualrandom: the schema from this server, rendered by the vendored bundle (no CDN, no web fonts).
// Search is off: it runs in a web worker made from a blob: URL, which the Content-Security-Policy does not allow.
window.addEventListener("DOMContentLoaded", function () {
  Redoc.init("/schema/openapi.json", { disableSearch: true, hideLoading: false },
             document.getElementById("redoc-container"));
});
