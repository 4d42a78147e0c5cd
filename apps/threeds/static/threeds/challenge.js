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
  // OOB page: ask every 2 s whether the app has answered (or the challenge fell back to SMS),
  // then post "continue" as the cardholder would. The button stays for browsers without fetch.
  var oob = document.querySelector("form[data-oob-status]");
  if (oob && window.fetch && window.FormData) {
    var url = oob.getAttribute("data-oob-status");
    var polls = 0;
    var timer = window.setInterval(function () {
      polls += 1;
      if (oob.getAttribute("data-sent") || polls > 450) {  // 15 minutes: longer than any challenge
        window.clearInterval(timer);
        return;
      }
      var body = new FormData();
      body.append("acsTransID", oob.elements.acsTransID.value);
      body.append("pageToken", oob.elements.pageToken.value);
      window.fetch(url, { method: "POST", body: body, credentials: "omit", cache: "no-store" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (status) {
          if (status && status.waiting === false && !oob.getAttribute("data-sent")) {
            window.clearInterval(timer);
            oob.querySelector('button[value="continue"]').click();
          }
        })
        .catch(function () {});
    }, 2000);
  }
})();
