// Challenge page helper. No inline script (CSP): this file is the page's only script.
(function () {
  "use strict";
  // Final page: hand the CRes to the 3DS Server at notificationURL without a click.
  var final = document.querySelector("form[data-autosubmit]");
  if (final) {
    final.submit();
    return;
  }
  // Challenge page: one post per render (the page token changes with every answer).
  var forms = document.querySelectorAll("form[data-once]");
  Array.prototype.forEach.call(forms, function (form) {
    form.addEventListener("submit", function (event) {
      if (form.getAttribute("data-sent")) {
        event.preventDefault();
        return;
      }
      form.setAttribute("data-sent", "1");
    });
  });
})();
