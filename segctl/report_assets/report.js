// segctl report: legend buttons show or hide a segment's line. No data lives in this script;
// it only reads the page, so nothing a user wrote can reach code.
(function () {
  "use strict";
  var buttons = document.querySelectorAll("button[data-toggle]");
  Array.prototype.forEach.call(buttons, function (button) {
    button.addEventListener("click", function () {
      var shown = button.getAttribute("aria-pressed") !== "false";
      button.setAttribute("aria-pressed", shown ? "false" : "true");
      var key = button.getAttribute("data-toggle");
      var parts = document.querySelectorAll("[data-series]");
      Array.prototype.forEach.call(parts, function (part) {
        if (part.getAttribute("data-series") === key) {
          part.classList.toggle("hidden", shown);
        }
      });
    });
  });
  document.documentElement.setAttribute("data-ready", "true");
})();
