// certdns portal: progressive enhancement only. Every page works without it.
(function () {
  "use strict";
  function copy(button) {
    var target = document.querySelector(button.getAttribute("data-copy"));
    if (!target) return;
    var text = target.value !== undefined && target.tagName === "INPUT" ? target.value : target.textContent;
    var done = function () {
      var old = button.textContent;
      button.textContent = "Copied";
      button.setAttribute("aria-live", "polite");
      setTimeout(function () { button.textContent = old; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallback(target, text); done(); });
    } else {
      fallback(target, text);
      done();
    }
  }
  function fallback(target, text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "sr-only";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } catch (e) { /* the text stays selectable */ }
    document.body.removeChild(area);
    if (target.select) target.select();
  }
  document.addEventListener("click", function (e) {
    var el = e.target.closest("[data-copy]");
    if (el) { e.preventDefault(); copy(el); return; }
    var confirmEl = e.target.closest("[data-confirm]");
    if (confirmEl && !window.confirm(confirmEl.getAttribute("data-confirm"))) e.preventDefault();
  });
  document.addEventListener("focusin", function (e) {
    if (e.target.hasAttribute && e.target.hasAttribute("data-select")) e.target.select();
  });
})();
