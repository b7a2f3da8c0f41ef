// Inspectors' and reviewers' pages. htmx sends their forms (with the session's X-CSRF-Token, from hx-headers on
// <body>); this file only stops a form whose chosen photos and files exceed the server's upload limit before it is
// sent (a phone on a slow network should not upload 40 MB to be refused), and moves the focus to the problems
// when a refused form comes back.
(function () {
  "use strict";

  function tooLarge(form) {
    var limit = Number(form.getAttribute("data-max-mb") || 0) * 1024 * 1024;
    if (!limit) { return false; }
    var total = 0;
    form.querySelectorAll('input[type="file"]').forEach(function (input) {
      Array.prototype.forEach.call(input.files || [], function (f) { total += f.size; });
    });
    return total > limit;
  }

  // capture phase: runs before htmx's listener on the form, and keeps the event from reaching it
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) { return; }
    var warning = form.querySelector(".size-warning");
    if (tooLarge(form)) {
      event.preventDefault();
      event.stopPropagation();
      if (warning) { warning.hidden = false; warning.setAttribute("tabindex", "-1"); warning.focus(); }
    } else if (warning) {
      warning.hidden = true;
    }
  }, true);

  document.addEventListener("htmx:afterSwap", function () {
    var alert = document.querySelector('#main [role="alert"]');
    if (alert) { alert.setAttribute("tabindex", "-1"); alert.focus(); }
  });
})();
