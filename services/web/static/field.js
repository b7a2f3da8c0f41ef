// Staff forms (inspectors and reviewers): sent with the session's X-CSRF-Token header, which a plain form post
// cannot carry. The answer is either a redirect (followed: the page it names is loaded) or a page of its own (a
// refusal or the form again with the problems named in Chinese), which replaces this one.
(function () {
  "use strict";

  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function tooLarge(form) {
    var limit = Number(form.getAttribute("data-max-mb") || 0) * 1024 * 1024;
    if (!limit) { return false; }
    var total = 0;
    form.querySelectorAll('input[type="file"]').forEach(function (input) {
      Array.prototype.forEach.call(input.files || [], function (f) { total += f.size; });
    });
    return total > limit;
  }

  function show(html, url) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    document.title = doc.title;
    document.body.replaceWith(document.adoptNode(doc.body));
    if (url) { history.replaceState(null, "", url); }
    var focus = document.querySelector('[role="alert"]') || document.getElementById("main");
    if (focus) { focus.setAttribute("tabindex", "-1"); focus.focus(); }
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.classList.contains("js-post")) { return; }
    event.preventDefault();
    var warning = form.querySelector(".size-warning");
    if (tooLarge(form)) {
      if (warning) { warning.hidden = false; warning.focus(); }
      return;
    }
    if (warning) { warning.hidden = true; }
    var body = new FormData(form);
    if (event.submitter && event.submitter.name) { body.set(event.submitter.name, event.submitter.value); }
    form.setAttribute("aria-busy", "true");
    form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    // getAttribute: a control named "action" shadows form.action
    fetch(form.getAttribute("action"), {method: "POST", body: body, credentials: "same-origin",
                        headers: {"X-CSRF-Token": csrf()}})
      .then(function (response) {
        return response.text().then(function (text) {
          var html = (response.headers.get("content-type") || "").indexOf("text/html") === 0;
          if (html) {
            show(text, response.redirected ? response.url : null);
          } else {
            show("<title>出错了</title><main id=\"main\"><h1>出错了</h1><div role=\"alert\" class=\"problems\"><p>" +
                 "服务器未能处理（" + response.status + "），请返回重试。</p></div></main>", null);
          }
        });
      })
      .catch(function () {
        form.removeAttribute("aria-busy");
        form.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
        if (warning) { warning.textContent = "网络连接失败，请检查网络后重试。"; warning.hidden = false; }
      });
  });
})();
